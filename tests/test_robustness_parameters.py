"""Catalogue of bad inputs, parameters: numpy numbers work as Python's own (a grid from
``np.arange`` gives the fits of the plain numbers), and every bad value is refused in fit,
before training, naming the parameter, what is allowed and what was received.

Cases already in tests/test_multi_attribute.py (an unknown lr_schedule, optimizer,
freeze stage, on_error, precision or augment, image_size 0, dropout 1.5, loss weights
of unknown attributes) and tests/test_fusion.py (the fusion estimator's own) are not
repeated.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier, _training
from gar_sklearn import metrics as M
from gar_sklearn.augmentation import (
    AugmentingOverSampler,
    FaceAugmenter,
    RandomCrop,
    RandomFlip,
    RandomLight,
)
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY

SMALL = dict(TINY, image_size=16, batch_size=8, max_epochs=2, num_workers=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(32, image_size=16, gender_dependent=True, random_state=12)


def probas(data, **params):
    X, y = data
    clf = MultiAttributeClassifier(**dict(SMALL, **params)).fit(X, y)
    return clf, clf.predict_proba(X)


def python_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: python_value(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- numpy numbers (issue 20 item 6)
NUMPY = {
    "batch_size": (np.int64(4), {}),
    "image_size": (np.int32(12), {}),
    "max_epochs": (np.int64(3), {}),
    "patience": (np.int64(1), {}),
    "head_hidden_units": (np.int16(8), {}),
    "dropout": (np.float32(0.3), {}),
    "lr": (np.float32(0.02), {}),
    "backbone_lr": (np.float64(0.005), {}),
    "weight_decay": (np.float32(1e-3), {}),
    "label_smoothing": (np.float32(0.1), {}),
    "validation_fraction": (np.float32(0.25), {}),
    "age_sigma": (np.float32(2.0), {"age_bins": "fairface"}),
    "age_bins": (np.int64(20), {}),
    "age_bins as an array": (np.arange(0, 80, 20), {}),
    "random_state": (np.int64(7), {}),
    "verbose": (np.int64(0), {}),
    "num_workers": (np.int64(0), {}),
    "loss_weights": ({"age": np.float32(2.0), "gender": np.int64(1)}, {}),
    "freeze": (np.int64(2), {}),
    "freeze with unfreeze_after": (np.int64(2), {"unfreeze_after": np.int64(1)}),
    "cache_views": (np.int64(3), {"freeze": 2, "augment": FaceAugmenter()}),
}


@pytest.mark.parametrize("name, value, other", [(k, *v) for k, v in NUMPY.items()], ids=list(NUMPY))
def test_numpy_numbers_give_the_fit_of_python_numbers(data, name, value, other):
    param = name.split(" ")[0]
    clf, got = probas(data, **{param: value}, **other)
    _, expected = probas(data, **{param: python_value(value)}, **python_value(other))
    for p, q in zip(got, expected):
        np.testing.assert_array_equal(p, q)
    assert clf.get_params(deep=False)[param] is value  # stored untouched


@pytest.mark.parametrize(
    "param", ["cache_features", "image_cache", "test_time_flip", "channels_last"]
)
def test_numpy_booleans_mean_what_python_booleans_mean(data, monkeypatch, param):
    from gar_sklearn._training import _datasets

    decoded = []
    original = _datasets.decode_images
    monkeypatch.setattr(
        _datasets, "decode_images", lambda *a, **k: decoded.append(1) or original(*a, **k)
    )
    X, y = data
    X20 = np.stack([np.pad(x, ((2, 2), (2, 2), (0, 0))) for x in X])  # resized when decoded
    other = {"freeze": 2} if param == "cache_features" else {}
    for flag in (True, False):
        decoded.clear()
        numpy_fit = MultiAttributeClassifier(**dict(SMALL, **other, **{param: np.bool_(flag)}))
        numpy_fit.fit(X20, y)
        used_numpy, n_numpy = numpy_fit.used_feature_cache_, len(decoded)
        decoded.clear()
        plain_fit = MultiAttributeClassifier(**dict(SMALL, **other, **{param: flag})).fit(X20, y)
        assert (used_numpy, n_numpy) == (plain_fit.used_feature_cache_, len(decoded))
        for p, q in zip(numpy_fit.predict_proba(X20), plain_fit.predict_proba(X20)):
            np.testing.assert_array_equal(p, q)
    if param == "cache_features":
        with pytest.raises(ValueError, match="cache_features=True needs a backbone prefix frozen"):
            MultiAttributeClassifier(**dict(SMALL, cache_features=np.bool_(True))).fit(X, y)


def test_numpy_parameters_of_the_fusion_estimator_and_its_parts(data):
    X, y = data
    part = dict(SMALL, max_epochs=1)

    def fusion(numpy):
        cast = (lambda v: v) if numpy else python_value
        return GenderFusionClassifier(
            MultiAttributeClassifier(attributes=("gender",), **part),
            MultiAttributeClassifier(attributes=("age", "race"), validation_fraction=0, **part),
            grow_subsets=cast(np.bool_(True)),
            random_state=cast(np.int64(3)),
        ).set_params(
            specialist__batch_size=cast(np.int64(4)),
            gender_estimator__lr=cast(np.float32(0.02)),
        )

    for p, q in zip(
        fusion(True).fit(X, y).predict_proba(X), fusion(False).fit(X, y).predict_proba(X)
    ):
        np.testing.assert_array_equal(p, q)


AUGMENTERS = {
    "RandomCrop": lambda c: RandomCrop(p=c(np.float32(0.9)), scale=(c(np.float32(0.5)), 0.9)),
    "RandomFlip": lambda c: RandomFlip(p=c(np.float32(0.5))),
    "RandomLight": lambda c: RandomLight(
        p=c(np.float32(1)), brightness=c(np.float16(0.25)), contrast=c(np.float64(0.2))
    ),
    "FaceAugmenter": lambda c: FaceAugmenter(flip_p=c(np.float32(0.5))),
}


@pytest.mark.parametrize("make", AUGMENTERS.values(), ids=list(AUGMENTERS))
def test_augmenters_take_numpy_numbers(data, make):
    X, _ = data
    got = make(lambda v: v).augment(X[0], np.random.default_rng(1))
    expected = make(python_value).augment(X[0], np.random.default_rng(1))
    np.testing.assert_array_equal(got, expected)


def test_the_oversampler_takes_numpy_numbers(data):
    X, y = data
    a = AugmentingOverSampler(target_size=np.int64(40), random_state=np.int64(0))
    b = AugmentingOverSampler(target_size=40, random_state=0)
    (xa, ya), (xb, yb) = a.fit_resample(list(X), y), b.fit_resample(list(X), y)
    assert len(xa) == len(xb) == 40 and ya.equals(yb)
    np.testing.assert_array_equal(np.stack(list(xa)), np.stack(list(xb)))


METRICS = {
    "group_difference": lambda yt, yp, g, c: M.group_difference(
        "accuracy", yt, yp, sensitive_features=g, min_group_size=c(np.int64(5))
    ),
    "bootstrap_by_group": lambda yt, yp, g, c: M.bootstrap_by_group(
        "accuracy",
        yt,
        yp,
        sensitive_features=g,
        n_boot=c(np.int64(20)),
        confidence_level=c(np.float32(0.9)),
        random_state=c(np.int64(0)),
        min_group_size=c(np.int64(5)),
    ),
    "expected_calibration_error": lambda yt, yp, g, c: M.expected_calibration_error(
        yt,
        np.linspace(0.2, 0.8, 2 * len(yt)).reshape(-1, 2),
        classes=["a", "b"],
        n_bins=c(np.int64(5)),
    ),
    "demographic_parity_difference": lambda yt, yp, g, c: M.demographic_parity_difference(
        yt, yp, sensitive_features=g, min_group_size=c(np.int64(5))
    ),
    "equalized_odds_difference": lambda yt, yp, g, c: M.equalized_odds_difference(
        yt, yp, sensitive_features=g, min_group_size=c(np.int64(5))
    ),
    "classification_report_by_group": lambda yt, yp, g, c: M.classification_report_by_group(
        yt, yp, sensitive_features=g, min_group_size=c(np.int64(5))
    ),
}


@pytest.mark.parametrize("call", METRICS.values(), ids=list(METRICS))
def test_metrics_take_numpy_numbers(call):
    rng = np.random.default_rng(0)
    yt, yp = rng.choice(["a", "b"], 40), rng.choice(["a", "b"], 40)
    g = np.repeat(["x", "z"], 20)
    got, expected = call(yt, yp, g, lambda v: v), call(yt, yp, g, python_value)
    # float32 values compute in float32 (a bootstrap's quantiles): equal to 1e-7
    if isinstance(got, str):
        assert got == expected
    elif isinstance(got, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-6)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


# ---------------------------------------------------------------- bad values, refused before training
@pytest.fixture
def no_training(monkeypatch):
    def initialize(self):
        raise AssertionError("training started")

    monkeypatch.setattr(_training.MultiHeadNet, "initialize", initialize)


BAD = {
    "lr nan": ("lr", float("nan"), r"'lr' parameter must be a positive float. Got nan"),
    "lr inf": ("lr", float("inf"), r"'lr' parameter must be a positive float. Got inf"),
    "lr negative": ("lr", -1, r"'lr' parameter must be a positive float. Got -1"),
    "lr as text": ("lr", "0.1", r"'lr' parameter must be a positive float. Got '0.1'"),
    "batch_size 0": ("batch_size", 0, r"'batch_size' parameter must be a positive int. Got 0"),
    "batch_size float": ("batch_size", 8.0, r"'batch_size' parameter must be a positive int"),
    "batch_size bool": ("batch_size", True, r"'batch_size' parameter must be a positive int"),
    "max_epochs bool": ("max_epochs", True, r"'max_epochs' parameter must be a positive int"),
    "max_epochs 0": ("max_epochs", 0, r"'max_epochs' parameter must be a positive int. Got 0"),
    "patience 0": ("patience", 0, r"'patience' parameter must be None or a positive int"),
    "validation_fraction 1": (
        "validation_fraction",
        1.0,
        r"'validation_fraction' parameter must be None or a float in \[0.0, 1.0\)",
    ),
    "validation_fraction nan": ("validation_fraction", float("nan"), r"Got nan instead"),
    "label_smoothing 1": ("label_smoothing", 1.0, r"'label_smoothing' parameter must be a float"),
    "age_sigma 0": ("age_sigma", 0, r"'age_sigma' parameter must be None or a positive float"),
    "loss_weights a list": ("loss_weights", [1, 2], r"'loss_weights' parameter must be None or"),
    "loss_weights negative": (
        "loss_weights",
        {"gender": -1},
        r"'loss_weights' parameter must be a dict keyed by attributes \['gender', 'age', "
        r"'race'\], of finite weights >= 0. Got \{'gender': -1\}",
    ),
    "loss_weights nan": ("loss_weights", {"age": float("nan")}, r"of finite weights >= 0"),
    "loss_weights text": ("loss_weights", {"age": "x"}, r"of finite weights >= 0"),
    "loss_weights bool": ("loss_weights", {"age": True}, r"of finite weights >= 0"),
    "optimizer instance": (
        "optimizer",
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1),
        r"'optimizer' parameter must be one of \['adam', 'adamw', 'sgd'\] or a "
        r"torch.optim.Optimizer subclass",
    ),
    "device tpu": ("device", "tpu", r"'device' parameter must be 'auto', 'cpu', 'cuda'"),
    "device int": ("device", 0, r"'device' parameter must be a str. Got 0"),
    "num_workers negative": ("num_workers", -1, r"'num_workers' parameter must be 'auto' or"),
    "num_workers float": ("num_workers", 1.5, r"'num_workers' parameter must be 'auto' or"),
    "random_state text": (
        "random_state",
        "x",
        r"'random_state' parameter must be None, an int in \[0, 2\*\*32 - 1\] or a numpy "
        r"RandomState. Got 'x'",
    ),
    "random_state negative": ("random_state", -1, r"'random_state' parameter must be None"),
    "verbose negative": ("verbose", -1, r"'verbose' parameter must be an int >= 0"),
    "checkpoint_dir int": ("checkpoint_dir", 5, r"'checkpoint_dir' parameter must be None or"),
    "cache_dir int": ("cache_dir", 3, r"'cache_dir' parameter must be None or a folder path"),
    "attributes empty": ("attributes", [], r"'attributes' parameter must be a non-empty"),
    "attributes repeated": ("attributes", ("gender", "gender"), r"distinct column names"),
    "age_bins 0": ("age_bins", 0, r"'age_bins' parameter must be None"),
    "age_bins unknown name": ("age_bins", "decade", r"'age_bins' parameter must be None"),
    "age_bins decreasing": ("age_bins", [30, 20], r"strictly increasing lower edges"),
    "age_bins nested": ("age_bins", [[1, 2]], r"strictly increasing lower edges"),
    "age_bins empty": ("age_bins", [], r"strictly increasing lower edges"),
    "backbone None": ("backbone", None, r"'backbone' parameter must be a str. Got None"),
    "backbone empty": ("backbone", "", r"'backbone' parameter must be one of \["),
    "image_size float": ("image_size", np.float64(16.0), r"'image_size' parameter must be a"),
    "image_size huge": (
        "image_size",
        10**9,
        r"'image_size' parameter must be at most 8192 \(pixels per side\). Got 1000000000",
    ),
    "freeze negative": ("freeze", -1, r"'freeze' parameter must be None"),
    "freeze beyond the stages": ("freeze", 99, r"'freeze' parameter must be .*an int in \[0, 4\]"),
    "freeze bool": ("freeze", True, r"'freeze' parameter must be None"),
    "freeze float": ("freeze", 1.5, r"'freeze' parameter must be None"),
    "unfreeze_after negative": ("unfreeze_after", -1, r"'unfreeze_after' parameter must be"),
    "head_hidden_units 0": ("head_hidden_units", 0, r"'head_hidden_units' parameter must be"),
    "dropout nan": ("dropout", float("nan"), r"'dropout' parameter must be a float in"),
    "weight_decay negative": ("weight_decay", -1, r"'weight_decay' parameter must be a float"),
    "backbone_lr 0": ("backbone_lr", 0, r"'backbone_lr' parameter must be None or a positive"),
    "cache_features text": ("cache_features", "yes", r"'cache_features' parameter must be one"),
    "cache_views 0": ("cache_views", 0, r"'cache_views' parameter must be a positive int"),
    "image_cache text": ("image_cache", "always", r"'image_cache' parameter must be one of"),
    "channels_last text": ("channels_last", "yes", r"'channels_last' parameter must be one of"),
    "test_time_flip 1": ("test_time_flip", 1, r"'test_time_flip' parameter must be one of"),
    "weights missing file": ("weights", "/no/such/file.pth", r"names the file '/no/such/file.pth'"),
}


@pytest.mark.parametrize("param, value, match", BAD.values(), ids=list(BAD))
def test_bad_parameters_are_refused_before_training(data, no_training, param, value, match):
    X, y = data
    clf = MultiAttributeClassifier(**dict(SMALL, **{param: value}))
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        clf.fit(X, y)
    assert clf.get_params()[param] is value  # stored untouched
