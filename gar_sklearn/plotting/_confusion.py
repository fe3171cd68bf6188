"""Confusion matrices per attribute, through scikit-learn's ConfusionMatrixDisplay."""

import numpy as np
import pandas as pd

from ..metrics._order import sorted_labels
from ._estimator import estimator_labels
from ._matplotlib import pyplot

__all__ = ["ConfusionMatricesDisplay", "plot_confusion_matrices", "plot_confusion_matrix"]

_PANEL = 4.5  # inches of a panel of up to five classes
_CELL = 0.55  # inches per class beyond


def _fit_cell_text(disp):
    """Shrink the cell labels until each fits its cell, so that none overlap."""
    texts = [t for t in np.ravel(disp.text_) if t is not None] if disp.text_ is not None else []
    if not texts:
        return
    fig = disp.figure_
    fig.draw_without_rendering()  # runs the layout, so the cells have their final size
    renderer = fig.canvas.get_renderer()
    to_display = disp.ax_.transData
    cell_w = abs(to_display.transform((1, 0))[0] - to_display.transform((0, 0))[0])
    cell_h = abs(to_display.transform((0, 1))[1] - to_display.transform((0, 0))[1])
    widest = max(t.get_window_extent(renderer).width for t in texts)
    tallest = max(t.get_window_extent(renderer).height for t in texts)
    scale = min(1.0, 0.7 * cell_w / widest, 0.7 * cell_h / tallest)
    if scale < 1.0:
        size = texts[0].get_fontsize() * scale
        for t in texts:
            t.set_fontsize(size)


def plot_confusion_matrix(
    y_true, y_pred, *, labels=None, normalize="true", ax=None, title=None, **kwargs
):
    """Confusion matrix of one attribute.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, default=None
        Class order; default: every label seen, age groups in age order
        ("3-9" before "10-19"), other labels sorted.
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
        With ``ax_``, ``figure_`` and ``confusion_matrix``; the cell labels
        are shrunk to fit their cells when there are many classes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from gar_sklearn.plotting import plot_confusion_matrix
    >>> disp = plot_confusion_matrix(["F", "F", "M"], ["F", "M", "M"])
    >>> disp.confusion_matrix.tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    return _draw_matrix(y_true, y_pred, labels, normalize, ax, title, True, **kwargs)


def _draw_matrix(y_true, y_pred, labels, normalize, ax, title, fit_text, **kwargs):
    """Draw one matrix; the cell labels fitted to their cells if ``fit_text``."""
    plt = pyplot("plot_confusion_matrix")
    from sklearn.metrics import ConfusionMatrixDisplay

    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    labels = sorted_labels(np.concatenate([y_true, y_pred])) if labels is None else list(labels)
    if ax is None:
        side = _PANEL + _CELL * max(0, len(labels) - 5)
        _, ax = plt.subplots(figsize=(side, side), layout="constrained")
    kwargs.setdefault("values_format", ".2f" if normalize else "d")
    kwargs.setdefault("colorbar", False)
    if normalize:  # one colour scale for every matrix, so panels compare
        kwargs.setdefault("im_kw", {"vmin": 0.0, "vmax": 1.0})
    kwargs.setdefault("xticks_rotation", "vertical" if len(labels) > 4 else "horizontal")
    disp = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        display_labels=[str(c) for c in labels],
        normalize=normalize,
        ax=ax,
        **kwargs,
    )
    if title is not None:
        disp.ax_.set_title(title)
    if fit_text:
        _fit_cell_text(disp)
    return disp


def _check_frames(y_true, y_pred):
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
    return attributes


def _panels(attributes, y_true, y_pred, labels, ax):
    if ax is None:
        plt = pyplot("plot_confusion_matrices")
        n_classes = max(
            len(labels[a]) if a in labels else len(sorted_labels(pd.concat([y_true[a], y_pred[a]])))
            for a in attributes
        )
        side = _PANEL + _CELL * max(0, n_classes - 5)
        _, axes = plt.subplots(
            1,
            len(attributes),
            figsize=(side * len(attributes), side),
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
    return ax


class ConfusionMatricesDisplay:
    """One confusion matrix per attribute (gender, age, race), side by side.

    Build it with :meth:`from_predictions` or :meth:`from_estimator`.

    Parameters
    ----------
    displays : dict of str to sklearn.metrics.ConfusionMatrixDisplay
        One drawn display per attribute.

    Attributes
    ----------
    displays : dict of str to sklearn.metrics.ConfusionMatrixDisplay
    figure_ : matplotlib Figure
    """

    def __init__(self, displays):
        self.displays = displays
        self.figure_ = next(iter(displays.values())).figure_

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, labels=None, normalize="true", ax=None, **kwargs):
        """The matrices of labels and predictions, one column per attribute.

        Parameters
        ----------
        y_true, y_pred : DataFrame
            One column per attribute, the same columns in both.
        labels : dict of str to array-like, default=None
            Class order per attribute; default: every label seen, age groups
            in age order.
        normalize : {"true", "pred", "all"} or None, default="true"
        ax : sequence of matplotlib Axes, default=None
            One per attribute; a new figure with one row of panels when None.
        **kwargs
            Passed to :func:`plot_confusion_matrix`.

        Returns
        -------
        ConfusionMatricesDisplay
        """
        attributes = _check_frames(y_true, y_pred)
        labels = labels or {}
        axes = _panels(attributes, y_true, y_pred, labels, ax)
        displays = {
            attr: _draw_matrix(
                y_true[attr], y_pred[attr], labels.get(attr), normalize, a, attr, False, **kwargs
            )
            for attr, a in zip(attributes, axes)
        }
        for disp in displays.values():  # once every panel is drawn and laid out
            _fit_cell_text(disp)
        return cls(displays)

    @classmethod
    def from_estimator(cls, estimator, X, y, **kwargs):
        """The matrices of a fitted estimator on ``(X, y)``.

        ``estimator.predict(X)`` against ``transform_targets(y)`` (the
        targets as it predicts them), for each of its ``attributes_``.

        Parameters
        ----------
        estimator : fitted estimator, Pipeline or fitted search
            An estimator of this library, a Pipeline ending in one, or a
            fitted GridSearchCV over either.
        X : array-like
        y : DataFrame or 2-D array
        **kwargs
            ``labels``, ``normalize``, ``ax`` and more: see :meth:`from_predictions`.

        Returns
        -------
        ConfusionMatricesDisplay
        """
        y_true, y_pred, _ = estimator_labels(estimator, X, y)
        return cls.from_predictions(y_true, y_pred, **kwargs)


def plot_confusion_matrices(y_true, y_pred, *, labels=None, normalize="true", ax=None, **kwargs):
    """One confusion matrix per attribute (gender, age, race), side by side.

    :meth:`ConfusionMatricesDisplay.from_predictions`, returning its displays;
    see there for the parameters. For a fitted estimator, use
    :meth:`ConfusionMatricesDisplay.from_estimator`.

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
    return ConfusionMatricesDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, ax=ax, **kwargs
    ).displays
