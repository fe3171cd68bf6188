"""Bars of a metric per group, with bootstrap confidence intervals."""

import numpy as np
from sklearn.metrics import mean_absolute_error

from ..metrics import bootstrap_by_group
from ..metrics._group_metrics import _apply, resolve_metric
from ..metrics._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    check_1d,
    check_sample_weight,
    group_label,
)
from ._estimator import estimator_ages, estimator_groups, estimator_labels
from ._matplotlib import new_axes

__all__ = ["GroupMetricDisplay", "plot_group_metric"]

_FADED = 0.45  # alpha of the bars of small groups


class GroupMetricDisplay:
    """Bar chart of a metric per group, with bootstrap confidence intervals.

    One bar per group (its height: the metric on the group), error bars from
    :func:`~gar_sklearn.metrics.bootstrap_by_group`, a dashed line at the
    value on all samples. Groups below ``min_group_size`` are hatched and
    faded; an interval of zero width (every resample gave the same value, as
    with a group of one or two samples) is marked with an ``x``, since it
    shows no certainty, only that the bootstrap could not measure any. Build
    it with :meth:`from_predictions` or :meth:`from_estimator`.

    Parameters
    ----------
    intervals : pandas.DataFrame
        :func:`~gar_sklearn.metrics.bootstrap_by_group`'s output.
    overall : float
        The metric on all samples.
    metric_name : str
    confidence_level : float, default=0.95
    min_group_size : int, default=30

    Attributes
    ----------
    ax_ : matplotlib Axes
        ``ax_.patches[:n_groups]`` are the bars in group order.
    figure_ : matplotlib Figure
    bars_ : matplotlib BarContainer
    zero_width_ : ndarray of bool
        The groups whose interval has zero width (marked).
    """

    def __init__(
        self,
        intervals,
        overall,
        metric_name,
        *,
        confidence_level=0.95,
        min_group_size=DEFAULT_MIN_GROUP_SIZE,
    ):
        self.intervals = intervals
        self.overall = overall
        self.metric_name = metric_name
        self.confidence_level = confidence_level
        self.min_group_size = min_group_size

    def plot(self, ax=None):
        """Draw the bars on ``ax`` (a new figure when None); returns ``self``."""
        ci, name = self.intervals, self.metric_name
        ax = new_axes("plot_group_metric", ax, (max(5.0, 0.9 * len(ci) + 4.0), 4.0))
        x = np.arange(len(ci))
        values = ci["value"].to_numpy(dtype=float)
        lower, upper = ci["lower"].to_numpy(dtype=float), ci["upper"].to_numpy(dtype=float)
        small = ci["small"].to_numpy(dtype=bool)
        self.bars_ = ax.bar(
            x, values, yerr=[values - lower, upper - values], capsize=4, color="C0", ecolor="0.2"
        )
        for bar, is_small in zip(self.bars_, small):
            if is_small:
                bar.set_hatch("//")
                bar.set_alpha(_FADED)
        self.zero_width_ = upper - lower == 0
        if self.zero_width_.any():
            ax.plot(x[self.zero_width_], values[self.zero_width_], "x", color="C3", ms=9, mew=2)
        ax.axhline(self.overall, color="k", linestyle="--", linewidth=1)
        labels = [f"{group_label(k)}\n(n={n})" for k, n in zip(ci.index, ci["n"])]
        many = len(ci) > 6
        ax.set_xticks(x, labels, rotation=45 if many else 0, ha="right" if many else "center")
        ax.set_ylabel(name)
        ax.set_title(f"{name} by {' x '.join(str(n) for n in ci.index.names)}")
        # Outside the axes: bars of accuracies near 1 leave no free corner inside.
        ax.legend(*self._legend(small), loc="upper left", bbox_to_anchor=(1.01, 1.0))
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _legend(self, small):
        """One entry per distinct look: never two identical swatches."""
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        ci_text = f"{self.metric_name} ({self.confidence_level:.0%} bootstrap CI)"
        fewer = f"fewer than {self.min_group_size} samples"
        handles, texts = [], []
        if not small.all():
            handles.append(Patch(facecolor="C0"))
            texts.append(ci_text)
        if small.any():
            handles.append(Patch(facecolor="C0", alpha=_FADED, hatch="//"))
            texts.append(fewer if not small.all() else f"{ci_text}, {fewer}")
        handles.append(Line2D([], [], color="k", linestyle="--", linewidth=1))
        texts.append(f"all samples: {self.overall:.3f}")
        if self.zero_width_.any():
            handles.append(Line2D([], [], marker="x", color="C3", ms=9, mew=2, linestyle="none"))
            texts.append("interval of zero width: too few samples to measure it")
        return handles, texts

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_pred,
        *,
        sensitive_features,
        metric="accuracy",
        sample_weight=None,
        n_boot=1000,
        confidence_level=0.95,
        random_state=None,
        min_group_size=DEFAULT_MIN_GROUP_SIZE,
        ax=None,
    ):
        """The bars of a metric of labels and predictions per group.

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_samples,)
        sensitive_features : array-like, Series, DataFrame or dict
            See :class:`~gar_sklearn.metrics.GroupMetrics`; intersectional
            groups are labelled ``"White, Male"``.
        metric : str or callable, default="accuracy"
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the metric (and each resample's metric).
        n_boot : int, default=1000
        confidence_level : float, default=0.95
        random_state : int, RandomState instance or None, default=None
        min_group_size : int, default=30
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        GroupMetricDisplay
        """
        name, func, _ = resolve_metric(metric)
        ci = bootstrap_by_group(
            func,
            y_true,
            y_pred,
            sensitive_features=sensitive_features,
            n_boot=n_boot,
            confidence_level=confidence_level,
            random_state=random_state,
            min_group_size=min_group_size,
            sample_weight=sample_weight,
        )
        yt, yp = check_1d(y_true, "y_true"), check_1d(y_pred, "y_pred")
        overall = _apply(
            func, name, yt, yp, sample_weight=check_sample_weight(sample_weight, len(yt))
        )
        display = cls(
            ci,
            float(overall),
            name,
            confidence_level=confidence_level,
            min_group_size=min_group_size,
        )
        return display.plot(ax)

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, attribute="gender", sensitive="race", metric="accuracy", **kwargs
    ):
        """The bars of a fitted estimator's metric on ``(X, y)`` per group of y.

        Parameters
        ----------
        estimator : fitted estimator, Pipeline or fitted search
            An estimator of this library, a Pipeline ending in one, or a
            fitted GridSearchCV over either.
        X : array-like
            Images.
        y : DataFrame or 2-D array
            The targets, with the sensitive column(s).
        attribute : str, default="gender"
            The predicted attribute, compared with ``transform_targets(y)``.
        sensitive : str or tuple of str, default="race"
            y's column(s) defining the groups (age groups for ``"age"``).
        metric : str or callable, default="accuracy"
            ``"mae"`` compares ``predict_age(X)`` with y's exact ages (``attribute``
            is then ignored).
        **kwargs
            ``sample_weight``, ``n_boot``, ``confidence_level``,
            ``random_state``, ``min_group_size``, ``ax``: see
            :meth:`from_predictions`.

        Returns
        -------
        GroupMetricDisplay
        """
        _, func, _ = resolve_metric(metric)
        y_true, y_pred, raw = estimator_labels(estimator, X, y)
        groups = estimator_groups(sensitive, y_true, raw)
        if func is mean_absolute_error:
            truth, pred = estimator_ages(estimator, X, y)
        else:
            if attribute not in y_pred.columns:
                raise ValueError(
                    f"The 'attribute' parameter must be one of {list(y_pred.columns)}. "
                    f"Got {attribute!r} instead."
                )
            truth, pred = y_true[attribute].to_numpy(), y_pred[attribute].to_numpy()
        return cls.from_predictions(truth, pred, sensitive_features=groups, metric=metric, **kwargs)


def plot_group_metric(
    y_true,
    y_pred,
    *,
    sensitive_features,
    metric="accuracy",
    sample_weight=None,
    n_boot=1000,
    confidence_level=0.95,
    random_state=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    ax=None,
):
    """Bar chart of a metric (accuracy by default) per group, with confidence intervals.

    :meth:`GroupMetricDisplay.from_predictions`, returning its Axes; see there
    for the parameters. For a fitted estimator, use
    :meth:`GroupMetricDisplay.from_estimator`.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.patches[:n_groups]`` are the bars in group order.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from gar_sklearn.plotting import plot_group_metric
    >>> ax = plot_group_metric([0, 1, 1, 0], [0, 1, 0, 0],
    ...                        sensitive_features=["a", "a", "b", "b"],
    ...                        n_boot=50, random_state=0, min_group_size=1)
    >>> [float(bar.get_height()) for bar in ax.patches]
    [1.0, 0.5]
    """
    return GroupMetricDisplay.from_predictions(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        metric=metric,
        sample_weight=sample_weight,
        n_boot=n_boot,
        confidence_level=confidence_level,
        random_state=random_state,
        min_group_size=min_group_size,
        ax=ax,
    ).ax_
