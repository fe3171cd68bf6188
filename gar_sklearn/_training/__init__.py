"""The training glue between the estimators and skorch, one job per module.

- ``_device``: where a fit runs and in which precision;
- ``_net``: the skorch net (multi-head loss, epoch-aware loader, inference copy);
- ``_callbacks``: epoch table, progress bar, per-head accuracy, unfreezing;
- ``_checkpoint``: training state, resuming, the checkpoint callback;
- ``_build``: the net of a fit from the estimator's settings;
- ``_groups``: sample weights and group labels as arrays (no torch);
- ``_weighting``: weights and groups carried by batches, the weighted loss,
  the balanced sampler;
- ``_selection``: scores of the validation predictions by group, for
  selecting the epoch;
- ``_averaging``: EMA / SWA of the weights (``torch.optim.swa_utils``);
- ``_calibration``: temperature scaling per head;
- ``_extras``: those optional parts of a fit from the estimator's parameters.

The estimators use it; it uses the data, backbones and persistence format
modules, and nothing here imports an estimator.
"""

from ._build import OPTIMIZERS, SCHEDULES, TrainingSettings, make_net
from ._callbacks import BatchProgressBar, EpochLog, HeadAccuracy, Unfreeze
from ._checkpoint import (
    TrainingCheckpoint,
    drop_incomplete_epoch,
    drop_training_state,
    restore_training_state,
    training_finished,
    training_state,
)
from ._device import cuda_speed_settings, resolve_device, resolve_precision
from ._net import MultiHeadNet

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "BatchProgressBar",
    "EpochLog",
    "HeadAccuracy",
    "MultiHeadNet",
    "TrainingCheckpoint",
    "TrainingSettings",
    "Unfreeze",
    "cuda_speed_settings",
    "drop_incomplete_epoch",
    "drop_training_state",
    "make_net",
    "resolve_device",
    "resolve_precision",
    "restore_training_state",
    "training_finished",
    "training_state",
]
