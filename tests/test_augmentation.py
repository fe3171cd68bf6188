"""Tests of gar_sklearn.augmentation: augmenters, their composition, the over-sampler."""

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from gar_sklearn.augmentation import (
    AugmentationPipeline,
    AugmentedImages,
    AugmentingOverSampler,
    FaceAugmenter,
    RandomCrop,
    RandomFlip,
    RandomLight,
)
from gar_sklearn.augmentation._basic import _adjust_light
from gar_sklearn.preprocessing import ImageLoadError, as_image_source, load_image

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"


# --------------------------------------------------------------------------- strategies


@st.composite
def images(draw, min_side=1, max_side=64, kinds=("noise", "constant", "extremes")):
    """uint8 (H, W, 3) images: random noise, one constant, or values near 0 and 255."""
    shape = (draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)), 3)
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "constant":
        return np.full(shape, draw(st.integers(0, 255)), dtype=np.uint8)
    if kind == "extremes":
        return rng.choice(np.array([0, 1, 5, 127, 250, 254, 255], dtype=np.uint8), size=shape)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


probabilities = st.floats(0.0, 1.0)
strengths = st.floats(0.0, 1.0)
scales = st.tuples(st.floats(0.05, 1.0), st.floats(0.05, 1.0)).map(lambda t: tuple(sorted(t)))
seeds = st.integers(0, 2**32 - 1)


def augmenters(p=probabilities):
    crop = st.builds(RandomCrop, p=p, scale=scales)
    flip = st.builds(RandomFlip, p=p)
    light = st.builds(RandomLight, p=p, brightness=strengths, contrast=strengths)
    face = st.builds(
        FaceAugmenter,
        crop_p=p,
        crop_scale=scales,
        flip_p=p,
        light_p=p,
        brightness=strengths,
        contrast=strengths,
    )
    pipe = st.lists(st.one_of(crop, flip, light), max_size=3).map(AugmentationPipeline)
    return st.one_of(crop, flip, light, face, pipe)


def identity_augmenters():
    return [
        RandomCrop(p=0.0, scale=(0.1, 0.2)),
        RandomFlip(p=0.0),
        RandomLight(p=0.0, brightness=1.0, contrast=1.0),
        FaceAugmenter(crop_p=0.0, flip_p=0.0, light_p=0.0, brightness=1.0, contrast=1.0),
        AugmentationPipeline([RandomFlip(p=0.0), RandomLight(p=0.0)]),
        AugmentationPipeline([]),
    ]


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(augmenter=augmenters(), image=images(), seed=seeds)
def test_output_is_a_new_uint8_array_of_the_same_shape(augmenter, image, seed):
    before = image.copy()
    out = augmenter.augment(image, np.random.default_rng(seed))
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)  # the input is never modified


@PROPERTY
@given(augmenter=augmenters(), image=images(), seed=seeds)
def test_a_fixed_seed_reproduces(augmenter, image, seed):
    first = augmenter.augment(image, np.random.default_rng(seed))
    again = clone(augmenter).augment(image, np.random.default_rng(seed))
    np.testing.assert_array_equal(first, again)


@PROPERTY
@given(image=images(), seed=seeds, which=st.integers(0, 5))
def test_p_zero_is_the_identity(image, seed, which):
    augmenter = identity_augmenters()[which]
    np.testing.assert_array_equal(augmenter.augment(image, np.random.default_rng(seed)), image)


@PROPERTY
@given(image=images(), seed=seeds, p=probabilities)
def test_flip_is_an_involution(image, seed, p):
    flip = RandomFlip(p=p)
    # the same seed takes the same decision twice: flipped back, or left alone twice
    once = flip.augment(image, np.random.default_rng(seed))
    np.testing.assert_array_equal(flip.augment(once, np.random.default_rng(seed)), image)
    always = RandomFlip(p=1.0).augment(image, np.random.default_rng(seed))
    np.testing.assert_array_equal(always, image[:, ::-1])
    twice = RandomFlip(p=1.0).augment(always, np.random.default_rng(0))
    np.testing.assert_array_equal(twice, image)


@PROPERTY
@given(
    image=images(kinds=("constant",)),
    seed=seeds,
    p=probabilities,
    scale=scales,
)
def test_crop_of_a_constant_image_is_that_constant(image, seed, p, scale):
    out = RandomCrop(p=p, scale=scale).augment(image, np.random.default_rng(seed))
    np.testing.assert_array_equal(out, image)


