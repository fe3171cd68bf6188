"""Temperature scaling: one temperature per head, fitted on the validation split."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._targets import encode_targets
from gar_sklearn._training._calibration import fit_temperature, negative_log_likelihood
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.metrics import expected_calibration_error

SMALL = dict(
    backbone="tiny",
    weights=None,
    image_size=16,
    lr=0.05,
    batch_size=16,
    max_epochs=4,
    age_bins="fairface",
    random_state=0,
)


def overconfident(n=3000, n_classes=4, factor=3.0, seed=0):
    """Logits ``factor`` times too confident for labels drawn from ``softmax(signal)``."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(scale=1.5, size=(n, n_classes))
    labels = np.array([rng.choice(n_classes, p=p) for p in softmax(signal, axis=1)])
    return factor * signal, labels


def test_temperature_lowers_the_nll_and_keeps_the_argmax():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)  # undoes the factor
    before = negative_log_likelihood(logits, labels)
    after = negative_log_likelihood(logits, labels, t)
    assert after < before - 0.1
    calibrated = softmax(logits / t, axis=1)
    np.testing.assert_array_equal(calibrated.argmax(1), logits.argmax(1))
    classes = np.arange(4)
    assert expected_calibration_error(labels, calibrated, classes=classes) < 0.5 * (
        expected_calibration_error(labels, softmax(logits, axis=1), classes=classes)
    )


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    factor=st.floats(0.2, 5.0),
    n=st.integers(5, 200),
    n_classes=st.integers(2, 6),
)
def test_temperature_is_the_minimum_of_a_fine_grid(seed, factor, n, n_classes):
    logits, labels = overconfident(n, n_classes, factor, seed)
    t = fit_temperature(logits, labels)
    grid = np.exp(np.linspace(-7, 7, 1401))  # the search's range, in steps of 1 %
    best_on_grid = min(negative_log_likelihood(logits, labels, g) for g in grid)
    assert negative_log_likelihood(logits, labels, t) <= best_on_grid + 1e-7


@pytest.fixture(scope="module")
def faces():
    X, y = make_synthetic_faces(120, image_size=16, random_state=4)
    return X[:84], y[:84], X[84:], y.iloc[84:].reset_index(drop=True)


@pytest.fixture(scope="module")
def pair(faces):
    X, y, X_val, y_val = faces
    plain = MultiAttributeClassifier(**SMALL).fit(X, y, (X_val, y_val))
    calibrated = MultiAttributeClassifier(**SMALL, calibrate=True).fit(X, y, (X_val, y_val))
    return plain, calibrated


def test_calibration_changes_probabilities_not_predictions(faces, pair):
    plain, calibrated = pair
    X = faces[0]
    assert plain.temperatures_ is None and len(calibrated.temperatures_) == 3
    np.testing.assert_array_equal(plain.predict(X), calibrated.predict(X))
    for p, q, t in zip(
        plain.predict_proba(X), calibrated.predict_proba(X), calibrated.temperatures_
    ):
        # softmax(z / t) from softmax(z): log p is z up to a constant per row
        np.testing.assert_allclose(q, softmax(np.log(p) / t, axis=1), atol=1e-5)


def test_temperatures_minimise_the_validation_nll(faces, pair):
    _, _, X_val, y_val = faces
    _, calibrated = pair
    codes = encode_targets(
        calibrated.transform_targets(y_val), calibrated.attributes_, calibrated.classes_
    )
    module = calibrated.net_.module_.eval()
    with torch.no_grad():
        logits = module(images=torch.as_tensor(X_val).permute(0, 3, 1, 2).contiguous())
    for k, t in enumerate(calibrated.temperatures_):
        z = logits[k].numpy()
        assert t == pytest.approx(fit_temperature(z, codes[:, k]), rel=1e-3)
        assert negative_log_likelihood(z, codes[:, k], t) < negative_log_likelihood(z, codes[:, k])
        assert t != pytest.approx(1.0, abs=0.05)


def test_temperatures_are_saved(faces, pair, tmp_path):
    _, calibrated = pair
    calibrated.save(tmp_path / "model.gar")
    loaded = gar_sklearn.load(tmp_path / "model.gar")
    assert loaded.temperatures_ == calibrated.temperatures_
    for p, q in zip(calibrated.predict_proba(faces[2]), loaded.predict_proba(faces[2])):
        np.testing.assert_array_equal(p, q)


