"""load_utkface: labels from file names, skipped names, subsets, and the real folder."""

import os
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

from gar_sklearn.datasets import SkippedRowsWarning, load_utkface
from gar_sklearn.datasets._utkface import _stratified_subset

UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"
needs_utkface = pytest.mark.skipif(
    not (UTKFACE / "labels.csv").is_file(),
    reason=f"the real UTKFace data is not at {UTKFACE}",
)


def _jpeg(path, color=(0, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path, "JPEG")


def _load_quietly(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_utkface(*args, **kwargs)
    return result, [w for w in caught if issubclass(w.category, SkippedRowsWarning)]


def test_labels_read_from_names(tmp_path):
    names = [
        "25_0_0_20170116174525125.jpg.chip.jpg",
        "3_1_4_20170109142408075.jpg.chip.jpg",
        "116_1_3_20170120134639935.jpg.chip.jpg",
        "40_0_1_20170113.jpg",  # the in-the-wild release has no ".chip.jpg"
        "0_1_2_20161219.png",
    ]
    for name in names:
        _jpeg(tmp_path / "images" / name)
    (tmp_path / "labels.csv").write_text("not an image\n")
    (tmp_path / "images" / "notes.txt").write_text("not an image either\n")

    bunch, caught = _load_quietly(tmp_path)

    assert caught == []
    expected = pd.DataFrame(
        {
            "age": [0, 116, 25, 3, 40],
            "gender": ["Female", "Female", "Male", "Female", "Male"],
            "race": ["Asian", "Indian", "White", "Others", "Black"],
        }
    )
    pd.testing.assert_frame_equal(bunch.target, expected, check_dtype=False)
    assert bunch.target["age"].dtype == np.int64
    assert bunch.data.dtype == object and bunch.data.ndim == 1
    assert list(bunch.data) == sorted(bunch.data)
    assert [os.path.basename(p) for p in bunch.data] == sorted(names)
    assert all(os.path.isfile(p) for p in bunch.data)
    assert list(bunch.frame.columns) == ["path", "age", "gender", "race"]
    assert list(bunch.frame["path"]) == list(bunch.data)
    pd.testing.assert_frame_equal(bunch.frame[["age", "gender", "race"]], bunch.target)
    assert bunch.feature_names == ["path"]
    assert bunch.target_names == ["age", "gender", "race"]
    assert "non-commercial" in bunch.DESCR
    assert bunch.source == "utkface"


def test_return_X_y_matches_bunch(tmp_path):
    for name in ["30_0_0_1.jpg.chip.jpg", "31_1_1_1.jpg.chip.jpg"]:
        _jpeg(tmp_path / name)
    X, y = load_utkface(tmp_path, return_X_y=True)
    bunch = load_utkface(tmp_path)
    np.testing.assert_array_equal(X, bunch.data)
    pd.testing.assert_frame_equal(y, bunch.target)


def test_folder_of_images_and_its_parent_give_the_same_labels(tmp_path):
    for name in ["30_0_0_1.jpg.chip.jpg", "31_1_1_1.jpg.chip.jpg"]:
        _jpeg(tmp_path / "images" / name)
    direct = load_utkface(tmp_path / "images")
    parent = load_utkface(tmp_path)
    pd.testing.assert_frame_equal(direct.target, parent.target)
    assert [os.path.realpath(p) for p in direct.data] == [os.path.realpath(p) for p in parent.data]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("61_1_20170109142408075.jpg.chip.jpg", "a label field is missing"),
        ("61.jpg", "a label field is missing"),
        ("aa_0_0_20170109142408075.jpg.chip.jpg", "not a whole number"),
        ("30__0_20170109142408075.jpg.chip.jpg", "not a whole number"),
        ("30_1.5_0_20170109142408075.jpg.chip.jpg", "not a whole number"),
        ("30_2_0_20170109142408075.jpg.chip.jpg", "gender code outside 0-1"),
        ("30_0_5_20170109142408075.jpg.chip.jpg", "race code outside 0-4"),
        ("121_0_0_20170109142408075.jpg.chip.jpg", "age outside 0-120"),
    ],
)
def test_malformed_name_is_skipped_with_one_warning(tmp_path, name, reason):
    _jpeg(tmp_path / "20_1_3_20170109142408075.jpg.chip.jpg")
    _jpeg(tmp_path / name)

    bunch, caught = _load_quietly(tmp_path)

    assert len(caught) == 1
    message = str(caught[0].message)
    assert "Skipped 1 of 2 image files" in message
    assert name in message and reason in message
    assert [os.path.basename(p) for p in bunch.data] == ["20_1_3_20170109142408075.jpg.chip.jpg"]
    assert bunch.target.to_dict("list") == {"age": [20], "gender": ["Female"], "race": ["Indian"]}


def test_many_malformed_names_are_counted_and_listed_up_to_ten(tmp_path):
    _jpeg(tmp_path / "20_1_3_1.jpg.chip.jpg")
    bad = [f"{age}_1_{age}.jpg.chip.jpg" for age in range(10, 25)]  # race field missing
    for name in bad:
        _jpeg(tmp_path / name)
    with pytest.warns(
        SkippedRowsWarning, match=r"Skipped 15 of 16 .* 15 a label field is missing"
    ) as record:
        bunch = load_utkface(tmp_path)
    assert len(record) == 1
    message = str(record[0].message)
    assert sum(name in message for name in bad) == 10
    assert "and 5 more" in message
    assert len(bunch.data) == 1


