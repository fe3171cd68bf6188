"""Labels and predictions of a fitted estimator, Pipeline or search, for the displays."""

import pandas as pd

from ..metrics._fitted import (
    column,
    exact_ages,
    fitted_view,
    predicted_ages,
    predicted_frame,
    true_targets,
)

__all__ = []


def estimator_labels(estimator, X, y):
    """``(y_true, y_pred, raw)``: the targets as predicted, the predictions, y as given."""
    view = fitted_view(estimator)
    attributes = view.attributes
    raw, y_true = true_targets(view, y, attributes)
    return y_true, predicted_frame(view, X, attributes), raw


def estimator_groups(sensitive, y_true, raw):
    """The group column(s) of y, transformed targets first (age groups for "age")."""
    names = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    return pd.DataFrame({s: column([y_true, raw], s, "sensitive").to_numpy() for s in names})


def estimator_ages(estimator, X, y):
    """``(age_true, age_pred)``: y's exact ages and the estimator's ``predict_age(X)``."""
    view = fitted_view(estimator)
    raw, _ = true_targets(view, y, view.attributes)
    ages = exact_ages(column([raw], "age", "age").to_numpy())
    return ages, predicted_ages(view, X)
