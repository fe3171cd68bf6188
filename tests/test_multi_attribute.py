"""MultiAttributeClassifier: learning, scikit-learn conventions, inputs, freezing, caching, persistence."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._feature_cache import FeatureCache, feature_cache
from gar_sklearn.datasets._synthetic import make_synthetic_faces

from .conftest import TINY


def per_attribute_accuracy(clf, X, y):
    pred = clf.predict(X)
    truth = clf.transform_targets(y)
    return {
        a: float(np.mean(pred[:, k] == truth[a].to_numpy())) for k, a in enumerate(clf.attributes_)
    }


# ---------------------------------------------------------------- learning
def test_learns_each_attribute_from_the_picture(fitted, synthetic):
    _, _, X_test, y_test = synthetic
    acc = per_attribute_accuracy(fitted, X_test, y_test)
    # chance: 0.5, 0.11 and 0.2
    assert acc["gender"] >= 0.95 and acc["race"] >= 0.95 and acc["age"] >= 0.75, acc
    assert fitted.score(X_test, y_test) == pytest.approx(np.mean(list(acc.values())))


def test_learns_from_cached_features_with_frozen_prefix(synthetic):
    X, y, X_test, y_test = synthetic
    clf = MultiAttributeClassifier(
        freeze=1, attributes=("gender", "race"), max_epochs=15, **TINY
    ).fit(X, y)
    assert clf.used_feature_cache_
    acc = per_attribute_accuracy(clf, X_test, y_test)
    assert acc["gender"] >= 0.9 and acc["race"] >= 0.9, acc


def test_history_records_validation_accuracy_per_head(fitted):
    row = fitted.history_[-1]
    for a in ("gender", "age", "race"):
        assert 0.0 <= row[f"valid_acc_{a}"] <= 1.0
    assert row["valid_acc"] == pytest.approx(
        np.mean([row[f"valid_acc_{a}"] for a in ("gender", "age", "race")])
    )


def test_early_stopping_restores_best_weights_on_unlearnable_labels():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (120, 16, 16, 3), dtype=np.uint8)
    y = rng.choice(["a", "b"], 120)  # labels unrelated to the images
    clf = MultiAttributeClassifier(
        attributes=("label",),
        max_epochs=40,
        patience=3,
        lr_schedule=None,
        **{**TINY, "image_size": 16, "lr": 0.05},
    ).fit(X, y)
    losses = clf.history_[:, "valid_loss"]
    assert len(losses) < 40
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best == 3  # stopped `patience` epochs after the best
    # the restored weights reproduce the best epoch's validation loss
    val = clf.net_.history[best]["valid_loss"]
    assert min(losses) == pytest.approx(val)


# ---------------------------------------------------------------- probabilities
def test_proba_rows_sum_to_one_and_argmax_is_predict(fitted, synthetic):
    _, _, X_test, _ = synthetic
    probas = fitted.predict_proba(X_test)
    pred = fitted.predict(X_test)
    assert pred.shape == (len(X_test), 3)
    for k, (p, classes) in enumerate(zip(probas, fitted.classes_)):
        assert p.shape == (len(X_test), len(classes))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(classes[p.argmax(axis=1)], pred[:, k])


def test_classes_are_the_labels_and_age_groups(fitted):
    assert fitted.attributes_ == ("gender", "age", "race")
    assert fitted.classes_[0].tolist() == ["Female", "Male"]
    assert fitted.classes_[1].tolist()[:2] == ["0-2", "3-9"] and len(fitted.classes_[1]) == 9
    assert fitted.classes_[2].tolist() == sorted(["White", "Black", "Asian", "Indian", "Others"])


def test_predict_frame_and_predict_age(fitted, synthetic):
    _, _, X_test, y_test = synthetic
    frame = fitted.predict_frame(X_test[:20], proba=True)
    assert list(frame.columns[:3]) == ["gender", "age", "race"]
    np.testing.assert_array_equal(
        frame[["gender", "age", "race"]].to_numpy(), fitted.predict(X_test[:20])
    )
    probas = fitted.predict_proba(X_test[:20])
    mids = fitted.age_binner_.midpoints_
    np.testing.assert_allclose(fitted.predict_age(X_test[:20]), probas[1] @ mids)
    np.testing.assert_allclose(frame["age_years"], probas[1] @ mids)
    np.testing.assert_allclose(
        fitted.predict_age(X_test[:20], method="argmax"), mids[probas[1].argmax(1)]
    )
    np.testing.assert_allclose(frame["gender_proba"], probas[0].max(1))


# ---------------------------------------------------------------- scikit-learn API
def test_init_stores_parameters_untouched_and_clone_round_trips():
    aug = object()
    clf = MultiAttributeClassifier(
        backbone="resnet19", weights="nonsense", attributes=["age"], augment=aug
    )
    assert clf.backbone == "resnet19" and clf.weights == "nonsense" and clf.attributes == ["age"]
    assert clf.augment is aug
    c2 = clone(MultiAttributeClassifier(lr=0.5, freeze="backbone"))
    assert c2.get_params()["lr"] == 0.5 and c2.get_params()["freeze"] == "backbone"
    c2.set_params(backbone="resnet18", max_epochs=3)
    assert c2.backbone == "resnet18" and c2.max_epochs == 3
    with pytest.raises(ValueError, match="Invalid parameter 'no_such'"):
        c2.set_params(no_such=1)


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        MultiAttributeClassifier().predict(np.zeros((1, 8, 8, 3), np.uint8))


def test_grid_search_over_two_backbones():
    X, y = make_synthetic_faces(60, image_size=32, random_state=1)
    grid = GridSearchCV(
        MultiAttributeClassifier(
            attributes=("gender",), max_epochs=2, **{**TINY, "backbone": "tiny"}
        ),
        {"backbone": ["tiny", "mobilenet_v3_small"], "lr": [1e-2]},
        cv=2,
    ).fit(X, y)
    assert set(grid.cv_results_["param_backbone"]) == {"tiny", "mobilenet_v3_small"}
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.backbone in ("tiny", "mobilenet_v3_small")


def test_random_state_makes_fits_reproducible():
    X, y = make_synthetic_faces(80, image_size=16, random_state=2)
    params = dict(max_epochs=3, **{**TINY, "image_size": 16, "random_state": 7})
    a = MultiAttributeClassifier(**params).fit(X, y)
    b = MultiAttributeClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.history_[:, "train_loss"], b.history_[:, "train_loss"])
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(pa, pb)
    c = MultiAttributeClassifier(**{**params, "random_state": 8}).fit(X, y)
    assert not np.array_equal(a.history_[:, "train_loss"], c.history_[:, "train_loss"])


def test_fit_does_not_touch_the_global_torch_seed():
    X, y = make_synthetic_faces(40, image_size=16, random_state=2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf = MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).fit(X, y)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(123)
    clf.predict(X)  # nor does predict, whose loader would draw a seed from it
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("views", [1, 2])
def test_a_fit_from_a_warm_feature_cache_is_the_fit_from_a_cold_one(views):
    from gar_sklearn.augmentation import RandomFlip

    X, y = make_synthetic_faces(40, image_size=16, random_state=2)
    params = dict(
        freeze="backbone",
        dropout=0.3,
        max_epochs=2,
        cache_views=views,
        augment=RandomFlip(p=0.5) if views > 1 else None,
        **{**TINY, "image_size": 16},
    )
    feature_cache.clear()
    cold = MultiAttributeClassifier(**params).fit(X, y)
    warm = MultiAttributeClassifier(**params).fit(X, y)
    assert warm.history_[:, "train_loss"] == cold.history_[:, "train_loss"]


def test_pickle_round_trip_gives_identical_predictions(fitted, synthetic):
    _, _, X_test, _ = synthetic
    clone_ = pickle.loads(pickle.dumps(fitted))
    for p, q in zip(fitted.predict_proba(X_test), clone_.predict_proba(X_test)):
        np.testing.assert_array_equal(p, q)


def test_model_fitted_on_cuda_predicts_on_cpu_only_machine(fitted, synthetic, monkeypatch):
    # What a CUDA fit pickles: device attributes naming CUDA. On a CPU-only
    # machine skorch maps the tensors to the CPU when unpickling.
    _, _, X_test, _ = synthetic
    state = pickle.dumps(fitted)
    model = pickle.loads(state)
    model.device_ = "cuda"
    model.net_.device = "cuda"
    blob = pickle.dumps(model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA"):
        loaded = pickle.loads(blob)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict(X_test), fitted.predict(X_test))


def test_device_auto_uses_cpu_without_cuda(fitted):
    assert fitted.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'device' parameter must be"):
        MultiAttributeClassifier(device="gpu0", **{k: v for k, v in TINY.items()}).fit(
            *make_synthetic_faces(10, image_size=16, random_state=0)
        )


# ---------------------------------------------------------------- inputs and labels
def test_paths_pil_images_and_grayscale_arrays_give_the_same_predictions(
    fitted, synthetic, tmp_path
):
    _, _, X_test, _ = synthetic
    X = X_test[:12]
    paths = []
    for i, img in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(paths[-1])
    expected = fitted.predict_proba(X)
    for form in (
        paths,
        np.asarray(paths, dtype=object),
        pd.Series(paths),
        [Image.fromarray(img) for img in X],
        list(X),
    ):
        for p, q in zip(expected, fitted.predict_proba(form)):
            np.testing.assert_allclose(p, q, atol=1e-6)
    gray = X.mean(axis=3).round().astype(np.uint8)
    for p, q in zip(
        fitted.predict_proba(gray), fitted.predict_proba(np.repeat(gray[..., None], 3, axis=3))
    ):
        np.testing.assert_allclose(p, q, atol=1e-6)


def test_integer_labels_and_2d_array_y():
    X, y = make_synthetic_faces(120, image_size=16, random_state=3)
    codes = np.column_stack(
        [(y.gender == "Female").astype(int), pd.factorize(y.race, sort=True)[0]]
    )
    clf = MultiAttributeClassifier(
        attributes=("g", "r"), max_epochs=2, **{**TINY, "image_size": 16}
    ).fit(X, codes)
    assert [c.tolist() for c in clf.classes_] == [[0, 1], sorted(set(codes[:, 1]))]
    pred = clf.predict(X)
    assert pred.shape == (120, 2) and set(pred[:, 0]) <= {0, 1}


def test_attribute_subset_only_gender_and_age(synthetic):
    X, y, _, _ = synthetic
    clf = MultiAttributeClassifier(
        attributes=("gender", "age"), age_bins=None, max_epochs=1, **TINY
    ).fit(X, y)
    assert clf.attributes_ == ("gender", "age") and clf.predict(X[:3]).shape == (3, 2)
    assert clf.classes_[1].dtype.kind in "iu"  # exact ages kept as numbers without age_bins


def test_one_dimensional_y_gives_one_dimensional_predictions():
    X, y = make_synthetic_faces(60, image_size=16, random_state=4)
    clf = MultiAttributeClassifier(
        attributes=("gender",), max_epochs=1, **{**TINY, "image_size": 16}
    )
    clf.fit(X, y.gender.to_numpy())
    assert clf.predict(X).shape == (60,) and clf.predict_proba(X).shape == (60, 2)
    assert clf.classes_.tolist() == ["Female", "Male"]


def test_age_interval_one_is_exact_age_classification():
    X, y = make_synthetic_faces(60, image_size=16, random_state=5)
    a = MultiAttributeClassifier(
        attributes=("age",), age_bins=1, max_epochs=2, **{**TINY, "image_size": 16}
    ).fit(X, y)
    b = MultiAttributeClassifier(
        attributes=("age",), age_bins=None, max_epochs=2, **{**TINY, "image_size": 16}
    ).fit(X, y)
    assert a.classes_[0].tolist() == list(range(y.age.max() + 1))
    assert set(b.classes_[0].tolist()) <= set(a.classes_[0].tolist())
    assert set(a.predict(X)[:, 0]) <= set(range(90))
    np.testing.assert_array_equal(a.transform_targets(y)["age"].to_numpy(), y.age.to_numpy())


@pytest.mark.parametrize(
    "y_change, match",
    [
        (lambda y: y.drop(columns="race"), r"missing the attribute column\(s\) \['race'\]"),
        (lambda y: y.iloc[:-1], "X has 30 images, y has 29 rows"),
        (
            lambda y: y.assign(gender=y.gender.where(y.index != 3)),
            r"1 missing label\(s\) in column 'gender' \(rows \[3\]",
        ),
        (lambda y: y.to_numpy()[:, :2], r"expected shape \(n_samples, 3\), got \(30, 2\)"),
        (lambda y: y.gender.to_numpy(), "y is 1-D, so it holds one attribute"),
        (lambda y: y.assign(age=y.age.astype(str) + " years"), "needs numeric ages"),
    ],
)
def test_bad_targets_are_reported(y_change, match):
    X, y = make_synthetic_faces(30, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(age_bins="fairface", max_epochs=1, **{**TINY, "image_size": 16})
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y_change(y))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((0, 8, 8, 3), np.uint8), "X is empty"),
        (np.zeros((5, 8, 8, 3), np.float32), "must have dtype uint8"),
        (np.zeros((5, 64), np.uint8), r"shape \(n_samples, H, W\)"),
        ("faces/", "got a single str"),
    ],
)
def test_bad_images_are_reported(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MultiAttributeClassifier(max_epochs=1, **TINY).fit(X, ["a"] * 5)


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("lr_schedule", "linear", "'lr_schedule' parameter must be one of"),
        ("image_size", 0, "'image_size' parameter must be a positive int"),
        ("dropout", 1.5, r"'dropout' parameter must be a float in \[0.0, 1.0\)"),
        ("optimizer", "adagrad", "'optimizer' parameter must be one of"),
        ("freeze", "layer9", "'freeze' parameter must be"),
        ("on_error", "ignore", "'on_error' parameter must be one of"),
        ("precision", "fp8", "'precision' parameter must be one of"),
        ("augment", "flip", "'augment' parameter must be None or an augmenter"),
        (
            "loss_weights",
            {"height": 2},
            "'loss_weights' parameter must be a dict keyed by attributes",
        ),
    ],
)
def test_bad_parameters_fail_in_fit_with_a_clear_message(param, value, match):
    X, y = make_synthetic_faces(20, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).set_params(
        **{param: value}
    )
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_too_few_images_for_a_validation_split():
    X, y = make_synthetic_faces(1, image_size=16, random_state=0)
    with pytest.raises(ValueError, match="Too few images to hold out a validation split"):
        MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).fit(X, y)


def test_unseen_label_at_score_counts_as_error(fitted, synthetic):
    _, _, X_test, y_test = synthetic
    y_other = y_test.assign(race="Martian")
    pred = fitted.predict(X_test)
    acc_gender = np.mean(pred[:, 0] == y_test.gender.to_numpy())
    acc_age = np.mean(pred[:, 1] == fitted.transform_targets(y_test)["age"].to_numpy())
    assert fitted.score(X_test, y_other) == pytest.approx((acc_gender + acc_age + 0.0) / 3)


# ---------------------------------------------------------------- fine-tuning control
def _stage_params(clf, part):
    return [p.detach().clone() for p in getattr(clf.net_.module_, part).parameters()]


def test_heads_only_training_leaves_the_backbone_untouched():
    X, y = make_synthetic_faces(80, image_size=16, random_state=6)
    params = dict(max_epochs=2, **{**TINY, "image_size": 16})
    clf = MultiAttributeClassifier(freeze="backbone", cache_features=False, **params).fit(X, y)
    torch.manual_seed(TINY["random_state"])
    from gar_sklearn.backbones import build_backbone

    # same seed, same initial backbone: rebuild it the way fit does and compare
    rng_seed = np.random.RandomState(TINY["random_state"]).randint(np.iinfo(np.int32).max)
    torch.manual_seed(int(rng_seed))
    initial = build_backbone("tiny", weights=None)
    initial_params = [p for _, stage in initial.stages for p in stage.parameters()]
    for p, q in zip(_stage_params(clf, "stem"), initial_params):
        assert torch.equal(p, q)
    assert len(_stage_params(clf, "body")) == 0


def test_unfreeze_after_n_epochs_trains_the_backbone_from_then_on(monkeypatch):
    X, y = make_synthetic_faces(80, image_size=16, random_state=6)
    snapshots = []
    from gar_sklearn import _training

    original = _training.Unfreeze.on_epoch_begin

    def spy(self, net, **kwargs):
        original(self, net, **kwargs)
        snapshots.append(
            (
                len(net.history),
                net.module_.stem_frozen,
                [p.detach().clone() for p in net.module_.stem.parameters()],
            )
        )

    monkeypatch.setattr(_training.Unfreeze, "on_epoch_begin", spy)
    MultiAttributeClassifier(
        freeze="backbone",
        unfreeze_after=2,
        max_epochs=4,
        patience=None,
        **{**TINY, "image_size": 16},
    ).fit(X, y)
    frozen = [s[1] for s in snapshots]
    assert frozen == [True, True, False, False]
    assert all(
        torch.equal(a, b) for a, b in zip(snapshots[0][2], snapshots[2][2])
    )  # epochs 1-2: fixed
    assert not all(
        torch.equal(a, b) for a, b in zip(snapshots[2][2], snapshots[3][2])
    )  # epoch 3 trained it


# ---------------------------------------------------------------- feature cache
def test_feature_cache_is_reused_across_clones_and_invalidated_by_config(monkeypatch, tmp_path):
    X, y = make_synthetic_faces(60, image_size=16, random_state=7)
    computed = []
    original = FeatureCache._compute

    def counting(*args, **kwargs):
        out = original(*args, **kwargs)
        computed.append(len(out))
        return out

    monkeypatch.setattr(FeatureCache, "_compute", staticmethod(counting))
    feature_cache.clear()
    base = MultiAttributeClassifier(
        freeze=2, max_epochs=1, validation_fraction=0, **{**TINY, "image_size": 16}
    )
    base.fit(X, y)
    assert computed == [60]
    clone(base).set_params(lr=0.1, dropout=0.5).fit(X, y)  # a head-only change reuses the cache
    assert computed == [60]
    clone(base).fit(X[:30], y[:30])  # a subset of the cached images
    assert computed == [60]
    clone(base).set_params(image_size=20).fit(X, y)  # new size: new features
    clone(base).set_params(freeze=1).fit(X, y)  # new depth: new features
    clone(base).set_params(random_state=1).fit(X, y)  # new random weights: new features
    assert computed == [60, 60, 60, 60]
    # a disk cache serves a fresh process (simulated by clearing memory)
    clone(base).set_params(cache_dir=str(tmp_path)).fit(X, y)
    feature_cache.clear()
    clone(base).set_params(cache_dir=str(tmp_path)).fit(X, y)
    assert computed == [60, 60, 60, 60]
    X2 = X.copy()
    X2[0] = 255 - X2[0]  # a changed image is recomputed, the others are not
    clone(base).set_params(cache_dir=str(tmp_path)).fit(X2, y)
    assert computed == [60, 60, 60, 60, 1]


def test_cached_and_uncached_training_agree():
    X, y = make_synthetic_faces(60, image_size=16, random_state=8)
    params = dict(freeze="backbone", max_epochs=2, dropout=0.0, **{**TINY, "image_size": 16})
    a = MultiAttributeClassifier(cache_features=True, **params).fit(X, y)
    b = MultiAttributeClassifier(cache_features=False, **params).fit(X, y)
    # features are stored in float16, so losses agree to about 1e-3, not exactly
    np.testing.assert_allclose(a.history_[:, "train_loss"], b.history_[:, "train_loss"], rtol=2e-3)


def test_feature_batches_are_fetched_at_once_with_each_images_view_drawn_per_epoch():
    from torch.utils.data import DataLoader

    from gar_sklearn._data import FeatureDataset, collate_batch

    features = torch.arange(50 * 3 * 2, dtype=torch.float16).reshape(50, 3, 2)  # 50 images, 3 views
    targets = np.arange(100).reshape(50, 2)
    ds = FeatureDataset(features, targets, random_view=True, seed=4)
    views = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        singles = [ds[i] for i in range(50)]
        x, y = collate_batch(ds.__getitems__(list(range(50))))
        # the batch holds exactly the rows of single-item fetches, in float32
        assert x["features"].dtype == torch.float32
        assert torch.equal(x["features"], torch.stack([s[0]["features"] for s in singles]))
        assert torch.equal(y, torch.as_tensor(targets))
        views.append(
            (x["features"][:, 0] - 6 * torch.arange(50)) / 2
        )  # the view index of each image
    views = torch.stack(views)
    assert set(views.unique().tolist()) == {0.0, 1.0, 2.0}
    assert not torch.equal(views[0], views[1])  # a new draw every epoch...
    ds.set_epoch(1)
    again = collate_batch(ds.__getitems__(list(range(50))))[0]["features"]
    assert torch.equal(
        (again[:, 0] - 6 * torch.arange(50)) / 2, views[1]
    )  # ... that the epoch reproduces
    # validation: the un-augmented view 0, through a DataLoader with the collate function
    loader = DataLoader(FeatureDataset(features, targets), batch_size=16, collate_fn=collate_batch)
    got = torch.cat([x["features"] for x, _ in loader])
    assert torch.equal(got, features[:, 0].float())
    # items that are not collated yet go through torch's default collate
    x, y = collate_batch([ds[0], ds[1]])
    assert x["features"].shape == (2, 2) and torch.equal(y, torch.as_tensor(targets[:2]))


def _stem_calls(clf):
    """A list that grows by the batch size each time ``clf``'s stem runs."""
    calls = []
    clf.net_.module_.stem.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    return calls


