"""Age estimation error by true age group."""

import numpy as np

from ..metrics._targets import exact_ages
from ..metrics._validation import check_1d, check_lengths
from ._matplotlib import new_axes

__all__ = ["plot_age_error"]


def plot_age_error(age_true, age_pred, *, bins="fairface", ax=None):
    """Mean absolute age error (bars) and mean signed error (dots) per true age group.

    Parameters
    ----------
    age_true : array-like of float of shape (n_samples,)
        Exact ages in years.
    age_pred : array-like of float of shape (n_samples,)
        Estimated ages, e.g. ``estimator.predict_age(X)``.
    bins : "fairface", int or sequence of int, default="fairface"
        The age groups, as :class:`~gar_sklearn.preprocessing.AgeBinner`'s
        ``bins``; groups with no sample are left out.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.patches`` are the MAE bars, in age order; the signed (over- or
        under-estimation) error is the line ``ax.lines`` labelled "mean signed error".

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from gar_sklearn.plotting import plot_age_error
    >>> ax = plot_age_error([5, 7, 25], [8, 6, 20])
    >>> [float(bar.get_height()) for bar in ax.patches]
    [2.0, 5.0]
    """
    from ..preprocessing import AgeBinner

    age_true = exact_ages(check_1d(age_true, "age_true"), "age_true")
    age_pred = np.asarray(check_1d(age_pred, "age_pred"), dtype=float)
    check_lengths(age_true=age_true, age_pred=age_pred)
    binner = AgeBinner(bins=bins).fit(age_true)
    group = binner.transform(age_true)
    present = [c for c in binner.classes_ if np.any(group == c)]
    error = age_pred - age_true
    mae = [np.abs(error[group == c]).mean() for c in present]
    bias = [error[group == c].mean() for c in present]
    counts = [int(np.sum(group == c)) for c in present]

    ax = new_axes("plot_age_error", ax, (max(4.0, 0.8 * len(present) + 2.0), 4.0))
    x = np.arange(len(present))
    ax.bar(x, mae, color="C1", label="mean absolute error")
    ax.plot(x, bias, "o-", color="C0", label="mean signed error (+: too old)")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(present, counts)])
    ax.set_xlabel("true age group")
    ax.set_ylabel("error (years)")
    ax.set_title(f"Age error by true age group (overall MAE {np.abs(error).mean():.2f})")
    ax.legend(fontsize="small")
    return ax
