"""Input checks shared by the metrics: labels, predictions, sensitive features, groups."""

import numbers
import warnings

import numpy as np
import pandas as pd

from ._order import rank, sorted_labels

__all__ = ["SmallGroupWarning", "TooFewGroupsWarning"]

#: Default for every ``min_group_size`` parameter: groups with fewer samples are flagged
#: and left out of between-group aggregates (a common rule of thumb for a usable rate).
DEFAULT_MIN_GROUP_SIZE = 30


class SmallGroupWarning(UserWarning):
    """Some groups have fewer samples than ``min_group_size``.

    Such groups keep their own values in every per-group table (flagged in a
    ``small`` column) but are left out of aggregates across groups: difference,
    ratio, worst group, group minimum and maximum, and the scorers.
    """


class TooFewGroupsWarning(UserWarning):
    """Fewer than two groups are left to compare, so the disparities are NaN.

    A difference, a ratio, the worst or the best group compare groups: with a
    single group (or a single one at least ``min_group_size`` large) there is
    nothing to compare, and a difference of 0 or a ratio of 1 would claim a
    parity that nobody measured.
    """


def check_1d(values, name):
    """``values`` as a 1-D ndarray, positional (any pandas index dropped)."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(
                f"'{name}' must be one-dimensional; got a DataFrame with {values.shape[1]} columns."
            )
        values = values.iloc[:, 0]
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"'{name}' must be one-dimensional; got an array of shape {arr.shape}.")
    return arr


def check_lengths(**arrays):
    """Raise when the arrays are empty or their lengths differ (naming each length)."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"Inconsistent numbers of samples: {detail}.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{next(iter(lengths))} is empty: the metrics need at least one sample.")
    return n


def check_sample_weight(sample_weight, n_samples):
    """``sample_weight`` as a float array of ``n_samples`` non-negative weights, or None."""
    if sample_weight is None:
        return None
    weight = check_1d(sample_weight, "sample_weight")
    try:
        weight = weight.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'sample_weight' parameter must hold numbers. Got {weight[:5].tolist()} ..."
        ) from exc
    check_lengths(y_true=range(n_samples), sample_weight=weight)
    if not np.isfinite(weight).all() or (weight < 0).any():
        bad = np.flatnonzero(~np.isfinite(weight) | (weight < 0))[:5].tolist()
        raise ValueError(
            "The 'sample_weight' parameter must hold finite, non-negative numbers. Got "
            f"{weight[bad].tolist()} at positions {bad}."
        )
    return weight


def check_min_group_size(min_group_size):
    if (
        not isinstance(min_group_size, numbers.Integral)
        or isinstance(min_group_size, bool)
        or min_group_size < 0
    ):
        raise ValueError(
            "The 'min_group_size' parameter must be a non-negative int. "
            f"Got {min_group_size!r} instead."
        )
    return int(min_group_size)


def check_method(method):
    if method not in ("between_groups", "to_overall"):
        raise ValueError(
            "The 'method' parameter must be 'between_groups' or 'to_overall'. "
            f"Got {method!r} instead."
        )
    return method


def sensitive_frame(sensitive_features):
    """The sensitive features as a DataFrame: one column per feature, positional index.

    A Series, a 1-D array or list of scalars gives one column; a DataFrame, a dict
    of columns or a 2-D array gives several, whose combinations form the groups.
    Unnamed columns are called ``sensitive_feature_<i>`` (as fairlearn does).
    """
    if sensitive_features is None:
        raise ValueError(
            "The 'sensitive_features' parameter is required: a Series, array, list or "
            "DataFrame with one group label per sample. Got None instead."
        )
    if isinstance(sensitive_features, pd.Series):
        name = sensitive_features.name
        frame = sensitive_features.to_frame("sensitive_feature_0" if name is None else str(name))
    elif isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features.copy()
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(sensitive_features, dict):
        frame = pd.DataFrame(
            {
                str(k): check_1d(v, f"sensitive_features[{k!r}]")
                for k, v in sensitive_features.items()
            }
        )
    else:
        arr = np.asarray(sensitive_features, dtype=object)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(
                "The 'sensitive_features' parameter must be one- or two-dimensional; "
                f"got an array of shape {arr.shape}."
            )
        frame = pd.DataFrame(arr, columns=[f"sensitive_feature_{i}" for i in range(arr.shape[1])])
    if frame.shape[1] == 0:
        raise ValueError("The 'sensitive_features' parameter has no columns.")
    if frame.columns.duplicated().any():
        raise ValueError(
            f"The 'sensitive_features' columns must have distinct names; got {list(frame.columns)}."
        )
    frame = frame.reset_index(drop=True)
    for col in frame.columns:
        missing = np.flatnonzero(frame[col].isna().to_numpy())
        if len(missing):
            raise ValueError(
                f"The sensitive feature '{col}' has {len(missing)} missing value(s) "
                f"(None/NaN) at positions {missing[:5].tolist()}"
                f"{' ...' if len(missing) > 5 else ''}. Drop those samples or give the "
                "missing value a label of its own, such as 'unknown'."
            )
    return frame


