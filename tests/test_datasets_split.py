"""find_duplicate_groups and group_train_test_split."""

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.model_selection import GroupKFold

from gar_sklearn.datasets import (
    SkippedRowsWarning,
    find_duplicate_groups,
    group_train_test_split,
    load_utkface,
)
from gar_sklearn.datasets._split import _hash_images

UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"
needs_utkface = pytest.mark.skipif(
    not (UTKFACE / "duplicates.csv").is_file(),
    reason=f"the real UTKFace data is not at {UTKFACE}",
)


def _jpeg_bytes(color, quality=90):
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), color).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def files_with_duplicates(tmp_path):
    """Five files: c copies a, e copies b, d has a's pixels in another encoding."""
    red, blue = _jpeg_bytes((255, 0, 0)), _jpeg_bytes((0, 0, 255))
    paths = []
    for name, content in [
        ("a.jpg", red),
        ("b.jpg", blue),
        ("c.jpg", red),
        ("d.jpg", _jpeg_bytes((255, 0, 0), quality=20)),
        ("e.jpg", blue),
    ]:
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    return paths


def test_duplicate_files_share_a_group(files_with_duplicates):
    assert find_duplicate_groups(files_with_duplicates).tolist() == [0, 1, 0, 2, 1]


def test_file_digests_are_md5_of_bytes(files_with_duplicates):
    expected = [hashlib.md5(Path(p).read_bytes()).hexdigest() for p in files_with_duplicates]
    assert _hash_images(files_with_duplicates) == expected
    assert _hash_images([Path(p) for p in files_with_duplicates]) == expected


def test_paths_as_series_array_and_frame(files_with_duplicates):
    expected = [0, 1, 0, 2, 1]
    as_array = np.asarray(files_with_duplicates, dtype=object)
    frame = pd.DataFrame({"path": files_with_duplicates, "age": range(5)})
    assert find_duplicate_groups(as_array).tolist() == expected
    assert find_duplicate_groups(np.asarray(files_with_duplicates)).tolist() == expected
    assert find_duplicate_groups(pd.Series(files_with_duplicates)).tolist() == expected
    assert find_duplicate_groups(frame).tolist() == expected


def test_in_memory_images_compare_pixels_and_shape():
    images = np.zeros((5, 3, 3, 3), dtype=np.uint8)
    images[1, 0, 0, 0] = 1
    images[3] = images[1]
    images[4, 2, 2, 2] = 255
    assert find_duplicate_groups(images).tolist() == [0, 1, 0, 1, 2]

    flat = np.zeros(8, dtype=np.uint8)
    pictures = [
        flat.reshape(2, 4),
        flat.reshape(4, 2),
        flat.reshape(2, 4).copy(),
        Image.fromarray(flat.reshape(2, 4)),
        Image.new("L", (4, 2), 1),
    ]
    # the same bytes in another shape are another image; PIL images compare by their pixels
    assert find_duplicate_groups(pictures).tolist() == [0, 1, 0, 0, 2]


def test_hashing_rejects_what_is_not_images():
    with pytest.raises(ValueError, match="must have a 'path' column"):
        find_duplicate_groups(pd.DataFrame({"file": ["a.jpg"]}))
    with pytest.raises(TypeError, match="a sequence of images, not a single path"):
        find_duplicate_groups("a.jpg")
    with pytest.raises(ValueError, match=r"must hold images, with shape .* Got shape \(3,\)"):
        find_duplicate_groups(np.arange(3))
    with pytest.raises(TypeError, match="Got an item of type int"):
        find_duplicate_groups([1, 2])


def test_split_keeps_duplicate_files_together(files_with_duplicates):
    y = np.arange(5)
    for seed in range(20):
        _, X_test, y_train, y_test = group_train_test_split(
            files_with_duplicates, y, test_size=0.4, random_state=seed
        )
        test_side = set(y_test.tolist())
        for group in ({0, 2}, {1, 4}):
            assert group <= test_side or not group & test_side
        assert sorted(y_train.tolist() + y_test.tolist()) == list(range(5))
        assert X_test == [files_with_duplicates[i] for i in y_test]


def test_split_keeps_rows_aligned_ordered_and_typed():
    n = 40
    X = np.arange(n, dtype=np.uint8).reshape(n, 1, 1)
    y = pd.DataFrame({"k": np.arange(n) * 10}, index=np.arange(n) + 100)
    w = list(range(n))
    X_train, X_test, _, y_test, _, w_test = group_train_test_split(
        X, y, w, test_size=0.25, random_state=0
    )
    assert isinstance(X_test, np.ndarray) and isinstance(y_test, pd.DataFrame)
    assert isinstance(w_test, list)
    assert len(X_test) == 10 and len(X_train) == 30
    # rows stay aligned and in their original order
    np.testing.assert_array_equal(X_test.ravel().astype(int) * 10, y_test["k"].to_numpy())
    assert list(y_test.index) == sorted(y_test.index)
    assert w_test == (y_test.index - 100).tolist()


