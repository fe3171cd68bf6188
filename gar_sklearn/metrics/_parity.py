"""Demographic parity and equalized odds for multiclass labels, one class against the rest.

Each class ``c`` is binarised as "is ``c``"; the rates per group and class are
weighted counts, and the difference or ratio of each class is exactly
fairlearn's on the binarised labels. The classes are then combined by
``class_agg``.
"""

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning

from ._order import sorted_labels
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    check_1d,
    check_lengths,
    check_method,
    check_min_group_size,
    check_sample_weight,
)

__all__ = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
]

_AGGS = ("worst_case", "mean")


def _classes(y_true, y_pred, labels):
    if labels is not None:
        classes = check_1d(labels, "labels").astype(object)
        if not len(classes):
            raise ValueError("The 'labels' parameter is empty; give at least one class.")
        return classes
    return np.asarray(sorted_labels(np.concatenate([y_true, y_pred])), dtype=object)


def _check_agg(value, param, allow_none=False):
    if value in _AGGS or (allow_none and value is None):
        return value
    allowed = list(_AGGS) + ([None] if allow_none else [])
    raise ValueError(f"The '{param}' parameter must be one of {allowed}. Got {value!r} instead.")


def _check_zero_division(zero_division):
    if isinstance(zero_division, str) and zero_division == "warn":
        return zero_division
    if (
        isinstance(zero_division, numbers.Real)
        and not isinstance(zero_division, bool)
        and (np.isnan(zero_division) or zero_division in (0, 1))
    ):
        return float(zero_division)
    raise ValueError(
        "The 'zero_division' parameter must be 'warn', 0.0, 1.0 or np.nan. "
        f"Got {zero_division!r} instead."
    )


@dataclass
class _Setup:
    """Checked inputs: labels, groups, classes, weights, and which groups are compared."""

    y_true: np.ndarray
    y_pred: np.ndarray
    groups: Groups
    classes: np.ndarray
    weight: np.ndarray
    eligible: np.ndarray

    @classmethod
    def check(cls, y_true, y_pred, sensitive_features, method, labels, class_agg, weight, size):
        y_true = check_1d(y_true, "y_true").astype(object)
        y_pred = check_1d(y_pred, "y_pred").astype(object)
        n = check_lengths(y_true=y_true, y_pred=y_pred)
        groups = Groups.from_features(sensitive_features, n)
        check_method(method)
        _check_agg(class_agg, "class_agg", allow_none=True)
        weight = check_sample_weight(weight, n)
        size = check_min_group_size(size)
        eligible = ~groups.warn_small(size, stacklevel=5)
        groups.warn_too_few(size, stacklevel=5)
        weight = np.ones(n) if weight is None else weight
        return cls(y_true, y_pred, groups, _classes(y_true, y_pred, labels), weight, eligible)

    def one_hot(self, values):
        return values[:, None] == self.classes[None, :]

    def sums(self, indicator):
        """Weighted sums per group (rows) and class (columns), and over all samples."""
        weighted = indicator * self.weight[:, None]
        out = np.zeros((len(self.groups.sizes), indicator.shape[1]))
        np.add.at(out, self.groups.codes, weighted)
        return out, weighted.sum(axis=0)

    @property
    def labels(self):
        return [label for label, ok in zip(self.groups.labels, self.eligible) if ok]


def _divide(hits, totals, fill=np.nan):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals == 0, fill, hits / np.where(totals == 0, 1, totals))


def _compare(values, overall, method, how):
    """Per column: fairlearn's difference or ratio over rows, NaN below two defined rows."""
    if values.shape[0] < 2:
        return np.full(values.shape[1], np.nan)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        if how == "difference" and method == "between_groups":
            result = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
        elif how == "difference":
            result = np.nanmax(np.abs(values - overall), axis=0)
        elif method == "between_groups":
            result = np.nanmin(values, axis=0) / np.nanmax(values, axis=0)
        else:  # as fairlearn: group / overall, each ratio above one inverted (x / 0 gives 0)
            ratios = values / overall
            result = np.nanmin(np.where(ratios > 1, 1 / ratios, ratios), axis=0)
    enough = (~np.isnan(values)).sum(axis=0) >= 2
    return np.where(enough, result, np.nan)