@PROPERTY
@given(image=images(), seed=seeds, brightness=strengths, contrast=strengths)
def test_light_never_wraps_around(image, seed, brightness, contrast):
    # Both factors are >= 0, so the map is non-decreasing in the pixel value: a bright
    # pixel (250, 255) that wrapped around past 255 would come out darker than a dim one.
    out = RandomLight(p=1.0, brightness=brightness, contrast=contrast).augment(
        image, np.random.default_rng(seed)
    )
    order = np.argsort(image.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order].astype(int)) >= 0)


@PROPERTY
@given(image=images(kinds=("constant",)), seed=seeds, contrast=strengths)
def test_contrast_alone_keeps_a_constant_image(image, seed, contrast):
    out = RandomLight(p=1.0, brightness=0.0, contrast=contrast).augment(
        image, np.random.default_rng(seed)
    )
    np.testing.assert_array_equal(out, image)


@PROPERTY
@given(image=images(max_side=16), factor=st.floats(0.0, 2.0))
def test_brightness_matches_pillow_within_rounding(image, factor):
    # Pillow's ImageEnhance.Brightness blends with black (it truncates; we round)
    oracle = np.asarray(ImageEnhance.Brightness(Image.fromarray(image)).enhance(factor))
    diff = np.abs(_adjust_light(image, factor, 1.0).astype(int) - oracle.astype(int))
    assert diff.max() <= 1


@PROPERTY
@given(image=images(max_side=16), factor=st.floats(0.0, 2.0))
def test_contrast_matches_pillow_within_rounding(image, factor):
    # Pillow's ImageEnhance.Contrast blends with the rounded mean of the "L" image
    oracle = np.asarray(ImageEnhance.Contrast(Image.fromarray(image)).enhance(factor))
    diff = np.abs(_adjust_light(image, 1.0, factor).astype(int) - oracle.astype(int))
    assert diff.max() <= 2


@PROPERTY
@given(
    image=images(),
    seed=seeds,
    params=st.tuples(probabilities, scales, probabilities, probabilities, strengths, strengths),
)
def test_face_augmenter_equals_its_pipeline(image, seed, params):
    crop_p, crop_scale, flip_p, light_p, brightness, contrast = params
    face = FaceAugmenter(crop_p, crop_scale, flip_p, light_p, brightness, contrast)
    pipe = AugmentationPipeline(
        [
            RandomCrop(p=crop_p, scale=crop_scale),
            RandomFlip(p=flip_p),
            RandomLight(p=light_p, brightness=brightness, contrast=contrast),
        ]
    )
    np.testing.assert_array_equal(
        face.augment(image, np.random.default_rng(seed)),
        pipe.augment(image, np.random.default_rng(seed)),
    )


@settings(max_examples=20, deadline=None)
@given(
    image=images(min_side=8, kinds=("noise",)),
    augmenter=st.one_of(
        st.builds(RandomCrop, p=st.floats(0.2, 1.0), scale=st.just((0.2, 0.5))),
        st.builds(RandomFlip, p=st.floats(0.2, 0.9)),  # p=1 always flips: deterministic
        st.builds(
            RandomLight, p=st.floats(0.2, 1.0), brightness=st.floats(0.1, 1.0), contrast=strengths
        ),
        st.builds(FaceAugmenter, crop_p=st.floats(0.2, 1.0)),
    ),
)
def test_different_seeds_eventually_differ(image, augmenter):
    first = augmenter.augment(image, np.random.default_rng(0))
    assert any(
        not np.array_equal(augmenter.augment(image, np.random.default_rng(seed)), first)
        for seed in range(1, 200)
    )


# --------------------------------------------------------------------------- known answers


