"""Any metric per group of a sensitive feature, and its disparities across groups."""

import functools
import numbers

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, mean_absolute_error

from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    check_1d,
    check_lengths,
    check_method,
    check_min_group_size,
    check_sample_weight,
    sensitive_frame,
)

__all__ = [
    "GroupMetrics",
    "accuracy_by_group",
    "group_difference",
    "group_ratio",
    "group_sizes",
    "mae_by_group",
    "metric_by_group",
    "worst_group_value",
]

# Metrics that may be named by a string, and whether a greater value is better.
_METRICS = {
    "accuracy": (accuracy_score, True),
    "balanced_accuracy": (balanced_accuracy_score, True),
    "mae": (mean_absolute_error, False),
    "mean_absolute_error": (mean_absolute_error, False),
}


def resolve_metric(metric, param="metric"):
    """``(name, callable, greater_is_better)`` for a metric name or callable."""
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(
                f"The '{param}' parameter must be a callable or one of "
                f"{sorted(_METRICS)}. Got {metric!r} instead."
            )
        func, greater = _METRICS[metric]
        return metric, func, greater
    if not callable(metric):
        raise TypeError(
            f"The '{param}' parameter must be a callable metric(y_true, y_pred) or one of "
            f"{sorted(_METRICS)}. Got {type(metric).__name__} instead."
        )
    base = metric.func if isinstance(metric, functools.partial) else metric
    name = getattr(base, "__name__", type(base).__name__)
    greater = not any(base is func for func, g in _METRICS.values() if not g)
    return name, metric, greater


def _apply(func, name, y_true, y_pred, positions=None, label=None, sample_weight=None):
    """``func`` on the samples at ``positions`` (all when None), weighted as fairlearn does."""
    yt = y_true if positions is None else y_true[positions]
    yp = y_pred if positions is None else y_pred[positions]
    where = "all samples" if label is None else f"group '{label}' ({len(yt)} samples)"
    kwargs = {}
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight if positions is None else sample_weight[positions]
    try:
        value = func(yt, yp, **kwargs)
    except Exception as exc:
        raise ValueError(f"The metric '{name}' failed on {where}: {exc}") from exc
    if not (np.isscalar(value) or (isinstance(value, np.ndarray) and value.ndim == 0)):
        raise ValueError(
            f"The metric '{name}' must return a scalar; got {type(value).__name__} on {where}."
        )
    return float(value) if isinstance(value, (numbers.Real, np.number, np.ndarray)) else value


