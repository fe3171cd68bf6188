"""Bad input gets a clear error or a documented conversion; training is deterministic.

The catalogue of bad inputs and faults goes on by category in test_robustness_images.py,
_labels.py, _parameters.py, _lifecycle.py, _persistence.py, _interruption.py, _disk.py,
_concurrency.py and _cli.py. The rule for each case: a clear exception naming the input
and what was expected, or correct handling; never an internal traceback, a hang, a
silently wrong result, or a lost or overwritten file.

What tests/test_multi_attribute.py already checks (bad y shapes and columns,
missing labels in a DataFrame, empty or float X, bad parameters, unseen labels
at score time, set_params with an unknown name) is not repeated here.
"""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from sklearn.exceptions import NotFittedError
from torch import nn

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._data import ImageDataset
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import ImageLoadError, as_image_source, load_image

from .conftest import TINY

SMALL = dict(TINY, image_size=16, max_epochs=1)


def write_png(path, image, **kwargs):
    Image.fromarray(image).save(path, **kwargs)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """24 synthetic faces as PNG files, plus a corrupt, a truncated, a non-image and a missing file."""
    folder = tmp_path_factory.mktemp("faces")
    X, y = make_synthetic_faces(24, image_size=16, random_state=4)
    paths = [write_png(folder / f"{i}.png", img) for i, img in enumerate(X)]
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG body" * 10)
    buf = io.BytesIO()
    Image.fromarray(X[0]).resize((64, 64)).save(buf, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "notes.png").write_text("not an image")
    bad = {
        "corrupt": str(folder / "corrupt.jpg"),
        "truncated": str(folder / "truncated.jpg"),
        "text": str(folder / "notes.png"),
        "missing": str(folder / "missing.png"),
        "directory": str(folder),
    }
    return X, y, paths, bad


# ---------------------------------------------------------------- unreadable files
@pytest.mark.parametrize(
    "kind, reason",
    [
        ("corrupt", "not a recognised image format|corrupt or truncated"),
        ("truncated", "corrupt or truncated image"),
        ("text", "not a recognised image format"),
        ("missing", "no such file"),
        ("directory", "is a directory"),
    ],
)
def test_unreadable_files_name_the_file_and_the_reason(files, kind, reason):
    path = files[3][kind]
    with pytest.raises(ImageLoadError, match=reason) as info:
        load_image(path, size=16)
    assert info.value.source == path and path in str(info.value)


def test_fit_with_corrupt_files_raises_naming_it_before_training(files, monkeypatch):
    X, y, paths, bad = files
    calls = []
    monkeypatch.setattr(
        "gar_sklearn._training.MultiHeadNet.initialize", lambda self: calls.append(1)
    )
    with pytest.raises(ImageLoadError, match="truncated.jpg"):
        MultiAttributeClassifier(**SMALL).fit(
            paths[:10] + [bad["truncated"]] + paths[10:],
            pd.concat([y.iloc[:10], y.iloc[:1], y.iloc[10:]]),
        )
    assert calls == []  # no training time was spent


def test_fit_skips_unreadable_files_with_one_warning_listing_them(files):
    X, y, paths, bad = files
    mixed = paths[:12] + [bad["corrupt"], bad["missing"]] + paths[12:]
    labels = pd.concat([y.iloc[:12], y.iloc[:2].assign(race="Martian"), y.iloc[12:]])
    with pytest.warns(
        UserWarning,
        match=r"Skipped 2 unreadable images \(on_error='skip'\): "
        r"'.*corrupt.jpg', '.*missing.png'\.",
    ) as record:
        clf = MultiAttributeClassifier(on_error="skip", **SMALL).fit(
            mixed, labels.reset_index(drop=True)
        )
    assert sum("Skipped" in str(w.message) for w in record) == 1
    # the labels of unreadable images are not classes
    assert "Martian" not in clf.classes_[2].tolist()
    assert clf.history_[-1, "train_batch_count"] >= 1


