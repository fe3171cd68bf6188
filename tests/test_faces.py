"""FaceCropper: face detection on real photos, crop-box arithmetic, reporting, pipelines."""

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.base import clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_set_params,
)

from gar_sklearn.preprocessing import ImageLoadError
from gar_sklearn.preprocessing._faces import (
    FaceCropper,
    FaceCrops,
    NoFaceWarning,
    _crop_box,
    _extract,
)

UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"

# The astronaut's face (skimage.data.astronaut, 512 x 512): her head spans about
# x 165-285, y 30-190; the detector's box is about (175, 64, 99, 99).
HEAD_X, HEAD_Y = (190, 260), (80, 150)


@pytest.fixture(scope="module")
def astronaut():
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="module")
def coffee():
    data = pytest.importorskip("skimage.data")
    return data.coffee()


@pytest.fixture
def cv2():
    return pytest.importorskip("cv2")


def _centre(box):
    x, y, w, h = box
    return x + w / 2, y + h / 2


def _assert_on_her_face(box, dx=0, scale=1.0):
    cx, cy = _centre(box)
    assert HEAD_X[0] * scale + dx <= cx <= HEAD_X[1] * scale + dx, box
    assert HEAD_Y[0] * scale <= cy <= HEAD_Y[1] * scale, box
    assert 70 * scale <= box[2] <= 130 * scale, box


# ----------------------------------------------------------- crop-box maths (no OpenCV)
@pytest.mark.parametrize(
    "box, shape, margin, border, expected",
    [
        # side 30 * 1.5 = 45 around the centre (25, 35): 25 - 22.5 = 2.5 rounds up to 3
        ((10, 20, 30, 30), (200, 200), 0.25, "constant", (3, 13, 48, 58)),
        # a wide box: the side follows the longer edge, 40 * 2 = 80 around (120, 60)
        ((100, 50, 40, 20), (200, 200), 0.5, "constant", (80, 20, 160, 100)),
        ((10, 20, 30, 30), (200, 200), 0.0, "constant", (10, 20, 40, 50)),
        # at the corner: 60 around (20, 20) reaches 10 px outside ...
        ((0, 0, 40, 40), (100, 100), 0.25, "constant", (-10, -10, 50, 50)),
        ((0, 0, 40, 40), (100, 100), 0.25, "edge", (-10, -10, 50, 50)),
        # ... unless shifted inside
        ((0, 0, 40, 40), (100, 100), 0.25, "shift", (0, 0, 60, 60)),
        ((70, 60, 40, 40), (100, 120), 0.25, "shift", (60, 40, 120, 100)),
        # 150 px wanted in a 100 x 120 image: shrunk to 100, then moved inside
        ((0, 0, 100, 100), (100, 120), 0.25, "shift", (0, 0, 100, 100)),
    ],
)
def test_crop_box_hand_computed(box, shape, margin, border, expected):
    assert _crop_box(box, shape, margin, border) == expected


def test_extract_pads_with_black_or_edges():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2)
    black = _extract(image, (-1, -1, 2, 2), "constant")[:, :, 0]
    np.testing.assert_array_equal(black, [[0, 0, 0], [0, 0, 1], [0, 4, 5]])
    edge = _extract(image, (-1, -1, 2, 2), "edge")[:, :, 0]
    np.testing.assert_array_equal(edge, [[0, 0, 1], [0, 0, 1], [4, 4, 5]])
    inside = _extract(image, (1, 2, 3, 4), "constant")[:, :, 0]
    np.testing.assert_array_equal(inside, [[9, 10], [13, 14]])


boxes = st.tuples(
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(-20, 80),
    st.integers(-20, 80),
).map(lambda t: (t[2], t[3], t[0], t[1]))  # (x, y, w, h) near or across the edges


@settings(max_examples=200, deadline=None)
@given(
    box=boxes,
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    margin=st.floats(0, 1.5),
    border=st.sampled_from(["constant", "edge"]),
)
def test_crop_box_is_a_centred_square_holding_the_box(box, height, width, margin, border):
    x, y, w, h = box
    x0, y0, x1, y1 = _crop_box(box, (height, width), margin, border)
    side = x1 - x0
    assert side == y1 - y0 >= max(w, h)
    assert abs(side - max(w, h) * (1 + 2 * margin)) <= 0.5 + 1e-9
    assert abs((x0 + x1) / 2 - (x + w / 2)) <= 0.5 and abs((y0 + y1) / 2 - (y + h / 2)) <= 0.5
    assert x0 <= x and y0 <= y and x1 >= x + w and y1 >= y + h