def group_label(key):
    """A group as text: ``"White"``, or ``"White, Male"`` for an intersectional group."""
    if isinstance(key, tuple):
        return ", ".join(str(k) for k in key)
    return str(key)


class Groups:
    """Samples split into the groups of a sensitive-feature frame.

    Attributes
    ----------
    names : list of str
        The sensitive feature names.
    index : pandas.Index or pandas.MultiIndex
        One entry per observed group (tuples for several features), ordered
        feature by feature as :func:`sorted_labels` orders values: age groups
        by age, other values sorted where they sort, else by first appearance.
    positions : list of ndarray
        The sample positions of each group, in ``index`` order.
    sizes : ndarray of int
    labels : list of str
        ``"White"`` or ``"White, Male"``.
    """

    def __init__(self, frame):
        self.names = list(frame.columns)
        keys = frame.drop_duplicates()
        ranks = [rank(keys[name], sorted_labels(keys[name])) for name in self.names]
        keys = keys.iloc[np.lexsort(ranks[::-1])]
        if len(self.names) == 1:
            name = self.names[0]
            self.index = pd.Index(keys[name].to_numpy(), name=name)
            codes = self.index.get_indexer(frame[name].to_numpy())
        else:
            self.index = pd.MultiIndex.from_frame(keys)
            codes = self.index.get_indexer(pd.MultiIndex.from_frame(frame))
        order = np.argsort(codes, kind="stable")
        self.sizes = np.bincount(codes, minlength=len(self.index))
        self.positions = np.split(order, np.cumsum(self.sizes)[:-1])
        self.codes = codes
        self.labels = [group_label(k) for k in self.index]

    @classmethod
    def from_features(cls, sensitive_features, n_samples, name="y_true"):
        frame = sensitive_frame(sensitive_features)
        check_lengths(**{name: range(n_samples), "sensitive_features": frame})
        return cls(frame)

    def small_mask(self, min_group_size):
        return self.sizes < min_group_size

    def warn_too_few(self, min_group_size, stacklevel=3):
        """Warn, and return False, when fewer than two groups reach ``min_group_size``."""
        eligible = ~self.small_mask(min_group_size)
        if eligible.sum() >= 2:
            return True
        warnings.warn(too_few_message(self, min_group_size), TooFewGroupsWarning, stacklevel)
        return False

    def warn_small(self, min_group_size, stacklevel=3):
        small = self.small_mask(min_group_size)
        if small.any():
            listed = ", ".join(
                f"'{label}' (n={n})" for label, n, s in zip(self.labels, self.sizes, small) if s
            )
            warnings.warn(
                f"{int(small.sum())} of {len(small)} groups have fewer than "
                f"min_group_size={min_group_size} samples and are left out of aggregates "
                f"across groups (difference, ratio, worst group): {listed}. Lower "
                "'min_group_size' to include them.",
                SmallGroupWarning,
                stacklevel=stacklevel,
            )
        return small


def too_few_message(groups, min_group_size):
    """Why the disparities of ``groups`` are NaN: fewer than two groups to compare."""
    eligible = ~groups.small_mask(min_group_size)
    kept = [
        f"'{label}' (n={n})" for label, n, ok in zip(groups.labels, groups.sizes, eligible) if ok
    ]
    if len(groups.labels) < 2:
        why = f"there is a single group, {kept[0] if kept else repr(groups.labels[0])}"
        fix = ""
    else:
        why = (
            f"{len(kept)} of {len(groups.labels)} groups "
            f"{'has' if len(kept) == 1 else 'have'} at least min_group_size={min_group_size} "
            f"samples{': ' + ', '.join(kept) if kept else ''}"
        )
        fix = " Lower 'min_group_size' to compare the smaller groups (their values are noisier)."
    return (
        f"Differences, ratios and the worst or best group need at least two groups to "
        f"compare, and {why}: they are NaN.{fix}"
    )