def _by_hand(clf, X, flip=False):
    """Probabilities from float16-rounded stem features, computed outside the library.

    The stem runs unfolded, as the library runs it while a hook (``_stem_calls``) is on it.
    """
    module = clf.net_.module_.eval()
    images = torch.as_tensor(np.asarray(X)).permute(0, 3, 1, 2)
    with torch.inference_mode():
        out = [torch.softmax(lg, 1) for lg in module(features=module.encode(images).half().float())]
        if flip:
            mirrored = module(features=module.encode(torch.flip(images, dims=[3])).half().float())
            out = [(p + torch.softmax(lg, 1)) / 2 for p, lg in zip(out, mirrored)]
    return [p.numpy() for p in out]


@pytest.mark.parametrize("flip", [False, True])
def test_predict_reads_frozen_features_from_the_cache(flip):
    X, y = make_synthetic_faces(80, image_size=16, random_state=10)
    X_train, y_train, X_val = X[:50], y.iloc[:50], X[50:]
    feature_cache.clear()
    params = dict(
        freeze=2,
        max_epochs=1,
        validation_fraction=0,
        test_time_flip=flip,
        **{**TINY, "image_size": 16},
    )
    first = MultiAttributeClassifier(**params).fit(X_train, y_train)
    calls = _stem_calls(first)
    proba = first.predict_proba(X_val)
    assert sum(calls) == 30 * (2 if flip else 1)  # the new images (and mirrors) once
    for got, expected in zip(proba, _by_hand(first, X_val, flip)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # a second grid-search candidate with the same stem scores the same fold without the stem
    second = clone(first).set_params(lr=0.05, dropout=0.3).fit(X_train, y_train)
    calls = _stem_calls(second)
    second.predict(X_val)
    assert calls == []
    for got, expected in zip(second.predict_proba(X_val), _by_hand(second, X_val, flip)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_predict_streams_past_the_cache_bound_for_unreadable_images_and_unfrozen_stems(
    monkeypatch, tmp_path
):

    X, y = make_synthetic_faces(40, image_size=16, random_state=11)
    feature_cache.clear()
    params = dict(max_epochs=1, validation_fraction=0, **{**TINY, "image_size": 16})
    frozen = MultiAttributeClassifier(freeze=2, **params).fit(X[:20], y.iloc[:20])
    stored = feature_cache.nbytes()
    per_image = stored // 20
    # the bound: 20 images fit exactly, 21 do not
    with gar_sklearn.config_context(predict_cache_bytes=20 * per_image):
        calls = _stem_calls(frozen)
        frozen.predict(X[19:40])  # 21 images: streamed from the pixels, nothing stored
        assert feature_cache.nbytes() == stored and sum(calls) == 21
        frozen.predict(X[20:40])  # 20 images: cached
        assert feature_cache.nbytes() == 2 * stored and sum(calls) == 41
        frozen.predict(X[20:40])
        assert sum(calls) == 41
    # the same rows streamed and cached agree up to the float16 rounding of the features
    with gar_sklearn.config_context(predict_cache_bytes=0):
        streamed = frozen.predict_proba(X[20:40])
    with gar_sklearn.config_context(predict_cache_bytes=2**30):
        for a, b in zip(streamed, frozen.predict_proba(X[20:40])):
            np.testing.assert_allclose(a, b, atol=5e-3)
    # skipping unreadable files is the streaming path's: it still works on a frozen model
    paths = []
    for i in range(3):
        Image.fromarray(X[i]).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    skipping = clone(frozen).set_params(on_error="skip").fit(X[:20], y.iloc[:20])
    before = feature_cache.nbytes()
    with pytest.warns(UserWarning, match="bad.png"):
        pred = skipping.predict_frame(paths + [str(tmp_path / "bad.png")])
    assert pred.iloc[:3].notna().all().all() and pred.iloc[3].isna().all()
    assert feature_cache.nbytes() == before
    # a model trained end to end has no fixed features to cache
    full = MultiAttributeClassifier(**params).fit(X[:20], y.iloc[:20])
    assert not full.used_feature_cache_
    full.predict(X[20:40])
    assert feature_cache.nbytes() == before


def test_age_label_distributions_with_age_sigma():
    X, y = make_synthetic_faces(120, image_size=16, random_state=9)
    clf = MultiAttributeClassifier(
        attributes=("gender", "age"),
        age_bins=1,
        age_sigma=2.0,
        max_epochs=2,
        **{**TINY, "image_size": 16},
    ).fit(X, y)
    Q = clf.net_.soft_targets[1].numpy()
    ages = clf.classes_[1].astype(float)
    i = int(np.searchsorted(ages, 30))
    expected = np.exp(-((ages - 30) ** 2) / (2 * 2.0**2))
    np.testing.assert_allclose(Q[i], expected / expected.sum(), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(Q.sum(axis=1), 1, rtol=1e-5)
    # the loss of a batch is the cross-entropy against those rows, plus the gender head's
    logits = (torch.randn(4, 2), torch.randn(4, len(ages)))
    target = torch.tensor([[0, i], [1, i], [0, 0], [1, len(ages) - 1]])
    soft = torch.as_tensor(Q)[target[:, 1]]
    manual = (
        torch.nn.functional.cross_entropy(logits[0], target[:, 0])
        - (soft * torch.log_softmax(logits[1], dim=1)).sum(1).mean()
    )
    assert clf.net_.get_loss(logits, target).item() == pytest.approx(manual.item(), rel=1e-5)
    with pytest.raises(ValueError, match="'age_sigma' parameter must be None or a positive float"):
        clf.set_params(age_sigma=0).fit(X, y)


def test_predict_age_group_sums_the_fine_age_distribution(synthetic):
    X, y, X_test, _ = synthetic
    clf = MultiAttributeClassifier(attributes=("age",), age_bins=1, max_epochs=2, **TINY).fit(X, y)
    proba = clf.predict_proba(X_test[:30])[0]
    groups = clf.predict_age_group(X_test[:30])
    ages = clf.classes_[0]
    from gar_sklearn.preprocessing import FAIRFACE_AGE_GROUPS, AgeBinner

    of_age = AgeBinner().fit(ages).transform(ages)
    for p, g in zip(proba, groups):  # by hand: the group whose ages hold the most probability
        sums = {name: p[of_age == name].sum() for name in FAIRFACE_AGE_GROUPS}
        assert g == max(sums, key=sums.get)
    frame = clf.predict_frame(X_test[:30], age_groups="fairface")
    np.testing.assert_array_equal(frame["age_group"].to_numpy(), groups)
    decades = clf.predict_age_group(X_test[:30], bins=10)
    # ten-year groups up to the oldest class (89), the last one open-ended
    assert set(decades) <= {f"{d}-{d + 9}" for d in range(0, 80, 10)} | {"80+"}


def test_age_groups_without_an_age_head_fail_before_a_pass_over_X(synthetic, monkeypatch):
    X, y, X_test, _ = synthetic
    clf = MultiAttributeClassifier(attributes=("gender",), max_epochs=1, **TINY).fit(X, y)
    monkeypatch.setattr(type(clf), "_predict_probas", lambda *a: pytest.fail("predicted first"))
    for call in (
        lambda: clf.predict_frame(X_test, age_groups="fairface"),
        lambda: clf.predict_age_group(X_test),
        lambda: clf.predict_age(X_test),
    ):
        with pytest.raises(ValueError, match=r"predicts \['gender'\], not 'age'"):
            call()


def test_test_time_flip_averages_an_image_and_its_mirror(fitted, synthetic):
    _, _, X_test, _ = synthetic
    X = X_test[:10]
    plain = fitted.predict_proba(X)
    mirrored = fitted.predict_proba(np.ascontiguousarray(X[:, :, ::-1]))
    flip = copy.deepcopy(fitted).set_params(test_time_flip=True)  # a predict-time switch: no refit
    for p, m, f in zip(plain, mirrored, flip.predict_proba(X)):
        np.testing.assert_allclose(f, (p + m) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="'test_time_flip' parameter must be one of"):
        clone(fitted).set_params(test_time_flip="yes").fit(X, np.array(["a", "b"] * 5))


def test_a_failed_fit_leaves_the_estimator_as_it_was(synthetic, monkeypatch):
    X, y, _, _ = synthetic
    clf = MultiAttributeClassifier(max_epochs=1, **TINY).fit(X[:40], y[:40])
    before = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    expected = clf.predict_proba(X[:5])
    from gar_sklearn import _multi_attribute

    # a refit with a bad y fails in validation; one whose network cannot be built fails later
    with pytest.raises(ValueError, match=r"missing the attribute column\(s\) \['race'\]"):
        clf.fit(X[:40], y[:40].drop(columns="race"))

    def unavailable(*args, **kwargs):
        raise RuntimeError("weights unavailable")

    monkeypatch.setattr(_multi_attribute, "build_backbone", unavailable)
    with pytest.raises(RuntimeError, match="weights unavailable"):
        clf.fit(X[:40], y[:40])
    # the fitted model is still there, whole, and predicts as before
    assert {k: v for k, v in vars(clf).items() if k.endswith("_")}.keys() == before.keys()
    assert all(getattr(clf, k) is v for k, v in before.items())
    for a, b in zip(expected, clf.predict_proba(X[:5])):
        np.testing.assert_array_equal(a, b)
    # an estimator never fitted stays unfitted
    fresh = clone(clf)
    with pytest.raises(RuntimeError, match="weights unavailable"):
        fresh.fit(X[:40], y[:40])
    assert not [k for k in vars(fresh) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        fresh.predict(X[:2])


def test_training_mode_is_set_only_when_it_changes(monkeypatch):
    from gar_sklearn.backbones import MultiHeadNetwork

    X, y = make_synthetic_faces(64, image_size=16, random_state=12)
    modes = []
    original = MultiHeadNetwork.train

    def spy(self, mode=True):
        modes.append(bool(mode))
        return original(self, mode)

    monkeypatch.setattr(MultiHeadNetwork, "train", spy)
    clf = MultiAttributeClassifier(
        freeze=1,
        max_epochs=3,
        validation_fraction=0.25,
        patience=None,
        **{**TINY, "image_size": 16, "batch_size": 8},
    ).fit(X, y)
    # 6 training and 2 validation batches an epoch, 24 in all: set before each, the mode would be
    # set 24 times or more; it is set when it flips (twice an epoch), plus around feature extraction
    assert 6 <= len(modes) <= 12, modes
    assert all(a != b for a, b in zip(modes[-6:], modes[-5:])), modes
    # the frozen stem stays in evaluation mode (fixed BatchNorm statistics) while the rest trains
    module = clf.net_.module_
    module.train(True)
    assert not module.stem.training and module.heads.training


def test_named_adam_optimizers_use_torchs_fused_kernel_with_the_same_steps(monkeypatch):
    from gar_sklearn._training import _build

    made = []

    def recording(cls):
        class Recording(cls):
            def __init__(self, params, **kwargs):
                made.append(kwargs.get("fused"))
                super().__init__(params, **kwargs)

        return Recording

    monkeypatch.setattr(
        _build,
        "OPTIMIZERS",
        {k: recording(v) for k, v in _build.OPTIMIZERS.items()},
    )
    X, y = make_synthetic_faces(48, image_size=16, random_state=13)
    params = dict(
        max_epochs=3,
        validation_fraction=0,
        patience=None,
        freeze="backbone",
        head_hidden_units=8,
        **{**TINY, "image_size": 16, "batch_size": 16},
    )
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        made.clear()
        fused = MultiAttributeClassifier(optimizer=name, **params).fit(X, y)
        plain = MultiAttributeClassifier(optimizer=recording(cls), **params).fit(
            X, y
        )  # a class: as given
        assert made == [True, None]
        # the same updates, up to float rounding
        np.testing.assert_allclose(
            fused.history_[:, "train_loss"], plain.history_[:, "train_loss"], rtol=1e-4
        )
    made.clear()
    MultiAttributeClassifier(optimizer="sgd", **params).fit(X, y)
    # channels-last convolutions in training (the fused kernel would mix up their resumed state's layout)
    MultiAttributeClassifier(**{**params, "freeze": None}).fit(X, y)
    MultiAttributeClassifier(**{**params, "unfreeze_after": 1}).fit(X, y)
    assert made == [None, None, None]


def test_an_image_size_too_small_for_the_backbone_fails_at_fit_naming_both():
    X, y = make_synthetic_faces(8, image_size=32, random_state=0)
    clf = MultiAttributeClassifier(
        backbone="alexnet", weights=None, image_size=32, attributes=("gender",), max_epochs=1
    )
    with pytest.raises(
        ValueError,
        match=r"'image_size' parameter must be at least 63 for backbone "
        r"'alexnet'.*Got image_size=32",
    ):
        clf.fit(X, y)
