"""Augmenters as scikit-learn Pipeline steps: they act on the training path only.

A Pipeline ``[("augment", augmenter), ("clf", estimator)]`` must train exactly
as the estimator's ``augment`` parameter does (images augmented afresh every
epoch, on the cached-feature path too) and predict and score on the images as
given.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from torch import nn

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn.augmentation import AugmentedView, BaseAugmenter, FaceAugmenter, RandomFlip
from gar_sklearn.backbones import register_backbone
from gar_sklearn.datasets import make_synthetic_faces

# num_workers=0: augmentation runs in this process, where the recorder sees it
FAST = dict(
    backbone="tiny",
    weights=None,
    image_size=16,
    batch_size=16,
    lr=1e-2,
    num_workers=0,
    verbose=0,
    random_state=0,
)


class Recorder(BaseAugmenter):
    """Flip with probability ``p``; record each call (the image's bytes and the first
    number drawn) in the class-level ``calls`` list."""

    calls = []

    def __init__(self, p=0.5):
        self.p = p

    def _augment(self, image, rng):
        u = rng.random()
        Recorder.calls.append((image.tobytes(), u))
        return image[:, ::-1].copy() if u < self.p else image.copy()


class Invert(BaseAugmenter):
    """A destructive augmenter: a model that predicted on its output would change."""

    def _augment(self, image, rng):
        return 255 - image


class NarrowNet(nn.Module):
    """A second tiny backbone: one strided convolution block and pooling."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU()
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def split(self):
        return [("block", self.block), ("pool", self.pool)], 4


register_backbone("tiny_narrow", build=NarrowNet, split=NarrowNet.split)


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(48, image_size=16, random_state=0)


@pytest.fixture(autouse=True)
def fresh_recorder():
    Recorder.calls.clear()


def test_transform_leaves_images_as_they_are_and_fit_transform_hands_on_a_view(faces):
    X, _ = faces
    augmenter = FaceAugmenter()
    assert augmenter.fit(X).transform(X) is X
    view = augmenter.fit_transform(X)
    assert isinstance(view, AugmentedView)
    assert view.images is X and view.augmenter is augmenter
    np.testing.assert_array_equal(np.asarray(view), X)  # read as data: the originals
    np.testing.assert_array_equal(view[3], X[3])
    assert len(view[2:5]) == 3 and view[2:5].augmenter is augmenter
    paths = AugmentedView(["a.png", "b.png", "c.png"], augmenter)
    assert paths[[2, 0]].images == ["c.png", "a.png"] and paths[-1] == "c.png"
    with pytest.raises(ValueError, match="The 'p' parameter of RandomFlip"):
        RandomFlip(p=2).fit_transform(X)  # parameters checked when the pipeline is fitted


@pytest.mark.parametrize("freeze", [None, 2], ids=["images", "cached-features"])
def test_a_pipeline_trains_as_the_augment_parameter_does(faces, freeze):
    X, y = faces
    params = dict(FAST, freeze=freeze, max_epochs=3)
    augmenter = FaceAugmenter(flip_p=0.5, light_p=0.5)
    pipe = Pipeline(
        [("augment", clone(augmenter)), ("clf", MultiAttributeClassifier(**params))]
    ).fit(X, y)
    bare = MultiAttributeClassifier(augment=clone(augmenter), **params).fit(X, y)
    unaugmented = MultiAttributeClassifier(**params).fit(X, y)
    clf = pipe.named_steps["clf"]
    assert clf.used_feature_cache_ is (freeze is not None)
    assert clf.augment is None  # the parameter stays as given
    np.testing.assert_array_equal(clf.history_[:, "train_loss"], bare.history_[:, "train_loss"])
    assert clf.history_[-1, "train_loss"] != unaugmented.history_[-1, "train_loss"]
    for p, q in zip(pipe.predict_proba(X), bare.predict_proba(X)):
        np.testing.assert_array_equal(p, q)


def test_each_epoch_draws_new_augmentations_of_every_image(faces):
    X, y = faces
    n_epochs = 3
    Pipeline(
        [
            ("augment", Recorder()),
            (
                "clf",
                MultiAttributeClassifier(
                    max_epochs=n_epochs, validation_fraction=0, image_cache=False, **FAST
                ),
            ),
        ]
    ).fit(X, y)
    calls = Recorder.calls
    assert len(calls) == n_epochs * len(X)  # every image once per epoch, nothing else
    epochs = [calls[k * len(X) : (k + 1) * len(X)] for k in range(n_epochs)]
    originals = sorted(image.tobytes() for image in X)
    for epoch in epochs:
        assert sorted(image for image, _ in epoch) == originals
    draws = [dict(epoch) for epoch in epochs]
    for first, second in zip(draws, draws[1:]):
        # for each image, another random number than in the epoch before
        assert all(first[key] != second[key] for key in first)