def test_flip_of_a_2x3_image():
    image = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)[:, :, None].repeat(3, axis=2)
    image[..., 1] += 10
    out = RandomFlip(p=1.0).augment(image, np.random.default_rng(0))
    np.testing.assert_array_equal(out[..., 0], [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(out[..., 1], [[13, 12, 11], [16, 15, 14]])


def test_light_with_known_factors():
    image = np.array([[[250, 100, 0], [10, 20, 30]]], dtype=np.uint8)
    # brightness 1.2 saturates 250 at 255 instead of wrapping to 44
    np.testing.assert_array_equal(_adjust_light(image, 1.2, 1.0), [[[255, 120, 0], [12, 24, 36]]])
    # contrast 0.5 halves the distance to the mean gray level m
    m = np.mean(image.astype(float) @ [0.299, 0.587, 0.114])  # (133.45 + 18.15) / 2
    expected = np.rint(0.5 * image + 0.5 * m)
    np.testing.assert_array_equal(_adjust_light(image, 1.0, 0.5), expected)
    assert m == pytest.approx(75.8)
    assert expected[0, 0].tolist() == [163, 88, 38]  # 125 + 37.9, 50 + 37.9, 0 + 37.9
    # brightness is applied (and saturates) before contrast
    np.testing.assert_array_equal(_adjust_light(image, 2.0, 1.0)[0, 0], [255, 200, 0])


def test_light_draws_its_factors_from_the_generator_in_the_documented_order():
    image = np.random.default_rng(3).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        rng.random()  # the firing draw
        a, c = rng.uniform(0.7, 1.3), rng.uniform(0.6, 1.4)
        out = RandomLight(p=1.0, brightness=0.3, contrast=0.4).augment(
            image, np.random.default_rng(seed)
        )
        np.testing.assert_array_equal(out, _adjust_light(image, a, c))


def test_crop_of_a_2x4_image_by_hand():
    # Area 1/4 of a 2x4 image keeps a 1x2 region (aspect kept), at left 0, 1 or 2.
    # Pillow's bilinear upscaling of a pixel pair (a, b) to 4 pixels gives
    # (a, 3a/4 + b/4, a/4 + 3b/4, b).
    row = np.array([0, 100, 200, 40], dtype=np.uint8)
    image = np.stack([row, row], axis=0)[:, :, None].repeat(3, axis=2)
    expected = {
        0: [0, 25, 75, 100],
        100: [100, 125, 175, 200],
        200: [200, 160, 80, 40],
    }
    seen = set()
    for seed in range(40):
        out = RandomCrop(p=1.0, scale=(0.25, 0.25)).augment(image, np.random.default_rng(seed))
        first = int(out[0, 0, 0])
        seen.add(first)
        np.testing.assert_array_equal(out[..., 0], [expected[first]] * 2)
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert seen == {0, 100, 200}  # every position is reachable


def test_crop_that_rounds_to_the_whole_image_is_the_identity():
    image = np.random.default_rng(0).integers(0, 256, (3, 3, 3), dtype=np.uint8)
    for seed in range(20):  # sqrt(0.9) * 3 = 2.85 rounds to 3
        out = RandomCrop(p=1.0, scale=(0.9, 1.0)).augment(image, np.random.default_rng(seed))
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    "augmenter, image",
    [
        (RandomCrop(p=0.3, scale=(0.2, 0.4)), "noise"),
        (RandomFlip(p=0.3), "noise"),
        (RandomLight(p=0.3, brightness=1.0, contrast=0.0), "bright"),
        (RandomFlip(p=0.85), "noise"),
    ],
)
def test_each_augmenter_fires_with_frequency_p(augmenter, image):
    if image == "noise":
        image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    else:  # every pixel 128: any factor off 1 by more than 1/256 shows
        image = np.full((2, 2, 3), 128, dtype=np.uint8)
    n = 2000
    fired = sum(
        not np.array_equal(augmenter.augment(image, np.random.default_rng([7, i])), image)
        for i in range(n)
    )
    p = augmenter.p
    assert abs(fired / n - p) < 5 * np.sqrt(p * (1 - p) / n) + 0.003


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "augmenter, message",
    [
        (
            RandomFlip(p=1.5),
            (
                r"The 'p' parameter of RandomFlip must be a float in the range \[0, 1\]. "
                r"Got 1.5 instead."
            ),
        ),
        (RandomFlip(p="always"), r"'p' parameter of RandomFlip .* Got 'always'"),
        (RandomFlip(p=True), r"'p' parameter of RandomFlip .* Got True"),
        (RandomFlip(p=float("nan")), r"'p' parameter of RandomFlip .* Got nan"),
        (
            RandomCrop(scale=(0.9, 0.8)),
            (
                r"The 'scale' parameter of RandomCrop must be a pair \(low, high\) .* "
                r"Got \(0.9, 0.8\) instead."
            ),
        ),
        (RandomCrop(scale=(0.0, 0.5)), r"'scale' parameter of RandomCrop"),
        (RandomCrop(scale=0.5), r"'scale' parameter of RandomCrop .* Got 0.5"),
        (RandomCrop(scale=(0.5, 1.0, 1.0)), r"'scale' parameter of RandomCrop"),
        (RandomLight(brightness=-0.1), r"'brightness' parameter of RandomLight .* Got -0.1"),
        (RandomLight(contrast=2), r"'contrast' parameter of RandomLight .* Got 2"),
        (FaceAugmenter(flip_p=2), r"The 'flip_p' parameter of FaceAugmenter .* Got 2 instead."),
        (FaceAugmenter(crop_scale=(1, 2)), r"'crop_scale' parameter of FaceAugmenter"),
        (FaceAugmenter(light_p=-1), r"'light_p' parameter of FaceAugmenter"),
        (AugmentationPipeline([("a", RandomFlip()), RandomFlip()]), r"'steps' parameter"),
        (AugmentationPipeline([("a", RandomFlip()), ("a", RandomLight())]), r"unique names"),
        (AugmentationPipeline([("a__b", RandomFlip())]), r"free of '__'"),
    ],
)
def test_invalid_parameters_are_reported_when_used(augmenter, message):
    with pytest.raises(ValueError, match=message):
        augmenter.augment(np.zeros((4, 4, 3), dtype=np.uint8), np.random.default_rng(0))