class GroupMetrics:
    """Metrics overall and for each group of one or several sensitive features.

    In the spirit of fairlearn's ``MetricFrame``, with the same numbers for
    ``by_group``, ``difference`` and ``ratio`` when no group is flagged, but
    with no fairlearn dependency and with small groups flagged: groups with
    fewer than ``min_group_size`` samples keep their values in ``by_group``
    and are marked in ``small``, but are left out of ``group_min``,
    ``group_max``, ``difference``, ``ratio`` and ``worst`` (a
    :class:`SmallGroupWarning` names them). ``overall`` always uses every sample.

    Parameters
    ----------
    metrics : callable, str or dict of str to (callable or str)
        ``metric(y_true, y_pred) -> scalar`` (any scikit-learn metric; use
        :func:`functools.partial` to fix its options), or one of
        ``"accuracy"``, ``"balanced_accuracy"``, ``"mae"`` /
        ``"mean_absolute_error"``. A dict computes several at once.
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (or values); pandas indexes are ignored:
        samples are matched by position.
    sensitive_features : array-like, Series, DataFrame or dict
        One group label per sample. A DataFrame (or dict, or 2-D array) of
        several columns gives intersectional groups, one per observed
        combination; combinations that never occur are not groups. Missing
        values (None, NaN) raise a ValueError.
    min_group_size : int, default=30
        Groups with fewer samples are flagged and left out of the aggregates
        across groups. 0 or 1 flags none.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to each metric as ``sample_weight=`` (its group's part for a
        group), as fairlearn's ``MetricFrame(sample_params={"sample_weight": w})``
        does. ``min_group_size`` still counts samples, not weights.

    Attributes
    ----------
    overall : float or pandas.Series
        The metric(s) on all samples (a Series indexed by metric name for a dict).
    by_group : pandas.Series or pandas.DataFrame
        One row per group, indexed by group value, or by a MultiIndex of
        tuples such as ``("White", "Male")`` for several features; one column
        per metric for a dict.
    sizes : pandas.Series
        Number of samples per group.
    small : pandas.Series of bool
        Whether the group has fewer than ``min_group_size`` samples.
    sensitive_names : list of str
        The sensitive feature names (from the Series name or DataFrame
        columns, else ``sensitive_feature_<i>``).
    labels : list of str
        The groups as text, ``"White"`` or ``"White, Male"``, in ``by_group`` order.
    metric_names : list of str
        The metric names (the dict's keys, the string given, or the function's name).
    min_group_size : int

    See Also
    --------
    bootstrap_by_group : Confidence intervals for the per-group values.
    summary_by_group : Accuracy of several attributes and the age MAE per group.
    demographic_parity_difference, equalized_odds_difference : Multiclass parity.

    Examples
    --------
    >>> from gar_sklearn.metrics import GroupMetrics
    >>> gm = GroupMetrics("accuracy", ["a", "a", "b", "b"], ["a", "b", "b", "b"],
    ...                   sensitive_features=["x", "x", "y", "y"], min_group_size=1)
    >>> gm.overall
    0.75
    >>> gm.by_group.to_dict()
    {'x': 0.5, 'y': 1.0}
    >>> gm.difference(), gm.ratio()
    (0.5, 0.5)
    """

    def __init__(
        self,
        metrics,
        y_true,
        y_pred,
        *,
        sensitive_features,
        min_group_size=DEFAULT_MIN_GROUP_SIZE,
        sample_weight=None,
    ):
        self._single = not isinstance(metrics, dict)
        specs = {None: metrics} if self._single else metrics
        if not specs:
            raise ValueError("The 'metrics' parameter is an empty dict; give at least one metric.")
        resolved = {}
        for key, metric in specs.items():
            name, func, greater = resolve_metric(metric, "metrics")
            resolved[name if key is None else key] = (func, greater)
        self.metric_names = list(resolved)
        y_true = check_1d(y_true, "y_true")
        y_pred = check_1d(y_pred, "y_pred")
        n = check_lengths(y_true=y_true, y_pred=y_pred)
        groups = Groups.from_features(sensitive_features, n)
        weight = check_sample_weight(sample_weight, n)
        self.min_group_size = check_min_group_size(min_group_size)
        self._groups = groups
        self.sensitive_names = groups.names
        self.labels = groups.labels
        self.sizes = pd.Series(groups.sizes, index=groups.index, name="n")
        self.small = pd.Series(
            groups.small_mask(self.min_group_size), index=groups.index, name="small"
        )
        groups.warn_small(self.min_group_size)
        self._warned = False

        overall = {}
        by_group = {}
        for name, (func, _) in resolved.items():
            overall[name] = _apply(func, name, y_true, y_pred, sample_weight=weight)
            by_group[name] = [
                _apply(func, name, y_true, y_pred, pos, label, weight)
                for pos, label in zip(groups.positions, groups.labels)
            ]
        self._overall = pd.Series(overall, dtype=object).infer_objects()
        self._by_group = pd.DataFrame(by_group, index=groups.index)

    @property
    def overall(self):
        return self._out(self._overall)

    @property
    def by_group(self):
        return self._by_group.iloc[:, 0] if self._single else self._by_group

    def _out(self, series):
        if not self._single:
            return series
        value = series.iloc[0]
        return float(value) if isinstance(value, (numbers.Real, np.number)) else value

    def _eligible(self):
        return self._by_group[~self.small.to_numpy()]

    def _compared(self, result, stacklevel=4):
        """``result`` where at least two eligible groups have a value, else NaN (warned)."""
        if not self._warned and not self._groups.warn_too_few(self.min_group_size, stacklevel):
            self._warned = True
        enough = self._eligible().notna().sum() >= 2
        return result.astype(float).where(enough)

    def group_min(self):
        """Smallest value over the groups that are not flagged (NaN if none)."""
        return self._out(self._eligible().min())

    def group_max(self):
        """Largest value over the groups that are not flagged (NaN if none)."""
        return self._out(self._eligible().max())

    def worst(self, greater_is_better=True):
        """The worst value over unflagged groups: ``group_min`` or ``group_max``.

        Parameters
        ----------
        greater_is_better : bool, default=True
            True for scores such as accuracy, False for losses such as MAE.

        Returns
        -------
        float or pandas.Series
            NaN where fewer than two unflagged groups have a value: the worst
            of one group would claim a comparison that was not made.
        """
        eligible = self._eligible()
        result = eligible.min() if greater_is_better else eligible.max()
        return self._out(self._compared(result))

    def difference(self, method="between_groups"):
        """Largest absolute gap, over unflagged groups.

        Parameters
        ----------
        method : {"between_groups", "to_overall"}, default="between_groups"
            ``"between_groups"``: largest minus smallest group value.
            ``"to_overall"``: the largest ``|group value - overall value|``.

        Returns
        -------
        float or pandas.Series
            NaN where fewer than two unflagged groups have a value.
        """
        check_method(method)
        eligible = self._eligible()
        if method == "between_groups":
            result = eligible.max() - eligible.min()
        else:
            result = (eligible - self._overall).abs().max()
        return self._out(self._compared(result))

    def ratio(self, method="between_groups"):
        """Smallest ratio (at most 1), over unflagged groups.

        Parameters
        ----------
        method : {"between_groups", "to_overall"}, default="between_groups"
            ``"between_groups"``: smallest over largest group value.
            ``"to_overall"``: the smallest of ``group / overall`` with each
            ratio above one inverted, as in fairlearn.

        Returns
        -------
        float or pandas.Series
            1 is parity; NaN where fewer than two unflagged groups have a
            value, or for 0 / 0 (as fairlearn).
        """
        check_method(method)
        eligible = self._eligible().astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "between_groups":
                result = eligible.min() / eligible.max()
            else:
                ratios = eligible / self._overall.astype(float)
                ratios = ratios.where(~(ratios > 1), 1 / ratios)
                result = ratios.min()
        return self._out(self._compared(result))

    def to_frame(self):
        """``by_group`` with the group sizes and flags: columns metrics..., n, small."""
        return pd.concat([self._by_group, self.sizes, self.small], axis=1)

    def __repr__(self):
        what = self.metric_names[0] if self._single else self.metric_names
        return (
            f"GroupMetrics({what!r}, sensitive={self.sensitive_names}, "
            f"n_groups={len(self.sizes)}, n_small={int(self.small.sum())})"
        )


