"""MultiAttributeClassifier: one backbone, one softmax head per attribute, trained jointly."""

import math
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch import nn
from torch.utils.data import DataLoader

from ._allocator import tune_cpu_allocator
from ._base import (
    BatchProgressBar,
    HeadAccuracy,
    MultiHeadNet,
    TrainingCheckpoint,
    Unfreeze,
    drop_incomplete_epoch,
    drop_training_state,
    resolve_device,
    resolve_precision,
    restore_training_state,
    training_finished,
)
from ._data import (
    FeatureDataset,
    ImageDataset,
    collate_batch,
    decode_images,
    default_num_workers,
    releasing_batches,
    warn_skipped,
    worker_context,
)
from ._feature_cache import feature_cache
from ._outputs import MultiAttributeOutputMixin
from ._progress import progress_bar
from ._targets import check_attributes, encode_targets, fit_encoders, validate_targets
from .augmentation import RandomFlip
from .backbones import MultiHeadNetwork, build_backbone, resolve_freeze
from .preprocessing._images import as_image_source

__all__ = ["MultiAttributeClassifier"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
_SCHEDULES = (None, "plateau", "cosine", "onecycle", "step")
_DEFAULT_IMAGE_CACHE_BYTES = 2 * 2**30
# predict reads a frozen stem's activations from the feature cache up to this size, else streams
_PREDICT_CACHE_BYTES = int(float(os.environ.get("GAR_SKLEARN_PREDICT_CACHE_BYTES", str(2**29))))


class MultiAttributeClassifier(MultiAttributeOutputMixin, BaseEstimator):
    """Predict gender, age group and race from face images with one fine-tuned network.

    A pretrained torchvision backbone feeds one dense softmax head per
    attribute; training minimises the sum of the heads' cross-entropies with
    Adam, decays the learning rate, and stops early on the validation loss,
    restoring the best weights. Built on skorch.

    Parameters
    ----------
    backbone : str, default="resnet50"
        A name from :func:`gar_sklearn.backbones.available_backbones`.
    weights : str, path, WeightsEnum or None, default="DEFAULT"
        ``"DEFAULT"`` or a torchvision weights name (read from torch's hub
        cache, downloaded there when online), a path to a state_dict file of
        the full torchvision model, or None (random initialisation).
    attributes : sequence of str, default=("gender", "age", "race")
        The columns of y to predict, in this order; any subset works.
    age_bins : None, "fairface", int or sequence of int, default=None
        How to turn numeric ages into classes (see
        :class:`~gar_sklearn.preprocessing.AgeBinner`): None keeps y's age
        labels as they are (exact ages or existing groups), ``"fairface"``
        uses FairFace's nine groups, an int an interval (1 = exact ages).
        Binning happens inside the estimator because scikit-learn pipelines
        cannot transform y.
    image_size : int, default=224
        Images are resized to ``image_size`` x ``image_size``.
    freeze : None, "backbone", int or str, default=None
        None trains the whole network; ``"backbone"`` trains the heads only;
        an int ``k`` or a stage name freezes the backbone up to that stage
        (see ``BackboneFeatures.stage_names``) and trains the rest.
    unfreeze_after : int or None, default=None
        Train with ``freeze`` for this many epochs, then the whole network.
    head_hidden_units : int or None, default=None
        A hidden layer in each head (None: a single linear layer).
    dropout : float, default=0.2
        Dropout before each head's linear layer(s), a mask per head
        (:class:`~gar_sklearn.backbones.Dropout`: on the CPU the probability
        is rounded to a multiple of 1/65536).
    lr : float, default=1e-3
        Learning rate of the heads (and of the backbone unless ``backbone_lr``).
    backbone_lr : float or None, default=None
        Learning rate of the trainable backbone layers.
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        By name, Adam and AdamW use torch's fused kernel when every trained
        parameter is contiguous (heads; not channels-last convolutions) and
        no ``unfreeze_after`` adds parameters later. A class is used as given.
    lr_schedule : {"plateau", "cosine", "onecycle", "step"} or None, default="plateau"
        Learning-rate decay: divide by 5 when the validation loss stalls for 2
        epochs, cosine or one-cycle over ``max_epochs``, or x0.5 every 5 epochs.
    max_epochs : int, default=30
    patience : int or None, default=5
        Early stopping patience (epochs without validation-loss improvement);
        the best weights are restored. None disables early stopping.
    batch_size : int, default=32
    validation_fraction : float, default=0.1
        Held out from the training data (stratified on the first attribute)
        for early stopping, unless ``fit`` gets ``validation_data``. 0 turns
        validation off (early stopping then watches the training loss).
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
    augment : augmenter or None, default=None
        Applied to training images only, afresh every epoch, seeded from
        ``random_state`` (see :mod:`gar_sklearn.augmentation`).
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
        bytes each) instead of every epoch. "auto": when they fit in 2 GiB.
    device : str, default="auto"
        "auto" uses CUDA when available, else the CPU.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Mixed precision (autocast); float16 uses a gradient scaler.
    channels_last : {"auto", True, False}, default="auto"
        Channels-last memory format; "auto" means True, which trains 4-6
        times faster than the default layout on CPUs and suits GPUs.
    num_workers : int or "auto", default="auto"
        DataLoader worker processes for decoding files. "auto": one per core
        that torch's threads leave spare, at most 4; none where no core is
        spare, and then each batch is decoded in threads of the main process
        between forward passes (faster there than a worker competing with the
        compute threads for the cores).
    on_error : {"raise", "skip"}, default="raise"
        Unreadable images: raise naming the file, or skip them with a warning
        listing them (at predict time their predictions are None and their
        probabilities NaN).
    test_time_flip : bool, default=False
        At predict time, average the probabilities of each image and its
        mirror image: about half a point to a point more accuracy on faces,
        for twice the prediction time.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, the validation split, shuffling and augmentation.
    verbose : int, default=0
        0 prints nothing. 1 prints a line per epoch (losses, validation
        accuracy per attribute) to stdout and, when stderr is a terminal,
        draws progress bars there: the batches of each epoch, feature
        extraction, prediction. 2 draws the bars also when stderr is not a
        terminal.
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
    ...                                age_bins="fairface", max_epochs=2, random_state=0)
    >>> clf.fit(X, y).predict(X[:2]).shape
    (2, 3)
    >>> [len(c) for c in clf.classes_]
    [2, 9, 3]
    """

    def __init__(
        self,
        backbone="resnet50",
        weights="DEFAULT",
        attributes=("gender", "age", "race"),
        age_bins=None,
        image_size=224,
        freeze=None,
        unfreeze_after=None,
        head_hidden_units=None,
        dropout=0.2,
        lr=1e-3,
        backbone_lr=None,
        weight_decay=0.0,
        optimizer="adam",
        lr_schedule="plateau",
        max_epochs=30,
        patience=5,
        batch_size=32,
        validation_fraction=0.1,
        label_smoothing=0.0,
        age_sigma=None,
        loss_weights=None,
        augment=None,
        cache_features="auto",
        cache_views=2,
        cache_dir=None,
        image_cache="auto",
        device="auto",
        precision="float32",
        channels_last="auto",
        num_workers="auto",
        on_error="raise",
        test_time_flip=False,
        random_state=None,
        verbose=0,
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
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        def positive_int(name, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"The '{name}' parameter must be a positive int. Got {value!r} instead."
                )

        for name in ("image_size", "max_epochs", "batch_size", "cache_views"):
            positive_int(name)
        positive_int("patience", allow_none=True)
        if self.age_sigma is not None and (
            not isinstance(self.age_sigma, numbers.Real) or self.age_sigma <= 0
        ):
            raise ValueError(
                f"The 'age_sigma' parameter must be None or a positive float. Got {self.age_sigma!r} instead."
            )
        for name, lo, hi in (
            ("dropout", 0.0, 1.0),
            ("label_smoothing", 0.0, 1.0),
            ("validation_fraction", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if value is None and name == "validation_fraction":
                continue
            if not isinstance(value, numbers.Real) or not lo <= value < hi:
                raise ValueError(
                    f"The '{name}' parameter must be a float in [{lo}, {hi}). Got {value!r} instead."
                )
        for name in ("lr", "backbone_lr"):
            value = getattr(self, name)
            if value is None and name == "backbone_lr":
                continue
            if not isinstance(value, numbers.Real) or value <= 0:
                raise ValueError(
                    f"The '{name}' parameter must be a positive float. Got {value!r} instead."
                )
        if self.unfreeze_after is not None and (
            not isinstance(self.unfreeze_after, numbers.Integral) or self.unfreeze_after < 0
        ):
            raise ValueError(
                f"The 'unfreeze_after' parameter must be None or a non-negative int. Got {self.unfreeze_after!r} instead."
            )
        if self.lr_schedule not in _SCHEDULES:
            raise ValueError(
                f"The 'lr_schedule' parameter must be one of {list(_SCHEDULES)}. Got {self.lr_schedule!r} instead."
            )
        for name, allowed in (
            ("cache_features", ("auto", True, False)),
            ("image_cache", ("auto", True, False)),
            ("channels_last", ("auto", True, False)),
            ("on_error", ("raise", "skip")),
            ("test_time_flip", (True, False)),
        ):
            value = getattr(self, name)
            if not any(value is a if isinstance(a, bool) else value == a for a in allowed):
                raise ValueError(
                    f"The '{name}' parameter must be one of {list(allowed)}. Got {value!r} instead."
                )
        if self.num_workers != "auto" and (
            not isinstance(self.num_workers, numbers.Integral) or self.num_workers < 0
        ):
            raise ValueError(
                f"The 'num_workers' parameter must be 'auto' or an int >= 0. Got {self.num_workers!r} instead."
            )
        if self.augment is not None and not callable(getattr(self.augment, "augment", None)):
            raise ValueError(
                "The 'augment' parameter must be None or an augmenter with an augment(image, rng) "
                f"method (see gar_sklearn.augmentation). Got {self.augment!r} instead."
            )
        if self.checkpoint_dir is not None and not isinstance(
            self.checkpoint_dir, (str, os.PathLike)
        ):
            raise ValueError(
                f"The 'checkpoint_dir' parameter must be None or a folder path. Got {self.checkpoint_dir!r} instead."
            )
        if isinstance(self.optimizer, str) and self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"The 'optimizer' parameter must be one of {list(_OPTIMIZERS)} or a torch optimizer class. Got {self.optimizer!r} instead."
            )
        resolve_precision(self.precision)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, validation_data=None):
        """Fit the network on images X and labels y.

        Parameters
        ----------
        X : sequence of paths, PIL images or uint8 arrays, or uint8 ndarray (n, H, W[, 3])
            The images. Paths are decoded in worker processes, never all at
            once unless they fit the decoded-image cache.
        y : DataFrame, 2-D array or 1-D array
            A DataFrame holding a column per attribute, a 2-D array with the
            attributes as columns in order, or (single attribute) a 1-D array.
        validation_data : tuple (X_valid, y_valid), optional
            Images for early stopping, instead of holding out
            ``validation_fraction`` of X.

        Returns
        -------
        self

        Notes
        -----
        A KeyboardInterrupt (Ctrl-C) during training ends it with a warning
        and leaves a fitted estimator holding the best weights so far (the
        last ones when ``patience`` is None); with ``checkpoint_dir``, fitting
        again resumes.
        """
        try:
            return self._fit(X, y, validation_data)
        except BaseException:
            # a failed fit leaves an unfitted estimator, never a half-fitted one
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                delattr(self, name)
            self.__dict__.pop("_one_d", None)
            raise

    def _fit(self, X, y, validation_data):
        self._check_params()
        attributes = check_attributes(self.attributes)
        source = as_image_source(X)
        frame, one_d = validate_targets(y, attributes, len(source))
        if (
            self.on_error == "skip"
        ):  # before fitting the encoders: no class of unreadable images only
            source, frame = self._drop_unreadable(source, frame)
        classes, binner = fit_encoders(frame, attributes, self.age_bins)
        codes = encode_targets(frame, attributes, classes, binner)
        loss_weights = self._loss_weights(attributes)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        if device == "cpu":
            tune_cpu_allocator()  # about 2x faster CPU batches: see gar_sklearn/_allocator.py

        given_val = (None, None)
        if validation_data is not None:
            X_val, y_val = validation_data
            val_source = as_image_source(X_val)
            val_frame, _ = validate_targets(y_val, attributes, len(val_source))
            if self.on_error == "skip":
                val_source, val_frame = self._drop_unreadable(val_source, val_frame)
            val_codes = encode_targets(val_frame, attributes, classes, binner)
            train_source, train_codes = source, codes
            given_val = (val_source, val_codes)
        elif self.validation_fraction:
            train_idx, val_idx = self._split(codes, rng)
            train_source, train_codes = source.subset(train_idx), codes[train_idx]
            val_source, val_codes = source.subset(val_idx), codes[val_idx]
        else:
            train_source, train_codes, val_source, val_codes = source, codes, None, None
        if len(train_source) < 2:
            raise ValueError(
                f"At least 2 training images are needed; got n_samples={len(train_source)}."
            )

        resume, fingerprint = self._read_checkpoint(source, codes, *given_val)

        self.attributes_ = attributes
        self.classes_ = classes[0] if one_d else classes
        self._one_d = one_d
        self._feature_bytes = None  # set when training runs from cached features
        self.age_binner_ = binner
        self.device_ = device
        self.image_size_ = self.image_size

        with torch.random.fork_rng(devices=[] if device == "cpu" else [torch.device(device)]):
            torch.manual_seed(seed)
            backbone = build_backbone(self.backbone, self.weights)
            n_frozen = resolve_freeze(self.freeze, backbone.stage_names)
            # channels-last convolutions train 4-6x faster on CPUs (oneDNN) and use tensor cores on GPUs
            channels_last = True if self.channels_last == "auto" else bool(self.channels_last)
            module = MultiHeadNetwork(
                backbone,
                [len(c) for c in classes],
                n_frozen=n_frozen,
                hidden_units=self.head_hidden_units,
                dropout=self.dropout,
                channels_last=channels_last,
            ).to(device)
            self.weights_ = backbone.weights
            self.stage_names_ = backbone.stage_names
            self.n_frozen_stages_ = n_frozen
            use_cache = self.cache_features is True or (
                self.cache_features == "auto" and n_frozen > 0 and self.unfreeze_after is None
            )
            if use_cache and (n_frozen == 0 or self.unfreeze_after is not None):
                raise ValueError(
                    "cache_features=True needs a backbone prefix frozen for the whole fit: set "
                    "'freeze' and leave 'unfreeze_after' as None."
                )
            self.used_feature_cache_ = use_cache
            if use_cache:
                train_ds, val_ds = self._feature_datasets(
                    module, train_source, train_codes, val_source, val_codes, seed, device
                )
            else:
                train_ds, val_ds = self._image_datasets(
                    train_source, train_codes, val_source, val_codes, seed
                )
            net = self._make_net(
                module,
                attributes,
                loss_weights,
                train_ds,
                val_ds,
                device,
                seed,
                checkpoint=fingerprint,
            )
            self.net_ = net
            if resume is None:
                net.fit(train_ds, None)
            else:
                net.initialize()
                restore_training_state(net, resume)
                if not resume["finished"]:
                    dict(net.callbacks_)["checkpoint"].resume(resume)
                    net.partial_fit(train_ds, None, epochs=self.max_epochs - resume["epoch"])
        if not training_finished(net):
            self._warn_interrupted(net)
        drop_training_state(net)
        return self

    def _read_checkpoint(self, source, codes, val_source, val_codes):
        """``(state to resume from or None, fingerprint of this fit or None)``."""
        if self.checkpoint_dir is None:
            return None, None
        from . import __version__
        from ._persistence import data_fingerprint, params_fingerprint, read_checkpoint

        fingerprint = {
            "params": params_fingerprint(self),
            "data": data_fingerprint(source, codes, val_source, val_codes),
            "library": __version__,
        }
        return read_checkpoint(Path(self.checkpoint_dir) / "last.pt", fingerprint), fingerprint

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
            stacklevel=3,
        )

    def _loss_weights(self, attributes):
        if self.loss_weights is None:
            return None
        if not isinstance(self.loss_weights, dict) or set(self.loss_weights) - set(attributes):
            raise ValueError(
                f"The 'loss_weights' parameter must be a dict keyed by attributes {list(attributes)}. "
                f"Got {self.loss_weights!r} instead."
            )
        return [float(self.loss_weights.get(a, 1.0)) for a in attributes]

    def _split(self, codes, rng):
        n = len(codes)
        n_val = max(1, int(round(n * self.validation_fraction)))
        if n - n_val < 1:
            raise ValueError(
                f"Too few images to hold out a validation split: {n} image(s) with "
                f"validation_fraction={self.validation_fraction}. Provide more images, "
                "validation_data, or validation_fraction=0."
            )
        strata = codes[:, 0]
        counts = np.bincount(strata)
        stratify = (
            strata if counts[counts > 0].min() >= 2 and n_val >= len(counts[counts > 0]) else None
        )
        idx = np.arange(n)
        train_idx, val_idx = train_test_split(
            idx,
            test_size=n_val,
            random_state=rng.randint(np.iinfo(np.int32).max),
            stratify=stratify,
        )
        return np.sort(train_idx), np.sort(val_idx)

    def _workers(self, source):
        if self.num_workers != "auto":
            return int(self.num_workers)
        return default_num_workers() if source.kind == "sequence" else 0

    def _train_workers(self, train_ds):
        """Worker processes for the training loader: to decode files, or to augment."""
        if not isinstance(train_ds, ImageDataset):
            return 0  # cached features: nothing to load
        if self.num_workers != "auto":
            return int(self.num_workers)
        decodes = train_ds.decoded is None and train_ds.source.kind == "sequence"
        return default_num_workers() if decodes or self.augment is not None else 0

    def _drop_unreadable(self, source, labels):
        """``source`` and ``labels`` (array or DataFrame) without the unreadable images."""
        _, failed = decode_images(source, np.arange(len(source)), 8, on_error="skip")
        if not failed:
            return source, labels
        warn_skipped([source.describe(i) for i in failed])
        keep = np.setdiff1d(np.arange(len(source)), failed)
        if len(keep) == 0:
            raise ValueError("None of the images in X could be read; nothing to train on.")
        labels = (
            labels.iloc[keep].reset_index(drop=True) if hasattr(labels, "iloc") else labels[keep]
        )
        return source.subset(keep), labels

    def _decoded(self, source):
        """The decoded-image cache: all images as one uint8 array, when allowed and small enough."""
        if (
            self.image_cache is False
            or source.kind == "array"
            and source.items.shape[1:3] == (self.image_size,) * 2
        ):
            return None
        nbytes = len(source) * self.image_size**2 * 3
        if self.image_cache == "auto" and nbytes > _DEFAULT_IMAGE_CACHE_BYTES:
            return None
        decoded, _ = decode_images(source, np.arange(len(source)), self.image_size)
        return decoded

    def _image_datasets(self, train_source, train_codes, val_source, val_codes, seed):
        train_ds = ImageDataset(
            train_source,
            self.image_size,
            train_codes,
            augmenter=self.augment,
            seed=seed,
            decoded=self._decoded(train_source),
        )
        val_ds = None
        if val_source is not None:
            val_ds = ImageDataset(
                val_source, self.image_size, val_codes, decoded=self._decoded(val_source)
            )
        return train_ds, val_ds

    def _stem_features(self, module, source, device, n_views=1, augmenter=None, stem=None):
        """The frozen stem's activations of every image of ``source`` (n, n_views, ...), from the cache."""
        return feature_cache.get(
            module,
            source,
            source.cache_keys(),
            backbone=self.backbone,
            image_size=self.image_size_,
            n_views=n_views,
            augmenter=augmenter,
            stem=stem,
            device=device,
            batch_size=max(self.batch_size, 64),
            num_workers=self._workers(source),
            cache_dir=self.cache_dir,
            progress=lambda total: progress_bar(self.verbose, total, desc="features"),
        )

    def _feature_datasets(
        self, module, train_source, train_codes, val_source, val_codes, seed, device
    ):
        n_views = self.cache_views if self.augment is not None else 1
        feats = self._stem_features(
            module, train_source, device, n_views=n_views, augmenter=self.augment
        )
        train_ds = FeatureDataset(feats, train_codes, random_view=True, seed=seed)
        self._feature_bytes = feats[0, 0].numel() * feats.element_size()  # one view of one image
        val_ds = None
        if val_source is not None:
            val_ds = FeatureDataset(self._stem_features(module, val_source, device), val_codes)
        return train_ds, val_ds

    def _make_net(
        self, module, attributes, loss_weights, train_ds, val_ds, device, seed, checkpoint=None
    ):
        """The skorch net; ``train_ds`` may be None for a net that only predicts (a loaded model).

        ``checkpoint``: the fingerprint of the fit, to write checkpoints into ``checkpoint_dir``.
        """
        optimizer = (
            _OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer
        )
        callbacks = [("head_accuracy", HeadAccuracy(attributes))]
        monitor = "valid_loss" if val_ds is not None else "train_loss"
        if self.patience is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=monitor, patience=self.patience, load_best=True, sink=_noop
                    ),
                )
            )
        n_train = len(train_ds) if train_ds is not None else 0
        steps_per_epoch = max(1, math.ceil(n_train / self.batch_size))
        schedule = {
            "plateau": dict(policy="ReduceLROnPlateau", monitor=monitor, factor=0.2, patience=2),
            "cosine": dict(policy="CosineAnnealingLR", T_max=self.max_epochs),
            # skorch does not export OneCycleLR by name: pass the class
            "onecycle": dict(
                policy=torch.optim.lr_scheduler.OneCycleLR,
                max_lr=self._group_lrs(),
                step_every="batch",
                total_steps=self.max_epochs * steps_per_epoch,
            ),
            "step": dict(policy="StepLR", step_size=5, gamma=0.5),
            None: None,
        }[self.lr_schedule]
        if schedule is not None:
            callbacks.append(("lr_scheduler", LRScheduler(**schedule)))
        if self.unfreeze_after is not None and module.stem_frozen:
            callbacks.append(("unfreeze", Unfreeze(self.unfreeze_after)))
        if self.verbose >= 1:  # the bar itself decides whether to draw (terminal or verbose >= 2)
            callbacks.append(("progress_bar", BatchProgressBar()))
        if checkpoint is not None:  # last: it saves the other callbacks' state after they update it
            from ._persistence import multi_attribute_template

            callbacks.append(
                (
                    "checkpoint",
                    TrainingCheckpoint(
                        str(self.checkpoint_dir),
                        checkpoint,
                        multi_attribute_template(self),
                        monitor=monitor,
                    ),
                )
            )
        kwargs = {}
        if self.backbone_lr is not None:
            kwargs["optimizer__param_groups"] = [
                ("stem.*", {"lr": self.backbone_lr}),
                ("body.*", {"lr": self.backbone_lr}),
            ]
        if self.weight_decay:
            kwargs["optimizer__weight_decay"] = self.weight_decay
        if self.label_smoothing:
            kwargs["criterion__label_smoothing"] = self.label_smoothing
        if (
            self.optimizer in ("adam", "adamw")
            and _fused_adam_supported(device)
            and self.unfreeze_after is None
            and all(p.is_contiguous() for p in module.parameters() if p.requires_grad)
        ):
            # One kernel for all parameters: on cached features the per-tensor Adam loop took a
            # fifth of a training step (0.23 ms against 0.07 for the heads). Only for contiguous
            # parameters: torch's fused kernel silently mixes up elements of a channels-last
            # parameter whose optimizer state is laid out otherwise (as after resuming).
            kwargs["optimizer__fused"] = True
        workers = self._train_workers(train_ds)
        return MultiHeadNet(
            module,
            criterion=nn.CrossEntropyLoss,
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=predefined_split(val_ds) if val_ds is not None else None,
            callbacks=callbacks,
            device=device,
            iterator_train__shuffle=True,
            # a last batch of one image breaks BatchNorm in training mode: drop it (reshuffled each epoch)
            iterator_train__drop_last=n_train % self.batch_size == 1,
            iterator_train__num_workers=workers,
            iterator_train__multiprocessing_context=worker_context(workers),
            iterator_train__persistent_workers=False,
            iterator_train__generator=torch.Generator(),  # re-seeded from (seed, epoch) by the net
            iterator_train__pin_memory=device.startswith("cuda"),
            iterator_valid__pin_memory=device.startswith("cuda"),
            iterator_train__collate_fn=collate_batch,  # feature batches come collated
            iterator_valid__collate_fn=collate_batch,
            loss_weights=loss_weights,
            amp_dtype=resolve_precision(self.precision),
            soft_targets=self._age_soft_targets(attributes),
            seed=seed,
            verbose=int(self.verbose),
            callbacks__print_log__keys_ignored=["event_lr"],
            **kwargs,
        )

    def _age_soft_targets(self, attributes):
        """With ``age_sigma``: for each true age class, a Gaussian over the age classes'
        representative ages (label distribution learning), as the age head's target."""
        if self.age_sigma is None or "age" not in attributes:
            return None
        values = torch.as_tensor(self._age_values(), dtype=torch.float32)
        logits = -((values[None, :] - values[:, None]) ** 2) / (2.0 * float(self.age_sigma) ** 2)
        return {attributes.index("age"): torch.softmax(logits, dim=1)}

    def _group_lrs(self):
        if self.backbone_lr is None:
            return self.lr
        return [self.backbone_lr, self.backbone_lr, self.lr]

    # ------------------------------------------------------------------ predict
    @property
    def history_(self):
        """Per-epoch training history (``net_.history``)."""
        check_is_fitted(self)
        return self.net_.history

    def _batch_probas(self, module, inputs, mirrored=None):
        """Softmax outputs of one batch through ``module`` (the net's inference module),
        averaged with those of its mirror images when given."""
        probas = [
            torch.softmax(lg.float(), dim=1) for lg in self.net_.inference_step(inputs, module)
        ]
        if mirrored is not None:
            for p, lg in zip(probas, self.net_.inference_step(mirrored, module)):
                p.add_(torch.softmax(lg.float(), dim=1)).mul_(0.5)
        return [p.cpu().numpy() for p in probas]

    def _cached_features(self, source, inference):
        """Features of ``source`` from the feature cache, or None to predict from the images.

        New images are extracted through ``inference.stem`` (the net's inference module).

        Only for a model trained from cached features (its stem is frozen, so
        its activations are fixed), and only for a source whose features fit
        in ``_PREDICT_CACHE_BYTES``: predicting over any number of paths must
        stay flat in memory. Grid-search candidates that share a frozen stem
        then score a fold without running the stem again. Unreadable images
        are only skipped by the streaming path.
        """
        if not getattr(self, "used_feature_cache_", False) or self.on_error != "raise":
            return None
        module = self.net_.module_
        if not module.stem_frozen:
            return None
        n_views = 2 if self.test_time_flip else 1
        per_view = getattr(
            self, "_feature_bytes", None
        )  # None in models saved before it was recorded
        if per_view is None or len(source) * n_views * per_view > min(
            _PREDICT_CACHE_BYTES, feature_cache.max_bytes
        ):
            return None
        return self._stem_features(
            module,
            source,
            self.net_.device,
            n_views=n_views,
            augmenter=RandomFlip(p=1.0) if self.test_time_flip else None,
            stem=inference.stem,
        )

    def _prediction_batches(self, source, inference):
        """Yield ``(inputs, mirrored inputs or None, readable flags)`` batch by batch, on the device."""
        device = self.net_.device
        features = self._cached_features(source, inference)
        if features is not None:
            for start in range(0, len(features), self.batch_size):
                batch = features[start : start + self.batch_size].to(device).float()
                mirrored = {"features": batch[:, 1]} if self.test_time_flip else None
                yield {"features": batch[:, 0]}, mirrored, [True] * len(batch)
            return
        cuda = str(device).startswith("cuda")
        workers = self._workers(source)
        loader = DataLoader(
            ImageDataset(source, self.image_size_, on_error=self.on_error),
            batch_size=self.batch_size,
            num_workers=workers,
            multiprocessing_context=worker_context(workers),
            pin_memory=cuda,
            collate_fn=collate_batch,
            generator=torch.Generator(),
        )  # leaves torch's global generator as it was
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


def _noop(*args, **kwargs):
    pass


def _fused_adam_supported(device):
    """Whether torch's fused Adam/AdamW runs on ``device`` (CUDA since torch 2.0, CPU since 2.4)."""
    major, minor = (
        int("".join(c for c in part if c.isdigit()) or 0)
        for part in torch.__version__.split(".")[:2]
    )
    kind = torch.device(device).type
    return kind == "cuda" or kind == "cpu" and (major, minor) >= (2, 4)
