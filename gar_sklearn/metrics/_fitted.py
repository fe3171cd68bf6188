"""Reading targets and predictions through the estimators' contract, by duck typing.

A fitted estimator of this library has ``attributes_`` (names in prediction
column order), ``predict(X)`` (n_samples, n_attributes), optionally
``transform_targets(y)`` (the targets as it predicts them, e.g. exact ages as
age groups) and ``predict_age(X)`` (estimated ages in years). A Pipeline ending
in one, or a fitted search (GridSearchCV) over one, is read through
:class:`FittedView`. Nothing here imports the estimators.
"""

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .._targets import as_target_frame as target_frame

__all__ = []


class FittedView:
    """The estimators' contract read through Pipelines and fitted searches.

    ``predict`` goes through the object given (the whole Pipeline, or the
    search's own ``predict``); ``attributes_`` and ``transform_targets`` are
    read from the final estimator; ``predict_age`` runs the Pipeline's
    transforms, then the final estimator's ``predict_age``.
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self.name = type(estimator).__name__
        self._transforms = None
        if isinstance(estimator, Pipeline):
            self._transforms = estimator[:-1] if len(estimator) > 1 else None
            self._inner = FittedView(estimator[-1])
        elif hasattr(estimator, "best_estimator_"):  # a fitted search with refit
            self._inner = FittedView(estimator.best_estimator_)
        else:
            self._inner = None
        self.final = estimator if self._inner is None else self._inner.final

    @property
    def attributes(self):
        try:
            attributes = self.final.attributes_
        except AttributeError as exc:
            where = "" if self.final is self.estimator else f" (the final step of {self.name})"
            raise TypeError(
                f"{type(self.final).__name__}{where} has no 'attributes_': pass a fitted "
                "estimator of this library (whose attributes_ names its prediction columns), "
                "a Pipeline ending in one, or a fitted GridSearchCV over one (refit=True)."
            ) from exc
        return tuple(attributes)

    def predict(self, X):
        return self.estimator.predict(X)

    @property
    def has_predict_age(self):
        return hasattr(self.final, "predict_age")

    def predict_age(self, X):
        if self._inner is None:
            return self.estimator.predict_age(X)
        Xt = X if self._transforms is None else self._transforms.transform(X)
        return self._inner.predict_age(Xt)

    @property
    def has_transform_targets(self):
        return hasattr(self.final, "transform_targets")

    def transform_targets(self, y):
        return self.final.transform_targets(y)


def fitted_view(estimator):
    """``estimator`` as a :class:`FittedView` (unchanged if it is one)."""
    return estimator if isinstance(estimator, FittedView) else FittedView(estimator)


def estimator_attributes(estimator):
    return fitted_view(estimator).attributes


def true_targets(estimator, y, attributes):
    """The targets in the form the estimator predicts them (``transform_targets`` if any)."""
    view = fitted_view(estimator)
    raw = target_frame(y, attributes)
    if view.has_transform_targets:
        transformed = view.transform_targets(y)
        return raw, target_frame(transformed, attributes, name="transform_targets(y)")
    missing = [a for a in attributes if a not in raw.columns]
    if missing:
        raise ValueError(
            f"y has no column for the predicted attribute(s) {missing}; y has columns "
            f"{list(raw.columns)}."
        )
    return raw, raw[list(attributes)]


def predicted_frame(estimator, X, attributes):
    view = fitted_view(estimator)
    pred = np.asarray(view.predict(X), dtype=object)
    if pred.ndim == 1 and len(attributes) == 1:
        pred = pred[:, None]
    if pred.ndim != 2 or pred.shape[1] != len(attributes):
        raise ValueError(
            f"{view.name}.predict returned shape {pred.shape}; expected "
            f"(n_samples, {len(attributes)}) for attributes_ {attributes}."
        )
    return pd.DataFrame(pred, columns=list(attributes))


def predicted_ages(estimator, X):
    view = fitted_view(estimator)
    if not view.has_predict_age:
        raise TypeError(
            f"Age MAE needs estimator.predict_age(X); {type(view.final).__name__} has no "
            "such method (is 'age' one of its attributes?)."
        )
    return np.asarray(view.predict_age(X), dtype=float).ravel()


def exact_ages(values, name="y['age']"):
    """Ages in years as floats; a clear error for age-group labels such as '20-29'."""
    ages = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce")
    bad = ages.isna().to_numpy() & pd.notna(np.asarray(values, dtype=object))
    if bad.any():
        example = np.asarray(values, dtype=object)[np.flatnonzero(bad)[0]]
        raise ValueError(
            f"Age MAE needs exact ages in years in {name}; got a non-numeric value such as "
            f"{example!r} (age groups cannot give an error in years)."
        )
    if ages.isna().any():
        raise ValueError(
            f"{name} has missing ages at positions "
            f"{np.flatnonzero(ages.isna().to_numpy())[:5].tolist()}."
        )
    return ages.to_numpy(dtype=float)


def column(frames, name, what, where="y"):
    """Column ``name`` from the first frame that has it (transformed targets first)."""
    for frame in frames:
        if frame is not None and name in frame.columns:
            return frame[name]
    have = sorted({c for f in frames if f is not None for c in f.columns})
    raise ValueError(f"The {what} column {name!r} is not in {where}; {where} has columns {have}.")