def test_pipeline_rejects_steps_without_augment_and_bad_outputs():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match=r"The 'steps' parameter of AugmentationPipeline .* Got 'f"):
        AugmentationPipeline("flip").augment(image, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"step 1 is a str without one"):
        AugmentationPipeline([RandomFlip(), "flip"]).augment(image, np.random.default_rng(0))

    class Shrink:
        def augment(self, image, rng):
            return image[:2]

    message = (
        r"Step 'shrink' of AugmentationPipeline must return .* shape \(4, 4, 3\); "
        r"got dtype uint8 and shape \(2, 4, 3\)"
    )
    with pytest.raises(ValueError, match=message):
        AugmentationPipeline([("shrink", Shrink())]).augment(image, np.random.default_rng(0))


@pytest.mark.parametrize(
    "image, rng, error, message",
    [
        (
            np.zeros((4, 4, 3)),
            np.random.default_rng(0),
            ValueError,
            r"RandomFlip.augment expects a uint8 ndarray of shape \(H, W, 3\).*got dtype float64",
        ),
        (np.zeros((4, 4), dtype=np.uint8), np.random.default_rng(0), ValueError, r"shape \(4, 4\)"),
        (np.zeros((0, 4, 3), dtype=np.uint8), np.random.default_rng(0), ValueError, r"H, W >= 1"),
        ([[0]], np.random.default_rng(0), TypeError, r"got list"),
        (
            np.zeros((4, 4, 3), dtype=np.uint8),
            0,
            TypeError,
            (
                r"The 'rng' argument of RandomFlip.augment must be a numpy.random.Generator.*"
                r"Got int instead"
            ),
        ),
        (
            np.zeros((4, 4, 3), dtype=np.uint8),
            np.random.RandomState(0),
            TypeError,
            r"Got RandomState",
        ),
    ],
)
def test_augment_checks_its_arguments(image, rng, error, message):
    with pytest.raises(error, match=message):
        RandomFlip().augment(image, rng)


