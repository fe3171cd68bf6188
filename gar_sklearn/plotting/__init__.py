"""Plots of per-group metrics, confusion matrices and age errors.

Each plot is a display built, as scikit-learn's are, from predictions
(``Display.from_predictions``) or from a fitted estimator, a Pipeline ending
in one or a fitted search (``Display.from_estimator``); the ``plot_*``
functions draw from predictions and return what was drawn. matplotlib is
optional (``pip install 'gar-sklearn[plot]'``): it is imported when a plot is
drawn, so this package imports without it.
"""

from ._age_error import AgeErrorDisplay, plot_age_error
from ._confusion import ConfusionMatricesDisplay, plot_confusion_matrices, plot_confusion_matrix
from ._group_bars import GroupMetricDisplay, plot_group_metric

__all__ = [
    "AgeErrorDisplay",
    "ConfusionMatricesDisplay",
    "GroupMetricDisplay",
    "plot_age_error",
    "plot_confusion_matrices",
    "plot_confusion_matrix",
    "plot_group_metric",
]
