"""load_fairface on small fixtures in FairFace's published layout."""

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gar_sklearn.datasets import SkippedRowsWarning, load_fairface

HEADER = "file,age,gender,race,service_test\n"
TRAIN_ROWS = [
    "train/1.jpg,50-59,Male,East Asian,True",
    "train/2.jpg,more than 70,Female,Latino_Hispanic,False",
    "train/3.jpg,0-2,Female,Middle Eastern,True",
]
VAL_ROWS = [
    "val/1.jpg,20-29,Male,Southeast Asian,False",
    "val/2.jpg,3-9,Female,Black,True",
]
SIZES = {"025": 4, "125": 8}  # the two crops differ in size, to tell which was read


def _jpeg(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (10, 20, 30)).save(path, "JPEG")


def _image_folder(root, margin, rows_by_split):
    for rows in rows_by_split:
        for row in rows:
            _jpeg(root / row.split(",")[0], SIZES[margin])


def _write_labels(folder, train=TRAIN_ROWS, val=VAL_ROWS):
    (folder / "fairface_label_train.csv").write_text(HEADER + "\n".join(train) + "\n")
    (folder / "fairface_label_val.csv").write_text(HEADER + "\n".join(val) + "\n")


@pytest.fixture
def published(tmp_path):
    """Both padding releases unzipped side by side, the CSVs next to them."""
    for margin in SIZES:
        _image_folder(
            tmp_path / f"fairface-img-margin{margin}-trainval", margin, [TRAIN_ROWS, VAL_ROWS]
        )
    _write_labels(tmp_path)
    return tmp_path


def _image_size(path):
    with Image.open(path) as img:
        return img.size[0]


@pytest.mark.parametrize("padding, margin", [("0.25", "025"), ("1.25", "125"), (1.25, "125")])
def test_parent_folder_picks_the_padding(published, padding, margin):
    bunch = load_fairface(published, split="train", padding=padding)

    expected = pd.DataFrame(
        {
            "age": ["50-59", "more than 70", "0-2"],
            "gender": ["Male", "Female", "Female"],
            "race": ["East Asian", "Latino_Hispanic", "Middle Eastern"],
        }
    )
    pd.testing.assert_frame_equal(bunch.target, expected, check_dtype=False)
    root = published / f"fairface-img-margin{margin}-trainval"
    assert list(bunch.data) == [str(root / "train" / f"{i}.jpg") for i in (1, 2, 3)]
    assert {_image_size(p) for p in bunch.data} == {SIZES[margin]}
    assert list(bunch.frame.columns) == ["path", "age", "gender", "race", "service_test"]
    assert bunch.frame["service_test"].tolist() == [True, False, True]
    assert bunch.target_names == ["age", "gender", "race"]
    assert bunch.feature_names == ["path"]
    assert "non-commercial" in bunch.DESCR and f"padding={str(padding)!r}" in bunch.DESCR
    assert bunch.source == "fairface"


def test_val_split_and_return_X_y(published):
    X, y = load_fairface(published, split="val", return_X_y=True)
    assert [os.path.basename(os.path.dirname(p)) for p in X] == ["val", "val"]
    assert y.to_dict("list") == {
        "age": ["20-29", "3-9"],
        "gender": ["Male", "Female"],
        "race": ["Southeast Asian", "Black"],
    }


def test_image_root_given_directly(tmp_path):
    root = tmp_path / "my_fairface"
    _image_folder(root, "125", [TRAIN_ROWS])
    _write_labels(tmp_path)  # the CSVs in the root's parent
    bunch = load_fairface(root, padding="1.25")
    assert len(bunch.data) == 3 and {_image_size(p) for p in bunch.data} == {8}

    _write_labels(root, train=TRAIN_ROWS[:1])  # the CSVs in the root win over its parent
    assert len(load_fairface(root).data) == 1


def test_root_named_for_the_other_padding_is_refused(published):
    with pytest.raises(ValueError, match=r"looks like the padding-1.25 release .* padding='0.25'"):
        load_fairface(published / "fairface-img-margin125-trainval", padding="0.25")