def test_predict_and_score_see_the_images_as_given(faces):
    X, y = faces
    pipe = Pipeline(
        [("augment", Invert()), ("clf", MultiAttributeClassifier(max_epochs=2, **FAST))]
    ).fit(X, y)
    clf = pipe.named_steps["clf"]
    for p, q in zip(pipe.predict_proba(X), clf.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(pipe.predict(X), clf.predict(X))
    assert pipe.score(X, y) == clf.score(X, y)
    # the same check with a recorder: predicting and scoring never call the augmenter
    recorded = Pipeline(
        [("augment", Recorder()), ("clf", MultiAttributeClassifier(max_epochs=1, **FAST))]
    ).fit(X, y)
    Recorder.calls.clear()
    recorded.predict(X)
    recorded.score(X, y)
    assert Recorder.calls == []


def test_two_different_augmenters_are_refused_and_equal_ones_accepted(faces):
    X, y = faces
    twice = Pipeline(
        [
            ("augment", FaceAugmenter()),
            ("clf", MultiAttributeClassifier(augment=RandomFlip(), max_epochs=1, **FAST)),
        ]
    )
    with pytest.raises(ValueError, match=r"two augmenters: its 'augment' parameter RandomFlip"):
        twice.fit(X, y)
    same = Pipeline(
        [
            ("augment", RandomFlip(p=0.3)),
            ("clf", MultiAttributeClassifier(augment=RandomFlip(p=0.3), max_epochs=1, **FAST)),
        ]
    )
    assert same.fit(X, y).named_steps["clf"].history_[-1, "epoch"] == 1


def test_clone_and_pickle_of_the_pipeline(faces):
    X, y = faces
    pipe = Pipeline(
        [
            ("augment", FaceAugmenter(flip_p=0.25)),
            ("clf", MultiAttributeClassifier(max_epochs=1, **FAST)),
        ]
    )
    twin = clone(pipe)
    assert twin.named_steps["augment"] is not pipe.named_steps["augment"]
    assert twin.get_params()["augment__flip_p"] == 0.25
    assert twin.get_params()["clf__backbone"] == "tiny"
    pipe.fit(X, y)
    restored = pickle.loads(pickle.dumps(pipe))
    for p, q in zip(restored.predict_proba(X), pipe.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    assert restored.named_steps["augment"].get_params() == FaceAugmenter(flip_p=0.25).get_params()


def test_grid_search_tunes_the_augmenter_and_the_backbone_together(faces):
    X, y = faces
    pipe = Pipeline(
        [("augment", RandomFlip()), ("clf", MultiAttributeClassifier(max_epochs=2, **FAST))]
    )
    grid = {"augment__p": [0.0, 1.0], "clf__backbone": ["tiny", "tiny_narrow"]}
    cv = KFold(2, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, grid, cv=cv).fit(X, y)
    candidates = search.cv_results_["params"]
    assert len(candidates) == 4
    # each candidate's fold score is the score of that pipeline refitted by hand
    train, test = next(cv.split(X))
    for k in (1, 2):  # (p=0, tiny_narrow) and (p=1, tiny)
        model = clone(pipe).set_params(**candidates[k]).fit(X[train], y.iloc[train])
        assert search.cv_results_["split0_test_score"][k] == pytest.approx(
            model.score(X[test], y.iloc[test]), abs=1e-12
        )
    best = search.best_estimator_
    assert best.named_steps["clf"].stage_names_ == (
        ["block", "pool"]
        if search.best_params_["clf__backbone"] == "tiny_narrow"
        else ["block1", "block2", "block3", "pool"]
    )


def test_a_fusion_pipeline_trains_as_parts_given_the_augmenter():
    X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=1)
    augmenter = FaceAugmenter(flip_p=0.5, crop_p=0.0)

    def fusion(augment):
        part = dict(FAST, max_epochs=1, augment=augment)
        return GenderFusionClassifier(
            gender_estimator=MultiAttributeClassifier(attributes=("gender",), **part),
            specialist=MultiAttributeClassifier(attributes=("age", "race"), **part),
            augment=augment,
            random_state=0,
        )

    pipe = Pipeline([("augment", Recorder(p=0.5)), ("clf", fusion(None))]).fit(X, y)
    assert Recorder.calls  # the parts augmented their training images
    Recorder.calls.clear()
    pipe.predict(X)
    assert Recorder.calls == []

    with_view = Pipeline([("augment", clone(augmenter)), ("clf", fusion(None))]).fit(X, y)
    with_params = fusion(clone(augmenter)).fit(X, y)
    for p, q in zip(with_view.predict_proba(X), with_params.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
