"""Demographic parity and equalized odds for multiclass labels, one class against the rest."""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning

from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    check_1d,
    check_lengths,
    check_method,
    check_min_group_size,
)

__all__ = ["demographic_parity_difference", "equalized_odds_difference"]

_AGGS = ("worst_case", "mean")


def _classes(y_true, y_pred, labels):
    if labels is not None:
        classes = check_1d(labels, "labels").astype(object)
        if not len(classes):
            raise ValueError("The 'labels' parameter is empty; give at least one class.")
        return classes
    classes = pd.unique(np.concatenate([y_true.astype(object), y_pred.astype(object)]))
    try:
        return np.asarray(sorted(classes), dtype=object)
    except TypeError:  # labels of mixed types: order of first appearance
        return np.asarray(classes, dtype=object)


def _check_agg(value, param, allow_none=False):
    if value in _AGGS or (allow_none and value is None):
        return value
    allowed = list(_AGGS) + ([None] if allow_none else [])
    raise ValueError(f"The '{param}' parameter must be one of {allowed}. Got {value!r} instead.")


def _one_hot(values, classes):
    return values.astype(object)[:, None] == classes[None, :]


def _group_sums(codes, n_groups, indicator):
    out = np.zeros((n_groups, indicator.shape[1]))
    np.add.at(out, codes, indicator)
    return out