@settings(max_examples=200, deadline=None)
@given(box=boxes, height=st.integers(1, 70), width=st.integers(1, 70), margin=st.floats(0, 1.5))
def test_shifted_crop_box_stays_inside(box, height, width, margin):
    x0, y0, x1, y1 = _crop_box(box, (height, width), margin, "shift")
    free = _crop_box(box, (height, width), margin, "constant")
    assert x1 - x0 == y1 - y0 == min(free[2] - free[0], height, width)
    assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height
    if free[0] >= 0 and free[1] >= 0 and free[2] <= width and free[3] <= height:
        assert (x0, y0, x1, y1) == free


@settings(max_examples=100, deadline=None)
@given(
    x0=st.integers(-30, 30),
    y0=st.integers(-30, 30),
    side=st.integers(1, 40),
    mode=st.sampled_from(["constant", "edge"]),
    seed=st.integers(0, 2**16),
)
def test_extract_matches_padding_the_whole_image(x0, y0, side, mode, seed):
    image = np.random.default_rng(seed).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    if not (x0 < 17 and y0 < 12 and x0 + side > 0 and y0 + side > 0):
        return  # crops always hold the face centre, so they always overlap the image
    big = np.pad(image, ((50, 50), (50, 50), (0, 0)), mode=mode)  # independent oracle
    expected = big[y0 + 50 : y0 + side + 50, x0 + 50 : x0 + side + 50]
    np.testing.assert_array_equal(_extract(image, (x0, y0, x0 + side, y0 + side), mode), expected)


# -------------------------------------------------------------------- parameters
def test_sklearn_conventions():
    check_no_attributes_set_in_init("FaceCropper", FaceCropper())
    check_get_params_invariance("FaceCropper", FaceCropper())
    check_set_params("FaceCropper", FaceCropper())
    est = FaceCropper(margin=0.4, size=None, max_faces=2)
    assert clone(est).get_params() == est.get_params()
    assert pickle.loads(pickle.dumps(est.fit())).get_params() == est.get_params()  # no cascade kept
    assert not est.__sklearn_tags__().requires_fit


@pytest.mark.parametrize(
    "params, match",
    [
        ({"margin": -0.1}, r"The 'margin' parameter must be a float >= 0. Got -0.1 instead"),
        ({"margin": "wide"}, r"'margin' parameter must be a float >= 0. Got 'wide'"),
        ({"size": 0}, r"The 'size' parameter must be None or an int >= 1. Got 0 instead"),
        ({"size": 32.0}, r"'size' parameter must be None or an int >= 1. Got 32.0"),
        ({"max_faces": 0}, r"'max_faces' parameter must be None or an int >= 1. Got 0"),
        ({"detect_size": 10}, r"'detect_size' parameter must be None or an int >= 32. Got 10"),
        ({"min_size": 0}, r"'min_size' parameter must be None, an int >= 1 .* Got 0 instead"),
        ({"min_size": 1.5}, r"'min_size' parameter .* a float in \(0, 1\] .* Got 1.5 instead"),
        ({"scale_factor": 1.0}, r"'scale_factor' parameter must be a float > 1. Got 1.0"),
        ({"min_neighbors": -1}, r"'min_neighbors' parameter must be an int >= 0. Got -1"),
        ({"detect_padding": 2}, r"'detect_padding' parameter must be a float in \[0, 1\]. Got 2"),
        (
            {"border": "reflect"},
            r"'border' parameter must be one of \['constant', 'edge', 'shift'\]. Got 'reflect'",
        ),
        (
            {"on_no_face": "drop"},
            r"'on_no_face' parameter must be one of \['warn', 'ignore', 'raise'\]",
        ),
        (
            {"on_error": "ignore"},
            r"'on_error' parameter must be one of \['raise', 'skip'\]. Got 'ignore'",
        ),
        (
            {"cascade": "no_such.xml"},
            r"'cascade' parameter .*'haarcascade_frontalface_default\.xml'.* Got 'no_such.xml'",
        ),
    ],
)
def test_invalid_parameters(cv2, params, match):
    with pytest.raises(ValueError, match=match):
        FaceCropper(**params).fit()
    with pytest.raises(ValueError, match=match):  # stateless: transform checks too
        FaceCropper(**params).transform(np.zeros((1, 40, 40, 3), np.uint8))