@pytest.mark.parametrize(
    "estimator",
    [
        RandomCrop(),
        RandomFlip(),
        RandomLight(),
        FaceAugmenter(),
        AugmentationPipeline([("flip", RandomFlip())]),
        AugmentingOverSampler(),
    ],
    ids=lambda est: type(est).__name__,
)
@pytest.mark.parametrize(
    "check",
    [
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_parameter_checks(estimator, check):
    check(type(estimator).__name__, estimator)


def test_augmenters_follow_the_estimator_api():
    face = FaceAugmenter(flip_p=0.1)
    assert face.get_params() == {
        "crop_p": 0.5,
        "crop_scale": (0.8, 1.0),
        "flip_p": 0.1,
        "light_p": 0.5,
        "brightness": 0.2,
        "contrast": 0.2,
    }
    assert clone(face).set_params(light_p=0.0).light_p == 0.0
    assert face.light_p == 0.5
    bad = RandomLight(brightness=7)  # stored untouched, rejected only when used
    assert clone(bad).brightness == 7


def test_pipeline_exposes_and_sets_nested_parameters():
    flip, light = RandomFlip(p=0.1), RandomLight(p=0.2)
    pipe = AugmentationPipeline([("flip", flip), ("light", light)])
    params = pipe.get_params()
    assert params["flip"] is flip and params["flip__p"] == 0.1
    assert params["light__brightness"] == 0.2
    assert set(pipe.get_params(deep=False)) == {"steps"}

    pipe.set_params(light__contrast=0.0, flip=RandomFlip(p=1.0))
    assert light.contrast == 0.0
    assert pipe.steps[0][1].p == 1.0 and flip.p == 0.1  # replaced, the old step untouched
    image = np.arange(12, dtype=np.uint8).reshape(1, 4, 3)
    np.testing.assert_array_equal(
        pipe.set_params(light__p=0.0).augment(image, np.random.default_rng(0)), image[:, ::-1]
    )

    cloned = clone(pipe)
    assert cloned.steps[1][1] is not pipe.steps[1][1]
    assert cloned.get_params()["light__contrast"] == 0.0
    with pytest.raises(ValueError, match="Invalid parameter"):
        pipe.set_params(crop__p=0.5)

    unnamed = AugmentationPipeline([RandomFlip()])
    assert set(unnamed.get_params()) == {"steps"}
    assert isinstance(clone(unnamed).steps[0], RandomFlip)


def test_pipeline_accepts_any_object_with_augment():
    class Invert:
        def augment(self, image, rng):
            return 255 - image

    image = np.array([[[0, 10, 255]]], dtype=np.uint8)
    pipe = AugmentationPipeline([Invert(), RandomFlip(p=1.0)])
    out = pipe.augment(image, np.random.default_rng(0))
    np.testing.assert_array_equal(out, [[[255, 245, 0]]])


# --------------------------------------------------------------------------- over-sampler


def _noise_images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def png_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, image in enumerate(_noise_images(5, size=12)):
        path = folder / f"face_{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_oversampler_grows_to_target_size_with_the_original_labels():
    X, y = _noise_images(4), np.array([10, 11, 12, 13])
    sampler = AugmentingOverSampler(target_size=11, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    assert isinstance(X_res, AugmentedImages) and len(X_res) == 11
    np.testing.assert_array_equal(sampler.sample_indices_[:4], [0, 1, 2, 3])  # originals first
    np.testing.assert_array_equal(y_res, y[sampler.sample_indices_])
    assert X_res.is_copy.tolist() == [False] * 4 + [True] * 7
    counts = np.bincount(sampler.sample_indices_[4:], minlength=4)
    assert sorted(counts.tolist()) == [1, 2, 2, 2]  # 7 copies spread evenly over 4 originals
    for i in range(4):
        np.testing.assert_array_equal(X_res[i], X[i])
    augmenter = FaceAugmenter()
    assert isinstance(sampler.augmenter_, FaceAugmenter)
    for j, i in enumerate(range(4, 11)):
        original = X[sampler.sample_indices_[i]]
        expected = augmenter.augment(original, np.random.default_rng([sampler.seed_, j]))
        np.testing.assert_array_equal(X_res[i], expected)


@settings(max_examples=40, deadline=None)
@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=12).filter(any),
    extra=st.integers(0, 40),
    seed=st.integers(0, 1000),
)
def test_copies_go_round_the_selected_originals_evenly(mask, extra, seed):
    mask = np.array(mask)
    n = len(mask)
    target_size = int(mask.sum()) + extra
    sampler = AugmentingOverSampler(target_size=target_size, subset=mask, random_state=seed)
    X_res, y_res = sampler.fit_resample(_noise_images(n, size=2), np.arange(n))
    assert len(X_res) == len(y_res) == target_size
    selected = np.flatnonzero(mask)
    np.testing.assert_array_equal(y_res[: len(selected)], selected)
    counts = np.bincount(y_res, minlength=n)
    assert counts[~mask].sum() == 0
    assert counts[mask].max() - counts[mask].min() <= 1


def test_subset_grows_one_group_to_the_full_size():
    y = pd.DataFrame(
        {"age": [30, 40, 50, 60, 70], "gender": [0, 1, 1, 0, 1]}, index=[10, 11, 12, 13, 14]
    )
    X = _noise_images(5)
    sampler = AugmentingOverSampler(subset=lambda y: y["gender"] == 0, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    assert len(X_res) == 5  # target_size=None: the size of the full set
    assert y_res["gender"].tolist() == [0] * 5
    assert isinstance(y_res.index, pd.RangeIndex) and y_res.index.tolist() == [0, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(y_res, y.iloc[sampler.sample_indices_].reset_index(drop=True))
    assert set(sampler.sample_indices_) == {0, 3}

    mask = pd.Series([True, False, False, False, True], index=[5, 4, 3, 2, 1])  # by position
    X_res, y_res = AugmentingOverSampler(subset=mask, target_size=2.0, random_state=0).fit_resample(
        X, y["age"]
    )
    assert len(X_res) == 10 and set(y_res) == {30, 70} and isinstance(y_res, pd.Series)


def test_target_size_forms():
    X, y = _noise_images(4), np.zeros(4)
    assert len(AugmentingOverSampler().fit_resample(X, y)[0]) == 4
    assert not AugmentingOverSampler().fit_resample(X, y)[0].is_copy.any()
    assert len(AugmentingOverSampler(target_size=2.6).fit_resample(X, y)[0]) == 10
    assert len(AugmentingOverSampler(target_size=np.int64(6)).fit_resample(X, y)[0]) == 6
    assert len(AugmentingOverSampler(target_size=1.0).fit_resample(X, y)[0]) == 4


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"target_size": 3}, ValueError, r"asks for 3 rows, fewer than the 4 rows selected"),
        ({"target_size": 0.5}, ValueError, r"asks for 2 rows"),
        (
            {"target_size": 0},
            ValueError,
            (
                r"The 'target_size' parameter of AugmentingOverSampler must be None, an int >= 1 "
                r"or a positive float .* Got 0 instead."
            ),
        ),
        ({"target_size": -1.0}, ValueError, r"Got -1.0 instead"),
        ({"target_size": float("inf")}, ValueError, r"Got inf instead"),
        ({"target_size": True}, ValueError, r"Got True instead"),
        ({"target_size": "double"}, ValueError, r"Got 'double' instead"),
        (
            {"subset": [True, False]},
            ValueError,
            (
                r"The 'subset' parameter of AugmentingOverSampler must be None, a boolean mask of "
                r"length len\(X\) = 4.*Got an array of dtype bool and shape \(2,\)"
            ),
        ),
        ({"subset": [0, 1, 1, 0]}, ValueError, r"boolean mask .* dtype int64"),
        ({"subset": lambda y: y > 5}, ValueError, r"selects no rows"),
        (
            {"subset": lambda y: 1},
            ValueError,
            r"The callable 'subset' returned an array of dtype int64 and shape \(\)",
        ),
        (
            {"augmenter": "face"},
            TypeError,
            (
                r"The 'augmenter' parameter of AugmentingOverSampler must be None or an object with "
                r"an augment\(image, rng\) method. Got 'face' instead."
            ),
        ),
        ({"augmenter": FaceAugmenter}, TypeError, r"'augmenter' parameter"),
    ],
)
def test_oversampler_parameter_errors(params, error, message):
    with pytest.raises(error, match=message):
        AugmentingOverSampler(**params).fit_resample(_noise_images(4), np.arange(4))