def test_damaged_date_or_extension_still_loads(tmp_path):
    # two names of this kind are in the published UTKFace: their labels are intact
    names = ["24_0_1_20170116220224657 .jpg.chip.jpg", "55_0_0_20170116232725357jpg.chip.jpg"]
    for name in names:
        _jpeg(tmp_path / name)
    bunch, caught = _load_quietly(tmp_path)
    assert caught == []
    assert bunch.target.to_dict("list") == {
        "age": [24, 55],
        "gender": ["Male", "Male"],
        "race": ["Black", "White"],
    }


def test_only_malformed_names_give_an_empty_bunch(tmp_path):
    _jpeg(tmp_path / "61_1_20170109142408075.jpg.chip.jpg")
    with pytest.warns(SkippedRowsWarning, match="Skipped 1 of 1"):
        bunch = load_utkface(tmp_path)
    assert len(bunch.data) == 0
    assert list(bunch.target.columns) == ["age", "gender", "race"]


def _strata_folder(tmp_path, counts):
    for (gender, race), count in counts.items():
        for i in range(count):
            _jpeg(tmp_path / f"{20 + i}_{gender}_{race}_{gender}{race}{i:03d}.jpg.chip.jpg")


def test_n_samples_keeps_each_gender_race_share(tmp_path):
    _strata_folder(tmp_path, {(0, 0): 60, (1, 1): 25, (1, 2): 15})
    full = load_utkface(tmp_path)
    sub = load_utkface(tmp_path, n_samples=20, random_state=0)

    counts = (sub.target["gender"] + " " + sub.target["race"]).value_counts().to_dict()
    assert counts == {"Male White": 12, "Female Black": 5, "Female Asian": 3}
    assert set(sub.data) <= set(full.data)
    assert list(sub.data) == sorted(sub.data)
    labels = full.frame.set_index("path").loc[sub.data, ["age", "gender", "race"]]
    np.testing.assert_array_equal(labels.to_numpy(), sub.target.to_numpy())

    again = load_utkface(tmp_path, n_samples=20, random_state=0)
    other = load_utkface(tmp_path, n_samples=20, random_state=1)
    np.testing.assert_array_equal(again.data, sub.data)
    assert list(other.data) != list(sub.data)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_stratified_subset_sizes(counts, fraction, seed):
    strata = np.repeat(np.arange(len(counts)), counts)
    n_samples = round(fraction * len(strata))
    idx = _stratified_subset(strata, n_samples, np.random.RandomState(seed))
    assert len(idx) == n_samples == len(np.unique(idx))
    got = np.bincount(strata[idx], minlength=len(counts))
    quota = np.asarray(counts) * n_samples / len(strata)
    assert np.all(got >= np.floor(quota)) and np.all(got <= np.ceil(quota))


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, "10", True])
def test_bad_n_samples(tmp_path, n_samples):
    _jpeg(tmp_path / "30_0_0_1.jpg.chip.jpg")
    with pytest.raises(
        ValueError, match=r"The 'n_samples' parameter must be a positive int or None"
    ):
        load_utkface(tmp_path, n_samples=n_samples)


def test_n_samples_above_the_images_found(tmp_path):
    _jpeg(tmp_path / "30_0_0_1.jpg.chip.jpg")
    with pytest.raises(ValueError, match=r"at most the 1 valid images found .* Got 5 instead"):
        load_utkface(tmp_path, n_samples=5)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be an existing folder"):
        load_utkface(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="No .jpg, .jpeg or .png images were found"):
        load_utkface(tmp_path)


def test_datasets_import_neither_torch_nor_scipy_io():
    code = (
        "import sys, gar_sklearn.datasets\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "assert 'scipy.io' not in sys.modules, 'scipy.io'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.realdata
@needs_utkface
def test_real_utkface_matches_labels_csv():
    labels = pd.read_csv(UTKFACE / "labels.csv", keep_default_na=False)
    with pytest.warns(SkippedRowsWarning, match="Skipped 3 of 20146") as record:
        bunch = load_utkface(UTKFACE)
    assert len(record) == 1

    loaded = bunch.frame.assign(
        file=[Path(p).relative_to(UTKFACE).as_posix() for p in bunch.data]
    ).set_index("file")
    no_race = labels["race"] == ""
    assert no_race.sum() == 3
    # the three files without a race field are the ones skipped, and named in the warning
    assert not set(labels.loc[no_race, "file"]) & set(loaded.index)
    assert all(Path(f).name in str(record[0].message) for f in labels.loc[no_race, "file"])
    # every other row of labels.csv is loaded with the same labels
    expected = labels[~no_race].set_index("file").sort_index()
    assert len(loaded) == len(expected) == 20143
    pd.testing.assert_frame_equal(
        loaded.loc[expected.index, ["age", "gender", "race"]],
        expected,
        check_dtype=False,
        check_index_type=False,
    )