def _combine(a, b, agg, how):
    """The two rates' results per class (TPR and FPR): the worse one, or their mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if agg == "mean":
            return np.nanmean(np.vstack([a, b]), axis=0)
        return np.fmax(a, b) if how == "difference" else np.fmin(a, b)


def _aggregate(per_class, classes, class_agg, how):
    if class_agg is None:
        return pd.Series(per_class, index=pd.Index(classes, name="class"))
    if np.isnan(per_class).all():
        return float("nan")
    if class_agg == "mean":
        return float(np.nanmean(per_class))
    return float(np.nanmax(per_class) if how == "difference" else np.nanmin(per_class))


def _demographic_parity(how, y_true, y_pred, sensitive_features, method, labels, class_agg, **kw):
    setup = _Setup.check(
        y_true, y_pred, sensitive_features, method, labels, class_agg, kw["weight"], kw["size"]
    )
    hit, all_hit = setup.sums(setup.one_hot(setup.y_pred))
    totals, all_total = setup.sums(np.ones((len(setup.y_pred), 1)))
    rates = _divide(hit, totals)
    overall = _divide(all_hit, all_total)
    per_class = _compare(rates[setup.eligible], overall, method, how)
    return _aggregate(per_class, setup.classes, class_agg, how)


def _warn_undefined(what, totals, classes, labels, fill):
    rows, cols = np.nonzero(totals == 0)
    if len(rows):
        pairs = ", ".join(
            f"class {classes[c]!r} in '{labels[r]}'" for r, c in list(zip(rows, cols))[:5]
        )
        warnings.warn(
            f"The {what} is undefined for {len(rows)} (class, group) pair(s) with no "
            f"samples to measure it on ({pairs}{' ...' if len(rows) > 5 else ''}); it is "
            f"set to {fill:g}, as in fairlearn. Pass zero_division=np.nan to leave such "
            "rates out.",
            UndefinedMetricWarning,
            stacklevel=4,
        )


def _equalized_odds(how, y_true, y_pred, sensitive_features, method, labels, class_agg, **kw):
    _check_agg(kw["agg"], "agg")
    zero_division = _check_zero_division(kw["zero_division"])
    setup = _Setup.check(
        y_true, y_pred, sensitive_features, method, labels, class_agg, kw["weight"], kw["size"]
    )
    pos, hit = setup.one_hot(setup.y_true), setup.one_hot(setup.y_pred)
    fill = 0.0 if zero_division == "warn" else zero_division
    results = []
    for what, mask in (("true positive rate", pos), ("false positive rate", ~pos)):
        hits, all_hits = setup.sums(mask & hit)
        totals, all_totals = setup.sums(mask)
        if zero_division == "warn":
            shown = totals[setup.eligible]
            names = setup.labels
            if method == "to_overall":
                shown, names = np.vstack([shown, all_totals]), names + ["all samples"]
            _warn_undefined(what, shown, setup.classes, names, fill)
        rates = _divide(hits, totals, fill)[setup.eligible]
        results.append(_compare(rates, _divide(all_hits, all_totals, fill), method, how))
    per_class = _combine(*results, kw["agg"], how)
    return _aggregate(per_class, setup.classes, class_agg, how)


def demographic_parity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    labels=None,
    class_agg="worst_case",
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Demographic parity difference of multiclass predictions, one class vs the rest.

    For each class ``c`` the prediction is binarised as "predicted ``c``", and
    the selection rate of ``c`` in group ``g`` is the (weighted) fraction of
    the group's samples predicted ``c``: ``P(y_pred = c | A = g)``. The
    difference for ``c`` is then exactly fairlearn's
    ``demographic_parity_difference`` on ``y_pred == c`` (largest minus
    smallest group selection rate, or the largest gap to the overall
    selection rate). The per-class differences are aggregated by
    ``class_agg``. ``y_true`` only supplies classes.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (any hashable labels, e.g. race names).
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`; several columns give intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As in fairlearn: between the groups, or between each group and all samples.
    labels : array-like, default=None
        The classes to evaluate; default: every label seen in ``y_true`` or
        ``y_pred``, sorted (age groups by age). ``labels=["Female"]`` gives
        fairlearn's binary metric with ``Female`` as the positive label.
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        How the per-class differences are combined: their maximum, or their
        mean; None returns them as a Series indexed by class.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples in the selection rates, as in fairlearn.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        0 is parity. NaN when fewer than two groups are left to compare
        (with a :class:`TooFewGroupsWarning`).

    See Also
    --------
    demographic_parity_ratio : The same rates compared by their ratio.
    equalized_odds_difference : Compares error rates rather than prediction rates.
    GroupMetrics : Any metric per group, with its differences and ratios.

    Examples
    --------
    >>> from gar_sklearn.metrics import demographic_parity_difference
    >>> y_pred = ["a", "a", "b", "a", "b", "b"]
    >>> groups = ["x", "x", "x", "y", "y", "y"]
    >>> demographic_parity_difference(y_pred, y_pred, sensitive_features=groups,
    ...                               class_agg=None, min_group_size=1).round(4).to_dict()
    {'a': 0.3333, 'b': 0.3333}
    """
    return _demographic_parity(
        "difference",
        y_true,
        y_pred,
        sensitive_features,
        method,
        labels,
        class_agg,
        weight=sample_weight,
        size=min_group_size,
    )