def test_missing_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "gar-sklearn\[face\]"'):
        FaceCropper().fit()


def test_module_imports_without_opencv():
    code = (
        "import sys; sys.modules['cv2'] = None\n"
        "from gar_sklearn.preprocessing._faces import FaceCropper\n"
        "print(FaceCropper(size=32).get_params()['size'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "32"


# ------------------------------------------------------------ detection on real photos
def test_astronaut_has_exactly_one_face_on_her_head(cv2, astronaut):
    crops = FaceCropper(size=64).fit().transform([astronaut])
    assert isinstance(crops, FaceCrops) and isinstance(crops, list)
    assert len(crops) == 1 and crops[0].shape == (64, 64, 3) and crops[0].dtype == np.uint8
    assert crops.source_index.tolist() == [0]
    assert crops.no_face.tolist() == [] and crops.failed.tolist() == []
    _assert_on_her_face(crops.boxes[0])


def test_crop_is_the_margin_square_of_the_box(cv2, astronaut):
    crops = FaceCropper(margin=0.25, size=None).transform([astronaut])
    x, y, w, h = crops.boxes[0]
    x0, y0, x1, y1 = _crop_box((x, y, w, h), astronaut.shape, 0.25)
    assert x1 - x0 == int(np.floor(1.5 * w + 0.5))  # 0.25 of the box added on each side
    np.testing.assert_array_equal(crops[0], astronaut[y0:y1, x0:x1])


def test_photo_without_face_is_reported_not_dropped(cv2, astronaut, coffee):
    with pytest.warns(NoFaceWarning, match=r"No face found in 1 of 2 images: 'X\[0\]'"):
        crops = FaceCropper(size=32).transform([coffee, astronaut])
    assert crops.no_face.tolist() == [0]
    assert crops.source_index.tolist() == [1]
    assert crops.sources == ["X[0]", "X[1]"]


def test_no_face_warning_names_the_first_few(cv2, tmp_path, astronaut):
    paths = []
    for k in range(7):
        paths.append(tmp_path / f"grey{k}.png")
        Image.new("RGB", (64, 48), (120, 120, 120)).save(paths[-1])
    with pytest.warns(
        NoFaceWarning, match=r"7 of 8 images: .*grey0.png', .*grey4.png' and 2 more"
    ) as rec:
        FaceCropper(size=32).transform(paths + [astronaut])
    assert "grey5" not in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(FaceCropper(size=32, on_no_face="ignore").transform(paths + [astronaut])) == 1
    with pytest.raises(ValueError, match=r"No face found in 7 of 8 images.*on_no_face='warn'"):
        FaceCropper(on_no_face="raise").transform(paths + [astronaut])


def test_collage_of_two_astronauts_maps_faces_to_sources(cv2, astronaut, coffee):
    collage = np.concatenate([astronaut, astronaut], axis=1)  # 512 x 1024: shrunk for detection
    with pytest.warns(NoFaceWarning):
        crops = FaceCropper(size=48).transform([coffee, collage, astronaut])
    assert crops.source_index.tolist() == [1, 1, 2]
    assert crops.no_face.tolist() == [0]
    _assert_on_her_face(crops.boxes[0])
    _assert_on_her_face(crops.boxes[1], dx=512)  # left to right
    _assert_on_her_face(crops.boxes[2])
    # the two halves are the same photo: their crops nearly match
    assert np.abs(crops[0].astype(int) - crops[1].astype(int)).mean() < 12


def test_faces_ordered_left_to_right_and_max_faces_keeps_largest(cv2, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.Resampling.BILINEAR))
    canvas = np.zeros((512, 1024, 3), np.uint8)
    canvas[128:384, :256] = small  # a half-size astronaut on the left
    canvas[:, 512:] = astronaut
    both = FaceCropper().detect([canvas])
    assert both.face_index.tolist() == [0, 1]
    left, right = both[["x", "y", "w", "h"]].to_numpy(int)
    _assert_on_her_face(right, dx=512)
    assert left[0] < 256 and 35 <= left[2] <= 65  # the small face first
    largest = FaceCropper(max_faces=1).detect([canvas])
    np.testing.assert_array_equal(largest[["x", "y", "w", "h"]].to_numpy(int), [right])