def test_oversampler_input_errors():
    sampler = AugmentingOverSampler()
    with pytest.raises(ValueError, match=r"same number of rows; got 4 images and 3 labels"):
        sampler.fit_resample(_noise_images(4), [0, 1, 2])
    with pytest.raises(ValueError, match=r"requires y"):
        sampler.fit_resample(_noise_images(4), None)
    with pytest.raises(ValueError, match=r"dtype uint8"):
        sampler.fit_resample(np.zeros((4, 8, 8, 3)), np.arange(4))


def test_images_from_paths_are_read_lazily(tmp_path):
    missing = [str(tmp_path / f"missing_{i}.jpg") for i in range(3)]
    X_res, _ = AugmentingOverSampler(target_size=6, random_state=0).fit_resample(missing, [0, 1, 2])
    assert len(X_res) == 6  # nothing was opened yet
    with pytest.raises(ImageLoadError, match="missing_0.jpg"):
        X_res[0]


def test_paths_items_keys_pickling_and_subsets(png_paths):
    sampler = AugmentingOverSampler(target_size=12, random_state=3)
    X_res, _ = sampler.fit_resample(png_paths, np.arange(5))
    for i in range(5):
        np.testing.assert_array_equal(X_res[i], load_image(png_paths[i]))
    j = 2
    original = load_image(png_paths[sampler.sample_indices_[5 + j]])
    np.testing.assert_array_equal(
        X_res[5 + j], FaceAugmenter().augment(original, np.random.default_rng([sampler.seed_, j]))
    )
    np.testing.assert_array_equal(X_res[-1], X_res[11])

    keys = X_res.cache_keys()
    assert keys[:5] == as_image_source(png_paths).cache_keys()
    assert keys[0].startswith(f"path:{os.path.abspath(png_paths[0])}")
    assert len(set(keys)) == 12
    for i in range(5, 12):
        assert keys[i].startswith(keys[sampler.sample_indices_[i]] + "|aug:")
        assert keys[i].endswith(f":{sampler.seed_}:{i - 5}")

    restored = pickle.loads(pickle.dumps(X_res))
    assert restored.cache_keys() == keys
    for i in (0, 7, 11):
        np.testing.assert_array_equal(restored[i], X_res[i])

    part = X_res.subset([11, 0, 6])
    assert isinstance(part, AugmentedImages) and len(part) == 3
    assert part.cache_keys() == [keys[11], keys[0], keys[6]]
    for k, i in enumerate([11, 0, 6]):
        np.testing.assert_array_equal(part[k], X_res[i])
    assert X_res.subset(X_res.is_copy).cache_keys() == keys[5:]
    assert len(X_res[2:5]) == 3 and X_res[2:5].cache_keys() == keys[2:5]
    assert len(X_res.subset([])) == 0

    # as the estimators see it: ImageSource delegates subset and cache_keys
    source = as_image_source(X_res)
    assert source.subset([1, 9]).cache_keys() == [keys[1], keys[9]]


