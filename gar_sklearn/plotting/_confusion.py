"""Confusion matrices per attribute, through scikit-learn's ConfusionMatrixDisplay."""

import numpy as np
import pandas as pd

from ._matplotlib import pyplot

__all__ = ["plot_confusion_matrices", "plot_confusion_matrix"]


def _labels(y_true, y_pred):
    values = pd.unique(
        np.concatenate([np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)])
    )
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def plot_confusion_matrix(
    y_true, y_pred, *, labels=None, normalize="true", ax=None, title=None, **kwargs
):
    """Confusion matrix of one attribute.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, default=None
        Class order; default: every label seen, sorted (age groups such as
        "3-9" sort as text: pass the estimator's ``classes_`` for age order).
    normalize : {"true", "pred", "all"} or None, default="true"
        As in scikit-learn; "true" shows each row as recall per class.
    ax : matplotlib Axes, default=None
    title : str, default=None
    **kwargs
        Passed to ``ConfusionMatrixDisplay.from_predictions`` (``cmap``,
        ``colorbar``, ``values_format``, ``xticks_rotation``...).

    Returns
    -------
    sklearn.metrics.ConfusionMatrixDisplay
        With ``ax_``, ``figure_`` and ``confusion_matrix``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from gar_sklearn.plotting import plot_confusion_matrix
    >>> disp = plot_confusion_matrix(["F", "F", "M"], ["F", "M", "M"])
    >>> disp.confusion_matrix.tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    pyplot("plot_confusion_matrix")
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = _labels(y_true, y_pred) if labels is None else list(labels)
    kwargs.setdefault("values_format", ".2f" if normalize else "d")
    kwargs.setdefault("colorbar", False)
    if normalize:  # one colour scale for every matrix, so panels compare
        kwargs.setdefault("im_kw", {"vmin": 0.0, "vmax": 1.0})
    kwargs.setdefault("xticks_rotation", "vertical" if len(labels) > 4 else "horizontal")
    disp = ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true, dtype=object),
        np.asarray(y_pred, dtype=object),
        labels=labels,
        display_labels=[str(c) for c in labels],
        normalize=normalize,
        ax=ax,
        **kwargs,
    )
    if title is not None:
        disp.ax_.set_title(title)
    return disp


def plot_confusion_matrices(y_true, y_pred, *, labels=None, normalize="true", ax=None, **kwargs):
    """One confusion matrix per attribute (gender, age, race), side by side.

    Parameters
    ----------
    y_true, y_pred : DataFrame
        One column per attribute, the same columns in both.
    labels : dict of str to array-like, default=None
        Class order per attribute (e.g. the age groups in age order).
    normalize : {"true", "pred", "all"} or None, default="true"
    ax : sequence of matplotlib Axes, default=None
        One per attribute; a new figure with one row of panels when None.
    **kwargs
        Passed to :func:`plot_confusion_matrix`.

    Returns
    -------
    dict of str to sklearn.metrics.ConfusionMatrixDisplay

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from gar_sklearn.plotting import plot_confusion_matrices
    >>> y = pd.DataFrame({"gender": ["F", "M"], "race": ["A", "B"]})
    >>> sorted(plot_confusion_matrices(y, y))
    ['gender', 'race']
    """
    if not isinstance(y_true, pd.DataFrame) or not isinstance(y_pred, pd.DataFrame):
        raise TypeError(
            "plot_confusion_matrices needs y_true and y_pred as DataFrames with "
            "one column per attribute; use plot_confusion_matrix for one attribute."
        )
    attributes = list(y_true.columns)
    if list(y_pred.columns) != attributes:
        raise ValueError(
            f"y_true and y_pred must have the same columns; got {attributes} and "
            f"{list(y_pred.columns)}."
        )
    if ax is None:
        plt = pyplot("plot_confusion_matrices")
        _, axes = plt.subplots(
            1,
            len(attributes),
            figsize=(4.5 * len(attributes), 4.5),
            layout="constrained",
            squeeze=False,
        )
        ax = axes[0]
    ax = list(np.ravel(ax)) if not hasattr(ax, "plot") else [ax]
    if len(ax) != len(attributes):
        raise ValueError(
            f"The 'ax' parameter must hold one Axes per attribute "
            f"({len(attributes)}). Got {len(ax)} instead."
        )
    labels = labels or {}
    return {
        attr: plot_confusion_matrix(
            y_true[attr],
            y_pred[attr],
            labels=labels.get(attr),
            normalize=normalize,
            ax=a,
            title=attr,
            **kwargs,
        )
        for attr, a in zip(attributes, ax)
    }
