"""Building the skorch net of a fit: optimizer, learning-rate schedule, callbacks, loaders."""

import dataclasses
import math

import torch
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch import nn

from .._config import get_config
from .._data import collate_batch, loading_policy
from ._callbacks import BatchProgressBar, HeadAccuracy, Unfreeze
from ._device import resolve_precision
from ._net import MultiHeadNet
from ._weighting import balanced_sampler

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainingSettings", "make_net"]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULES = ("plateau", "cosine", "onecycle", "step")


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """The estimator parameters that shape the training loop, as plain Python values."""

    lr: float = 1e-3
    backbone_lr: float | None = None
    weight_decay: float = 0.0
    optimizer: object = "adam"
    lr_schedule: str | None = "plateau"
    max_epochs: int = 30
    patience: int | None = 5
    batch_size: int = 32
    label_smoothing: float = 0.0
    unfreeze_after: int | None = None
    precision: str = "float32"
    verbose: int = 0

    @classmethod
    def from_params(cls, params):
        """The settings among an estimator's ``get_params()``; numbers become Python's own
        (numpy integers from ``np.arange`` grids reach torch as ``int``)."""
        values = {}
        for field in dataclasses.fields(cls):
            value = params[field.name]
            if isinstance(value, bool) or value is None or isinstance(value, (str, type)):
                values[field.name] = value
            elif field.name in ("lr", "backbone_lr", "weight_decay", "label_smoothing"):
                values[field.name] = float(value)
            elif field.name in (
                "max_epochs",
                "patience",
                "batch_size",
                "unfreeze_after",
                "verbose",
            ):
                values[field.name] = int(value)
            else:
                values[field.name] = value
        return cls(**values)


def _silent(*args, **kwargs):
    pass


def _schedule(settings, monitor, steps_per_epoch):
    """The ``LRScheduler`` arguments of ``settings.lr_schedule`` (None: no schedule)."""
    if settings.lr_schedule == "plateau":  # divide by 5 when the monitored loss stalls 2 epochs
        return dict(policy="ReduceLROnPlateau", monitor=monitor, factor=0.2, patience=2)
    if settings.lr_schedule == "cosine":
        return dict(policy="CosineAnnealingLR", T_max=settings.max_epochs)
    if settings.lr_schedule == "onecycle":  # skorch does not export OneCycleLR by name
        max_lr = settings.lr
        if settings.backbone_lr is not None:
            max_lr = [settings.backbone_lr, settings.backbone_lr, settings.lr]
        return dict(
            policy=torch.optim.lr_scheduler.OneCycleLR,
            max_lr=max_lr,
            step_every="batch",
            total_steps=settings.max_epochs * steps_per_epoch,
        )
    if settings.lr_schedule == "step":
        return dict(policy="StepLR", step_size=5, gamma=0.5)
    return None


def _early_stopping(settings, monitor, selection):
    """Early stopping on the loss, or on the ``selection`` history key (higher is better):
    that one keeps its best epoch even without ``patience``."""
    if selection is None:
        if settings.patience is None:
            return None
        return EarlyStopping(
            monitor=monitor, patience=settings.patience, load_best=True, sink=_silent
        )
    patience = settings.max_epochs + 1 if settings.patience is None else settings.patience
    return EarlyStopping(
        monitor=selection,
        patience=patience,
        lower_is_better=False,
        threshold=0.0,  # any gain: the epoch the selection callback flags best
        load_best=True,
        sink=_silent,
    )


def _callbacks(settings, module, attributes, monitor, steps_per_epoch, checkpoint, extra, leading):
    leading, selection = leading  # callbacks before every other one; the selection's key
    callbacks = [*leading, ("head_accuracy", HeadAccuracy(attributes))]
    stopper = _early_stopping(settings, monitor, selection)
    if stopper is not None:
        callbacks.append(("early_stopping", stopper))
    schedule = _schedule(settings, monitor, steps_per_epoch)
    if schedule is not None:
        callbacks.append(("lr_scheduler", LRScheduler(**schedule)))
    if settings.unfreeze_after is not None and module.stem_frozen:
        callbacks.append(("unfreeze", Unfreeze(settings.unfreeze_after)))
    if settings.verbose >= 1:  # the bar itself decides whether to draw (terminal or verbose >= 2)
        callbacks.append(("progress_bar", BatchProgressBar()))
    callbacks.extend(extra)
    if checkpoint is not None:  # last: it saves the other callbacks' state after they update it
        callbacks.append(("checkpoint", checkpoint))
    return callbacks


def fused_adam_supported(device):
    """Whether torch's fused Adam/AdamW runs on ``device`` (CUDA since torch 2.0, CPU since 2.4)."""
    from sklearn.utils.fixes import parse_version

    kind = torch.device(device).type
    return (
        kind == "cuda" or kind == "cpu" and parse_version(torch.__version__) >= parse_version("2.4")
    )


def _optimizer_kwargs(settings, module, device):
    kwargs = {}
    if settings.backbone_lr is not None:
        kwargs["optimizer__param_groups"] = [
            ("stem.*", {"lr": settings.backbone_lr}),
            ("body.*", {"lr": settings.backbone_lr}),
        ]
    if settings.weight_decay:
        kwargs["optimizer__weight_decay"] = settings.weight_decay
    if (
        get_config()["fused_adam"]
        and settings.optimizer in ("adam", "adamw")
        and fused_adam_supported(device)
        and settings.unfreeze_after is None
        and all(p.is_contiguous() for p in module.parameters() if p.requires_grad)
    ):
        # Only for contiguous parameters: torch's fused kernel silently mixes up elements of a
        # channels-last parameter whose optimizer state is laid out otherwise (as after resuming).
        kwargs["optimizer__fused"] = True
    return kwargs


