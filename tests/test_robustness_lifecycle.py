"""Catalogue of bad inputs, the estimators' life cycle: methods called out of order,
parameters changed after fit, refits that fail, clones, loaded and unpickled models.

MultiAttributeClassifier's methods before fit are in tests/test_robustness.py, a failed
refit of it in tests/test_multi_attribute.py.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import gar_sklearn
from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY

SMALL = dict(TINY, image_size=16, max_epochs=2, num_workers=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(40, image_size=16, gender_dependent=True, random_state=23)


def make_fusion(**params):
    return GenderFusionClassifier(
        MultiAttributeClassifier(attributes=("gender",), **SMALL),
        MultiAttributeClassifier(attributes=("age", "race"), validation_fraction=0, **SMALL),
        random_state=0,
        **params,
    )


@pytest.fixture(scope="module")
def fitted(data):
    return MultiAttributeClassifier(**dict(SMALL, age_bins="fairface")).fit(*data)


@pytest.fixture(scope="module")
def fitted_fusion(data):
    return make_fusion().fit(*data)


def same_probas(a, b, atol=0.0):
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "call",
    [
        lambda clf, X, y: clf.predict(X),
        lambda clf, X, y: clf.predict_proba(X),
        lambda clf, X, y: clf.predict_frame(X),
        lambda clf, X, y: clf.predict_age(X),
        lambda clf, X, y: clf.predict_age_group(X),
        lambda clf, X, y: clf.score(X, y),
        lambda clf, X, y: clf.transform_targets(y),
        lambda clf, X, y: clf.save("never.pt"),
    ],
    ids=[
        "predict",
        "predict_proba",
        "predict_frame",
        "predict_age",
        "predict_age_group",
        "score",
        "transform_targets",
        "save",
    ],
)
def test_every_method_of_the_fusion_estimator_before_fit(data, call):
    with pytest.raises(NotFittedError, match="GenderFusionClassifier instance is not fitted"):
        call(make_fusion(), *data)


@pytest.mark.parametrize(
    "validation_data, match",
    [
        (lambda X, y: (X, y, y, y), r"a pair \(X_valid, y_valid\) .*; got a tuple of 4 items"),
        (lambda X, y: X[:5], r"a pair \(X_valid, y_valid\) .*; got a ndarray"),
        (lambda X, y: [X[:5]], r"a pair \(X_valid, y_valid\) .*; got a list of 1 items"),
        (lambda X, y: (X[:5], None), r"y is required"),
        (lambda X, y: (X[:0], y.iloc[:0]), r"X is empty"),
        (lambda X, y: (X[:5], y.iloc[:4]), r"X has 5 images, y has 4 rows"),
    ],
    ids=["four items", "an array", "one item", "no labels", "empty", "lengths differ"],
)
@pytest.mark.parametrize("estimator", ["multi", "fusion"])
def test_malformed_validation_data(data, estimator, validation_data, match):
    X, y = data
    clf = make_fusion() if estimator == "fusion" else MultiAttributeClassifier(**SMALL)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y, validation_data=validation_data(X, y))


def test_fit_parameters_changed_after_fit_do_not_change_predictions(fitted, data):
    X, _ = data
    before = fitted.predict_proba(X)
    changed = clone(fitted).set_params(image_size=64, attributes=("race",), age_bins=None)
    for name, value in changed.get_params(deep=False).items():
        setattr(fitted, name, value)  # as set_params would, keeping the fitted attributes
    try:
        same_probas(fitted.predict_proba(X), before)
        assert fitted.predict(X).shape == (len(X), 3)
    finally:
        fitted.set_params(image_size=16, attributes=("gender", "age", "race"), age_bins="fairface")


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_the_prediction_batch_size_changes_nothing_but_rounding(fitted, data, batch_size):
    X, _ = data
    before = fitted.predict_proba(X)
    try:
        same_probas(fitted.set_params(batch_size=batch_size).predict_proba(X), before, atol=1e-6)
    finally:
        fitted.set_params(batch_size=SMALL["batch_size"])


def test_predict_time_parameters_take_effect_after_fit(fitted, data, tmp_path):
    X, _ = data
    try:
        fitted.set_params(on_error="skip")
        with pytest.warns(UserWarning, match="Skipped 1 unreadable images"):
            pred = fitted.predict([X[0], str(tmp_path / "missing.png")])
        assert pred[1].tolist() == [None, None, None]
        fitted.set_params(on_error="raise", test_time_flip=True)
        flipped = fitted.predict_proba(X[:4])
        mirrored = fitted.set_params(test_time_flip=False).predict_proba(X[:4, :, ::-1])
        plain = fitted.predict_proba(X[:4])
        same_probas(flipped, [(p + q) / 2 for p, q in zip(plain, mirrored)], atol=1e-6)
    finally:
        fitted.set_params(on_error="raise", test_time_flip=False)


def test_clone_of_a_fitted_estimator_is_unfitted_with_the_same_parameters(fitted, fitted_fusion):
    for model in (fitted, fitted_fusion):
        copy = clone(model)
        with pytest.raises(NotFittedError):
            copy.predict(np.zeros((1, 16, 16, 3), np.uint8))
        assert set(copy.get_params()) == set(model.get_params())


def test_a_refit_starts_afresh_and_forgets_the_previous_attributes(data):
    X, y = data
    clf = MultiAttributeClassifier(**dict(SMALL, age_bins="fairface")).fit(X, y)
    first = clf.predict_proba(X)
    clf.set_params(attributes=("race",), age_bins=None).fit(X, y)
    assert clf.attributes_ == ("race",) and clf.age_binner_ is None
    clf.set_params(attributes=("gender", "age", "race"), age_bins="fairface").fit(X, y)
    same_probas(clf.predict_proba(X), first)  # not warm-started from the race-only fit


@pytest.mark.parametrize("estimator", ["multi", "fusion"])
def test_a_failed_refit_keeps_the_previous_model(data, fitted, fitted_fusion, estimator):
    X, y = data
    model = fitted_fusion if estimator == "fusion" else fitted
    before = model.predict_proba(X)
    with pytest.raises(ValueError, match="X is empty"):
        model.fit(X[:0], y.iloc[:0])
    with pytest.raises(ValueError, match="more than one column named 'race'"):
        model.fit(X, pd.concat([y, y[["race"]]], axis=1))
    same_probas(model.predict_proba(X), before)


def test_loaded_and_unpickled_models_refit_like_fresh_ones(fitted, data, tmp_path):
    X, y = data
    fresh = clone(fitted).fit(X, y).predict_proba(X)
    fitted.save(tmp_path / "m.pt")
    for model in (gar_sklearn.load(tmp_path / "m.pt"), pickle.loads(pickle.dumps(fitted))):
        same_probas(model.fit(X, y).predict_proba(X), fresh)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda clf, X: clf.predict_age(X, method="median"), r"'method' parameter must be"),
        (lambda clf, X: clf.predict_age_group(X, bins="decade"), r"'bins' parameter must be"),
        (lambda clf, X: clf.predict_frame(X, age_groups=[30, 20]), r"strictly increasing"),
    ],
    ids=["predict_age method", "predict_age_group bins", "predict_frame age_groups"],
)
def test_bad_arguments_of_the_prediction_methods(fitted, data, call, match):
    with pytest.raises(ValueError, match=match):
        call(fitted, data[0])


def test_age_methods_of_a_model_without_an_age_head(data):
    X, y = data
    clf = MultiAttributeClassifier(**dict(SMALL, attributes=("gender",))).fit(X, y)
    for call in (
        clf.predict_age,
        clf.predict_age_group,
        lambda X: clf.predict_frame(X, age_groups="fairface"),
    ):
        with pytest.raises(ValueError, match=r"This estimator predicts \['gender'\], not 'age'"):
            call(X)


def test_a_fitted_fusion_estimator_switches_routing_and_refuses_a_bad_one(fitted_fusion, data):
    X, _ = data
    try:
        soft = fitted_fusion.set_params(routing="soft").predict_proba(X)
        for p in soft:
            np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
        with pytest.raises(ValueError, match=r"'routing' parameter must be one of"):
            fitted_fusion.set_params(routing="mixed").predict(X)
    finally:
        fitted_fusion.set_params(routing="hard")