def _disparity(values, overall, method):
    """Per column: largest minus smallest row (NaN skipped), or largest gap to ``overall``."""
    if values.shape[0] == 0:  # no eligible group
        return np.full(values.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        if method == "between_groups":
            return np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
        return np.nanmax(np.abs(values - overall), axis=0)


def _aggregate(per_class, classes, class_agg):
    if class_agg is None:
        return pd.Series(per_class, index=pd.Index(classes, name="class"))
    if np.isnan(per_class).all():
        return float("nan")
    reduce = np.nanmax if class_agg == "worst_case" else np.nanmean
    return float(reduce(per_class))


def _prepare(y_true, y_pred, sensitive_features, method, labels, class_agg, min_group_size):
    y_true = check_1d(y_true, "y_true")
    y_pred = check_1d(y_pred, "y_pred")
    n = check_lengths(y_true=y_true, y_pred=y_pred)
    groups = Groups.from_features(sensitive_features, n)
    check_method(method)
    _check_agg(class_agg, "class_agg", allow_none=True)
    min_group_size = check_min_group_size(min_group_size)
    eligible = ~groups.warn_small(min_group_size, stacklevel=4)
    return y_true, y_pred, groups, _classes(y_true, y_pred, labels), eligible


def demographic_parity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    labels=None,
    class_agg="worst_case",
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Demographic parity difference of multiclass predictions, one class vs the rest.

    For each class ``c`` the prediction is binarised as "predicted ``c``", and
    the selection rate of ``c`` in group ``g`` is the fraction of the group's
    samples predicted ``c``: ``P(y_pred = c | A = g)``. The difference for
    ``c`` is then exactly fairlearn's ``demographic_parity_difference`` on
    ``y_pred == c`` (largest minus smallest group selection rate, or the
    largest gap to the overall selection rate). The per-class differences are
    aggregated by ``class_agg``. ``y_true`` only supplies classes.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (any hashable labels, e.g. race names).
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`; several columns give intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As in fairlearn.
    labels : array-like, default=None
        The classes to evaluate; default: every label seen in ``y_true`` or
        ``y_pred``, sorted. ``labels=["Female"]`` gives fairlearn's binary
        metric with ``Female`` as the positive label.
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        How the per-class differences are combined: their maximum, or their
        mean; None returns them as a Series indexed by class.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        0 is parity. NaN when no group is eligible.

    See Also
    --------
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
    y_true, y_pred, groups, classes, eligible = _prepare(
        y_true, y_pred, sensitive_features, method, labels, class_agg, min_group_size
    )
    hit = _one_hot(y_pred, classes)
    rates = _group_sums(groups.codes, len(groups.sizes), hit) / groups.sizes[:, None]
    per_class = _disparity(rates[eligible], hit.mean(axis=0), method)
    return _aggregate(per_class, classes, class_agg)


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


def _rates(hits, totals, zero_division):
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = hits / totals
    fill = 0.0 if zero_division == "warn" else zero_division
    return np.where(totals == 0, fill, rates)


def _warn_undefined(what, totals, classes, labels):
    rows, cols = np.nonzero(totals == 0)
    if len(rows):
        pairs = ", ".join(
            f"class {classes[c]!r} in '{labels[r]}'" for r, c in list(zip(rows, cols))[:5]
        )
        warnings.warn(
            f"The {what} is undefined for {len(rows)} (class, group) pair(s) with no "
            f"samples to measure it on ({pairs}{' ...' if len(rows) > 5 else ''}); it is "
            "set to 0, as in fairlearn. Pass zero_division=np.nan to leave such rates out.",
            UndefinedMetricWarning,
            stacklevel=3,
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
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """Equalized odds difference of multiclass predictions, one class vs the rest.

    For each class ``c``, labels and predictions are binarised as "is ``c``"
    and, in each group, the true positive rate ``P(y_pred = c | y_true = c, A = g)``
    and the false positive rate ``P(y_pred = c | y_true != c, A = g)`` are
    computed. The TPR difference and the FPR difference (between groups, or to
    the overall rates) are combined by ``agg`` exactly as fairlearn's
    ``equalized_odds_difference`` does on the binarised labels; the per-class
    results are then combined by ``class_agg``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    method : {"between_groups", "to_overall"}, default="between_groups"
    labels : array-like, default=None
        The classes to evaluate; default: every label in ``y_true`` or
        ``y_pred``, sorted.
    agg : {"worst_case", "mean"}, default="worst_case"
        Per class: the larger of the TPR and FPR differences, or their mean
        (fairlearn's ``agg``).
    class_agg : {"worst_case", "mean"} or None, default="worst_case"
        Across classes: the maximum or the mean; None returns a Series per class.
    zero_division : "warn", 0.0, 1.0 or np.nan, default="warn"
        The rate where it is undefined: the TPR of a class absent from a group,
        or the FPR of a group made only of that class. ``"warn"`` uses 0 (as
        fairlearn does; note that it can make the difference 1 just because a
        class is missing from a group) and warns. ``np.nan`` leaves such rates
        out of the minimum, maximum and means.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).

    Returns
    -------
    float or pandas.Series
        0 is parity. NaN when nothing is defined.

    See Also
    --------
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
    _check_agg(agg, "agg")
    zero_division = _check_zero_division(zero_division)
    y_true, y_pred, groups, classes, eligible = _prepare(
        y_true, y_pred, sensitive_features, method, labels, class_agg, min_group_size
    )
    pos = _one_hot(y_true, classes)
    hit = _one_hot(y_pred, classes)
    n_groups = len(groups.sizes)
    tp = _group_sums(groups.codes, n_groups, pos & hit)
    fp = _group_sums(groups.codes, n_groups, ~pos & hit)
    n_pos = _group_sums(groups.codes, n_groups, pos)
    n_neg = groups.sizes[:, None] - n_pos
    all_pos, all_neg = pos.sum(axis=0), (~pos).sum(axis=0)
    if zero_division == "warn":
        labels_ = [label for label, ok in zip(groups.labels, eligible) if ok]
        if method == "to_overall":
            labels_ = labels_ + ["all samples"]
            _warn_undefined(
                "true positive rate", np.vstack([n_pos[eligible], all_pos]), classes, labels_
            )
            _warn_undefined(
                "false positive rate", np.vstack([n_neg[eligible], all_neg]), classes, labels_
            )
        else:
            _warn_undefined("true positive rate", n_pos[eligible], classes, labels_)
            _warn_undefined("false positive rate", n_neg[eligible], classes, labels_)
    tpr = _rates(tp, n_pos, zero_division)[eligible]
    fpr = _rates(fp, n_neg, zero_division)[eligible]
    tpr_all = _rates((pos & hit).sum(axis=0), all_pos, zero_division)
    fpr_all = _rates((~pos & hit).sum(axis=0), all_neg, zero_division)
    both = np.vstack([_disparity(tpr, tpr_all, method), _disparity(fpr, fpr_all, method)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class = np.fmax(both[0], both[1]) if agg == "worst_case" else np.nanmean(both, 0)
    return _aggregate(per_class, classes, class_agg)