def test_min_size_in_pixels_or_fraction(cv2, astronaut):
    # her face is about 95 px: 0.3 of 512 = 154 px is too big, 0.15 = 77 px is not
    for min_size, n in ((0.3, 0), (160, 0), (0.15, 1), (60, 1)):
        crops = FaceCropper(min_size=min_size, on_no_face="ignore").transform([astronaut])
        assert len(crops) == n, min_size


def test_big_photo_is_shrunk_for_detection_and_boxes_mapped_back(cv2, astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BILINEAR))
    native = FaceCropper().transform([astronaut]).boxes[0]
    crops = FaceCropper(detect_size=512).transform([big])  # detection at exactly half size
    assert len(crops) == 1
    np.testing.assert_allclose(crops.boxes[0], 2 * native, atol=8)
    _assert_on_her_face(crops.boxes[0], scale=2)


@pytest.mark.parametrize(
    "orientation, stored_as",
    [
        (
            6,
            Image.Transpose.ROTATE_90,
        ),  # EXIF 6: the viewer turns the stored pixels 90 deg clockwise
        (8, Image.Transpose.ROTATE_270),
    ],
)
def test_exif_rotated_photo_is_read_upright(cv2, tmp_path, astronaut, orientation, stored_as):
    stored = Image.fromarray(astronaut).transpose(stored_as)
    # min_size: JPEG noise can add a small false face near her hand, irrelevant here
    cropper = FaceCropper(min_size=60, on_no_face="ignore")
    sideways = cropper.transform([np.asarray(stored)])
    assert len(sideways) == 0  # the frontal detector needs the face upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"astronaut_{orientation}.jpg"
    stored.save(path, quality=95, exif=exif)
    crops = cropper.transform([path])
    assert crops.sources == [str(path)]
    assert len(crops) == 1
    _assert_on_her_face(crops.boxes[0])


def test_unreadable_file_raises_or_is_skipped(cv2, tmp_path, astronaut):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG")
    with pytest.raises(ImageLoadError, match="broken.jpg.*not a recognised image format"):
        FaceCropper().transform([astronaut, bad])
    with pytest.warns(
        UserWarning,
        match=r"Skipped 2 unreadable images \(on_error='skip'\): '.*broken.jpg', '.*missing.png'",
    ):
        crops = FaceCropper(size=32, on_error="skip").transform(
            [astronaut, bad, tmp_path / "missing.png"]
        )
    assert crops.source_index.tolist() == [0]
    assert crops.failed.tolist() == [1, 2] and crops.no_face.tolist() == []
    frame = crops.to_frame()
    assert frame.face_found.tolist() == [True, False, False]
    assert "not a recognised image format" in frame.error[1] and "no such file" in frame.error[2]
    assert frame.error.isna().tolist() == [True, False, False]


# ------------------------------------------------------------------- tables and objects
def test_detect_table_matches_transform(cv2, astronaut, coffee):
    X = np.stack([coffee[:400, :400], astronaut[:400, :400]])  # X as one uint8 array
    collage = np.concatenate([astronaut, astronaut], axis=1)
    cropper = FaceCropper(size=32, on_no_face="ignore")
    table = cropper.detect([X[0], collage, X[1]])
    crops = cropper.transform([X[0], collage, X[1]])
    pd.testing.assert_frame_equal(table, crops.to_frame())
    assert table.columns.tolist() == [
        "source_index",
        "source",
        "face_index",
        "face_found",
        "x",
        "y",
        "w",
        "h",
        "error",
    ]
    assert table.source_index.tolist() == [0, 1, 1, 2]
    assert table.face_found.tolist() == [False, True, True, True]
    assert table.loc[0, ["face_index", "x", "y", "w", "h"]].isna().all()
    faces = table[table.face_found]
    np.testing.assert_array_equal(faces[["x", "y", "w", "h"]].to_numpy(int), crops.boxes)
    np.testing.assert_array_equal(faces.source_index, crops.source_index)
    assert cropper.transform(X).source_index.tolist() == [1]


