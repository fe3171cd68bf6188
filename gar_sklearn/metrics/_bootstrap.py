"""Percentile bootstrap confidence intervals for a metric on each group."""

import numbers

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.utils import check_random_state

from ._group_metrics import _apply, resolve_metric
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    check_1d,
    check_lengths,
    check_min_group_size,
    check_sample_weight,
)

__all__ = ["bootstrap_by_group"]

# Resampled indices are drawn this many at a time, to bound memory on large groups.
_CHUNK = 2_000_000


def _per_sample_loss(func, y_true, y_pred):
    """Per-sample values whose mean is the metric, for the metrics that have them."""
    if func is accuracy_score:
        return (y_true == y_pred).astype(float)
    if func is mean_absolute_error:
        return np.abs(y_true.astype(float) - y_pred.astype(float))
    return None


def _draws(rng, n, n_boot):
    """Yield blocks of bootstrap index rows, each row ``n`` draws from ``range(n)``."""
    rows = max(1, _CHUNK // n)
    for start in range(0, n_boot, rows):
        yield rng.randint(0, n, size=(min(rows, n_boot - start), n))


def bootstrap_by_group(
    metric,
    y_true,
    y_pred,
    *,
    sensitive_features,
    n_boot=1000,
    confidence_level=0.95,
    random_state=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    sample_weight=None,
):
    """Percentile bootstrap confidence interval of a metric on each group.

    Each group is resampled on its own (with replacement, keeping its size),
    ``n_boot`` times, and the metric is recomputed on each resample; the
    interval is given by the ``(1 - confidence_level) / 2`` and
    ``(1 + confidence_level) / 2`` quantiles of these values (numpy's default
    linear interpolation). A group of one sample gets an interval of zero
    width: the bootstrap cannot measure its uncertainty, which is one more
    reason it is flagged as small.

    Parameters
    ----------
    metric : callable or str
        See :class:`GroupMetrics`. Accuracy and MAE (given by name or as
        scikit-learn's functions) are computed vectorised; other metrics are
        called once per resample.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    n_boot : int, default=1000
        Number of resamples per group.
    confidence_level : float, default=0.95
        Coverage of the interval, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling; an int gives the same intervals on every call.
    min_group_size : int, default=30
        Groups with fewer samples are flagged in the ``small`` column.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric as ``sample_weight=``: samples are drawn with
        equal chances, and each resample's metric weighs them.

    Returns
    -------
    pandas.DataFrame
        One row per group (indexed as :attr:`GroupMetrics.by_group`) with
        columns ``value`` (the metric on the group), ``lower``, ``upper``,
        ``n`` and ``small``.

    Examples
    --------
    >>> from gar_sklearn.metrics import bootstrap_by_group
    >>> ci = bootstrap_by_group("accuracy", [0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1],
    ...                         sensitive_features=["a", "a", "a", "b", "b", "b"],
    ...                         n_boot=200, random_state=0, min_group_size=1)
    >>> ci[["value", "n"]].to_dict("index")
    {'a': {'value': 0.6666666666666666, 'n': 3}, 'b': {'value': 1.0, 'n': 3}}
    >>> bool((ci["lower"] <= ci["value"]).all() and (ci["value"] <= ci["upper"]).all())
    True
    """
    name, func, _ = resolve_metric(metric)
    y_true = check_1d(y_true, "y_true")
    y_pred = check_1d(y_pred, "y_pred")
    n = check_lengths(y_true=y_true, y_pred=y_pred)
    groups = Groups.from_features(sensitive_features, n)
    if not isinstance(n_boot, numbers.Integral) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"The 'n_boot' parameter must be a positive int. Got {n_boot!r} instead.")
    if not isinstance(confidence_level, numbers.Real) or not 0 < confidence_level < 1:
        raise ValueError(
            "The 'confidence_level' parameter must be a float in (0, 1). "
            f"Got {confidence_level!r} instead."
        )
    weight = check_sample_weight(sample_weight, n)
    min_group_size = check_min_group_size(min_group_size)
    small = groups.warn_small(min_group_size)
    rng = check_random_state(random_state)
    per_sample = _per_sample_loss(func, y_true, y_pred)
    alpha = (1 - confidence_level) / 2

    rows = []
    for pos, label in zip(groups.positions, groups.labels):
        value = _apply(func, name, y_true, y_pred, pos, label, weight)
        stats = []
        for idx in _draws(rng, len(pos), n_boot):
            if per_sample is None:
                stats.append(
                    [_apply(func, name, y_true, y_pred, s, label, weight) for s in pos[idx]]
                )
            elif weight is None:
                stats.append(per_sample[pos][idx].mean(axis=1))
            else:
                w = weight[pos][idx]
                with np.errstate(divide="ignore", invalid="ignore"):
                    stats.append((per_sample[pos][idx] * w).sum(axis=1) / w.sum(axis=1))
        lower, upper = np.nanquantile(np.concatenate(stats), [alpha, 1 - alpha])
        rows.append((value, float(lower), float(upper)))
    frame = pd.DataFrame(rows, columns=["value", "lower", "upper"], index=groups.index)
    frame["n"] = groups.sizes
    frame["small"] = small
    return frame