def test_cache_keys_change_with_the_augmentation_but_not_for_originals():
    X, y = _noise_images(3), np.arange(3)

    def keys(**params):
        return AugmentingOverSampler(target_size=6, **params).fit_resample(X, y)[0].cache_keys()

    base = keys(random_state=0)
    assert base == keys(random_state=0)
    other_seed = keys(random_state=1)
    other_aug = keys(random_state=0, augmenter=FaceAugmenter(flip_p=0.9))
    assert other_seed[:3] == other_aug[:3] == base[:3]
    assert not set(base[3:]) & set(other_seed[3:])
    assert not set(base[3:]) & set(other_aug[3:])
    # the same configuration spelt differently is still the same augmentation
    assert keys(random_state=0, augmenter=FaceAugmenter(flip_p=np.float64(0.5))) == base


def test_subsets_keep_only_the_originals_they_use():
    X_res, _ = AugmentingOverSampler(target_size=60, random_state=0).fit_resample(
        _noise_images(50, size=32), np.arange(50)
    )
    small = X_res.subset([0, 55])
    assert len(pickle.dumps(small)) < len(pickle.dumps(X_res)) / 10
    np.testing.assert_array_equal(small[1], X_res[55])
    assert small.cache_keys() == [X_res.cache_keys()[i] for i in (0, 55)]


@pytest.mark.parametrize("form", ["arrays", "pil", "stack"])
def test_oversampler_accepts_in_memory_images(form):
    stack = _noise_images(3)
    X = {"arrays": list(stack), "pil": [Image.fromarray(a) for a in stack], "stack": stack}[form]
    X_res, _ = AugmentingOverSampler(target_size=5, random_state=0).fit_resample(X, [0, 1, 2])
    original = X_res[1]
    np.testing.assert_array_equal(original, stack[1])
    assert original.flags.writeable
    original[:] = 0  # the caller's pixels are not shared
    np.testing.assert_array_equal(stack[1], _noise_images(3)[1])
    assert X_res[4].shape == (8, 8, 3)
    assert len(set(X_res.cache_keys())) == 5
    assert pickle.loads(pickle.dumps(X_res)).cache_keys() == X_res.cache_keys()


def test_returned_images_do_not_follow_later_changes_to_the_augmenter():
    augmenter = RandomFlip(p=1.0)
    X = _noise_images(1)
    X_res, _ = AugmentingOverSampler(augmenter, target_size=2).fit_resample(X, [0])
    augmenter.set_params(p=0.0)
    np.testing.assert_array_equal(X_res[1], X[0][:, ::-1])


def test_augmented_images_indexing_errors():
    X_res, _ = AugmentingOverSampler(random_state=0).fit_resample(_noise_images(2), [0, 1])
    with pytest.raises(IndexError, match="index 2 is out of range for 2 images"):
        X_res[2]
    with pytest.raises(TypeError, match=r"integers or slices; got float"):
        X_res[0.5]
    np.testing.assert_array_equal(X_res[-2], X_res[0])
    assert repr(X_res) == "AugmentedImages(n_items=2, n_originals=2, n_copies=0)"