def test_boxes_lie_inside_the_image(cv2):
    # a face that fills the frame: the detector's box reaches past the edges and is clipped
    data = pytest.importorskip("skimage.data")
    face = data.astronaut()[70:160, 180:270]
    crops = FaceCropper(size=None).transform([face])
    assert len(crops) == 1
    x, y, w, h = crops.boxes[0]
    assert x >= 0 and y >= 0 and x + w <= 90 and y + h <= 90
    assert w >= 85  # it does fill the frame
    assert crops[0].shape[0] == crops[0].shape[1] >= 1.5 * 85  # margin padded with black
    assert (crops[0][:15] == 0).all() and (crops[0][:, :15] == 0).all()
    shifted = FaceCropper(size=None, border="shift").transform([face])
    np.testing.assert_array_equal(shifted[0], face)  # the whole photo: the largest square inside


def test_face_crops_pickle_and_repr(cv2, astronaut, coffee):
    with pytest.warns(NoFaceWarning):
        crops = FaceCropper(size=16).transform([coffee, astronaut])
    again = pickle.loads(pickle.dumps(crops))
    assert isinstance(again, FaceCrops)
    np.testing.assert_array_equal(again[0], crops[0])
    assert again.source_index.tolist() == [1] and again.no_face.tolist() == [0]
    assert repr(crops) == "FaceCrops(n_faces=1, n_images=2, no_face=[0], failed=[])"


# --------------------------------------------------------------------------- pipelines
def _flatten(crops):
    return np.stack([np.asarray(c, dtype=float).ravel() for c in crops])


def test_pipeline_predicts_one_row_per_face(cv2, astronaut, coffee):
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    model = make_pipeline(
        FaceCropper(size=24, min_size=60),
        FunctionTransformer(_flatten),
        KNeighborsClassifier(1),
    )
    model.fit([astronaut, mirrored], ["plain", "mirrored"])  # one face each: lines up with y
    photos = [coffee, np.concatenate([mirrored, astronaut], axis=1)]
    with pytest.warns(NoFaceWarning):
        pred = model.predict(photos)
    assert pred.tolist() == ["mirrored", "plain"]  # both from photo 1, left to right
    crops = FaceCropper(size=24, min_size=60, on_no_face="ignore").transform(photos)
    assert crops.source_index.tolist() == [1, 1]


def test_fitting_when_faces_do_not_line_up_with_y(cv2, astronaut, coffee):
    model = make_pipeline(
        FaceCropper(size=24), FunctionTransformer(_flatten), KNeighborsClassifier(1)
    )
    with (
        pytest.warns(NoFaceWarning),
        pytest.raises(
            ValueError, match=r"found 1 faces in 2 images, so the crops no longer line up with y"
        ),
    ):
        model.fit([coffee, astronaut], ["a", "b"])
    assert len(FaceCropper(size=24).fit_transform([astronaut], ["a"])) == 1