def test_predict_skips_unreadable_files_and_keeps_the_others(files):
    X, y, paths, bad = files
    clf = MultiAttributeClassifier(on_error="skip", attributes=("gender", "race"), **SMALL).fit(
        X, y
    )
    mixed = paths[:3] + [bad["truncated"]] + paths[3:5] + [bad["text"]]
    with pytest.warns(
        UserWarning, match=r"Skipped 2 unreadable images.*truncated.jpg', '.*notes.png'"
    ):
        proba = clf.predict_proba(mixed)
    with pytest.warns(UserWarning, match="Skipped 2"):
        pred = clf.predict(mixed)
    good = [0, 1, 2, 4, 5]
    assert pred[3].tolist() == [None, None] and pred[6].tolist() == [None, None]
    np.testing.assert_array_equal(pred[good], clf.predict(X[:5]))
    for p, q in zip(proba, clf.predict_proba(X[:5])):
        assert np.isnan(p[[3, 6]]).all()
        np.testing.assert_allclose(p[good], q, atol=1e-6)


def test_predict_raises_naming_the_file_through_a_worker_process(files):
    X, y, paths, bad = files
    clf = MultiAttributeClassifier(attributes=("gender",), **SMALL).fit(X, y)
    with pytest.raises(ImageLoadError, match=r"^Could not read image '.*corrupt.jpg': ") as info:
        clf.predict(paths[:3] + [bad["corrupt"]])
    assert info.value.source == bad["corrupt"]


# ---------------------------------------------------------------- modes and sizes (converted)
def _save(img, path):
    img.save(path)
    return str(path)