def test_augmented_images_check_their_arguments():
    X = _noise_images(2)
    with pytest.raises(ValueError, match=r"between 0 and 1; got values from 0 to 2"):
        AugmentedImages(X, [0, 2], [-1, -1], RandomFlip(), 0)
    with pytest.raises(ValueError, match=r"same length"):
        AugmentedImages(X, [0, 1], [-1], RandomFlip(), 0)
    with pytest.raises(TypeError, match=r"'augmenter' must have an augment"):
        AugmentedImages(X, [0], [-1], None, 0)
    with pytest.raises(ValueError, match=r"'seed' must be a non-negative int"):
        AugmentedImages(X, [0], [-1], RandomFlip(), -1)


# --------------------------------------------------------------------------- imbalanced-learn


class LengthRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the first class; remembers what fit and predict received."""

    def fit(self, X, y):
        self.fit_X_, self.fit_len_ = X, len(X)
        self.fit_first_image_ = X[len(X) - 1]  # fit may index the images like a loader
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        self.predict_X_ = X
        return np.full(len(X), self.classes_[0])


def test_oversampler_in_an_imblearn_pipeline_is_skipped_at_predict(png_paths):
    from imblearn.base import is_sampler
    from imblearn.pipeline import Pipeline

    assert is_sampler(AugmentingOverSampler())
    pipe = Pipeline(
        [
            ("grow", AugmentingOverSampler(target_size=2.0, random_state=0)),
            ("clf", LengthRecorder()),
        ]
    )
    y = np.array([0, 1, 0, 1, 1])
    pipe.fit(png_paths, y)
    clf = pipe.named_steps["clf"]
    assert clf.fit_len_ == 10 and isinstance(clf.fit_X_, AugmentedImages)
    assert clf.fit_first_image_.shape == (12, 12, 3)

    assert pipe.predict(png_paths).shape == (5,)
    assert clf.predict_X_ is png_paths  # nothing grown or augmented at predict
    assert pipe.score(png_paths, y) == pytest.approx(0.4)
    assert clf.predict_X_ is png_paths

    # searchable through the pipeline, as GridSearchCV does
    cloned = clone(pipe).set_params(grow__augmenter=FaceAugmenter(), grow__augmenter__flip_p=0.0)
    assert cloned.get_params()["grow__augmenter__flip_p"] == 0.0
    assert pipe.get_params()["grow__target_size"] == 2.0


@pytest.mark.realdata
def test_oversampling_real_faces():
    images = UTKFACE / "images"
    if not images.is_dir():
        pytest.skip(f"UTKFace images not found at {images}")
    labels = pd.read_csv(UTKFACE / "labels.csv").head(6)
    paths = [str(UTKFACE / name) for name in labels["file"]]
    sampler = AugmentingOverSampler(
        subset=lambda y: (y["gender"] == y["gender"].iloc[0]).to_numpy(), random_state=0
    )
    X_res, y_res = sampler.fit_resample(paths, labels[["age", "gender", "race"]])
    assert len(X_res) == 6 and y_res["gender"].nunique() == 1
    n_originals = int((~X_res.is_copy).sum())
    for i in range(n_originals):
        np.testing.assert_array_equal(X_res[i], load_image(paths[sampler.sample_indices_[i]]))
    for i in range(n_originals, 6):
        out = X_res[i]
        assert out.shape == load_image(paths[sampler.sample_indices_[i]]).shape
        np.testing.assert_array_equal(out, pickle.loads(pickle.dumps(X_res))[i])


def test_an_augmented_set_can_be_grown_again():
    X = _noise_images(3)
    first, y_first = AugmentingOverSampler(target_size=5, random_state=0).fit_resample(X, [0, 1, 2])
    second_sampler = AugmentingOverSampler(RandomFlip(p=1.0), target_size=7, random_state=1)
    second, _ = second_sampler.fit_resample(first, y_first)
    assert len(second) == 7 and second.cache_keys()[:5] == first.cache_keys()
    for i in range(5, 7):  # a flipped copy of an item of the first set
        np.testing.assert_array_equal(second[i], first[second_sampler.sample_indices_[i]][:, ::-1])
    assert len(set(second.cache_keys())) == 7
