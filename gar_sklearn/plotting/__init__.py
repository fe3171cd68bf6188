"""Plots of per-group metrics, confusion matrices and age errors.

matplotlib is optional (``pip install 'gar-sklearn[plot]'``): it is imported
when a plot is drawn, so this package imports without it.
"""

from ._age_error import plot_age_error
from ._confusion import plot_confusion_matrices, plot_confusion_matrix
from ._group_bars import plot_group_metric

__all__ = [
    "plot_age_error",
    "plot_confusion_matrices",
    "plot_confusion_matrix",
    "plot_group_metric",
]