def test_file_modes_are_converted_to_rgb(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    cases = [
        (Image.fromarray(np.full((4, 4), 100, np.uint8)), "L", "png", (100, 100, 100)),
        (Image.fromarray(np.full((4, 4), True)), "1", "png", (255, 255, 255)),
        (
            Image.fromarray(np.full((4, 4), 32896, np.uint16)),
            "I;16",
            "png",
            (128, 128, 128),
        ),  # 32896/257
        (palette, "P", "png", (10, 20, 30)),
        (Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "CMYK", "jpg", (255, 0, 0)),  # print red
    ]
    for img, mode, ext, rgb in cases:
        path = _save(img, tmp_path / f"{mode.replace(';', '')}.{ext}")
        assert Image.open(path).mode == mode
        out = load_image(path)
        assert out.dtype == np.uint8 and out.shape == img.size[::-1] + (3,), mode
        tolerance = 8 if ext == "jpg" else 0
        assert np.abs(out.astype(int) - rgb).max() <= tolerance, (mode, out[0, 0])
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (200, 0, 0, 0)  # transparent: white
    rgba[:, 2:] = (200, 0, 0, 128)  # half transparent over white
    out = load_image(write_png(tmp_path / "rgba.png", rgba))
    assert (out[:, :2] == 255).all()
    half = 128 / 255
    assert (
        np.abs(
            out[:, 2:].astype(float)
            - (200 * half + 255 * (1 - half), 255 * (1 - half), 255 * (1 - half))
        ).max()
        <= 1
    )


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_respected(tmp_path, orientation, turn):
    stored = np.zeros((2, 4, 3), np.uint8)
    stored[:, :2] = (255, 0, 0)
    stored[:, 2:] = (0, 0, 255)
    stored[0, 0] = (0, 255, 0)  # a corner marker tells rotations and flips apart
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save_exif(stored, tmp_path / "photo.png", exif)
    expected = np.rot90(stored, k=turn)  # what a viewer shows
    np.testing.assert_array_equal(load_image(path), expected)
    np.testing.assert_array_equal(load_image(Image.open(path)), expected)


def _save_exif(array, path, exif):
    Image.fromarray(array).save(path, exif=exif)
    return str(path)


def test_one_pixel_and_ten_thousand_pixel_images(tmp_path):
    tiny = write_png(tmp_path / "one.png", np.array([[[10, 200, 30]]], np.uint8))
    assert (load_image(tiny, size=16) == (10, 200, 30)).all()
    big = Image.new("L", (10_000, 10_000), 77)  # 100 megapixels: above Pillow's warning threshold
    paths = [_save(big, tmp_path / "big.png"), _save(big, tmp_path / "big.jpg")]
    del big
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        for path in paths:
            out = load_image(path, size=32)
            assert out.shape == (32, 32, 3) and np.abs(out.astype(int) - 77).max() <= 2, path


def test_images_beyond_the_decompression_bomb_limit(tmp_path, monkeypatch):
    path = write_png(tmp_path / "bomb.png", np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)  # 10,000 pixels > 2 x 4,000
    with pytest.raises(
        ImageLoadError,
        match=r"bomb.png': too large to decode safely .* 8000 pixels: "
        r"raise PIL.Image.MAX_IMAGE_PIXELS",
    ):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # between the two limits: read
    assert load_image(path).shape == (100, 100, 3)


# ---------------------------------------------------------------- property tests of the input handling
DTYPES = [
    np.uint8,
    np.int8,
    np.uint16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
]


def expected_rgb(arr):
    """An independent statement of what an image array means as RGB."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 3:
        return arr
    rgb, alpha = arr[:, :, :3].astype(float), arr[:, :, 3:].astype(float) / 255
    return rgb * alpha + 255 * (1 - alpha)  # composited on white


def is_valid_image_array(arr):
    return (
        arr.dtype == np.uint8
        and arr.ndim in (2, 3)
        and min(arr.shape[:2]) >= 1
        and (arr.ndim == 2 or arr.shape[2] in (1, 3, 4))
    )


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
    )
)


@settings(max_examples=100, deadline=None)
@given(arr=arrays, size=st.sampled_from([None, 3]))
def test_load_image_on_any_array(arr, size):
    if not is_valid_image_array(arr):
        with pytest.raises(ValueError, match="dtype uint8|must have shape|at least one pixel"):
            load_image(arr, size=size)
        return
    out = load_image(arr, size=size)
    assert out.dtype == np.uint8 and out.flags.writeable
    if size is None:
        assert out.shape == arr.shape[:2] + (3,)
        assert np.abs(out.astype(float) - expected_rgb(arr)).max() <= 1
    else:
        assert out.shape == (size, size, 3)
        const = np.full_like(arr, arr.flat[0] if arr.size else 0)
        if arr.ndim == 3 and arr.shape[2] == 4:
            const[..., 3] = 255
        want = expected_rgb(const)[0, 0]
        assert (load_image(const, size=size) == want).all()  # a plain colour stays that colour


PIL_MODES = [
    "1",
    "L",
    "LA",
    "La",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBa",
    "RGBX",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "I;16",
    "F",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(PIL_MODES), w=st.integers(1, 6), h=st.integers(1, 6), data=st.data())
def test_load_image_on_any_pillow_mode(mode, w, h, data):
    n_bytes = len(Image.new(mode, (w, h)).tobytes())
    raw = data.draw(st.binary(min_size=n_bytes, max_size=n_bytes))
    img = Image.frombytes(mode, (w, h), raw)
    if mode == "F":  # finite values: NaN pixels have no colour
        img = Image.fromarray(
            np.nan_to_num(np.asarray(img), nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)
        )
    out = load_image(img)
    assert out.dtype == np.uint8 and out.shape == (h, w, 3)
    if mode in ("L", "1", "I", "I;16", "F"):
        assert (out[..., 0] == out[..., 1]).all() and (
            out[..., 1] == out[..., 2]
        ).all()  # gray stays gray
        values = np.asarray(img, dtype=float).ravel()
        order = np.argsort(values, kind="stable")
        assert (
            np.diff(out[..., 0].ravel()[order].astype(int)) >= 0
        ).all()  # brighter stays brighter
    elif mode in ("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P"):
        np.testing.assert_array_equal(
            out, np.asarray(img.convert("RGB"))
        )  # Pillow's own conversion
    else:  # alpha modes: on white, so never darker than the colour itself
        rgba = np.asarray(img.convert("RGBA"), dtype=float) if mode != "La" else None
        if rgba is not None:
            assert (out >= np.floor(rgba[..., :3]) - 1).all()


items = st.one_of(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(1, 4), st.sampled_from([3]))),
    hnp.arrays(
        st.sampled_from([np.float32, np.int64]), st.tuples(st.integers(1, 3), st.integers(1, 3))
    ),
    st.integers(),
    st.none(),
    st.floats(),
    st.just(b"bytes"),
    st.just("/no/such/file.png"),
)


@settings(max_examples=100, deadline=None)
@given(
    X=st.one_of(
        st.lists(items, max_size=4),
        arrays.map(lambda a: a[None] if a.ndim == 3 else a),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        st.integers(),
        st.none(),
    )
)
def test_as_image_source_accepts_or_explains(X):
    try:
        source = as_image_source(X)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert len(source) == len(X) > 0
    for i in range(len(source)):
        try:
            out = source.load(i)
        except ImageLoadError as exc:
            assert "/no/such/file.png" in str(exc)
            continue
        except (ValueError, TypeError) as exc:
            assert str(exc).startswith(f"X[{i}]: ") or source.kind == "array"
            continue
        item = X[i]
        assert out.dtype == np.uint8 and out.shape == item.shape[:2] + (3,)
        assert np.abs(out.astype(float) - expected_rgb(item)).max() <= 1


def test_bad_in_memory_items_are_named():
    good = np.zeros((8, 8, 3), np.uint8)
    y = ["a", "b", "a"]
    with pytest.raises(
        ValueError,
        match=r"X\[2\]: Images given as arrays must have dtype uint8 \(values 0-255\); got dtype float32",
    ):
        MultiAttributeClassifier(attributes=("label",), **SMALL).fit(
            [good, good, good.astype(np.float32)], y
        )
    with pytest.raises(
        TypeError,
        match=r"X\[1\]: Each image must be a file path, a PIL.Image.Image or a uint8 "
        r"ndarray; got int",
    ):
        MultiAttributeClassifier(attributes=("label",), **SMALL).fit([good, 7, good], y)
    with pytest.raises(TypeError, match="got a dict, which has no order"):
        MultiAttributeClassifier(attributes=("label",), **SMALL).fit({"a": good}, ["a"])
    with pytest.raises(ValueError, match=r"at least one pixel; got X of shape \(3, 0, 8, 3\)"):
        MultiAttributeClassifier(attributes=("label",), **SMALL).fit(
            np.zeros((3, 0, 8, 3), np.uint8), y
        )


# ---------------------------------------------------------------- labels
@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(30, image_size=16, random_state=5)


def test_missing_labels_in_arrays_and_lists(faces):
    X, y = faces
    arr = y.to_numpy(dtype=object)
    arr[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 missing label\(s\) in column 'race' \(rows \[4\]\)"):
        MultiAttributeClassifier(**SMALL).fit(X, arr)
    labels = y.gender.tolist()
    labels[0] = None
    with pytest.raises(ValueError, match=r"missing label\(s\) in column 'gender' \(rows \[0\]\)"):
        MultiAttributeClassifier(attributes=("gender",), **SMALL).fit(X, labels)


def test_validation_labels_unseen_in_training(faces):
    X, y = faces
    y_val = y.iloc[:5].assign(race="Martian")
    with pytest.raises(
        ValueError,
        match=r"y\['race'\] holds the label 'Martian', which was not seen in fit; "
        r"known labels: \['Asian'",
    ):
        MultiAttributeClassifier(**SMALL).fit(X, y, validation_data=(X[:5], y_val))


def test_a_class_seen_once_and_an_attribute_with_one_class(faces):
    X, y = faces
    y = y.assign(gender=["Other"] + y.gender.tolist()[1:], race="White")
    # the split is stratified on gender, which a single "Other" cannot be: training still runs
    clf = MultiAttributeClassifier(attributes=("gender", "race"), **dict(SMALL, max_epochs=2)).fit(
        X, y
    )
    assert clf.classes_[0].tolist() == ["Female", "Male", "Other"] and clf.classes_[1].tolist() == [
        "White"
    ]
    proba = clf.predict_proba(X)
    assert proba[0].shape == (30, 3)
    np.testing.assert_array_equal(proba[1], 1.0)
    assert set(clf.predict(X)[:, 1]) == {"White"}


# ---------------------------------------------------------------- backbones and weights
def test_unknown_backbone_and_weights_names(faces, tmp_path):
    X, y = faces
    with pytest.raises(
        ValueError, match=r"'backbone' parameter must be one of \[.*'tiny'.*Got 'resnet19'"
    ):
        MultiAttributeClassifier(**dict(SMALL, backbone="resnet19")).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"'weights' parameter must be None, a file path or one of "
        r"\['DEFAULT', 'IMAGENET1K_V1'\].*Got 'IMAGENET9K'",
    ):
        MultiAttributeClassifier(
            **dict(SMALL, backbone="mobilenet_v3_small", weights="IMAGENET9K")
        ).fit(X, y)
    other = tmp_path / "linear.pth"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(
        ValueError, match=r"do not fit backbone 'tiny'.*Pass weights for this architecture"
    ):
        MultiAttributeClassifier(**dict(SMALL, weights=str(other))).fit(X, y)


@pytest.mark.parametrize(
    "call",
    [
        lambda clf, X, y: clf.predict_proba(X),
        lambda clf, X, y: clf.predict_frame(X),
        lambda clf, X, y: clf.predict_age(X),
        lambda clf, X, y: clf.score(X, y),
        lambda clf, X, y: clf.transform_targets(y),
        lambda clf, X, y: clf.history_,
        lambda clf, X, y: clf.save("model.pt"),
    ],
)
def test_every_prediction_method_before_fit(faces, call):
    with pytest.raises(NotFittedError):
        call(MultiAttributeClassifier(), *faces)


# ---------------------------------------------------------------- determinism
def history_without_time(clf):
    return [{k: v for k, v in row.items() if k != "dur"} for row in clf.history_]


def test_same_seed_same_fit_with_augmentation_and_any_number_of_workers():
    X, y = make_synthetic_faces(40, image_size=16, random_state=6)
    params = dict(
        TINY, image_size=16, batch_size=8, max_epochs=3, augment=FaceAugmenter(), random_state=3
    )
    fits = [MultiAttributeClassifier(num_workers=w, **params).fit(X, y) for w in (0, 2, 0)]
    reference = fits[0]
    for other in fits[1:]:
        assert history_without_time(other) == history_without_time(reference)
        for p, q in zip(other.predict_proba(X), reference.predict_proba(X)):
            np.testing.assert_array_equal(p, q)
    changed = MultiAttributeClassifier(num_workers=0, **dict(params, random_state=4)).fit(X, y)
    assert history_without_time(changed) != history_without_time(reference)


def test_each_epoch_gets_fresh_augmentation_and_order_seeded_by_epoch(monkeypatch):
    X, y = make_synthetic_faces(20, image_size=16, random_state=7)
    seen = []
    original = ImageDataset._read  # what __getitem__ and __getitems__ read each item with

    def spy(self, index):
        if self.augmenter is not None:
            seen.append((self.epoch, index))
        return original(self, index)

    monkeypatch.setattr(ImageDataset, "_read", spy)
    params = dict(
        TINY,
        image_size=16,
        batch_size=4,
        max_epochs=3,
        augment=FaceAugmenter(),
        num_workers=0,
        validation_fraction=0,
        random_state=1,
    )

    def orders():
        seen.clear()
        MultiAttributeClassifier(**params).fit(X, y)
        return [[i for e, i in seen if e == epoch] for epoch in range(3)]

    first = orders()
    assert sorted({e for e, _ in seen}) == [0, 1, 2]  # the dataset is told each epoch
    assert all(sorted(o) == list(range(20)) or len(o) == 20 - 20 % 4 for o in first)
    assert first[0] != first[1] != first[2]  # reshuffled every epoch
    assert orders() == first  # by the seed and the epoch only


# ---------------------------------------------------------------- loading batches
def test_batches_load_with_the_items_of_single_loads(tmp_path, monkeypatch):
    import threading

    from gar_sklearn._data import map_in_threads
    from gar_sklearn._feature_cache import _ViewDataset

    X, _ = make_synthetic_faces(12, image_size=20, random_state=3)
    paths = []
    for i, img in enumerate(X):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    source = as_image_source(paths + [str(tmp_path / "bad.png")])
    threads = set()
    original = ImageDataset._read

    def spy(self, index):
        threads.add(threading.get_ident())
        return original(self, index)

    monkeypatch.setattr(ImageDataset, "_read", spy)
    ds = ImageDataset(source, 16, augmenter=FaceAugmenter(), seed=5, on_error="skip", threads=True)
    ds.set_epoch(2)
    indices = [12, 3, 0, 7, 7, 11]
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batch = ds.__getitems__(indices)
        assert threading.get_ident() not in threads and threads  # loaded by the pool's threads
        threads.clear()
        torch.set_num_threads(1)  # no core to spare: in the calling thread, in order
        assert ds.__getitems__(indices[:2])[1][1] == 1 and threads == {threading.get_ident()}
        torch.set_num_threads(2)
        threads.clear()
        # by default (a loader's dataset, read between forward passes): in the calling thread
        serial = ImageDataset(source, 16, augmenter=FaceAugmenter(), seed=5, on_error="skip")
        serial.set_epoch(2)
        torch.testing.assert_close(
            serial.__getitems__(indices)[0]["images"], batch[0]["images"], rtol=0, atol=0
        )
        assert threads == {threading.get_ident()}
        views = _ViewDataset(
            source,
            [(0, 0), (0, 1), (5, 1)],
            [f"face{i}" for i in range(len(paths))],
            16,
            FaceAugmenter(),
        )  # fixed keys: the views do not depend on tmp_path
        (got,) = views.__getitems__([0, 1, 2])
        torch.testing.assert_close(got, torch.stack([views[0], views[1], views[2]]), rtol=0, atol=0)
        assert not torch.equal(got[0], got[1])  # view 1 is augmented
        torch.testing.assert_close(
            got[0].permute(1, 2, 0).numpy(), load_image(paths[0], 16), rtol=0, atol=0
        )
        assert map_in_threads(lambda v: v * v, list(range(50))) == [v * v for v in range(50)]
    finally:
        torch.set_num_threads(previous)
    # the same items, in the same order, as one by one: augmentation seeded by epoch and index
    x, flags = batch
    assert x["images"].shape == (len(indices), 3, 16, 16) and x["images"].dtype == torch.uint8
    for j, i in enumerate(indices):
        x_single, flag_single = ds[i]
        torch.testing.assert_close(x["images"][j], x_single["images"], rtol=0, atol=0)
        assert flags[j] == flag_single == (0 if i == 12 else 1)
    assert x["images"][0].sum() == 0  # the unreadable file: zeros, flag 0


@pytest.mark.parametrize(
    "cores, threads, daemon, expected",
    [
        (2, 2, False, 0),  # every core computes: decode in threads between forward passes
        (2, 1, False, 1),
        (8, 2, False, 4),  # at most 4
        (4, 2, False, 2),
        (8, 2, True, 0),  # a daemonic process may not start workers
    ],
)
def test_default_workers_are_the_cores_torch_leaves_spare(
    monkeypatch, cores, threads, daemon, expected
):
    import multiprocessing

    from gar_sklearn import _data

    monkeypatch.setattr(_data.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(_data.torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", daemon, raising=False)
    assert _data.default_num_workers() == expected