def demographic_parity_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    labels=None,
    class_agg="worst_case",
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Demographic parity ratio of multiclass predictions, one class vs the rest.

    For each class ``c``, fairlearn's ``demographic_parity_ratio`` on
    ``y_pred == c``: the smallest over the largest group selection rate of
    ``c`` (or, with ``method="to_overall"``, the smallest of each group's rate
    over the overall rate, inverted where above one). A class predicted in
    no group gives 0 / 0, which is NaN, as in fairlearn.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (any hashable labels, e.g. race names).
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`; several columns give intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As in fairlearn: between the groups, or between each group and all samples.
    labels : array-like, default=None
        The classes to evaluate; default: every label seen in ``y_true`` or
        ``y_pred``, sorted (age groups by age). ``labels=["Female"]`` gives
        fairlearn's binary metric with ``Female`` as the positive label.
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        How the per-class ratios are combined: their minimum (the worst), or
        their mean, leaving NaN out; None returns them as a Series by class.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples in the selection rates, as in fairlearn.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        1 is parity. NaN when fewer than two groups are left to compare.

    See Also
    --------
    demographic_parity_difference : The same rates compared by their difference.

    Examples
    --------
    >>> from gar_sklearn.metrics import demographic_parity_ratio
    >>> y_pred = ["a", "a", "b", "a", "b", "b"]
    >>> groups = ["x", "x", "x", "y", "y", "y"]
    >>> demographic_parity_ratio(y_pred, y_pred, sensitive_features=groups,
    ...                          class_agg=None, min_group_size=1).to_dict()
    {'a': 0.5, 'b': 0.5}
    """
    return _demographic_parity(
        "ratio",
        y_true,
        y_pred,
        sensitive_features,
        method,
        labels,
        class_agg,
        weight=sample_weight,
        size=min_group_size,
    )


def equalized_odds_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    labels=None,
    agg="worst_case",
    class_agg="worst_case",
    zero_division="warn",
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Equalized odds difference of multiclass predictions, one class vs the rest.

    For each class ``c``, labels and predictions are binarised as "is ``c``"
    and, in each group, the true positive rate ``P(y_pred = c | y_true = c, A = g)``
    and the false positive rate ``P(y_pred = c | y_true != c, A = g)`` are
    computed (weighted). The TPR difference and the FPR difference (between
    groups, or to the overall rates) are combined by ``agg`` exactly as
    fairlearn's ``equalized_odds_difference`` does on the binarised labels;
    the per-class results are then combined by ``class_agg``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (any hashable labels, e.g. race names).
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`; several columns give intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As in fairlearn: between the groups, or between each group and all samples.
    labels : array-like, default=None
        The classes to evaluate; default: every label seen in ``y_true`` or
        ``y_pred``, sorted (age groups by age). ``labels=["Female"]`` gives
        fairlearn's binary metric with ``Female`` as the positive label.
    agg : {"worst_case", "mean"}, default="worst_case"
        Per class: the worse of the TPR and FPR results (larger difference,
        smaller ratio), or their mean, as fairlearn's ``agg``.
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        Across classes: the worst (largest difference, smallest ratio) or the
        mean; None returns a Series per class.
    zero_division : "warn", 0.0, 1.0 or np.nan, default="warn"
        The rate where it is undefined: the TPR of a class absent from a group,
        or the FPR of a group made only of that class. ``"warn"`` uses 0 (as
        fairlearn does; note that it can make a class's difference 1, or its
        ratio 0, just because the class is missing from a group) and warns.
        ``np.nan`` leaves such rates out of the minimum, maximum and means.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples in the rates, as in fairlearn.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        0 is parity. NaN when nothing is defined, or when fewer than two
        groups are left to compare.

    See Also
    --------
    equalized_odds_ratio : The same rates compared by their ratio.
    demographic_parity_difference : Compares prediction rates, whatever the truth.

    Examples
    --------
    >>> from gar_sklearn.metrics import equalized_odds_difference
    >>> y_true = ["a", "a", "b", "a", "a", "b"]
    >>> y_pred = ["a", "b", "b", "a", "a", "b"]
    >>> groups = ["x", "x", "x", "y", "y", "y"]
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=groups,
    ...                           class_agg=None, min_group_size=1).to_dict()
    {'a': 0.5, 'b': 0.5}
    """
    return _equalized_odds(
        "difference",
        y_true,
        y_pred,
        sensitive_features,
        method,
        labels,
        class_agg,
        agg=agg,
        zero_division=zero_division,
        weight=sample_weight,
        size=min_group_size,
    )


def equalized_odds_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    labels=None,
    agg="worst_case",
    class_agg="worst_case",
    zero_division="warn",
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Equalized odds ratio of multiclass predictions, one class vs the rest.

    For each class ``c``, the TPR ratio and the FPR ratio of the binarised
    labels (smallest over largest group rate, or each group against the
    overall rate) are computed as fairlearn's ``equalized_odds_ratio`` does;
    0 / 0 (a rate that is 0 in every group) is NaN, as in fairlearn. With
    ``agg="worst_case"`` the smaller of the two ratios is kept, leaving a NaN
    one out (fairlearn's own result then depends on which of the two is NaN).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (any hashable labels, e.g. race names).
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`; several columns give intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As in fairlearn: between the groups, or between each group and all samples.
    labels : array-like, default=None
        The classes to evaluate; default: every label seen in ``y_true`` or
        ``y_pred``, sorted (age groups by age). ``labels=["Female"]`` gives
        fairlearn's binary metric with ``Female`` as the positive label.
    agg : {"worst_case", "mean"}, default="worst_case"
        Per class: the worse of the TPR and FPR results (larger difference,
        smaller ratio), or their mean, as fairlearn's ``agg``.
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        Across classes: the worst (largest difference, smallest ratio) or the
        mean; None returns a Series per class.
    zero_division : "warn", 0.0, 1.0 or np.nan, default="warn"
        The rate where it is undefined: the TPR of a class absent from a group,
        or the FPR of a group made only of that class. ``"warn"`` uses 0 (as
        fairlearn does; note that it can make a class's difference 1, or its
        ratio 0, just because the class is missing from a group) and warns.
        ``np.nan`` leaves such rates out of the minimum, maximum and means.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples in the rates, as in fairlearn.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        1 is parity. NaN when nothing is defined, or when fewer than two
        groups are left to compare.

    See Also
    --------
    equalized_odds_difference : The same rates compared by their difference.

    Examples
    --------
    >>> from gar_sklearn.metrics import equalized_odds_ratio
    >>> y_true = ["a", "a", "b", "a", "a", "b"]
    >>> y_pred = ["a", "b", "b", "a", "a", "b"]
    >>> groups = ["x", "x", "x", "y", "y", "y"]
    >>> equalized_odds_ratio(y_true, y_pred, sensitive_features=groups,
    ...                      class_agg=None, min_group_size=1).to_dict()
    {'a': 0.5, 'b': 0.0}
    """
    return _equalized_odds(
        "ratio",
        y_true,
        y_pred,
        sensitive_features,
        method,
        labels,
        class_agg,
        agg=agg,
        zero_division=zero_division,
        weight=sample_weight,
        size=min_group_size,
    )
