"""MultiAttributeClassifier: one backbone, one softmax head per attribute, trained jointly."""

import copy
import dataclasses
import functools
import os
import pickle
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from skorch.history import History
from torch.utils.data import DataLoader

from ._allocator import tune_cpu_allocator
from ._config import get_config
from ._data import ImageDataset, collate_batch, loading_policy, releasing_batches, warn_skipped
from ._defaults import DEFAULTS, auto_frozen_stages
from ._feature_cache import feature_cache
from ._fingerprint import data_fingerprint, describe
from ._outputs import MultiAttributeOutputMixin
from ._param_validation import Described, HasMethods, Interval, StrOptions, validate_params
from ._persistence import (
    check_fields,
    fitted_attributes,
    model_template,
    params_fingerprint,
    read_checkpoint,
    register_persistence,
    storable_params,
    warn_dropped,
    write_model_snapshot,
)
from ._progress import progress_bar
from ._split import holdout_split, n_holdout
from ._targets import (
    as_target_frame,
    check_attributes,
    check_validation_pair,
    class_ages,
    encode_targets,
    fit_encoders,
    validate_targets,
)
from ._training import (
    OPTIMIZERS,
    SCHEDULES,
    TrainingCheckpoint,
    TrainingSettings,
    cuda_speed_settings,
    drop_incomplete_epoch,
    drop_training_state,
    make_net,
    resolve_device,
    restore_training_state,
    training_finished,
)
from ._training._averaging import AVERAGINGS
from ._training._calibration import fit_temperatures
from ._training._datasets import (
    drop_unreadable,
    feature_datasets,
    image_datasets,
    loader_workers,
    stem_features,
    train_workers,
    valid_workers,
)
from ._training._extras import check_fit_options, sample_datasets, training_extras
from ._training._groups import (
    SampleInfo,
    check_group_by,
    check_sample_weight,
    group_labels,
    is_group_by,
)
from ._training._random import (
    fit_generator,
    release_generator,
    seeded_initialisation,
    use_generator,
)
from ._training._selection import SELECTIONS, selection_key
from ._version import __version__
from .augmentation import RandomFlip
from .augmentation._view import pipeline_augmenter
from .backbones import (
    MultiHeadNetwork,
    WeightsUnavailableError,
    _weights,
    available_backbones,
    build_backbone,
    resolve_freeze,
)
from .preprocessing._images import as_image_source

__all__ = ["MultiAttributeClassifier"]

# a batch of 32 such images takes 6 GiB as uint8: larger sizes are typos, not faces
_MAX_IMAGE_SIZE = 8192


def _plain(value):
    """A numpy scalar parameter (from a grid built with ``np.arange``, say) as Python's own
    number or bool, as torch and ``is True`` checks expect; other values as they are."""
    return value.item() if isinstance(value, np.generic) else value


def _is_optimizer_class(value):
    return isinstance(value, type) and issubclass(value, torch.optim.Optimizer)


def _is_callback(value):
    return isinstance(value, Callback) or (isinstance(value, type) and issubclass(value, Callback))


def _is_callback_list(value):
    """A list (or tuple) of skorch callbacks or ``(name, callback)`` pairs."""
    if not isinstance(value, (list, tuple)):
        return False
    return all(
        _is_callback(item)
        or (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and _is_callback(item[1])
        )
        for item in value
    )


@dataclasses.dataclass
class _FitData:
    """A fit's checked inputs: images, encoded labels, the validation split."""

    attributes: tuple
    one_d: bool
    classes: list
    binner: object
    source: object  # every image of X (the checkpoint fingerprint's)
    codes: np.ndarray
    train: tuple  # (ImageSource, codes)
    val: tuple | None  # (ImageSource, codes) or None
    seed: int
    device: str
    fingerprint: dict | None  # of the fit, with checkpoint_dir
    resume: dict | None  # the checkpoint's training state to resume from
    infos: tuple = (SampleInfo(), None)  # weights and groups of the training, validation rows
    augment: object = None  # the ``augment`` parameter, or a Pipeline step's augmenter


