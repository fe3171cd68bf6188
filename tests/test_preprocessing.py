"""Age binning and the image-loading pipeline step."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from gar_sklearn.preprocessing import (
    FAIRFACE_AGE_GROUPS,
    AgeBinner,
    ImageLoader,
    age_group_midpoints,
)


def test_fairface_groups_by_hand():
    ages = [0, 2, 3, 9, 10, 19, 20, 29, 30, 45, 59, 60, 69, 70, 116]
    expected = [
        "0-2",
        "0-2",
        "3-9",
        "3-9",
        "10-19",
        "10-19",
        "20-29",
        "20-29",
        "30-39",
        "40-49",
        "50-59",
        "60-69",
        "60-69",
        "more than 70",
        "more than 70",
    ]
    assert AgeBinner().fit_transform(ages).tolist() == expected
    assert AgeBinner().fit(ages).classes_.tolist() == list(FAIRFACE_AGE_GROUPS)


def test_interval_and_edges_by_hand():
    binner = AgeBinner(bins=5).fit([0, 23])
    assert binner.classes_.tolist() == ["0-4", "5-9", "10-14", "15-19", "20+"]
    assert binner.transform([4, 5, 19, 20, 80]).tolist() == ["0-4", "5-9", "15-19", "20+", "20+"]
    np.testing.assert_allclose(binner.midpoints_, [2, 7, 12, 17, 25])
    custom = AgeBinner(bins=[0, 18, 65]).fit([1])
    assert custom.transform([17, 18, 64, 65]).tolist() == ["0-17", "18-64", "18-64", "65+"]


@given(st.lists(st.integers(0, 116), min_size=1, max_size=50))
@settings(max_examples=60, deadline=None)
def test_interval_one_is_the_identity(ages):
    binner = AgeBinner(bins=1).fit(ages)
    assert binner.transform(ages).tolist() == ages
    np.testing.assert_array_equal(binner.midpoints_, binner.classes_)


@given(st.lists(st.floats(0, 110, allow_nan=False), min_size=1, max_size=50), st.integers(1, 30))
@settings(max_examples=60, deadline=None)
def test_every_age_lands_in_the_group_whose_edges_hold_it(ages, interval):
    binner = AgeBinner(bins=interval).fit(ages)
    groups = binner.transform(ages)
    for age, group in zip(ages, groups):
        k = binner.classes_.tolist().index(group)
        lo = binner.edges_[k]
        hi = binner.edges_[k + 1] if k + 1 < len(binner.edges_) else np.inf
        assert lo <= age < hi


@pytest.mark.parametrize(
    "bins, match",
    [
        ("decades", "'bins' parameter must be"),
        (0, "positive int"),
        ([10, 5], "strictly increasing"),
    ],
)
def test_bad_bins(bins, match):
    with pytest.raises(ValueError, match=match):
        AgeBinner(bins=bins).fit([1, 2])


def test_bad_ages():
    with pytest.raises(ValueError, match=r"missing or non-numeric value at positions \[1\]"):
        AgeBinner().fit([3, "old"])
    with pytest.raises(ValueError, match="non-negative"):
        AgeBinner().fit([-1])
    with pytest.raises(ValueError, match="below the first group"):
        AgeBinner(bins=[10, 20]).fit([15]).transform([5])


def test_midpoints_of_labels():
    np.testing.assert_allclose(
        age_group_midpoints(["3-9", "70+", "more than 70", "12", 4.5]), [6, 75, 75, 12, 4.5]
    )
    with pytest.raises(ValueError, match="Cannot read an age from the class label 'old'"):
        age_group_midpoints(["old"])


def test_image_loader_in_a_pipeline(tmp_path):
    from PIL import Image

    paths = []
    for i, value in enumerate([0, 128, 255]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("L", (20, 10), value).save(paths[-1])
    pipe = make_pipeline(
        ImageLoader(size=4), FunctionTransformer(lambda X: X.reshape(len(X), -1).mean(axis=1))
    )
    np.testing.assert_allclose(pipe.fit_transform(paths), [0, 128, 255])


def test_image_loader_skip_keeps_rows_aligned(tmp_path):
    good = tmp_path / "good.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (10, 20, 30)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    loader = ImageLoader(size=4, on_error="skip")
    out = loader.transform([good, bad, good])
    assert loader.failed_ == [1]
    assert out[1].max() == 0 and out[0, 0, 0].tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match="bad.jpg.*not a recognised image format"):
        ImageLoader(size=4).transform([good, bad])
