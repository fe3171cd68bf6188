"""The optional parts of a fit, from the estimator's parameters: weighted and balanced losses,
balanced sampling, selection on groups, weight averaging.

The estimator hands over its parameters and each split's
:class:`~gar_sklearn._training._groups.SampleInfo`; it gets back datasets
whose batches carry weights and groups where something reads them, and the
arguments of :func:`~gar_sklearn._training.make_net`.
"""

from ._averaging import WeightAveraging
from ._selection import GroupScore, selection_key
from ._weighting import SampleDataset

__all__ = ["check_fit_options", "sample_datasets", "training_extras"]


def check_fit_options(params, has_groups, has_validation):
    """Raise a ValueError on parameters that cannot work together (``params``: ``get_params()``)."""
    needs_groups = []
    if params["balance"] is not None:
        needs_groups.append(f"balance={params['balance']!r}")
    if params["selection"] == "worst_group_accuracy":
        needs_groups.append("selection='worst_group_accuracy'")
    if needs_groups and not has_groups:
        raise ValueError(
            f"{' and '.join(needs_groups)} need groups: set the 'group_by' parameter to the "
            "column(s) of y that define them, such as 'race' or ('race', 'gender')."
        )
    needs_validation = []
    if params["selection"] != "loss":
        needs_validation.append(f"selection={params['selection']!r}")
    if params["calibrate"]:
        needs_validation.append("calibrate=True")
    if needs_validation and not has_validation:
        raise ValueError(
            f"{' and '.join(needs_validation)} need a validation split: set "
            "'validation_fraction' or pass validation_data to fit."
        )


def _wrap(dataset, info, loss_weight, with_groups):
    group = info.group if with_groups else None
    if dataset is None or (loss_weight is None and group is None):
        return dataset
    return SampleDataset(dataset, sample_weight=loss_weight, group=group)


def sample_datasets(train_ds, val_ds, infos, params):
    """``train_ds`` and ``val_ds`` whose batches carry what the loss and the callbacks read.

    The training loss weighs each sample by its ``sample_weight`` and, with
    ``balance="reweight"``, balances the groups; the validation loss is
    weighted as the training objective is: by ``sample_weight`` and, with
    any ``balance``, with the validation split's groups balanced. Validation
    batches carry their groups for :class:`GroupScore`.
    """
    train_info, val_info = infos
    balance = params["balance"]
    train_ds = _wrap(
        train_ds,
        train_info,
        train_info.loss_weight(balance if balance == "reweight" else None),
        with_groups=False,
    )
    if val_info is not None:
        val_ds = _wrap(val_ds, val_info, val_info.loss_weight(balance), with_groups=True)
    return train_ds, val_ds


def training_extras(params, attributes, classes, infos):
    """The ``leading``, ``selection`` and ``sampling_weight`` arguments of ``make_net``."""
    train_info, val_info = infos
    leading = []
    if params["weight_averaging"] is not None:
        averaging = WeightAveraging(
            params["weight_averaging"], params["ema_decay"], params["averaging_start"]
        )
        leading.append(("weight_averaging", averaging))
    has_groups = val_info is not None and val_info.group is not None
    table = train_info.table
    if has_groups:  # the worst group's accuracy is worth a column whatever selects the epoch
        leading.append(
            (
                "worst_group_accuracy",
                GroupScore(
                    "valid_worst_group_acc", "worst_group_accuracy", attributes, classes, table
                ),
            )
        )
    selection = params["selection"]
    if callable(selection) and val_info is not None:
        leading.append(
            ("selection", GroupScore("valid_selection", selection, attributes, classes, table))
        )
    sampling_weight = None
    if params["balance"] == "sample":
        sampling_weight = train_info.sampling_weight()
    return dict(
        leading=leading, selection=selection_key(selection), sampling_weight=sampling_weight
    )
