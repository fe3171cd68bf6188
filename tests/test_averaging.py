"""Weight averaging (EMA, SWA) and richer cached views."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._data import view_rng
from gar_sklearn._training._datasets import stem_features
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing._images import as_image_source

from .conftest import REPO, requires_utkface
from .test_checkpoint import assert_same_fit, interrupt_at

# one training step per epoch (the batch holds every image), no validation: the weights after
# each epoch are the weights after each step
ONE_STEP = dict(
    backbone="tiny",
    weights=None,
    image_size=16,
    lr=0.05,
    batch_size=256,
    validation_fraction=0,
    lr_schedule=None,
    patience=None,
    age_bins="fairface",
    random_state=0,
)


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(80, image_size=16, random_state=2)


def float_state(clf):
    """The module's floating-point weights and buffers (BatchNorm's counters are integers)."""
    return {k: v.clone() for k, v in clf.net_.module_.state_dict().items() if v.is_floating_point()}


@pytest.fixture(scope="module")
def raw_weights(faces):
    """The weights after 1, 2 and 3 steps of the plain fit."""
    return [
        float_state(MultiAttributeClassifier(**ONE_STEP, max_epochs=k).fit(*faces))
        for k in (1, 2, 3)
    ]


def test_ema_is_the_hand_computed_average_of_two_steps(faces, raw_weights):
    w1, w2, _ = raw_weights
    clf = MultiAttributeClassifier(
        **ONE_STEP, max_epochs=2, weight_averaging="ema", ema_decay=0.7
    ).fit(*faces)
    averaged = float_state(clf)
    assert any(not torch.allclose(w1[k], w2[k]) for k in w1)
    for key in w1:  # BatchNorm's running statistics are averaged as the weights are
        torch.testing.assert_close(averaged[key], 0.7 * w1[key] + 0.3 * w2[key], msg=key)


def test_swa_averages_the_epochs_after_the_start(faces, raw_weights):
    _, w2, w3 = raw_weights
    clf = MultiAttributeClassifier(
        **ONE_STEP, max_epochs=3, weight_averaging="swa", averaging_start=1
    ).fit(*faces)
    averaged = float_state(clf)
    for key in w2:
        torch.testing.assert_close(averaged[key], (w2[key] + w3[key]) / 2, msg=key)


def test_validation_and_prediction_use_the_averaged_weights(faces):
    X, y = faces
    val = (X[60:], y.iloc[60:].reset_index(drop=True))
    params = dict(ONE_STEP, batch_size=16, max_epochs=3, weight_averaging="ema", ema_decay=0.5)
    clf = MultiAttributeClassifier(**params).fit(X[:60], y[:60], val)
    # the last epoch's validation loss is the loss of the weights the model keeps
    module = clf.net_.module_.eval()
    images = torch.as_tensor(val[0]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = module(images=images)
    codes = clf.transform_targets(val[1])
    loss = 0.0
    for lg, classes, a in zip(logits, clf.classes_, clf.attributes_):
        index = {label: i for i, label in enumerate(classes.tolist())}
        loss += F.cross_entropy(lg, torch.tensor([index[v] for v in codes[a].tolist()]))
    assert clf.history_[-1, "valid_loss"] == pytest.approx(float(loss), rel=1e-5)
    with gar_sklearn.config_context(fold_batch_norm=True):  # the folded copy is of these weights
        for p, lg in zip(clf.predict_proba(val[0]), logits):
            np.testing.assert_allclose(p, torch.softmax(lg, 1).numpy(), atol=1e-5)


def test_averaging_leaves_the_optimizer_trajectory_alone(faces):
    # the optimizer trains its own weights: the training losses are those of the plain fit
    params = dict(ONE_STEP, batch_size=16, max_epochs=3, dropout=0.0)
    plain = MultiAttributeClassifier(**params).fit(*faces)
    ema = MultiAttributeClassifier(**params, weight_averaging="ema", ema_decay=0.9).fit(*faces)
    assert ema.history_[:, "train_loss"] == plain.history_[:, "train_loss"]


def test_saved_and_best_checkpoint_hold_the_averaged_weights(faces, tmp_path):
    X, y = faces
    clf = MultiAttributeClassifier(
        **dict(ONE_STEP, validation_fraction=0.25, batch_size=16, max_epochs=2),
        weight_averaging="swa",
        checkpoint_dir=tmp_path / "ckpt",
    ).fit(X, y)
    clf.save(tmp_path / "model.gar")
    loaded = gar_sklearn.load(tmp_path / "model.gar")
    for p, q in zip(clf.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    assert clf.history_[-1, "valid_loss_best"]  # so best.pt was written after the last epoch
    best = gar_sklearn.load(tmp_path / "ckpt" / "best.pt")
    for p, q in zip(clf.predict_proba(X), best.predict_proba(X)):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("method", ["ema", "swa"])
def test_interrupted_averaging_fit_resumes_exactly(faces, monkeypatch, tmp_path, method):
    params = dict(
        ONE_STEP,
        batch_size=16,
        validation_fraction=0.2,
        max_epochs=4,
        patience=2,
        weight_averaging=method,
        ema_decay=0.8,
        averaging_start=1,
    )
    expected = MultiAttributeClassifier(**params).fit(*faces)
    interrupt_at(monkeypatch, epoch=3)
    with pytest.warns(UserWarning, match="Fit again with checkpoint_dir=.* to resume"):
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*faces)
    monkeypatch.undo()
    resumed = MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*faces)
    assert_same_fit(resumed, expected, faces[0])


def test_averaging_on_cached_features(faces):
    clf = MultiAttributeClassifier(
        **dict(ONE_STEP, batch_size=16, max_epochs=2, freeze="block2"),
        weight_averaging="ema",
        ema_decay=0.5,
    ).fit(*faces)
    assert clf.used_feature_cache_ and clf.predict(faces[0][:3]).shape == (3, 3)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(weight_averaging="mean"), "The 'weight_averaging' parameter must be"),
        (dict(ema_decay=1.5), "The 'ema_decay' parameter must be"),
        (dict(averaging_start=-1), "The 'averaging_start' parameter must be"),
    ],
)
def test_averaging_parameters_are_checked(faces, params, match):
    with pytest.raises(ValueError, match=match):
        MultiAttributeClassifier(**ONE_STEP, **params).fit(*faces)


# ---------------------------------------------------------------- richer cached views
def test_cached_face_augmenter_views_are_the_stem_of_the_augmented_images(faces):
    X, _ = faces
    clf = MultiAttributeClassifier(**ONE_STEP, max_epochs=1, freeze="block2")
    clf.fit(*faces)
    module = clf.net_.module_
    source = as_image_source(X[:6])
    augmenter = FaceAugmenter(crop_p=1.0, light_p=1.0)
    access = clf._feature_cache_access("cpu")
    views = stem_features(module, source, cache=access, n_views=4, augmenter=augmenter)
    assert views.shape[:2] == (6, 4)
    for i, key in enumerate(source.cache_keys()[:2]):
        for view in (1, 3):
            image = augmenter.augment(X[i], view_rng(key, view))
            x = torch.as_tensor(image).permute(2, 0, 1)[None].contiguous()
            with torch.no_grad():
                expected = module.stem(module.normalize(x))
            np.testing.assert_allclose(
                views[i, view].float().numpy(), expected[0].numpy(), atol=2e-2, rtol=1e-2
            )
    assert not torch.equal(views[:, 1], views[:, 2])  # every view its own draw


def test_fit_from_four_cached_face_augmenter_views(faces):
    params = dict(
        ONE_STEP,
        batch_size=16,
        max_epochs=2,
        freeze="block2",
        augment=FaceAugmenter(),
        cache_views=4,
    )
    a = MultiAttributeClassifier(**params).fit(*faces)
    b = MultiAttributeClassifier(**params).fit(*faces)
    two = MultiAttributeClassifier(**dict(params, cache_views=2)).fit(*faces)
    assert a.used_feature_cache_ and a.history_[:, "train_loss"] == b.history_[:, "train_loss"]
    assert a.history_[:, "train_loss"] != two.history_[:, "train_loss"]


# ---------------------------------------------------------------- benchmark
@pytest.mark.realdata
@requires_utkface
def test_accuracy_benchmark_switches_features_on_and_reports_gains(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    try:
        import accuracy_utkface
        from _common import utkface_split

        _, X_test, _, _ = utkface_split(n=160)
        # a baseline that got everything wrong, with no confidence: each gain is this run's value
        zeros = np.zeros(len(X_test))
        np.savez(
            tmp_path / "base.npz",
            test_paths=np.asarray(X_test, dtype=str),
            **{f"{h}_correct": zeros for h in ("gender", "race", "age9")},
            **{f"{h}_confidence": zeros for h in ("gender", "race", "age9")},
            age_error=zeros,
            age_error_argmax=zeros,
        )
        results = accuracy_utkface.main(
            [
                *("--n", "160", "--image-size", "32", "--epochs", "2", "--weights", "none"),
                *("--weight-averaging", "ema", "--ema-decay", "0.9", "--views", "3"),
                *("--view-augment", "face", "--calibrate", "--n-boot", "50", "--verbose", "0"),
                *("--baseline", str(tmp_path / "base.npz"), "--save-predictions"),
                *("--out", str(tmp_path / "acc")),
            ]
        )
    finally:
        for name in ("_common", "_intervals", "accuracy_utkface"):
            sys.modules.pop(name, None)
    overall = results["overall"]
    gains = {row["metric"]: row for row in results["gains"]}
    assert gains["gender_correct"]["gain"] == pytest.approx(overall["gender_accuracy"])
    assert gains["age_error"]["gain"] == pytest.approx(overall["age_mae"])
    assert gains["race_ece"]["this_run"] == pytest.approx(overall["race_ece"])
    for metric, row in gains.items():
        assert row["gain_lower"] <= row["gain_upper"]
        if not metric.endswith("_ece"):
            # a percentile interval of a mean holds the mean; one of a calibration error
            # need not (the error of a resample is biased upwards), so only the order is asserted
            assert row["gain_lower"] - 1e-12 <= row["gain"] <= row["gain_upper"] + 1e-12
    ece = {(r["race"], r["head"]): r for r in results["calibration"]["ece"]}
    assert ece["all", "race"]["ece_after"] == pytest.approx(overall["race_ece"])
    assert len(results["calibration"]["temperatures"]) == 3
    assert results["settings"]["weight_averaging"] == "ema" and results["settings"]["views"] == 3
    saved = np.load(tmp_path / "acc.npz")
    assert saved["gender_correct"].mean() == pytest.approx(overall["gender_accuracy"])
