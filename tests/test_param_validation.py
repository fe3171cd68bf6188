"""Declared parameter constraints: every parameter declared once, checked at fit, clear messages."""

import inspect
from numbers import Integral, Real

import numpy as np
import pytest

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn._param_validation import (
    Described,
    Interval,
    StrOptions,
    describe_constraints,
    validate_params,
)
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY


@pytest.mark.parametrize("cls", [MultiAttributeClassifier, GenderFusionClassifier])
def test_every_parameter_is_declared_once(cls):
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cls._parameter_constraints) == params


@pytest.mark.parametrize(
    "constraints, expected",
    [
        ([Interval(Integral, 1, None, closed="left")], "a positive int"),
        ([Interval(Integral, 0, None, closed="left")], "an int >= 0"),
        ([None, Interval(Real, 0, None, closed="neither")], "None or a positive float"),
        ([Interval(Real, 0, 1, closed="left")], "a float in [0.0, 1.0)"),
        ([StrOptions({"auto"}), "boolean"], "one of ['auto', True, False]"),
        ([StrOptions({"b", "a"}), None], "one of ['a', 'b', None]"),
        (
            [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
            "'auto' or an int >= 0",
        ),
        ([None, Described((str,), "a folder path")], "None or a folder path"),
    ],
)
def test_constraints_in_words(constraints, expected):
    assert describe_constraints(constraints) == expected


@pytest.mark.parametrize(
    "param, value, match",
    [
        (
            "freeze",
            True,
            r"The 'freeze' parameter must be None, one of \['auto', 'backbone'\], an int >= 0 "
            r"or a str\. "
            r"Got True instead\.",
        ),
        ("batch_size", True, r"The 'batch_size' parameter must be a positive int\. Got True"),
        ("image_size", 2.0, r"The 'image_size' parameter must be a positive int\. Got 2\.0"),
        ("lr", 0, r"The 'lr' parameter must be a positive float\. Got 0 instead\."),
        ("weight_decay", -1e-4, r"The 'weight_decay' parameter must be a float >= 0"),
        ("head_hidden_units", 0, r"The 'head_hidden_units' parameter must be None or a positive"),
        ("num_workers", -1, r"The 'num_workers' parameter must be 'auto' or an int >= 0"),
        ("channels_last", "auto", r"The 'channels_last' parameter must be one of \[True, False\]"),
        ("optimizer", "adagrad", r"one of \['adam', 'adamw', 'sgd'\] or a torch.optim.Optimizer"),
        ("verbose", -1, r"The 'verbose' parameter must be an int >= 0\. Got -1"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(param, value, match):
    clf = MultiAttributeClassifier(**TINY).set_params(**{param: value})
    with pytest.raises(ValueError, match=match):
        validate_params(clf)


def test_numpy_numbers_are_numbers():
    """Grids built with np.arange pass numpy scalars: they fit and predict as Python numbers do."""
    X, y = make_synthetic_faces(24, image_size=16, random_state=0)
    numpy_fit = MultiAttributeClassifier(
        **dict(
            TINY,
            image_size=np.int64(16),
            max_epochs=np.int64(1),
            lr=np.float32(0.01),
            batch_size=np.int64(8),
            freeze=np.int64(1),
            dropout=np.float64(0.1),
        )
    ).fit(X, y)
    plain_fit = MultiAttributeClassifier(
        **dict(
            TINY,
            image_size=16,
            max_epochs=1,
            lr=float(np.float32(0.01)),
            batch_size=8,
            freeze=1,
            dropout=0.1,
        )
    ).fit(X, y)
    for a, b in zip(numpy_fit.predict_proba(X), plain_fit.predict_proba(X)):
        np.testing.assert_array_equal(a, b)