class MultiAttributeClassifier(MultiAttributeOutputMixin, BaseEstimator):
    """Predict gender, age group and race from face images with one fine-tuned network.

    A pretrained torchvision backbone feeds one dense softmax head per
    attribute; training minimises the sum of the heads' cross-entropies with
    Adam, decays the learning rate, and stops early on the validation loss,
    restoring the best weights. Built on skorch.

    The defaults (shared with the ``gar-sklearn`` command) suit a first fit
    on a CPU: ResNet50 with ImageNet weights, its first stages frozen and
    computed once per image (``freeze="auto"``), FairFace's nine age
    groups, at most 10 epochs, and the epoch table printed as it trains.

    Parameters
    ----------
    backbone : str, default="resnet50"
        A name from :func:`gar_sklearn.backbones.available_backbones`.
    weights : str, path, WeightsEnum or None, default="DEFAULT"
        ``"DEFAULT"`` or a torchvision weights name (read from torch's hub
        cache, downloaded there when online), a path to a state_dict file of
        the full torchvision model, or None (random initialisation). When
        the weights can be neither read nor downloaded, fit raises an error
        that says where to put the file; ``weights=None`` or another
        ``backbone`` whose weights are at hand avoids it.
    attributes : sequence of str, default=("gender", "age", "race")
        The columns of y to predict, in this order; any subset works.
    age_bins : None, "fairface", int or sequence of int, default="fairface"
        How to turn numeric ages into classes (see
        :class:`~gar_sklearn.preprocessing.AgeBinner`): ``"fairface"`` uses
        FairFace's nine groups, an int an interval (1 = exact ages), None
        keeps y's age labels as they are (exact ages, or ages that are
        already groups, which need None). Binning happens inside the
        estimator because scikit-learn pipelines cannot transform y.
    image_size : int, default=224
        Images are resized to ``image_size`` x ``image_size``.
    freeze : "auto", None, "backbone", int or str, default="auto"
        ``"auto"``: with pretrained weights on a CPU, the first 75 % of the
        backbone's stages (rounded down; ``docs/estimators.md`` lists them
        per backbone), whose outputs are then computed once per image and
        cached; on a GPU, or with ``weights=None``, none. None (or 0) trains
        the whole network; ``"backbone"`` trains the heads only; an int
        ``k`` or a stage name freezes the backbone up to that stage (see
        ``BackboneFeatures.stage_names``) and trains the rest.
    unfreeze_after : int or None, default=None
        Train with ``freeze`` for this many epochs, then the whole network.
    head_hidden_units : int or None, default=None
        A hidden layer in each head (None: a single linear layer).
    dropout : float, default=0.2
        Dropout before each head's linear layer(s), a mask per head
        (:class:`~gar_sklearn.backbones.Dropout`).
    lr : float, default=1e-3
        Learning rate of the heads (and of the backbone unless ``backbone_lr``).
    backbone_lr : float or None, default=None
        Learning rate of the trainable backbone layers.
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        By name, or a ``torch.optim.Optimizer`` subclass used as given (see
        the ``fused_adam`` switch of :func:`gar_sklearn.set_config`).
    lr_schedule : {"plateau", "cosine", "onecycle", "step"} or None, default="plateau"
        Learning-rate decay: divide by 5 when the validation loss stalls for 2
        epochs, cosine or one-cycle over ``max_epochs``, or x0.5 every 5 epochs.
    max_epochs : int, default=10
    patience : int or None, default=5
        Early stopping patience (epochs without validation-loss improvement);
        the best weights are restored. None disables early stopping.
    batch_size : int, default=32
    validation_fraction : float or None, default=0.1
        Held out from the training data (stratified on the first attribute)
        for early stopping, unless ``fit`` gets ``validation_data``. 0 or
        None turns validation off (early stopping then watches the training
        loss).
    label_smoothing : float, default=0.0
        Uniform label smoothing of every head (but an age head with ``age_sigma``).
    age_sigma : float or None, default=None
        Train the age head on label distributions: a Gaussian of this
        standard deviation (years) around the true age over the classes'
        representative ages (exact ages, or group midpoints), instead of
        one-hot targets. Neighbouring ages then share evidence, which helps
        fine age classes most (e.g. ``age_bins=1``, ``age_sigma=2``).
    loss_weights : dict or None, default=None
        Weight of each attribute's loss in the sum, e.g. ``{"age": 2.0}``.
    missing_labels : {"raise", "ignore"}, default="raise"
        A missing label in y (None or NaN): ``"raise"`` refuses it;
        ``"ignore"`` learns each attribute from the rows that have its label
        (each head's loss averages over them, its classes and validation
        accuracy come from them), so data sets that lack an attribute for
        some images (IMDB-WIKI has no race) train one network on all of them.
        Every attribute needs at least one label; the validation split is
        stratified on the first attribute, best one every row has.
    augment : augmenter or None, default=None
        Applied to training images only, afresh every epoch, seeded from
        ``random_state`` (see :mod:`gar_sklearn.augmentation`). An augmenter
        as the step before this estimator in a
        :class:`~sklearn.pipeline.Pipeline` does the same (its
        ``fit_transform`` hands fit an
        :class:`~gar_sklearn.augmentation.AugmentedView`); giving both, and
        different ones, raises a ValueError.
    cache_features : {"auto", True, False}, default="auto"
        Compute a frozen backbone prefix once per image and train the rest
        from its cached activations. "auto": whenever ``freeze`` is set and
        ``unfreeze_after`` is None.
    cache_views : int, default=2
        With cached features and ``augment``, how many views per image are
        cached: the image itself and ``cache_views - 1`` augmented copies;
        each epoch draws one view per image.
    cache_dir : str or None, default=None
        Also keep cached features on disk, shared across processes.
    image_cache : {"auto", True, False}, default="auto"
        Decode the training images once into memory (uint8, image_size^2 x 3
        bytes each) instead of every epoch. "auto": when they fit in the
        ``image_cache_bytes`` budget of :func:`gar_sklearn.set_config`
        (``cuda_image_cache_bytes`` for a fit on a GPU).
    device : str, default="auto"
        "auto" uses CUDA when available, else the CPU.
    precision : {"float32", "bfloat16", "float16", "auto"}, default="float32"
        Mixed precision (autocast); float16 uses a gradient scaler; "auto":
        bfloat16 on a GPU that computes in it, else float32.
    channels_last : bool, default=True
        Lay out images and convolution weights channels-last, the layout
        oneDNN (CPU) and tensor cores (GPU) compute fastest in; False keeps
        torch's default layout (see ``docs/speed.md``).
    num_workers : int or "auto", default="auto"
        DataLoader worker processes for decoding files. "auto": one per core
        that torch's threads leave spare, at most 4; none where no core is
        spare, and then the main process decodes each batch between forward
        passes. On a GPU, every core but one, at most 8, kept from epoch to
        epoch.
    on_error : {"raise", "skip"}, default="raise"
        Unreadable images: raise naming the file, or skip them with a warning
        listing them (at predict time their predictions are None and their
        probabilities NaN).
    test_time_flip : bool, default=False
        At predict time, average the probabilities of each image and its
        mirror image, for twice the prediction time.
    group_by : None, str or tuple of str, default=None
        Column(s) of y whose combinations of values define groups (``"race"``,
        ``("race", "gender")``), for ``balance`` and ``selection``. A column
        that is not an attribute is read from a y DataFrame; an age column
        that is an attribute is grouped as it is predicted (binned).
    balance : {None, "reweight", "sample"}, default=None
        Give every group of ``group_by`` the same weight in training:
        ``"reweight"`` weighs each sample's loss by ``W / (G * W_g)`` (``W``
        the total sample weight, ``W_g`` its group's, ``G`` the number of
        groups); ``"sample"`` draws each epoch's training samples with
        replacement, every group as often (a ``WeightedRandomSampler``
        seeded from ``random_state`` and the epoch). The validation loss
        then weighs the validation split's groups equally.
    selection : {"loss", "worst_group_accuracy"} or callable, default="loss"
        What picks the epoch whose weights are kept and drives early
        stopping: the validation loss, or the lowest validation accuracy of
        a group of ``group_by`` (a group's accuracy being the mean over the
        attributes), or ``selection(y_true, y_pred, sensitive_features)``
        returning a score, higher being better (labels as DataFrames with a
        column per attribute; the ``group_by`` columns as a DataFrame, None
        without ``group_by``). Other than ``"loss"``, the best epoch is kept
        even with ``patience=None``; the learning-rate schedule still
        watches the loss.
    weight_averaging : {None, "ema", "swa"}, default=None
        Average the weights during training and validate, select, predict
        and save with the average: ``"ema"`` an exponential moving average
        over training steps (``ema_decay``), ``"swa"`` the mean of the
        weights at the end of each epoch (stochastic weight averaging).
        BatchNorm statistics are averaged too.
    ema_decay : float, default=0.999
        The moving average's decay per training step, with ``"ema"``.
    averaging_start : int, default=0
        Epochs trained before averaging starts.
    calibrate : bool, default=False
        Fit a temperature per head on the validation split after training
        (temperature scaling), so that ``predict_proba`` is calibrated;
        predictions do not change. With ``test_time_flip`` they are fitted on
        the average of each validation image's and its mirror image's
        probabilities, as prediction averages them (the average may then, in
        rare rows, pick another class than the uncalibrated one).
    callbacks : list or None, default=None
        More skorch callbacks for training, passed to
        ``skorch.NeuralNet(callbacks=...)``: callback instances or
        ``(name, callback)`` pairs, such as
        ``[("tensorboard", skorch.callbacks.TensorBoard(writer))]``, MLflow or
        Weights & Biases loggers. Each fit uses clones of them
        (:func:`sklearn.base.clone`), so the objects given stay as they
        were and refits start afresh; they run after the estimator's own
        callbacks (scoring, early stopping, learning-rate schedule).
    random_state : int, RandomState or None, default=None
        Seeds initialisation, the validation split, shuffling and augmentation.
    verbose : int, default=1
        0 prints nothing. 1 prints a line per epoch (losses, validation
        accuracy per attribute) to stdout, as skorch does, and shows the
        progress of the long steps (feature extraction, each epoch's
        batches, prediction) on stderr: as bars on a terminal, otherwise as
        a plain line every 30 s (done, rate, time left). 2 draws the bars
        also when stderr is not a terminal.
    checkpoint_dir : str, path or None, default=None
        A folder where fit writes ``last.pt`` (everything needed to resume:
        weights, optimizer, scheduler and early-stopping state, history,
        random state) after every epoch, and ``best.pt`` (a model file for
        :func:`gar_sklearn.load`) whenever the validation loss improves.
        When the folder already holds a checkpoint of the same parameters
        and data, fit resumes from it and ends where an uninterrupted fit
        would (a finished one is restored without training); a checkpoint of
        other parameters or data raises a ValueError. See
        ``docs/persistence.md``.

    Attributes
    ----------
    attributes_ : tuple of str
        The attributes, in the column order of ``predict``.
    classes_ : list of ndarray
        The labels of each attribute (a single array when y was 1-D).
    net_ : skorch.NeuralNet
        The trained network; ``net_.history`` holds the per-epoch losses and
        validation accuracies (``valid_acc_<attribute>``).
    age_binner_ : AgeBinner or None
        The fitted binner when ``age_bins`` is set.
    weights_ : str or None
        The weights actually loaded.
    device_ : str
        The device used for training.
    n_frozen_stages_ : int
        How many backbone stages were frozen.
    stage_names_ : list of str
        The backbone's stages.
    used_feature_cache_ : bool
        Whether training ran from cached features.
    temperatures_ : list of float or None
        With ``calibrate``, each head's temperature (its logits are divided by
        it); None otherwise.

    Notes
    -----
    y is a table of labels, usually of mixed types (ages as numbers, the rest
    as strings). scikit-learn cannot stratify on such a target and its
    splitters crash trying to type it, so the estimator does not declare
    itself a scikit-learn "classifier": ``GridSearchCV(cv=5)`` then uses
    ``KFold``. Pass a shuffled or group-aware splitter (see
    :func:`gar_sklearn.datasets.group_train_test_split`) when the rows are
    ordered, as file listings are.

    See Also
    --------
    GenderFusionClassifier : gender first, then gender-specific age/race models.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from gar_sklearn import MultiAttributeClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, size=(40, 16, 16, 3), dtype=np.uint8)
    >>> y = pd.DataFrame({"gender": rng.choice(["Male", "Female"], 40),
    ...                   "age": rng.integers(1, 90, 40),
    ...                   "race": rng.choice(["White", "Black", "Asian"], 40)})
    >>> clf = MultiAttributeClassifier(backbone="tiny", weights=None, image_size=16,
    ...                                max_epochs=2, random_state=0, verbose=0)
    >>> clf.fit(X, y).predict(X[:2]).shape
    (2, 3)
    >>> [len(c) for c in clf.classes_]
    [2, 9, 3]
    """

    _parameter_constraints = {
        "backbone": [str],  # the registry lists the valid names when one is unknown
        "weights": ["no_validation"],  # resolved (and explained) by the backbone registry
        "attributes": ["no_validation"],  # checked and normalised by check_attributes
        "age_bins": [
            None,
            StrOptions({"fairface"}),
            Interval(Integral, 1, None, closed="left"),
            list,
            tuple,
            np.ndarray,
        ],
        "image_size": [Interval(Integral, 1, None, closed="left")],
        "freeze": [
            None,
            StrOptions({"auto", "backbone"}),
            Interval(Integral, 0, None, closed="left"),
            str,  # a stage name: the backbone lists the valid ones
        ],
        "unfreeze_after": [None, Interval(Integral, 0, None, closed="left")],
        "head_hidden_units": [None, Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [None, Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "optimizer": [
            StrOptions(set(OPTIMIZERS)),
            Described(_is_optimizer_class, "a torch.optim.Optimizer subclass"),
        ],
        "lr_schedule": [None, StrOptions(set(SCHEDULES))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "age_sigma": [None, Interval(Real, 0, None, closed="neither")],
        "loss_weights": [None, dict],  # keys checked against the attributes in fit
        "missing_labels": [StrOptions({"raise", "ignore"})],
        "augment": [
            None,
            Described(
                HasMethods(["augment"]),
                "an augmenter with an augment(image, rng) method (see gar_sklearn.augmentation)",
            ),
        ],
        "cache_features": [StrOptions({"auto"}), "boolean"],
        "cache_views": [Interval(Integral, 1, None, closed="left")],
        "cache_dir": [None, Described((str, os.PathLike), "a folder path")],
        "image_cache": [StrOptions({"auto"}), "boolean"],
        "device": [str],  # "auto", "cpu", "cuda", "cuda:N": checked against the machine
        "precision": [
            StrOptions({"auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"})
        ],
        "channels_last": ["boolean"],
        "num_workers": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "on_error": [StrOptions({"raise", "skip"})],
        "test_time_flip": ["boolean"],
        "group_by": [
            None,
            Described(is_group_by, "a column name of y or a tuple of column names"),
        ],
        "balance": [None, StrOptions({"reweight", "sample"})],
        "selection": [
            StrOptions(set(SELECTIONS)),
            Described(callable, "a callable(y_true, y_pred, sensitive_features) -> float"),
        ],
        "weight_averaging": [None, StrOptions(set(AVERAGINGS))],
        "ema_decay": [Interval(Real, 0, 1, closed="both")],
        "averaging_start": [Interval(Integral, 0, None, closed="left")],
        "calibrate": ["boolean"],
        "callbacks": [
            None,
            Described(_is_callback_list, "a list of skorch callbacks or of (name, callback) pairs"),
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint_dir": [None, Described((str, os.PathLike), "a folder path")],
    }
    # parameters that change neither the training trajectory nor the result: a checkpoint
    # written with other values of these resumes (callbacks: loggers, whose writers differ
    # between runs)
    _fit_invariant_params = (
        "verbose",
        "callbacks",
        "num_workers",
        "checkpoint_dir",
        "cache_dir",
        "image_cache",
        "device",
    )

    def __init__(
        self,
        backbone=DEFAULTS["backbone"],
        weights=DEFAULTS["weights"],
        attributes=("gender", "age", "race"),
        age_bins=DEFAULTS["age_bins"],
        image_size=DEFAULTS["image_size"],
        freeze=DEFAULTS["freeze"],
        unfreeze_after=None,
        head_hidden_units=None,
        dropout=DEFAULTS["dropout"],
        lr=DEFAULTS["lr"],
        backbone_lr=None,
        weight_decay=DEFAULTS["weight_decay"],
        optimizer=DEFAULTS["optimizer"],
        lr_schedule=DEFAULTS["lr_schedule"],
        max_epochs=DEFAULTS["max_epochs"],
        patience=DEFAULTS["patience"],
        batch_size=DEFAULTS["batch_size"],
        validation_fraction=DEFAULTS["validation_fraction"],
        label_smoothing=DEFAULTS["label_smoothing"],
        age_sigma=DEFAULTS["age_sigma"],
        loss_weights=None,
        missing_labels="raise",
        augment=None,
        cache_features="auto",
        cache_views=DEFAULTS["cache_views"],
        cache_dir=None,
        image_cache="auto",
        device="auto",
        precision="float32",
        channels_last=True,
        num_workers="auto",
        on_error="raise",
        test_time_flip=DEFAULTS["test_time_flip"],
        group_by=None,
        balance=None,
        selection="loss",
        weight_averaging=DEFAULTS["weight_averaging"],
        ema_decay=DEFAULTS["ema_decay"],
        averaging_start=DEFAULTS["averaging_start"],
        calibrate=DEFAULTS["calibrate"],
        callbacks=None,
        random_state=None,
        verbose=DEFAULTS["verbose"],
        checkpoint_dir=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.attributes = attributes
        self.age_bins = age_bins
        self.image_size = image_size
        self.freeze = freeze
        self.unfreeze_after = unfreeze_after
        self.head_hidden_units = head_hidden_units
        self.dropout = dropout
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.label_smoothing = label_smoothing
        self.age_sigma = age_sigma
        self.loss_weights = loss_weights
        self.missing_labels = missing_labels
        self.augment = augment
        self.cache_features = cache_features
        self.cache_views = cache_views
        self.cache_dir = cache_dir
        self.image_cache = image_cache
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.num_workers = num_workers
        self.on_error = on_error
        self.test_time_flip = test_time_flip
        self.group_by = group_by
        self.balance = balance
        self.selection = selection
        self.weight_averaging = weight_averaging
        self.ema_decay = ema_decay
        self.averaging_start = averaging_start
        self.calibrate = calibrate
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir

    def __sklearn_clone__(self):
        """:func:`sklearn.base.clone` support: as scikit-learn's, except that callback
        parameters that cannot be copied (a TensorBoard writer) are shared with the clone."""
        if not self.callbacks:
            return super().__sklearn_clone__()
        plain = copy.copy(self)
        plain.callbacks = None
        twin = super(MultiAttributeClassifier, plain).__sklearn_clone__()
        twin.callbacks = _copied_callbacks(self.callbacks)
        return twin

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Fit the network on images X and labels y.

        Parameters
        ----------
        X : sequence of paths, PIL images or uint8 arrays, or uint8 ndarray (n, H, W[, 3])
            The images. Paths are decoded in worker processes, never all at
            once unless they fit the decoded-image cache. An
            :class:`~gar_sklearn.augmentation.AugmentedView` (what an
            augmenter step of a Pipeline passes on) trains on its images with
            its augmenter as ``augment``.
        y : DataFrame, 2-D array or 1-D array
            A DataFrame holding a column per attribute (and the ``group_by``
            columns), a 2-D array with the attributes as columns in order, or
            (single attribute) a 1-D array.
        validation_data : tuple (X_valid, y_valid[, sample_weight_valid]), optional
            Images for early stopping, instead of holding out
            ``validation_fraction`` of X; their weights in the validation
            loss, optionally.
        sample_weight : array-like of shape (n_samples,), default=None
            Each image's weight in the loss: the loss is ``sum(w_i * l_i) /
            sum(w_i)``, so an integer weight counts as that many copies of the
            image. Images held out for validation keep their weights in the
            validation loss. With scikit-learn's metadata routing, request it
            with ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self

        Notes
        -----
        A fit that fails leaves the estimator as it was: a fitted one keeps
        its model. A KeyboardInterrupt (Ctrl-C) during training ends it with
        a warning and leaves a fitted estimator holding the best weights so
        far (the last ones when ``patience`` is None); with
        ``checkpoint_dir``, fitting again resumes.
        """
        validate_params(self)
        data = self._check_fit_data(X, y, validation_data, sample_weight)
        fitted = self._fit_network(data)
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)
        vars(self).update(fitted)
        return self

    def _check_fit_data(self, X, y, validation_data, sample_weight=None):
        """Everything about X, y, validation_data and sample_weight that can be checked
        before training."""
        if self.image_size > _MAX_IMAGE_SIZE:
            raise ValueError(
                f"The 'image_size' parameter must be at most {_MAX_IMAGE_SIZE} (pixels per side). "
                f"Got {self.image_size!r} instead."
            )
        X, augment = pipeline_augmenter(X, self.augment, type(self).__name__)
        attributes = check_attributes(self.attributes)
        source = as_image_source(X)
        frame, one_d = validate_targets(y, attributes, len(source), self.missing_labels)
        weight = check_sample_weight(sample_weight, len(source))
        source, frame, rows = _readable(source, frame, self.on_error)
        classes, binner = fit_encoders(frame, attributes, self.age_bins)
        codes = encode_targets(frame, attributes, classes, binner)
        self._loss_weights(attributes)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        val = val_y = val_weight = None
        if validation_data is not None:
            val, val_y, val_weight = self._validation_data(
                validation_data, attributes, classes, binner
            )
        infos = self._sample_infos(
            (as_target_frame(y, attributes).iloc[rows], None if weight is None else weight[rows]),
            (val_y, val_weight),
            attributes,
            binner,
        )
        check_fit_options(
            self.get_params(deep=False),
            has_groups=infos[0].group is not None,
            has_validation=val is not None or bool(self.validation_fraction),
        )
        train, val, split_infos = self._split((source, codes), val, infos, rng)
        given = val if validation_data is not None else (None, None)
        fingerprint, resume = self._read_checkpoint(source, codes, given, infos, augment, device)
        return _FitData(
            attributes,
            one_d,
            classes,
            binner,
            source,
            codes,
            train,
            val,
            seed,
            device,
            fingerprint,
            resume,
            split_infos,
            augment,
        )

    def _split(self, data, val, infos, rng):
        """``(train, val, (train info, val info))``: the validation split, held out from
        ``data`` when ``val`` (from validation_data) is None and ``validation_fraction`` is set."""
        source, codes = data
        info, val_info = infos
        if val is None and self.validation_fraction:
            n_valid = n_holdout(len(codes), self.validation_fraction)
            if len(codes) - n_valid < 1:
                raise ValueError(
                    f"Too few images to hold out a validation split: {len(codes)} image(s) with "
                    f"validation_fraction={self.validation_fraction}. Provide more images, "
                    "validation_data, or validation_fraction=0."
                )
            train_idx, val_idx = holdout_split(codes, n_valid, rng.randint(np.iinfo(np.int32).max))
            data = (source.subset(train_idx), codes[train_idx])
            val = (source.subset(val_idx), codes[val_idx])
            info, val_info = info.subset(train_idx), info.subset(val_idx)
        if len(data[0]) < 2:
            raise ValueError(
                f"At least 2 training images are needed; got n_samples={len(data[0])}."
            )
        return data, val, (info, val_info)

    def _sample_infos(self, train, val, attributes, binner):
        """The :class:`SampleInfo` (weights, groups) of the rows of X and of validation_data:
        ``train`` and ``val`` are ``(y rows as a DataFrame, weights or None)`` pairs."""
        columns = check_group_by(self.group_by)
        groups, table = [None, None], None
        if columns:
            ys = [train[0]] + ([val[0]] if val[0] is not None else [])
            found, table = group_labels(ys, columns, attributes, binner)
            groups[: len(found)] = found
        info = SampleInfo(train[1], groups[0], table)
        val_info = None if val[0] is None else SampleInfo(val[1], groups[1], table)
        return info, val_info

    def _read_checkpoint(self, source, codes, given_val, infos=(), augment=None, device=None):
        """``(fingerprint of this fit, state to resume from)``, None without ``checkpoint_dir``."""
        if self.checkpoint_dir is None:
            return None, None
        if os.path.exists(self.checkpoint_dir) and not os.path.isdir(self.checkpoint_dir):
            raise ValueError(
                "The 'checkpoint_dir' parameter must be a folder (created when missing). Got "
                f"{str(self.checkpoint_dir)!r} instead, which is a file."
            )
        fingerprint = {
            "params": params_fingerprint(self, exclude=self._fit_invariant_params),
            "data": data_fingerprint(source, codes, *given_val),
            "library": __version__,
        }
        samples = [(i.weight, i.group) for i in infos if i is not None]
        if any(part is not None for pair in samples for part in pair):
            fingerprint["samples"] = describe(samples)  # weights and groups
        if augment is not self.augment:  # from a Pipeline step
            fingerprint["pipeline_augment"] = describe(augment)
        if self.freeze == "auto":  # resolved by the device, which may change between runs
            fingerprint["auto_freeze"] = str(torch.device(device).type)
        return fingerprint, read_checkpoint(Path(self.checkpoint_dir) / "last.pt", fingerprint)

    def _validation_data(self, validation_data, attributes, classes, binner):
        """``((source, codes), y rows as a DataFrame, weights or None)`` of validation_data."""
        X_val, y_val = check_validation_pair(validation_data, weights=True)[:2]
        val_source = as_image_source(X_val)
        val_frame, _ = validate_targets(y_val, attributes, len(val_source), self.missing_labels)
        weight = None
        if len(validation_data) == 3:
            weight = check_sample_weight(
                validation_data[2], len(val_source), name="validation_data's sample weights"
            )
        val_source, val_frame, rows = _readable(val_source, val_frame, self.on_error)
        y_rows = as_target_frame(y_val, attributes).iloc[rows]
        codes = encode_targets(val_frame, attributes, classes, binner)
        return (val_source, codes), y_rows, None if weight is None else weight[rows]

    def _build_module(self, n_classes, device):
        """The backbone with its heads, on ``device``; and the backbone's description."""
        backbone = checked_backbone(self.backbone, self.weights)
        backbone.check_input_size(int(self.image_size))
        freeze = _plain(self.freeze)
        if freeze == "auto":
            freeze = auto_frozen_stages(len(backbone.stage_names), self.weights, device)
        n_frozen = resolve_freeze(freeze, backbone.stage_names)
        module = MultiHeadNetwork(
            backbone,
            n_classes,
            n_frozen=n_frozen,
            hidden_units=_plain(self.head_hidden_units),
            dropout=float(self.dropout),
            channels_last=bool(self.channels_last),
        ).to(device)
        return module, backbone, n_frozen

    def _uses_feature_cache(self, n_frozen):
        cache_features = _plain(self.cache_features)  # np.True_ is True
        if cache_features is True and (n_frozen == 0 or self.unfreeze_after is not None):
            raise ValueError(
                "cache_features=True needs a backbone prefix frozen for the whole fit: set "
                "'freeze' and leave 'unfreeze_after' as None."
            )
        return cache_features is True or (
            cache_features == "auto" and n_frozen > 0 and self.unfreeze_after is None
        )

    def _feature_cache_access(self, device, image_size=None):
        """How fit and predict reach the feature cache (see ``stem_features``)."""
        return dict(
            backbone=self.backbone,
            image_size=int(self.image_size if image_size is None else image_size),
            device=device,
            batch_size=int(self.batch_size),
            num_workers=self.num_workers,
            cache_dir=self.cache_dir,
            verbose=self.verbose,
        )

    def _fit_network(self, data):
        """Build and train the network; return the fitted attributes."""
        # the random initial weights: from the fit's seed, one fit at a time across threads
        with seeded_initialisation(data.seed, data.device):
            module, backbone, n_frozen = self._build_module(
                [len(c) for c in data.classes], data.device
            )
        # dropout and stochastic depth draw from the fit's own generator, not torch's global one
        use_generator(module, fit_generator(data.seed, data.device))
        fitted = {
            "attributes_": data.attributes,
            "classes_": data.classes[0] if data.one_d else data.classes,
            "_one_d": data.one_d,
            "_feature_bytes": None,  # set when training runs from cached features
            "age_binner_": data.binner,
            "device_": data.device,
            "image_size_": int(self.image_size),
            "weights_": backbone.weights,
            "stage_names_": backbone.stage_names,
            "n_frozen_stages_": n_frozen,
            "used_feature_cache_": self._uses_feature_cache(n_frozen),
        }
        if data.device == "cpu":
            tune_cpu_allocator()
        with cuda_speed_settings(data.device):
            train_ds, val_ds, mirrored_val = self._datasets(module, data, fitted)
            params = self.get_params(deep=False)
            train_ds, val_ds = sample_datasets(train_ds, val_ds, data.infos, params)
            net = self._train(module, data, train_ds, val_ds, fitted)
            fitted["temperatures_"] = (
                fit_temperatures(net, val_ds, mirrored_val) if self.calibrate else None
            )
        release_generator(net.module_)
        fitted["net_"] = drop_training_state(net)
        return fitted

    def _datasets(self, module, data, fitted):
        """The training and validation datasets, cached features or images, and the
        validation images' mirror images where the temperatures are fitted on
        flip-averaged probabilities (else None)."""
        mirror_val = bool(self.calibrate and self.test_time_flip)
        if fitted["used_feature_cache_"]:
            n_views = int(self.cache_views) if data.augment is not None else 1
            train_ds, val_ds, mirrored, fitted["_feature_bytes"] = feature_datasets(
                module,
                data.train,
                data.val,
                cache=self._feature_cache_access(data.device),
                n_views=n_views,
                augment=data.augment,
                seed=data.seed,
                mirror_val=mirror_val,
            )
            return train_ds, val_ds, mirrored
        return image_datasets(
            data.train,
            data.val,
            image_size=int(self.image_size),
            augment=data.augment,
            seed=data.seed,
            image_cache=_plain(self.image_cache),
            device=data.device,
            mirror_val=mirror_val,
        )

    def _train(self, module, data, train_ds, val_ds, fitted):
        """Make the net and train it, resuming from ``checkpoint_dir`` when it holds a checkpoint."""
        resume, checkpoint = data.resume, self._checkpoint(data, fitted, val_ds is not None)
        net = make_net(
            module,
            TrainingSettings.from_params(self.get_params(deep=False)),
            attributes=data.attributes,
            device=data.device,
            train_ds=train_ds,
            val_ds=val_ds,
            seed=data.seed,
            workers=train_workers(self.num_workers, train_ds, data.augment, data.device),
            valid_workers=valid_workers(self.num_workers, val_ds, data.device),
            loss_weights=self._loss_weights(data.attributes),
            soft_targets=self._age_soft_targets(data.attributes, data.classes, data.binner),
            checkpoint=checkpoint,
            **training_extras(
                self.get_params(deep=False), data.attributes, data.classes, data.infos
            ),
            callbacks=_cloned_callbacks(self.callbacks),
        )
        if resume is None:
            net.fit(train_ds, None)
        else:
            net.initialize()
            restore_training_state(net, resume)
            if not resume["finished"]:
                checkpoint.resume(resume)
                net.partial_fit(train_ds, None, epochs=int(self.max_epochs) - resume["epoch"])
        if not training_finished(net):
            self._warn_interrupted(net)
        return net

    def _checkpoint(self, data, fitted, has_validation):
        """The checkpoint callback, None without ``checkpoint_dir``."""
        if self.checkpoint_dir is None:
            return None
        template = model_template(self, _model_data(self, fitted))
        return TrainingCheckpoint(
            str(self.checkpoint_dir),
            data.fingerprint,
            functools.partial(_write_best, template),
            monitor=selection_key(self.selection)
            or ("valid_loss" if has_validation else "train_loss"),
        )

    def _warn_interrupted(self, net):
        drop_incomplete_epoch(net)
        stopper = dict(net.callbacks_).get("early_stopping")
        n_done = len(net.history)
        if stopper is not None and stopper.best_model_weights_ is not None:
            kept = f"the weights of epoch {stopper.best_epoch_}, the best so far"
        elif n_done:
            kept = "the weights it had when interrupted"
        else:
            kept = "the weights it had when interrupted, before any epoch was complete"
        resume = (
            f" Fit again with checkpoint_dir={str(self.checkpoint_dir)!r} to resume."
            if self.checkpoint_dir is not None
            else ""
        )
        warnings.warn(
            f"Training was interrupted (KeyboardInterrupt) after {n_done} of max_epochs="
            f"{self.max_epochs} epochs; the estimator keeps {kept}.{resume}",
            UserWarning,
            stacklevel=5,
        )

    def _loss_weights(self, attributes):
        if self.loss_weights is None:
            return None
        weights = self.loss_weights.values()
        if set(self.loss_weights) - set(attributes) or not all(
            isinstance(w, Real) and not isinstance(w, bool) and 0 <= w < np.inf for w in weights
        ):
            raise ValueError(
                f"The 'loss_weights' parameter must be a dict keyed by attributes "
                f"{list(attributes)}, of finite weights >= 0. Got {self.loss_weights!r} instead."
            )
        return [float(self.loss_weights.get(a, 1.0)) for a in attributes]

    def _age_soft_targets(self, attributes, classes, binner):
        """With ``age_sigma``: for each true age class, a Gaussian over the age classes'
        representative ages (label distribution learning), as the age head's target."""
        if self.age_sigma is None or "age" not in attributes:
            return None
        k = attributes.index("age")
        values = torch.as_tensor(class_ages(binner, classes[k]), dtype=torch.float32)
        logits = -((values[None, :] - values[:, None]) ** 2) / (2.0 * float(self.age_sigma) ** 2)
        return {k: torch.softmax(logits, dim=1)}

    # ------------------------------------------------------------------ predict
    @property
    def history_(self):
        """Per-epoch training history (``net_.history``)."""
        check_is_fitted(self)
        return self.net_.history

    def _batch_probas(self, module, inputs, mirrored=None):
        """Softmax outputs of one batch through ``module`` (the net's inference module),
        averaged with those of its mirror images when given; each head's logits divided by
        its temperature when calibrated."""
        temperatures = getattr(self, "temperatures_", None)

        def softmax(outputs):
            if temperatures is None:
                return [torch.softmax(lg.float(), dim=1) for lg in outputs]
            return [torch.softmax(lg.float() / t, dim=1) for lg, t in zip(outputs, temperatures)]

        probas = softmax(self.net_.inference_step(inputs, module))
        if mirrored is not None:
            for p, q in zip(probas, softmax(self.net_.inference_step(mirrored, module))):
                p.add_(q).mul_(0.5)
        return [p.cpu().numpy() for p in probas]

    def _cached_features(self, source, inference):
        """Features of ``source`` from the feature cache, or None to predict from the images.

        New images are extracted through ``inference.stem`` (the net's inference module).

        Only for a model trained from cached features (its stem is frozen, so
        its activations are fixed), and only for a source whose features fit
        in the ``predict_cache_bytes`` budget (:func:`gar_sklearn.set_config`):
        predicting over any number of paths must stay flat in memory.
        Grid-search candidates that share a frozen stem then score a fold
        without running the stem again. Unreadable images are only skipped
        by the streaming path.
        """
        if not getattr(self, "used_feature_cache_", False) or self.on_error != "raise":
            return None
        module = self.net_.module_
        if not module.stem_frozen:
            return None
        n_views = 2 if self.test_time_flip else 1
        per_view = getattr(self, "_feature_bytes", None)
        budget = min(get_config()["predict_cache_bytes"], feature_cache.limit())
        if per_view is None or len(source) * n_views * per_view > budget:
            return None
        return stem_features(
            module,
            source,
            cache=self._feature_cache_access(self.net_.device, image_size=self.image_size_),
            n_views=n_views,
            augmenter=RandomFlip(p=1.0) if self.test_time_flip else None,
            stem=inference.stem,
        )

    def _prediction_batches(self, source, inference):
        """Yield ``(inputs, mirrored inputs or None, readable flags)`` batch by batch, on the device."""
        device = self.net_.device
        batch_size = int(self.batch_size)
        features = self._cached_features(source, inference)
        if features is not None:
            for start in range(0, len(features), batch_size):
                batch = features[start : start + batch_size].to(device).float()
                mirrored = {"features": batch[:, 1]} if self.test_time_flip else None
                yield {"features": batch[:, 0]}, mirrored, [True] * len(batch)
            return
        cuda = str(device).startswith("cuda")
        workers = loader_workers(self.num_workers, source, device)
        loader = DataLoader(
            ImageDataset(source, self.image_size_, on_error=self.on_error),
            batch_size=batch_size,
            **loading_policy(device).loader_kwargs(workers, once=True),
            collate_fn=collate_batch,
            generator=torch.Generator(),  # leaves torch's global generator as it was
        )
        for images, flags in releasing_batches(loader):
            if cuda:  # from pinned memory: the copy overlaps with queueing the forward pass
                images = {k: v.to(device, non_blocking=True) for k, v in images.items()}
            mirrored = (
                {k: torch.flip(v, dims=[3]) for k, v in images.items()}
                if self.test_time_flip
                else None
            )
            yield images, mirrored, flags

    def _predict_probas(self, X):
        """Per-attribute probability arrays and a mask of readable images."""
        check_is_fitted(self)
        source = as_image_source(X)
        if str(self.net_.device) == "cpu":
            tune_cpu_allocator()
        # Filled in place: small per-batch arrays kept to the end pin the heap above each
        # batch's freed tensors, and memory would grow with the number of images.
        n = len(source)
        probas, ok, start = None, np.empty(n, dtype=bool), 0
        bar = progress_bar(self.verbose, n, desc="predict")
        module = self.net_.inference_module()
        with cuda_speed_settings(self.net_.device):
            for inputs, mirrored, flags in self._prediction_batches(source, module):
                batch_probas = self._batch_probas(module, inputs, mirrored)
                if probas is None:
                    probas = [np.empty((n, bp.shape[1]), dtype=np.float32) for bp in batch_probas]
                stop = start + len(flags)
                for p, bp in zip(probas, batch_probas):
                    p[start:stop] = bp
                ok[start:stop] = np.asarray(flags, dtype=bool)
                start = stop
                bar.update(len(flags))
        bar.close()
        if not ok.all():
            bad = np.flatnonzero(~ok)
            warn_skipped([source.describe(i) for i in bad])
            for p in probas:
                p[bad] = np.nan
        return probas, ok


def _readable(source, frame, on_error):
    """``(source, frame, rows)``: with ``on_error="skip"``, without the unreadable images
    (``rows``: the positions kept). Before fitting the encoders: no class of unreadable images."""
    rows = np.arange(len(source))
    if on_error == "skip":
        source, kept = drop_unreadable(source, frame.assign(__row__=rows))
        rows = kept.pop("__row__").to_numpy()
        frame = kept.reset_index(drop=True)
    return source, frame, rows


def _clone_callback(callback):
    """``clone(callback)``, except that parameters that cannot be copied (a TensorBoard
    ``SummaryWriter``, which holds locks and files) are shared with the copy."""
    try:
        return clone(callback, safe=False)
    except (TypeError, AttributeError, copy.Error, pickle.PicklingError):
        params = {}
        for name, value in callback.get_params(deep=False).items():
            try:
                params[name] = clone(value, safe=False)
            except (TypeError, AttributeError, copy.Error, pickle.PicklingError):
                params[name] = value
        return type(callback)(**params)


def _copied_callbacks(callbacks):
    """The ``callbacks`` parameter with every callback cloned (:func:`_clone_callback`)."""
    if callbacks is None:
        return None
    return type(callbacks)(
        (item[0], _clone_callback(item[1])) if isinstance(item, tuple) else _clone_callback(item)
        for item in callbacks
    )


def _backbones_with_cached_weights():
    """The backbones with official pretrained weights in torch's hub cache (which
    ``weights="DEFAULT"`` falls back to)."""
    from torchvision.models import get_model_weights

    found = []
    for name in available_backbones():
        try:
            members = list(get_model_weights(name))
        except (ValueError, KeyError):
            continue
        if any(_weights.hub_checkpoint_path(m).is_file() for m in members):
            found.append(name)
    return found


def checked_backbone(name, weights):
    """``build_backbone``; when the weights cannot be had, the error also names the
    backbones whose weights are at hand."""
    try:
        return build_backbone(name, weights)
    except WeightsUnavailableError as exc:
        found = _backbones_with_cached_weights()
        if not found:
            raise
        raise WeightsUnavailableError(
            f"{exc} Or choose a backbone whose weights are at hand: "
            + ", ".join(f"backbone={n!r}" for n in found[:5])
            + "."
        ) from exc


def _cloned_callbacks(callbacks):
    """Fresh copies of the ``callbacks`` parameter as ``(name, callback)`` pairs: skorch
    initialises and changes the callbacks it gets, and the parameter must stay as given."""
    pairs = []
    for item in _copied_callbacks(callbacks) or ():
        name, callback = item if isinstance(item, tuple) else (None, item)
        if name is None:  # skorch's naming: the class name, for an instance or a class
            name = callback.__name__ if isinstance(callback, type) else type(callback).__name__
        pairs.append((name, callback))
    return pairs


# ---------------------------------------------------------------- persistence
def _network_data(net):
    return {
        "state_dict": net.module_.state_dict(),
        "stem_frozen": bool(net.module_.stem_frozen),
        "channels_last": bool(net.module_.normalize.channels_last),
        "history": list(net.history),
    }


def _write_best(template, path, net):
    write_model_snapshot(path, template, network=_network_data(net))


def _model_data(est, fitted):
    """The estimator's parameters and ``fitted`` attributes as model-file data, less the network."""
    params, dropped = storable_params(est)
    warn_dropped(dropped)
    fitted = {k: v for k, v in fitted.items() if k != "net_"}
    return {"params": params, "dropped_params": dropped, "fitted": fitted}


def _dump(est):
    check_is_fitted(est)
    data = _model_data(est, fitted_attributes(est, exclude=("net_",)))
    return {**data, "network": _network_data(est.net_)}


def _load_device(saved, requested):
    """The device a loaded network goes to: the requested one, else the saved one where
    this machine has it, else the CPU."""
    if requested is not None:
        return resolve_device(requested)
    saved = str(saved or "cpu")
    if saved.startswith("cuda"):
        index = torch.device(saved).index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return "cpu"
    return saved


# what prediction, scoring and a new save read: a file lacking one is refused at load
_SAVED_FITTED = (
    "attributes_",
    "classes_",
    "_one_d",
    "age_binner_",
    "image_size_",
    "n_frozen_stages_",
)
_SAVED_NETWORK = ("state_dict", "stem_frozen", "channels_last", "history")


def _restore(data, device, cls=MultiAttributeClassifier):
    owner = cls.__name__
    check_fields(data, ("params", "fitted", "network"), owner)
    check_fields(data["fitted"], _SAVED_FITTED, owner, "the fitted attribute(s)")
    check_fields(data["network"], _SAVED_NETWORK, owner, "the network's entries")
    est = cls(**data["params"])
    for name, value in data["fitted"].items():
        setattr(est, name, value)
    est.device_ = device = _load_device(getattr(est, "device_", "cpu"), device)
    network = data["network"]
    n_classes = [len(c) for c in est._class_lists()]
    with seeded_initialisation(None):  # random initial weights, replaced below: keep the seed
        module = MultiHeadNetwork(
            build_backbone(est.backbone, weights=None, whole=est.stage_names_ == ["model"]),
            n_classes,
            n_frozen=est.n_frozen_stages_,
            hidden_units=est.head_hidden_units,
            dropout=est.dropout,
            channels_last=network["channels_last"],  # the memory layout changes the float rounding
        )
    try:
        module.load_state_dict(network["state_dict"])
    except RuntimeError as exc:
        raise ValueError(
            f"The saved weights do not fit a {est.backbone!r} network with heads of {n_classes} "
            f"classes: the file is damaged or was written by an incompatible version ({exc})."
        ) from exc
    module.set_stem_frozen(network["stem_frozen"])
    settings = TrainingSettings.from_params(est.get_params(deep=False))
    net = make_net(
        module,
        settings,
        attributes=est.attributes_,
        device=device,
        loss_weights=est._loss_weights(est.attributes_),
    )
    net.initialize()
    net.history_ = History(network["history"])
    est.net_ = drop_training_state(net)
    return est


register_persistence(MultiAttributeClassifier, _dump, _restore)