def metric_by_group(metric, y_true, y_pred, *, sensitive_features, sample_weight=None):
    """Any metric on each group of the sensitive feature(s).

    Parameters
    ----------
    metric : callable or str
        ``metric(y_true, y_pred) -> scalar`` or ``"accuracy"``,
        ``"balanced_accuracy"``, ``"mae"``.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    pandas.Series
        One value per group (every group, small or not), indexed as
        :attr:`GroupMetrics.by_group`.

    Examples
    --------
    >>> from functools import partial
    >>> from sklearn.metrics import recall_score
    >>> from gar_sklearn.metrics import metric_by_group
    >>> metric_by_group(partial(recall_score, pos_label="F"), ["F", "F", "M", "F"],
    ...                 ["F", "M", "M", "F"], sensitive_features=[1, 1, 2, 2]).to_dict()
    {1: 0.5, 2: 1.0}
    """
    resolve_metric(metric)
    return GroupMetrics(
        metric,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        min_group_size=0,
        sample_weight=sample_weight,
    ).by_group


def accuracy_by_group(y_true, y_pred, *, sensitive_features, sample_weight=None):
    """Accuracy (fraction of exact matches) on each group.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    pandas.Series

    Examples
    --------
    >>> from gar_sklearn.metrics import accuracy_by_group
    >>> accuracy_by_group(["M", "F", "F"], ["M", "M", "F"],
    ...                   sensitive_features=["White", "White", "Black"]).to_dict()
    {'Black': 1.0, 'White': 0.5}
    """
    return metric_by_group(
        accuracy_score,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
    )