def test_zip_unpacked_into_a_folder_of_its_own_name(tmp_path):
    nested = tmp_path / "fairface-img-margin025-trainval" / "fairface-img-margin025-trainval"
    _image_folder(nested, "025", [VAL_ROWS])
    _write_labels(tmp_path)
    bunch = load_fairface(tmp_path, split="val")
    assert list(bunch.data) == [str(nested / "val" / f"{i}.jpg") for i in (1, 2)]


def test_bad_rows_are_skipped_and_counted(tmp_path):
    rows = TRAIN_ROWS + [
        "train/4.jpg,70+,Male,White,False",  # not one of FairFace's age groups
        "train/5.jpg,20-29,M,White,False",  # gender
        "train/6.jpg,20-29,Male,Asian,False",  # a UTKFace race, not FairFace's
        "train/7.jpg,20-29,Male,,False",  # empty race
        "train/missing.jpg,20-29,Male,White,False",  # no image file
        ",20-29,Male,White,False",  # no file name
        "train/1.jpg,20-29,Male,White,False,extra",  # too many fields
        "train/2.jpg,20-29",  # too few fields
    ]
    root = tmp_path / "fairface-img-margin025-trainval"
    _image_folder(root, "025", [rows[:7]])
    _write_labels(tmp_path, train=rows)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bunch = load_fairface(tmp_path)
    caught = [w for w in caught if issubclass(w.category, SkippedRowsWarning)]

    assert len(caught) == 1
    message = str(caught[0].message)
    assert "Skipped 8 of 11 rows of fairface_label_train.csv" in message
    assert "1 malformed CSV lines (too many fields)" in message
    assert "5 with an age, gender or race outside FairFace's labels" in message
    assert "2 whose image file is missing" in message
    assert "'train/missing.jpg' (missing image file)" in message
    assert [os.path.basename(p) for p in bunch.data] == ["1.jpg", "2.jpg", "3.jpg"]


def test_labels_with_stray_spaces_are_read(tmp_path):
    root = tmp_path / "fairface-img-margin025-trainval"
    _image_folder(root, "025", [TRAIN_ROWS[:1]])
    _write_labels(tmp_path, train=["train/1.jpg, 50-59 ,Male , East Asian,True"])
    bunch = load_fairface(tmp_path)
    assert bunch.target.iloc[0].tolist() == ["50-59", "Male", "East Asian"]


def test_csv_without_service_test(tmp_path):
    root = tmp_path / "fairface-img-margin025-trainval"
    _image_folder(root, "025", [TRAIN_ROWS[:1]])
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race\ntrain/1.jpg,50-59,Male,East Asian\n"
    )
    bunch = load_fairface(tmp_path)
    assert list(bunch.frame.columns) == ["path", "age", "gender", "race"]


def test_parameter_errors(published):
    with pytest.raises(
        ValueError, match=r"The 'split' parameter must be one of \['train', 'val'\]. Got 'test'"
    ):
        load_fairface(published, split="test")
    with pytest.raises(
        ValueError, match=r"The 'padding' parameter must be one of \['0.25', '1.25'\]. Got 0.5"
    ):
        load_fairface(published, padding=0.5)
    with pytest.raises(FileNotFoundError, match="must be an existing folder"):
        load_fairface(published / "nowhere")


def test_missing_padding_folder_or_labels(tmp_path):
    _image_folder(tmp_path / "fairface-img-margin025-trainval", "025", [TRAIN_ROWS])
    with pytest.raises(FileNotFoundError, match=r"padding='1.25' .* 'margin125'"):
        load_fairface(tmp_path, padding="1.25")
    with pytest.raises(FileNotFoundError, match="fairface_label_train.csv was not found"):
        load_fairface(tmp_path)
    (tmp_path / "fairface_label_train.csv").write_text("file,age\ntrain/1.jpg,0-2\n")
    with pytest.raises(ValueError, match=r"Columns \['gender', 'race'\] are missing"):
        load_fairface(tmp_path)


def test_empty_when_every_row_is_bad(tmp_path):
    _image_folder(tmp_path / "fairface-img-margin025-trainval", "025", [TRAIN_ROWS])
    _write_labels(tmp_path, train=["train/1.jpg,old,Male,White,False"])
    with pytest.warns(SkippedRowsWarning, match="Skipped 1 of 1"):
        bunch = load_fairface(tmp_path)
    assert bunch.data.shape == (0,) and bunch.target.shape == (0, 3)
    assert np.asarray(bunch.data).dtype == object
