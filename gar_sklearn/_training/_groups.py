"""Per-sample weights and group labels of a fit, as plain arrays (numpy and pandas only).

A fit may weight its samples (``sample_weight``) and group them by some
columns of y (``group_by``: race, gender, race x gender, ...) to balance the
groups or to select the epoch on the worst group. This module checks these
inputs and turns them into arrays; :mod:`._weighting` carries them through
torch.
"""

import dataclasses
import numbers

import numpy as np
import pandas as pd

from .._targets import as_target_frame, transform_frame

__all__ = [
    "SampleInfo",
    "balanced_weights",
    "check_group_by",
    "check_sample_weight",
    "group_labels",
    "is_group_by",
]


def check_group_by(group_by):
    """The ``group_by`` parameter as a tuple of column names (empty for None)."""
    if group_by is None:
        return ()
    columns = (group_by,) if isinstance(group_by, (str, numbers.Integral)) else group_by
    try:
        columns = tuple(columns)
    except TypeError:
        columns = None
    if (
        not columns
        or len(set(columns)) != len(columns)
        or not all(isinstance(c, (str, numbers.Integral)) for c in columns)
        or any(isinstance(c, bool) for c in columns)
    ):
        raise ValueError(
            "The 'group_by' parameter must be None, a column name of y or a tuple of distinct "
            f"column names, such as 'race' or ('race', 'gender'). Got {group_by!r} instead."
        )
    return columns


def is_group_by(value):
    """Whether ``value`` is a valid ``group_by`` parameter other than None."""
    try:
        return bool(check_group_by(value))
    except ValueError:
        return False


def check_sample_weight(sample_weight, n_samples, name="sample_weight"):
    """``sample_weight`` as a float64 array of ``n_samples`` finite, non-negative values
    with a positive sum; None stays None."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be an array of non-negative numbers. Got {sample_weight!r} instead."
        ) from exc
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(
            f"{name} must have shape ({n_samples},), one weight per image. Got shape "
            f"{weights.shape} instead."
        )
    if not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative numbers only.")
    if not weights.sum() > 0:
        raise ValueError(f"{name} must have a positive sum: all weights are zero.")
    return weights


def _group_values(y, columns, attributes, binner):
    """The ``columns`` of one y as a DataFrame (attributes as the estimator predicts them)."""
    frame = as_target_frame(y, attributes)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The 'group_by' parameter names the column(s) {missing}, which y does not have: "
            f"y has the columns {list(frame.columns)} (pass y as a DataFrame to group by a "
            "column that is not an attribute)."
        )
    binned = transform_frame(frame[list(attributes)], attributes, binner)
    values = pd.DataFrame({c: binned[c] if c in attributes else frame[c] for c in columns})
    for c in columns:
        holes = np.flatnonzero(values[c].isna().to_numpy())
        if len(holes):
            raise ValueError(
                f"y[{c!r}] has {len(holes)} missing value(s) (rows {holes[:10].tolist()}): "
                "every image needs a group to balance or select on."
            )
    return values.reset_index(drop=True)


def group_labels(ys, columns, attributes, binner=None):
    """The group of each sample of each y of ``ys``: its values in ``columns``.

    A column that is an attribute is read as the estimator predicts it (ages
    binned by ``binner``); any other column of a y DataFrame as it is.

    Returns
    -------
    codes : list of ndarray of int
        For each y, the group of each of its rows, an index into ``table``.
    table : DataFrame
        One row per group found in any y, one column per name of
        ``columns``, sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> y = pd.DataFrame({"gender": ["M", "F", "M"], "race": ["A", "B", "A"]})
    >>> codes, table = group_labels([y], ("race", "gender"), ("gender",))
    >>> codes[0].tolist(), table.to_dict("list")
    ([0, 1, 0], {'race': ['A', 'B'], 'gender': ['M', 'F']})
    """
    values = [_group_values(y, columns, attributes, binner) for y in ys]
    every = pd.concat(values, ignore_index=True)
    keys = every.astype(str).agg("\x1f".join, axis=1).to_numpy()
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    table = every.iloc[first].reset_index(drop=True)
    bounds = np.cumsum([0] + [len(v) for v in values])
    return [codes[a:b].astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:])], table


def balanced_weights(groups, weights=None):
    """Weights under which every group present carries the same total weight.

    Sample ``i`` of group ``g`` gets ``w_i * W / (G * W_g)``, where ``W`` is
    the total weight, ``W_g`` that of group ``g`` and ``G`` the number of
    groups with positive weight (``w_i = 1`` without ``weights``); the total
    weight stays ``W``.

    Examples
    --------
    >>> balanced_weights(np.array([0, 0, 0, 1])).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    groups = np.asarray(groups)
    weights = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    totals = np.bincount(groups, weights=weights)
    present = totals > 0
    share = np.zeros_like(totals)
    share[present] = weights.sum() / (present.sum() * totals[present])
    return weights * share[groups]


@dataclasses.dataclass
class SampleInfo:
    """The weights and groups of a fit's samples, row by row.

    ``weight`` (float array or None: all 1) and ``group`` (int array into
    ``table``, or None without ``group_by``).
    """

    weight: np.ndarray | None = None
    group: np.ndarray | None = None
    table: pd.DataFrame | None = None

    def subset(self, rows):
        return SampleInfo(
            None if self.weight is None else self.weight[rows],
            None if self.group is None else self.group[rows],
            self.table,
        )

    def loss_weight(self, balance):
        """Each sample's weight in the loss, scaled to a mean of 1; None when all are equal.

        With ``balance="reweight"`` (or for the validation loss, any
        ``balance``), the groups are balanced (:func:`balanced_weights`).
        """
        weight = self.weight
        if balance is not None and self.group is not None:
            weight = balanced_weights(self.group, weight)
        if weight is None:
            return None
        return weight / weight.mean()

    def sampling_weight(self):
        """Each sample's chance in a balanced draw: ``1 / W_g`` of its group ``g``."""
        weights = np.ones(len(self.group)) if self.weight is None else self.weight
        totals = np.bincount(self.group, weights=weights)
        chance = np.zeros_like(totals)
        chance[totals > 0] = 1.0 / totals[totals > 0]
        return chance[self.group]
