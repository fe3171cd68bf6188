"""Age estimation error by true age group."""

import numpy as np
import pandas as pd

from ..metrics._fitted import exact_ages
from ..metrics._validation import check_1d, check_lengths
from ._estimator import estimator_ages
from ._matplotlib import new_axes

__all__ = ["AgeErrorDisplay", "plot_age_error"]


class AgeErrorDisplay:
    """Mean absolute age error (bars) and mean signed error (dots) per true age group.

    Build it with :meth:`from_predictions` or :meth:`from_estimator`.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by age group (in age order, groups with no sample left out):
        columns ``mae``, ``bias`` (mean signed error, positive: too old), ``n``.
    overall_mae : float

    Attributes
    ----------
    ax_ : matplotlib Axes
        ``ax_.patches`` are the MAE bars, in age order; the signed error is
        the line labelled "mean signed error".
    figure_ : matplotlib Figure
    """

    def __init__(self, table, overall_mae):
        self.table = table
        self.overall_mae = overall_mae

    def plot(self, ax=None):
        """Draw on ``ax`` (a new figure when None); returns ``self``."""
        t = self.table
        ax = new_axes("plot_age_error", ax, (max(4.0, 0.8 * len(t) + 2.0), 4.0))
        x = np.arange(len(t))
        ax.bar(x, t["mae"], color="C1", label="mean absolute error")
        ax.plot(x, t["bias"], "o-", color="C0", label="mean signed error (+: too old)")
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(t.index, t["n"])])
        ax.set_xlabel("true age group")
        ax.set_ylabel("error (years)")
        ax.set_title(f"Age error by true age group (overall MAE {self.overall_mae:.2f})")
        ax.legend(fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_predictions(cls, age_true, age_pred, *, bins="fairface", ax=None):
        """The errors of estimated ages against exact ages.

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
        AgeErrorDisplay
        """
        from ..preprocessing import AgeBinner

        age_true = exact_ages(check_1d(age_true, "age_true"), "age_true")
        age_pred = np.asarray(check_1d(age_pred, "age_pred"), dtype=float)
        check_lengths(age_true=age_true, age_pred=age_pred)
        binner = AgeBinner(bins=bins).fit(age_true)
        group = binner.transform(age_true)
        error = age_pred - age_true
        present = [c for c in binner.classes_ if np.any(group == c)]
        table = pd.DataFrame(
            {
                "mae": [np.abs(error[group == c]).mean() for c in present],
                "bias": [error[group == c].mean() for c in present],
                "n": [int(np.sum(group == c)) for c in present],
            },
            index=pd.Index(present, name="age group"),
        )
        return cls(table, float(np.abs(error).mean())).plot(ax)

    @classmethod
    def from_estimator(cls, estimator, X, y, **kwargs):
        """The errors of a fitted estimator's ``predict_age(X)`` against y's exact ages.

        Parameters
        ----------
        estimator : fitted estimator, Pipeline or fitted search
            An estimator of this library with ``predict_age``, a Pipeline
            ending in one, or a fitted GridSearchCV over either.
        X : array-like
        y : DataFrame or 2-D array
            With exact ages in years in its ``"age"`` column.
        **kwargs
            ``bins``, ``ax``: see :meth:`from_predictions`.

        Returns
        -------
        AgeErrorDisplay
        """
        return cls.from_predictions(*estimator_ages(estimator, X, y), **kwargs)


def plot_age_error(age_true, age_pred, *, bins="fairface", ax=None):
    """Mean absolute age error (bars) and mean signed error (dots) per true age group.

    :meth:`AgeErrorDisplay.from_predictions`, returning its Axes; see there for
    the parameters. For a fitted estimator, use :meth:`AgeErrorDisplay.from_estimator`.

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
    return AgeErrorDisplay.from_predictions(age_true, age_pred, bins=bins, ax=ax).ax_
