"""Catalogue of bad inputs, labels: each bad y raises a ValueError naming the column or
value before any training, or is handled as documented.

Cases already in tests/test_multi_attribute.py (a missing column, a length mismatch,
a missing label, a 2-D array of the wrong width, 1-D y for several attributes,
non-numeric ages to bin) are not repeated.
"""

import numpy as np
import pandas as pd
import pytest

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier, _training
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import AgeBinner

from .conftest import TINY

SMALL = dict(TINY, image_size=16, max_epochs=1)


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(30, image_size=16, random_state=5)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a network starts training: bad labels must be refused before."""

    def initialize(self):
        raise AssertionError("training started")

    monkeypatch.setattr(_training.MultiHeadNet, "initialize", initialize)


def with_age(y, first):
    ages = y.age.astype(object).tolist()
    ages[0] = first
    return y.assign(age=ages)


# ---------------------------------------------------------------- refused, naming the input
BAD_LABELS = {
    "duplicate attribute column": (
        lambda y: pd.concat([y, y[["gender"]]], axis=1),
        {},
        r"y has more than one column named 'gender' \(2 columns\)",
    ),
    "infinite age, interval bins": (
        lambda y: with_age(y, np.inf),
        {"age_bins": 10},
        r"y\['age'\] cannot be binned with age_bins=10: Ages must be finite numbers; got inf "
        r"at positions \[0\]",
    ),
    "infinite age, fairface bins": (
        lambda y: with_age(y, np.inf),
        {"age_bins": "fairface"},
        r"age_bins='fairface': Ages must be finite numbers; got inf",
    ),
    "minus infinite age": (
        lambda y: with_age(y, -np.inf),
        {"age_bins": "fairface"},
        r"Ages must be finite numbers; got -inf",
    ),
    "infinite age, exact ages": (
        lambda y: with_age(y, np.inf),
        {"age_bins": 1},
        r"age_bins=1: Ages must be finite",
    ),
    "infinite age as a label": (
        lambda y: y.assign(age=[np.inf] + y.age.astype(float).tolist()[1:]),
        {"age_bins": None},  # ages as labels, not binned
        r"y\['age'\] holds the label inf, which is not a finite number \(rows \[0\]\)",
    ),
    "infinite age as a string": (
        lambda y: with_age(y, "inf"),
        {"age_bins": "fairface"},
        r"Ages must be finite numbers; got inf",
    ),
    "negative age": (
        lambda y: with_age(y, -3),
        {"age_bins": "fairface"},
        r"Ages must be non-negative; got -3.0 at positions \[0\]",
    ),
    "placeholder age making a huge head": (
        lambda y: with_age(y, 1e12),
        {"age_bins": 10},
        r"bins=10 makes 100000000001 age groups up to the oldest age, 1e\+12; at most 10000",
    ),
    "boolean ages": (
        lambda y: y.assign(age=np.arange(len(y)) % 2 == 0),
        {"age_bins": "fairface"},
        r"Ages must be numbers; got booleans",
    ),
    "age with a unit": (
        lambda y: with_age(y, "25y"),
        {"age_bins": 10},
        r"age_bins=10 needs numeric ages in y\['age'\]; got '25y'",
    ),
    "list labels": (
        lambda y: y.assign(gender=[["a"]] * len(y)),
        {},
        r"labels of y\['gender'\] must be strings or numbers; got values of type\(s\) \['list'\]",
    ),
    "dict labels": (
        lambda y: y.assign(race=[{"r": 1}] * len(y)),
        {},
        r"labels of y\['race'\] must be strings or numbers; got .*\['dict'\]",
    ),
    "complex labels": (
        lambda y: y.assign(gender=[1j, 2j] * (len(y) // 2)),
        {},
        r"labels of y\['gender'\] must be strings or numbers; got .*\['complex'\]",
    ),
    "mixed label types": (
        lambda y: y.assign(gender=[1, "a"] * (len(y) // 2)),
        {},
        r"Labels of column 'gender' mix types \['int', 'str'\]",
    ),
    "pandas NA": (
        lambda y: y.assign(gender=pd.array([pd.NA] + ["a"] * (len(y) - 1), dtype="string")),
        {},
        r"1 missing label\(s\) in column 'gender' \(rows \[0\]\)",
    ),
    "missing age to bin": (
        lambda y: with_age(y, None),
        {"age_bins": "fairface"},
        r"1 missing label\(s\) in column 'age' \(rows \[0\]\)",
    ),
    "a string for y": (
        lambda y: "labels.csv",
        {},
        r"y must have one column per attribute \['gender', 'age', 'race'\]: expected shape "
        r"\(n_samples, 3\), got \(\)",
    ),
    "a 3-D array": (
        lambda y: np.zeros((len(y), 3, 1)),
        {},
        r"expected shape \(n_samples, 3\), got \(30, 3, 1\)",
    ),
    "None": (lambda y: None, {}, r"y is required: a DataFrame with the columns"),
    "empty DataFrame": (
        lambda y: y.iloc[:0],
        {},
        r"X and y have different lengths: X has 30 images, y has 0 rows",
    ),
}


@pytest.mark.parametrize("change, params, match", BAD_LABELS.values(), ids=list(BAD_LABELS))
def test_bad_labels_are_refused_before_training(faces, no_training, change, params, match):
    X, y = faces
    with pytest.raises(ValueError, match=match):
        MultiAttributeClassifier(**dict(SMALL, **params)).fit(X, change(y))


@pytest.mark.parametrize("change, params, match", BAD_LABELS.values(), ids=list(BAD_LABELS))
def test_bad_labels_are_refused_by_the_fusion_estimator_too(
    faces, no_training, change, params, match
):
    X, y = faces
    part = dict(SMALL, attributes=("age", "race"), **params)
    clf = GenderFusionClassifier(
        MultiAttributeClassifier(**dict(SMALL, attributes=("gender",))),
        MultiAttributeClassifier(**part),
        genders=("Female", "Male"),
    )
    match = FUSION_MATCH.get(match, match.replace(r"\['gender', 'age', 'race'\]", ".*"))
    with pytest.raises(ValueError, match=match):
        clf.fit(X, change(y))


# bad values in the gender column: the fusion estimator checks them against 'genders' first
_GENDERS = r"y\['gender'\] .*'genders' parameter \['Female', 'Male'\]"
FUSION_MATCH = {
    BAD_LABELS[name][2]: _GENDERS for name in ("list labels", "complex labels", "mixed label types")
}


def test_bad_validation_labels_are_named(faces, no_training):
    X, y = faces
    with pytest.raises(ValueError, match=r"y has more than one column named 'race'"):
        MultiAttributeClassifier(**SMALL).fit(
            X, y, validation_data=(X[:5], pd.concat([y.iloc[:5], y.iloc[:5][["race"]]], axis=1))
        )
    with pytest.raises(ValueError, match=r"Ages must be finite numbers; got inf"):
        MultiAttributeClassifier(**dict(SMALL, age_bins="fairface")).fit(
            X, y, validation_data=(X[:5], with_age(y.iloc[:5], np.inf))
        )


def test_age_binner_names_infinite_and_negative_positions():
    with pytest.raises(ValueError, match=r"finite numbers; got inf at positions \[2\]"):
        AgeBinner(bins=10).fit([3, 50, np.inf])
    binner = AgeBinner().fit([3, 50])
    with pytest.raises(ValueError, match=r"finite numbers; got -inf at positions \[1\]"):
        binner.transform([3, -np.inf])
    with pytest.raises(ValueError, match=r"non-negative; got -1.0 at positions \[0, 2\]"):
        binner.transform([-1, 3, -1])


# ---------------------------------------------------------------- handled as documented
def fitted_classes(X, y, **params):
    clf = MultiAttributeClassifier(**dict(SMALL, **params)).fit(X, y)
    return [c.tolist() for c in clf.classes_]


def test_duplicated_columns_that_are_not_attributes_are_ignored(faces):
    X, y = faces
    extra = pd.concat([y, y[["race"]].rename(columns={"race": "note"})] * 1, axis=1)
    extra = pd.concat([extra, extra[["note"]]], axis=1)  # 'note' twice: not an attribute
    assert fitted_classes(X, extra) == fitted_classes(X, y)


def test_rows_are_matched_by_position_not_by_index(faces):
    X, y = faces
    shuffled_index = y.set_axis(np.random.default_rng(0).permutation(len(y)))
    a = MultiAttributeClassifier(**SMALL).fit(X, y)
    b = MultiAttributeClassifier(**SMALL).fit(X, shuffled_index)
    for p, q in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(p, q)


def test_ages_as_numeric_strings_are_binned_as_numbers(faces):
    X, y = faces
    as_text = fitted_classes(X, y.assign(age=y.age.astype(str)), age_bins="fairface")
    assert as_text == fitted_classes(X, y, age_bins="fairface")


def test_a_very_old_but_finite_age_lands_in_the_open_group(faces):
    X, y = faces
    clf = MultiAttributeClassifier(**dict(SMALL, age_bins="fairface")).fit(X, with_age(y, 1e300))
    assert clf.transform_targets(with_age(y, 1e300))["age"][0] == "more than 70"


def test_boolean_and_bytes_labels_are_classes(faces):
    X, y = faces
    labels = fitted_classes(
        X,
        y.assign(gender=np.arange(len(y)) % 2 == 0, race=[b"a", b"b", b"c"] * 10),
    )
    assert labels[0] == [False, True] and labels[2] == [b"a", b"b", b"c"]


def test_categorical_labels_give_the_plain_labels(faces):
    X, y = faces
    assert fitted_classes(X, y.astype({"race": "category"})) == fitted_classes(X, y)


def test_score_refuses_labels_of_another_length(faces):
    X, y = faces
    clf = MultiAttributeClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="X has 30 images, y has 5 rows"):
        clf.score(X, y.iloc[:5])
    with pytest.raises(ValueError, match="sample_weight has 3 values for 30 images"):
        clf.score(X, y, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match=r"more than one column named 'age'"):
        clf.score(X, pd.concat([y, y[["age"]]], axis=1))