def _in_host_memory(dataset):
    """Whether a DataLoader may pin the batches of ``dataset`` (features already on a
    GPU cannot be pinned)."""
    features = getattr(dataset, "features", None)
    return not (isinstance(features, torch.Tensor) and features.device.type != "cpu")


def _loader_kwargs(train_ds, val_ds, batch_size, device, workers, sampling_weight=None):
    """The DataLoader arguments of training and validation: workers, pinning and
    prefetching as :func:`~gar_sklearn._data.loading_policy` says for ``device``;
    ``workers`` is a pair (training, validation). With ``sampling_weight``, each
    epoch draws its samples with these weights instead of shuffling."""
    policy = loading_policy(device)
    n_train = len(train_ds) if train_ds is not None else 0
    generator = torch.Generator()  # re-seeded from (seed, epoch) by the net
    sampler = {}
    if sampling_weight is not None:  # the sampler draws from the loader's generator
        sampler["iterator_train__sampler"] = balanced_sampler(sampling_weight, generator)
    kwargs = dict(
        iterator_train__shuffle=not sampler,
        **sampler,
        # a last batch of one image breaks BatchNorm in training mode: drop it (reshuffled each epoch)
        iterator_train__drop_last=n_train % batch_size == 1,
        iterator_train__generator=generator,
        iterator_valid__generator=torch.Generator(),  # its seed draw leaves torch's global one alone
        iterator_train__collate_fn=collate_batch,  # datasets' batches come collated
        iterator_valid__collate_fn=collate_batch,
    )
    for prefix, dataset, n_workers in zip(("train", "valid"), (train_ds, val_ds), workers):
        loader = policy.loader_kwargs(n_workers)
        loader["pin_memory"] = loader["pin_memory"] and _in_host_memory(dataset)
        kwargs.update({f"iterator_{prefix}__{k}": v for k, v in loader.items()})
    return kwargs


def _net_class(settings, device, train_ds, checkpoint):
    """The net class, its extra arguments and its device: with an ``accelerator``
    configured (:func:`gar_sklearn.set_config`), a fit trains through it."""
    accelerator = get_config()["accelerator"]
    if accelerator is None or train_ds is None:  # a loaded model only predicts
        amp_dtype = resolve_precision(settings.precision, device)
        return MultiHeadNet, {"amp_dtype": amp_dtype, "criterion": nn.CrossEntropyLoss}, device
    from ._accelerate import AcceleratedMultiHeadNet, CrossEntropy

    if settings.precision not in ("auto", "float32", "fp32"):
        raise ValueError(
            f"With an accelerator, mixed precision is the accelerator's: leave 'precision' as "
            f"'float32' or 'auto' and create Accelerator(mixed_precision=...). Got "
            f"precision={settings.precision!r} instead."
        )
    for name, value in (
        ("checkpoint_dir", checkpoint),
        ("unfreeze_after", settings.unfreeze_after),
    ):
        if value is not None:
            raise ValueError(f"'{name}' is not supported when training through an accelerator.")
    extra = {"accelerator": accelerator, "amp_dtype": None, "criterion": CrossEntropy}
    return AcceleratedMultiHeadNet, extra, None  # the accelerator places the module


def make_net(
    module,
    settings,
    *,
    attributes,
    device,
    train_ds=None,
    val_ds=None,
    seed=None,
    workers=0,
    valid_workers=0,
    loss_weights=None,
    soft_targets=None,
    checkpoint=None,
    callbacks=(),
    leading=(),
    selection=None,
    sampling_weight=None,
):
    """The skorch net that trains ``module`` as ``settings`` say.

    ``train_ds`` may be None for a net that only predicts (a loaded model).
    ``workers``, ``valid_workers``: DataLoader worker processes of training
    and validation.
    ``checkpoint``: a :class:`~gar_sklearn._training.TrainingCheckpoint`,
    placed after every other callback. ``callbacks``: the user's own
    ``(name, callback)`` pairs, placed before it. With an ``accelerator``
    configured, a net that trains is an
    :class:`~gar_sklearn._training._accelerate.AcceleratedMultiHeadNet`.

    ``leading``: ``(name, callback)`` pairs placed before every other
    callback (weight averaging, selection scores). ``selection``: a history
    key, higher being better, that early stopping watches instead of the
    loss, keeping its best epoch even with ``patience=None``.
    ``sampling_weight``: each training sample's chance in a draw with
    replacement, made each epoch instead of shuffling.
    """
    optimizer = settings.optimizer
    if isinstance(optimizer, str):
        optimizer = OPTIMIZERS[optimizer]
    monitor = "valid_loss" if val_ds is not None else "train_loss"
    n_train = len(train_ds) if train_ds is not None else 0
    loaders = _loader_kwargs(
        train_ds, val_ds, settings.batch_size, device, (workers, valid_workers), sampling_weight
    )
    steps_per_epoch = max(1, math.ceil(n_train / settings.batch_size))
    net_class, extra, net_device = _net_class(settings, device, train_ds, checkpoint)
    return net_class(
        module,
        optimizer=optimizer,
        lr=settings.lr,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        train_split=predefined_split(val_ds) if val_ds is not None else None,
        callbacks=_callbacks(
            settings,
            module,
            attributes,
            monitor,
            steps_per_epoch,
            checkpoint,
            callbacks,
            (leading, selection),
        ),
        device=net_device,
        loss_weights=loss_weights,
        soft_targets=soft_targets,
        seed=seed,
        verbose=settings.verbose,
        callbacks__print_log__keys_ignored=["event_lr"],
        **(
            {"criterion__label_smoothing": settings.label_smoothing}
            if settings.label_smoothing
            else {}
        ),
        **_optimizer_kwargs(settings, module, device),
        **loaders,
        **extra,
    )
