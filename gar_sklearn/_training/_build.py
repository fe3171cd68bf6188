"""Building the skorch net of a fit: optimizer, learning-rate schedule, callbacks, loaders."""

import dataclasses
import math

import torch
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch import nn

from .._config import get_config
from .._data import collate_batch, worker_context
from ._callbacks import BatchProgressBar, HeadAccuracy, Unfreeze
from ._device import resolve_precision
from ._net import MultiHeadNet

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


def _callbacks(settings, module, attributes, monitor, steps_per_epoch, checkpoint, extra):
    callbacks = [("head_accuracy", HeadAccuracy(attributes))]
    if settings.patience is not None:
        stopper = EarlyStopping(
            monitor=monitor, patience=settings.patience, load_best=True, sink=_silent
        )
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


def _loader_kwargs(n_train, batch_size, device, workers):
    cuda = device.startswith("cuda")
    return dict(
        iterator_train__shuffle=True,
        # a last batch of one image breaks BatchNorm in training mode: drop it (reshuffled each epoch)
        iterator_train__drop_last=n_train % batch_size == 1,
        iterator_train__num_workers=workers,
        iterator_train__multiprocessing_context=worker_context(workers),
        iterator_train__persistent_workers=False,
        iterator_train__generator=torch.Generator(),  # re-seeded from (seed, epoch) by the net
        iterator_valid__generator=torch.Generator(),  # its seed draw leaves torch's global one alone
        iterator_train__pin_memory=cuda,
        iterator_valid__pin_memory=cuda,
        iterator_train__collate_fn=collate_batch,  # datasets' batches come collated
        iterator_valid__collate_fn=collate_batch,
    )


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
    loss_weights=None,
    soft_targets=None,
    checkpoint=None,
    callbacks=(),
):
    """The skorch net that trains ``module`` as ``settings`` say.

    ``train_ds`` may be None for a net that only predicts (a loaded model).
    ``checkpoint``: a :class:`~gar_sklearn._training.TrainingCheckpoint`,
    placed after every other callback. ``callbacks``: the user's own
    ``(name, callback)`` pairs, placed before it.
    """
    optimizer = settings.optimizer
    if isinstance(optimizer, str):
        optimizer = OPTIMIZERS[optimizer]
    monitor = "valid_loss" if val_ds is not None else "train_loss"
    n_train = len(train_ds) if train_ds is not None else 0
    steps_per_epoch = max(1, math.ceil(n_train / settings.batch_size))
    return MultiHeadNet(
        module,
        criterion=nn.CrossEntropyLoss,
        optimizer=optimizer,
        lr=settings.lr,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        train_split=predefined_split(val_ds) if val_ds is not None else None,
        callbacks=_callbacks(
            settings, module, attributes, monitor, steps_per_epoch, checkpoint, callbacks
        ),
        device=device,
        loss_weights=loss_weights,
        amp_dtype=resolve_precision(settings.precision),
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
        **_loader_kwargs(n_train, settings.batch_size, device, workers),
    )