@settings(max_examples=60, deadline=None)
@given(
    group_sizes=st.lists(st.integers(1, 3), min_size=8, max_size=60),
    test_size=st.floats(0.2, 0.8),
    seed=st.integers(0, 2**16),
)
def test_split_properties(group_sizes, test_size, seed):
    groups = np.repeat(np.arange(len(group_sizes)), group_sizes)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(groups))
    groups = groups[perm]
    n = len(groups)
    index = np.arange(n)

    train, test = group_train_test_split(
        index, groups=groups, test_size=test_size, random_state=seed
    )

    assert sorted(np.concatenate([train, test]).tolist()) == index.tolist()
    assert not set(groups[train]) & set(groups[test])
    # whole groups are drawn until the quota is met: off by at most half the largest group
    assert abs(len(test) - int(np.ceil(test_size * n))) <= max(group_sizes) // 2


def test_stratified_split_meets_each_stratum_quota():
    y = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    X = np.arange(100)
    _, _, _, y_test = group_train_test_split(
        X, y, groups=X, stratify=y, test_size=0.2, random_state=0
    )
    assert dict(zip(*np.unique(y_test, return_counts=True))) == {"a": 10, "b": 6, "c": 4}


def test_stratify_on_several_columns():
    y = pd.DataFrame({"gender": ["Male", "Female"] * 40, "race": ["White"] * 40 + ["Black"] * 40})
    y.loc[:9, "race"] = "Asian"
    _, _, _, y_test = group_train_test_split(
        np.arange(80), y, groups=np.arange(80), stratify=y, test_size=0.25, random_state=3
    )
    counts = y_test.value_counts().to_dict()
    assert counts == {
        ("Male", "White"): 4,
        ("Female", "White"): 4,
        ("Male", "Black"): 5,
        ("Female", "Black"): 5,
        ("Male", "Asian"): 1,
        ("Female", "Asian"): 1,
    }


def test_group_with_mixed_strata_counts_in_its_majority_stratum():
    # group 0 holds two "a" and one "b": drawn for "a", never split
    groups = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    y = np.array(["a", "a", "b", "a", "a", "a", "b", "b", "b", "b"])
    for seed in range(10):
        _, test = group_train_test_split(
            np.arange(10), groups=groups, stratify=y, test_size=0.5, random_state=seed
        )
        assert len(set(test.tolist()) & {0, 1, 2}) in (0, 3)


def test_seed_reproducibility():
    X = np.arange(200)
    a = group_train_test_split(X, groups=X, random_state=7)[1]
    b = group_train_test_split(X, groups=X, random_state=7)[1]
    c = group_train_test_split(X, groups=X, random_state=8)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_duplicate_groups_work_with_group_kfold(files_with_duplicates):
    groups = find_duplicate_groups(files_with_duplicates)
    for train, test in GroupKFold(n_splits=3).split(files_with_duplicates, groups=groups):
        assert not set(groups[train]) & set(groups[test])


@pytest.mark.parametrize("test_size", [0, 1.0, 1.5, -0.1, 10, "0.2", True, None])
def test_bad_test_size(test_size):
    with pytest.raises(ValueError, match=r"The 'test_size' parameter .* Got"):
        group_train_test_split(np.arange(10), groups=np.arange(10), test_size=test_size)


def test_split_that_would_leave_a_side_empty():
    with pytest.raises(ValueError, match="one side would be empty"):
        group_train_test_split(np.arange(6), groups=np.zeros(6), test_size=0.5)


def test_inconsistent_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        group_train_test_split(np.arange(6), np.arange(5), groups=np.arange(6))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        group_train_test_split(np.arange(6), groups=np.arange(5))


@pytest.mark.realdata
@needs_utkface
def test_real_duplicates_stay_on_one_side():
    duplicates = pd.read_csv(UTKFACE / "duplicates.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRowsWarning)
        bunch = load_utkface(UTKFACE)
    files = [Path(p).relative_to(UTKFACE).as_posix() for p in bunch.data]

    digests = dict(zip(files, _hash_images(bunch.data)))
    listed = duplicates[duplicates["file"].isin(digests)]
    assert len(listed) >= len(duplicates) - 3
    assert (listed["file"].map(digests) == listed["md5"]).all()

    _, X_test = group_train_test_split(
        bunch.data,
        test_size=0.2,
        random_state=0,
        stratify=bunch.target[["gender", "race"]],
    )
    assert abs(len(X_test) - 0.2 * len(bunch.data)) < 20
    test_files = {Path(p).relative_to(UTKFACE).as_posix() for p in X_test}
    sides = listed.assign(test=listed["file"].isin(test_files)).groupby("md5")["test"].nunique()
    assert (sides == 1).all()
    assert listed["file"].isin(test_files).any()  # some duplicate groups went to the test side
