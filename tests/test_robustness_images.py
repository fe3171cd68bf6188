"""Catalogue of bad inputs, images (more of them than tests/test_robustness.py holds): each
bad X is named (``X[i]: ...`` or the file) also when it is read in a DataLoader worker
process, and the unusual but valid ones are predicted as their plain equivalents.
"""

import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import ImageLoadError

from .conftest import TINY


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(30, image_size=16, random_state=21)


@pytest.fixture(scope="module", params=[0, 2], ids=["in process", "in 2 workers"])
def clf(request, faces):
    return MultiAttributeClassifier(
        **dict(TINY, image_size=16, max_epochs=1, num_workers=request.param)
    ).fit(*faces)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, faces):
    root = tmp_path_factory.mktemp("images")
    X, _ = faces
    Image.fromarray(X[0]).save(root / "0.png")
    (root / "empty.png").write_bytes(b"")
    os.symlink(root / "nowhere.png", root / "dangling.png")
    Image.fromarray(X[1]).save(root / "png_named.jpg", format="PNG")
    frames = [Image.fromarray(X[i]) for i in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    for ext in ("webp", "tiff", "bmp"):
        Image.fromarray(X[2]).save(root / f"2.{ext}", lossless=True)  # WebP: lossless
    Image.fromarray(X[0]).save(root / "visage é 漢字 space.png")
    return root


BAD_ITEMS = {
    "None": (lambda X, f: [X[0], None], TypeError, r"^X\[1\]: Each image must be a file path, "),
    "an int": (lambda X, f: [X[0], 5], TypeError, r"^X\[1\]: .*got int\.$"),
    "bytes": (lambda X, f: [X[0], b"\x89PNG"], TypeError, r"^X\[1\]: .*got bytes\.$"),
    "a nested list": (lambda X, f: [[str(f / "0.png")]], TypeError, r"^X\[0\]: .*got list\.$"),
    "a float array": (
        lambda X, f: [X[0], X[1].astype(float)],
        ValueError,
        r"^X\[1\]: Images given as arrays must have dtype uint8 \(values 0-255\); got dtype "
        r"float64",
    ),
    "a missing path in a Series": (
        lambda X, f: pd.Series([str(f / "0.png"), np.nan]),
        TypeError,
        r"^X\[1\]: .*got float\.$",
    ),
    "a folder": (lambda X, f: [str(f / "0.png"), str(f)], ImageLoadError, r"is a directory"),
    "a dangling link": (
        lambda X, f: [str(f / "dangling.png")],
        ImageLoadError,
        r"dangling.png': no such file",
    ),
    "an empty file": (
        lambda X, f: [str(f / "empty.png")],
        ImageLoadError,
        r"empty.png': not a recognised image format",
    ),
    "a file name too long": (
        lambda X, f: [str(f / ("x" * 300 + ".png"))],
        ImageLoadError,
        r"Could not read image '.*xxx.png'",
    ),
    "one colour image without the batch axis": (
        lambda X, f: X[0],
        ValueError,
        r"X given as an array of shape \(16, 16, 3\) reads as 16 grayscale images 3 pixels "
        r"wide; pass one colour image in a list, or as X\[None\]\.$",
    ),
    "one RGBA image without the batch axis": (
        lambda X, f: np.zeros((16, 16, 4), np.uint8),
        ValueError,
        r"reads as 16 grayscale images 4 pixels wide",
    ),
    "two channels": (
        lambda X, f: np.zeros((2, 16, 16, 2), np.uint8),
        ValueError,
        r"must have shape \(n_samples, H, W\) or \(n_samples, H, W, 3\); got an array of shape "
        r"\(2, 16, 16, 2\)",
    ),
    "booleans": (
        lambda X, f: np.zeros((2, 16, 16, 3), bool),
        ValueError,
        r"must have dtype uint8 \(pixel values 0-255\); got bool",
    ),
    "a DataFrame of two columns": (
        lambda X, f: pd.DataFrame({"a": ["x.png"], "b": ["y.png"]}),
        ValueError,
        r"exactly one column of image paths; got 2 columns: \['a', 'b'\]",
    ),
    "a generator": (
        lambda X, f: (x for x in X[:2]),
        TypeError,
        r"X must be a sequence of images .* got generator",
    ),
}


@pytest.mark.parametrize("make, error, match", BAD_ITEMS.values(), ids=list(BAD_ITEMS))
def test_bad_images_at_predict_are_named_also_from_worker_processes(
    clf, faces, folder, make, error, match
):
    with pytest.raises(error, match=match) as info:
        clf.predict(make(faces[0], folder))
    assert "Traceback" not in str(info.value) and "DataLoader worker" not in str(info.value)


def test_a_single_colour_image_is_refused_in_fit_too(faces):
    X, y = faces
    with pytest.raises(ValueError, match=r"reads as 16 grayscale images 3 pixels wide"):
        MultiAttributeClassifier(**dict(TINY, image_size=16, attributes=("gender",))).fit(
            X[0], y.gender.iloc[:16]
        )


GOOD_EQUIVALENTS = {
    "a PNG named .jpg": (lambda X, f: [str(f / "png_named.jpg")], lambda X: X[1:2]),
    "an animated GIF (its first frame)": (lambda X, f: [str(f / "animated.gif")], lambda X: X[:1]),
    "WebP, TIFF and BMP": (
        lambda X, f: [str(f / "2.webp"), str(f / "2.tiff"), str(f / "2.bmp")],
        lambda X: X[[2, 2, 2]],
    ),
    "a name with accents, CJK and spaces": (
        lambda X, f: [str(f / "visage é 漢字 space.png")],
        lambda X: X[:1],
    ),
    "a pathlib.Path": (lambda X, f: [pathlib.Path(f / "0.png")], lambda X: X[:1]),
    "an open PIL image": (lambda X, f: [Image.open(f / "0.png")], lambda X: X[:1]),
    "a Series of paths": (lambda X, f: pd.Series([str(f / "0.png")] * 2), lambda X: X[[0, 0]]),
    "a one-column DataFrame": (
        lambda X, f: pd.DataFrame({"path": [str(f / "0.png")]}),
        lambda X: X[:1],
    ),
    "a tuple of arrays": (lambda X, f: tuple(X[:3]), lambda X: X[:3]),
    "a Fortran-ordered array": (lambda X, f: np.asfortranarray(X[:3]), lambda X: X[:3]),
    "a read-only array": (lambda X, f: _read_only(X[:3]), lambda X: X[:3]),
    "a reversed view": (
        lambda X, f: X[:3][::-1],
        lambda X: np.ascontiguousarray(X[:3][::-1]),
    ),
}


def _read_only(X):
    X = X.copy()
    X.setflags(write=False)
    return X


@pytest.mark.parametrize("make, plain", GOOD_EQUIVALENTS.values(), ids=list(GOOD_EQUIVALENTS))
def test_unusual_valid_images_are_predicted_as_their_plain_arrays(clf, faces, folder, make, plain):
    X, _ = faces
    got, expected = clf.predict_proba(make(X, folder)), clf.predict_proba(plain(X))
    for p, q in zip(got, expected):
        np.testing.assert_allclose(p, q, atol=1e-6)


def test_images_of_mixed_sizes_in_one_list_are_each_resized(clf, faces):
    X, _ = faces
    big = np.repeat(np.repeat(X[1], 3, axis=0), 3, axis=1)  # 48 x 48
    small = np.asarray(Image.fromarray(X[2]).resize((8, 8)))
    mixed = clf.predict_proba([X[0], big, small])
    alone = [clf.predict_proba([image]) for image in (X[0], big, small)]
    for k in range(3):
        for p, q in zip(mixed, alone[k]):
            np.testing.assert_allclose(p[k], q[0], atol=1e-6)
