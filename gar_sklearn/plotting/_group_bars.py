"""Bars of a metric per group, with bootstrap confidence intervals."""

from ..metrics import bootstrap_by_group
from ..metrics._group_metrics import resolve_metric
from ..metrics._validation import DEFAULT_MIN_GROUP_SIZE, check_1d, group_label
from ._matplotlib import new_axes

__all__ = ["plot_group_metric"]


def plot_group_metric(
    y_true,
    y_pred,
    *,
    sensitive_features,
    metric="accuracy",
    n_boot=1000,
    confidence_level=0.95,
    random_state=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    ax=None,
):
    """Bar chart of a metric (accuracy by default) per group, with confidence intervals.

    One bar per group (bar height: the metric on the group), error bars from
    :func:`~gar_sklearn.metrics.bootstrap_by_group` (percentile intervals,
    each group resampled on its own), a dashed line at the value on all
    samples; groups below ``min_group_size`` are hatched and faded.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`~gar_sklearn.metrics.GroupMetrics`; intersectional groups
        are labelled ``"White, Male"``.
    metric : str or callable, default="accuracy"
    n_boot : int, default=1000
    confidence_level : float, default=0.95
    random_state : int, RandomState instance or None, default=None
    min_group_size : int, default=30
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

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
    )
    overall = float(func(check_1d(y_true, "y_true"), check_1d(y_pred, "y_pred")))
    ax = new_axes("plot_group_metric", ax, (max(5.0, 0.9 * len(ci) + 4.0), 4.0))
    x = range(len(ci))
    values = ci["value"].to_numpy()
    yerr = [values - ci["lower"].to_numpy(), ci["upper"].to_numpy() - values]
    bars = ax.bar(
        x,
        values,
        yerr=yerr,
        capsize=4,
        color="C0",
        ecolor="0.2",
        label=f"{name} ({confidence_level:.0%} bootstrap CI)",
    )
    small = ci["small"].to_numpy()
    for bar, is_small in zip(bars, small):
        if is_small:
            bar.set_hatch("//")
            bar.set_alpha(0.45)
    ax.axhline(overall, color="k", linestyle="--", linewidth=1, label=f"all samples: {overall:.3f}")
    labels = [f"{group_label(k)}\n(n={n})" for k, n in zip(ci.index, ci["n"])]
    ax.set_xticks(
        list(x), labels, rotation=45 if len(ci) > 6 else 0, ha="right" if len(ci) > 6 else "center"
    )
    ax.set_ylabel(name)
    ax.set_title(f"{name} by {' x '.join(str(n) for n in ci.index.names)}")
    handles, texts = ax.get_legend_handles_labels()
    if small.any():
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="C0", alpha=0.45, hatch="//"))
        texts.append(f"fewer than {min_group_size} samples")
    # Outside the axes: bars of accuracies near 1 leave no free corner inside.
    ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax
