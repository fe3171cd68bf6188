"""The estimators' defaults and the rule of ``freeze="auto"``: one place, read by the Python
API and by the command line (no torch here, so that ``gar-sklearn --help`` stays fast)."""

__all__ = ["AUTO_FREEZE_SHARE", "DEFAULTS", "auto_frozen_stages"]

# The defaults of MultiAttributeClassifier's parameters that the command line also sets.
# Chosen so that a first fit on a CPU finishes and says what it does: the design's ResNet50,
# its first stages frozen and computed once per image there (freeze="auto"), FairFace's nine
# age groups, up to 30 epochs with early stopping (patience 5), the epoch table and progress
# printed.
DEFAULTS = {
    "backbone": "resnet50",
    "weights": "DEFAULT",
    "image_size": 224,
    "freeze": "auto",
    "age_bins": "fairface",
    "age_sigma": None,
    "cache_views": 2,
    "test_time_flip": False,
    "max_epochs": 30,
    "patience": 5,
    "batch_size": 32,
    "lr": 1e-3,
    "lr_schedule": "plateau",
    "optimizer": "adam",
    "weight_decay": 0.0,
    "dropout": 0.2,
    "label_smoothing": 0.0,
    "validation_fraction": 0.1,
    "weight_averaging": None,
    "ema_decay": 0.999,
    "averaging_start": 0,
    "calibrate": False,
    "verbose": 1,
}

# the share of a pretrained backbone's stages that freeze="auto" freezes on a CPU
AUTO_FREEZE_SHARE = 0.75


def auto_frozen_stages(n_stages, weights, device):
    """How many leading backbone stages ``freeze="auto"`` freezes.

    With pretrained weights on a CPU, the first 75 % of the stages (rounded
    down): they are computed once per image and cached, and each epoch
    trains the rest. On a GPU, or with random weights (``weights=None``:
    frozen random features would learn nothing), none: everything is
    trained.

    Parameters
    ----------
    n_stages : int
        The backbone's number of stages (``BackboneFeatures.stage_names``).
    weights : object
        The ``weights`` parameter; None means random initialisation.
    device : str
        The resolved device, such as ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    int

    Examples
    --------
    >>> from gar_sklearn._defaults import auto_frozen_stages
    >>> auto_frozen_stages(20, "DEFAULT", "cpu")  # mobilenet_v2
    15
    >>> auto_frozen_stages(20, "DEFAULT", "cuda:0"), auto_frozen_stages(20, None, "cpu")
    (0, 0)
    """
    if weights is None or str(device).split(":")[0] != "cpu":
        return 0
    return int(n_stages * AUTO_FREEZE_SHARE)