def mae_by_group(y_true, y_pred, *, sensitive_features, sample_weight=None):
    """Mean absolute error (for example of estimated ages, in years) on each group.

    Parameters
    ----------
    y_true, y_pred : array-like of float of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    pandas.Series

    Examples
    --------
    >>> from gar_sklearn.metrics import mae_by_group
    >>> mae_by_group([20, 30, 40], [22, 30, 35], sensitive_features=["a", "a", "b"]).to_dict()
    {'a': 1.0, 'b': 5.0}
    """
    return metric_by_group(
        mean_absolute_error,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
    )


def group_sizes(sensitive_features):
    """Number of samples in each group.

    Parameters
    ----------
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.

    Returns
    -------
    pandas.Series
        Named ``"n"``, indexed as :attr:`GroupMetrics.by_group`.

    Examples
    --------
    >>> import pandas as pd
    >>> from gar_sklearn.metrics import group_sizes
    >>> sf = pd.DataFrame({"race": ["White", "White", "Black"], "gender": ["F", "M", "F"]})
    >>> group_sizes(sf).to_dict()
    {('Black', 'F'): 1, ('White', 'F'): 1, ('White', 'M'): 1}
    """
    groups = Groups(sensitive_frame(sensitive_features))
    if not len(groups.codes):
        raise ValueError("sensitive_features is empty: the metrics need at least one sample.")
    return pd.Series(groups.sizes, index=groups.index, name="n")


def group_difference(
    metric,
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    sample_weight=None,
):
    """Largest gap in a metric between groups, or between a group and all samples.

    Parameters
    ----------
    metric : callable or str
        See :class:`GroupMetrics`.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
    method : {"between_groups", "to_overall"}, default="between_groups"
        Largest minus smallest group value, or the largest absolute gap
        between a group and the overall value.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    float
        NaN where fewer than two groups are left to compare.

    Examples
    --------
    >>> from gar_sklearn.metrics import group_difference
    >>> group_difference("accuracy", [1, 1, 0, 0], [1, 0, 0, 0],
    ...                  sensitive_features=["a", "a", "b", "b"], min_group_size=1)
    0.5
    """
    resolve_metric(metric)
    return GroupMetrics(
        metric,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        min_group_size=min_group_size,
        sample_weight=sample_weight,
    ).difference(method)


def group_ratio(
    metric,
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    sample_weight=None,
):
    """Smallest ratio of a metric between groups (smallest over largest), at most 1.

    Parameters
    ----------
    metric : callable or str
        See :class:`GroupMetrics`.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
    method : {"between_groups", "to_overall"}, default="between_groups"
        Smallest over largest group value, or the smallest ratio between a
        group and the overall value (inverted where above one).
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    float
        NaN where fewer than two groups are left to compare, or for 0 / 0.

    Examples
    --------
    >>> from gar_sklearn.metrics import group_ratio
    >>> group_ratio("accuracy", [1, 1, 0, 0], [1, 0, 0, 0],
    ...             sensitive_features=["a", "a", "b", "b"], min_group_size=1)
    0.5
    """
    resolve_metric(metric)
    return GroupMetrics(
        metric,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        min_group_size=min_group_size,
        sample_weight=sample_weight,
    ).ratio(method)


def worst_group_value(
    metric,
    y_true,
    y_pred,
    *,
    sensitive_features,
    greater_is_better=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    sample_weight=None,
):
    """The metric on the worst-off group.

    Parameters
    ----------
    metric : callable or str
        See :class:`GroupMetrics`.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
    greater_is_better : bool, default=None
        Whether the worst group has the smallest (True) or the largest (False)
        value. None: False for ``"mae"`` and scikit-learn's
        ``mean_absolute_error``, True otherwise.
    min_group_size : int, default=30
        Smaller groups are left out (with a :class:`SmallGroupWarning`).
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the metric on each group, as fairlearn does.

    Returns
    -------
    float
        NaN where fewer than two groups reach ``min_group_size``: the worst
        of a single group compares nothing.

    Examples
    --------
    >>> from gar_sklearn.metrics import worst_group_value
    >>> worst_group_value("mae", [20, 30, 40], [22, 30, 35],
    ...                   sensitive_features=["a", "a", "b"], min_group_size=1)
    5.0
    """
    _, _, inferred = resolve_metric(metric)
    greater = inferred if greater_is_better is None else bool(greater_is_better)
    return GroupMetrics(
        metric,
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        min_group_size=min_group_size,
        sample_weight=sample_weight,
    ).worst(greater)