# -------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_finds_faces_in_most_utkface_crops(cv2):
    images = UTKFACE / "images"
    if not images.is_dir():
        pytest.skip(f"UTKFace images not found at {images}")
    files = sorted(images.glob("*.jpg"))
    sample = files[:: len(files) // 50][:50]  # spread over ages (names start with the age)
    table = FaceCropper(on_no_face="ignore").detect(sample)
    faces = table[table.face_found]
    assert (
        (faces.x >= 0) & (faces.y >= 0) & (faces.x + faces.w <= 200) & (faces.y + faces.h <= 200)
    ).all()
    # a real find covers the centre of these aligned 200 x 200 crops and is at least half as wide
    real = faces[
        (faces.x <= 100)
        & (faces.x + faces.w >= 100)
        & (faces.y <= 100)
        & (faces.y + faces.h >= 100)
        & (faces.w >= 100)
    ]
    rate = real.source_index.nunique() / len(sample)
    # measured: 45 of these 50 (90%); 92.5% of another 120; 54% with detect_padding=0
    assert rate >= 0.8, rate


# ------------------------------------------------------------------ pluggable detectors
class _FixedDetector:
    """Returns fixed detections in the coordinates of the array it is given; records calls."""

    def __init__(self, result):
        self.result = result
        self.seen = []

    def detect(self, image):
        self.seen.append((image.shape, image.dtype))
        return self.result


def _photo(height=200, width=400):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_detector_sees_the_shrunk_padded_photo_and_its_boxes_map_back(monkeypatch):
    import gar_sklearn.preprocessing._faces as faces

    def no_opencv():
        raise ImportError("no OpenCV here")

    monkeypatch.setattr(faces, "_import_cv2", no_opencv)  # a detector needs no OpenCV
    # 400 x 200 shrunk by 0.25 to 100 x 50, padded by 0.15 * 100 = 15 pixels on each side:
    # the face (200, 40, 80, 80) of the photo is (65, 25, 20, 20) there, its eyes at
    # (220, 60) and (260, 60) are (70, 30) and (80, 30)
    boxes = np.array([[65.0, 25.0, 20.0, 20.0]])
    eyes = np.array([[[70.0, 30.0], [80.0, 30.0]]])
    for result in ((boxes, eyes), {"boxes": boxes, "landmarks": eyes}):
        detector = _FixedDetector(result)
        crops = FaceCropper(size=None, detect_size=100, detector=detector).transform([_photo()])
        assert detector.seen == [((80, 130, 3), np.uint8)]
        assert crops.boxes.tolist() == [[200, 40, 80, 80]]
        np.testing.assert_allclose(crops.landmarks[0], [[220, 60], [260, 60]])
        # the crop: 80 * 1.5 = 120 pixels around the box centre (240, 80)
        np.testing.assert_array_equal(crops[0], _photo()[20:140, 180:300])
        frame = crops.to_frame()
        np.testing.assert_allclose(frame.loc[0, "landmarks"], [[220, 60], [260, 60]])


def test_detector_results_without_landmarks_and_without_faces():
    photos = [_photo(), _photo(100, 100)]

    def detector(image):  # a plain callable: boxes (x, y, w, h) only, no face in the square photo
        return [] if image.shape[0] == image.shape[1] else [(60, 60, 40, 40), (200, 60, 40, 40)]

    cropper = FaceCropper(size=32, detect_padding=0, detector=detector, on_no_face="ignore")
    crops = cropper.transform(photos)
    assert crops.source_index.tolist() == [0, 0] and crops.no_face.tolist() == [1]
    assert crops.boxes.tolist() == [[60, 60, 40, 40], [200, 60, 40, 40]]
    assert crops.landmarks == [None, None] and "landmarks" not in crops.to_frame()
    assert all(c.shape == (32, 32, 3) for c in crops)
    # the generic rules apply to any detector's boxes: the smallest face, the largest faces
    bigger = lambda image: [(10, 10, 20, 20), (100, 50, 60, 60)]  # noqa: E731
    one = FaceCropper(size=None, detect_padding=0, detector=bigger, min_size=30)
    assert one.transform([_photo()]).boxes.tolist() == [[100, 50, 60, 60]]
    largest = FaceCropper(size=None, detect_padding=0, detector=bigger, max_faces=1)
    assert largest.transform([_photo()]).boxes.tolist() == [[100, 50, 60, 60]]


def test_detector_boxes_in_the_padding_are_dropped():
    # padded by 0.5 * 400 = 200 pixels: a box centred in the padding is no face of the photo
    detector = _FixedDetector(np.array([[10.0, 10.0, 30.0, 30.0], [250.0, 250.0, 40.0, 40.0]]))
    crops = FaceCropper(size=None, detect_size=None, detect_padding=0.5, detector=detector)
    assert crops.transform([_photo()]).boxes.tolist() == [[50, 50, 40, 40]]


@pytest.mark.parametrize(
    "result, match",
    [
        ("a face", r"must return face boxes \(x, y, w, h\).*Got 'a face' for X\[0\]"),
        ([[1, 2, 3]], r"must return face boxes"),
        ((np.zeros((1, 4)), np.zeros((2, 5, 2))), r"must return face boxes"),
        ([[0, 0, -5, 5]], r"without a positive size or with missing values for X\[0\]"),
        ([[0, 0, np.nan, 5]], r"without a positive size or with missing values"),
        ({"boxes": [[0, 0, 5, 5]], "landmarks": [[1, 2]]}, r"must return face boxes"),
    ],
)
def test_detector_results_that_are_not_boxes_name_the_photo(result, match):
    with pytest.raises(ValueError, match=match):
        FaceCropper(detector=_FixedDetector(result)).transform([_photo()])


def test_detector_parameter_is_checked_and_cloned():
    with pytest.raises(ValueError, match=r"'detector' parameter must be None .*Got 3 instead"):
        FaceCropper(detector=3).fit()
    detector = _FixedDetector([])
    est = FaceCropper(detector=detector)
    assert est.get_params()["detector"] is detector
    assert isinstance(clone(est).detector, _FixedDetector)
    assert est.fit() is est