def test_calibrated_test_time_flip_averages_calibrated_views(faces, pair):
    _, calibrated = pair
    X = faces[0][:8]
    flipped = calibrated.predict_proba(X[:, :, ::-1].copy())
    direct = calibrated.predict_proba(X)
    calibrated.set_params(test_time_flip=True)
    try:
        both = calibrated.predict_proba(X)
    finally:
        calibrated.set_params(test_time_flip=False)
    for p, q, r in zip(both, direct, flipped):
        np.testing.assert_allclose(p, (q + r) / 2, atol=1e-5)


def test_calibration_needs_a_validation_split(faces):
    with pytest.raises(ValueError, match="calibrate=True need a validation split"):
        MultiAttributeClassifier(**SMALL, validation_fraction=0, calibrate=True).fit(*faces[:2])


def mixture_nll(logits, mirrored, labels, t):
    """The oracle: the NLL of the average of the two views' softmax(z / t), by scipy."""
    p = (softmax(logits / t, axis=1) + softmax(mirrored / t, axis=1)) / 2
    with np.errstate(divide="ignore"):  # a probability that underflows: an infinite NLL
        return -np.log(p[np.arange(len(labels)), labels]).mean()


def test_two_identical_views_give_the_single_view_temperature():
    logits, labels = overconfident(n=500)
    assert fit_temperature(logits, labels, logits) == pytest.approx(
        fit_temperature(logits, labels), rel=1e-5
    )


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    factor=st.floats(0.2, 5.0),
    n=st.integers(5, 200),
    n_classes=st.integers(2, 6),
    noise=st.floats(0.0, 3.0),
)
def test_flip_averaged_temperature_is_the_minimum_of_a_fine_grid(seed, factor, n, n_classes, noise):
    logits, labels = overconfident(n, n_classes, factor, seed)
    mirrored = logits + np.random.default_rng(seed + 1).normal(scale=noise, size=logits.shape)
    t = fit_temperature(logits, labels, mirrored)
    grid = np.exp(np.linspace(-7, 7, 1401))
    best_on_grid = min(mixture_nll(logits, mirrored, labels, g) for g in grid)
    assert mixture_nll(logits, mirrored, labels, t) <= best_on_grid + 1e-7


def test_averaging_two_views_needs_a_lower_temperature_than_one():
    """Averaging two views that err independently already softens the prediction: the
    temperature that calibrates the average is lower than the one that calibrates a view."""
    signal, labels = overconfident(n=3000, factor=1.0)
    rng = np.random.default_rng(1)
    logits, mirrored = (3.0 * (signal + rng.normal(size=signal.shape)) for _ in range(2))
    single = fit_temperature(logits, labels)
    averaged = fit_temperature(logits, labels, mirrored)
    assert averaged < 0.9 * single
    # the single-view temperature over-softens the average: a worse likelihood
    assert mixture_nll(logits, mirrored, labels, averaged) < mixture_nll(
        logits, mirrored, labels, single
    )


@pytest.mark.parametrize("cached", [False, True], ids=["images", "cached-features"])
def test_with_test_time_flip_temperatures_fit_what_predict_proba_returns(faces, pair, cached):
    """The temperatures minimise the validation NLL of the flip-averaged probabilities
    that predict_proba returns; training itself is the same as without calibration."""
    X, y, X_val, y_val = faces
    params = dict(SMALL, test_time_flip=True)
    if cached:
        params.update(freeze="backbone", cache_features=True)
    plain = MultiAttributeClassifier(**params).fit(X, y, (X_val, y_val))
    clf = MultiAttributeClassifier(**params, calibrate=True).fit(X, y, (X_val, y_val))
    np.testing.assert_allclose(
        plain.history_[:, "valid_loss"], clf.history_[:, "valid_loss"], rtol=1e-6
    )
    codes = encode_targets(clf.transform_targets(y_val), clf.attributes_, clf.classes_)
    fitted = list(clf.temperatures_)

    def nll(k, t):
        clf.temperatures_ = [*fitted[:k], t, *fitted[k + 1 :]]
        p = clf.predict_proba(X_val)[k]
        return -np.log(p[np.arange(len(p)), codes[:, k]]).mean()

    try:
        for k, t in enumerate(fitted):
            at_t = nll(k, t)
            assert at_t <= nll(k, 1.05 * t) + 1e-5 and at_t <= nll(k, t / 1.05) + 1e-5
            assert at_t < nll(k, 1.0)
    finally:
        clf.temperatures_ = fitted
    if not cached:  # the same network as pair's calibrated one, fitted on single views
        single = pair[1].temperatures_
        assert not np.allclose(fitted, single, rtol=1e-3)
