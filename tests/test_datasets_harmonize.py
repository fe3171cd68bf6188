"""harmonize_labels and concat_datasets on hand-written label frames."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.utils import Bunch

from gar_sklearn.datasets import (
    FAIRFACE_RACES,
    FAIRFACE_TO_UTKFACE_RACE,
    UTKFACE_RACES,
    concat_datasets,
    harmonize_labels,
    load_fairface,
    load_utkface,
)


def test_race_map_covers_fairface_and_lands_in_utkface():
    assert set(FAIRFACE_TO_UTKFACE_RACE) == set(FAIRFACE_RACES)
    assert set(FAIRFACE_TO_UTKFACE_RACE.values()) == set(UTKFACE_RACES)


def test_fairface_races_onto_utkface():
    target = pd.DataFrame(
        {
            "age": ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "more than 70"],
            "gender": ["Male", "Female"] * 3 + ["Male"],
            "race": [
                "White",
                "Black",
                "Latino_Hispanic",
                "East Asian",
                "Southeast Asian",
                "Indian",
                "Middle Eastern",
            ],
        }
    )
    out = harmonize_labels(target, "fairface")
    assert out["race"].tolist() == [
        "White",
        "Black",
        "Others",
        "Asian",
        "Asian",
        "Indian",
        "Others",
    ]
    assert out["age"].tolist() == target["age"].tolist()
    assert out["gender"].tolist() == target["gender"].tolist()
    assert target["race"].iloc[2] == "Latino_Hispanic"  # the input is left alone

    kept = harmonize_labels(target, "fairface", races="fairface")
    pd.testing.assert_frame_equal(kept, target)


def test_exact_ages_onto_fairface_groups():
    ages = [0, 2, 3, 9, 10, 19, 20, 29, 45, 69, 70, 116]
    target = pd.DataFrame({"age": ages, "gender": ["Female"] * 12, "race": ["White"] * 12})
    out = harmonize_labels(target, "utkface")
    assert out["age"].tolist() == [
        "0-2",
        "0-2",
        "3-9",
        "3-9",
        "10-19",
        "10-19",
        "20-29",
        "20-29",
        "40-49",
        "60-69",
        "more than 70",
        "more than 70",
    ]
    pd.testing.assert_frame_equal(harmonize_labels(target, "utkface", age="exact"), target)


def test_imdb_wiki_has_no_race_and_aliases():
    target = pd.DataFrame({"age": [33, 5], "gender": ["Male", "Female"]})
    for source in ("imdb_wiki", "imdb", "wiki"):
        out = harmonize_labels(target, source)
        assert out.to_dict("list") == {"age": ["30-39", "3-9"], "gender": ["Male", "Female"]}
    with pytest.raises(ValueError, match="IMDB-WIKI has no race labels"):
        harmonize_labels(target.assign(race="White"), "imdb")


def test_missing_race_stays_missing_and_other_columns_pass_through():
    frame = pd.DataFrame(
        {
            "path": ["a", "b"],
            "age": ["0-2", "20-29"],
            "gender": ["Male", "Male"],
            "race": ["East Asian", None],
            "service_test": [True, False],
        }
    )
    out = harmonize_labels(frame, "fairface")
    assert out["race"].iloc[0] == "Asian" and pd.isna(out["race"].iloc[1])
    assert out[["path", "service_test"]].equals(frame[["path", "service_test"]])


def test_refused_mappings():
    utk = pd.DataFrame({"age": [30], "gender": ["Male"], "race": ["Asian"]})
    fair = pd.DataFrame({"age": ["20-29"], "gender": ["Male"], "race": ["White"]})
    with pytest.raises(ValueError, match="UTKFace's races cannot be mapped onto FairFace's seven"):
        harmonize_labels(utk, "utkface", races="fairface")
    with pytest.raises(ValueError, match="cannot be turned back into exact ages"):
        harmonize_labels(fair, "fairface", age="exact")


def test_labels_outside_the_source_set():
    with pytest.raises(ValueError, match=r"labels that fairface does not use: \['Asian'\]"):
        harmonize_labels(pd.DataFrame({"race": ["Asian", "White"]}), "fairface")
    with pytest.raises(ValueError, match=r"labels that utkface does not use: \['East Asian'\]"):
        harmonize_labels(pd.DataFrame({"race": ["East Asian"]}), "utkface")
    with pytest.raises(ValueError, match=r"not FairFace's age groups: \['70\+'\]"):
        harmonize_labels(pd.DataFrame({"age": ["70+"]}), "fairface")


def test_parameter_errors():
    target = pd.DataFrame({"age": [30]})
    with pytest.raises(ValueError, match=r"The 'source' parameter must be one of .* Got 'utk'"):
        harmonize_labels(target, "utk")
    with pytest.raises(
        ValueError,
        match=r"The 'races' parameter must be one of \['utkface', 'fairface'\]. Got 'five'",
    ):
        harmonize_labels(target, "utkface", races="five")
    with pytest.raises(ValueError, match=r"The 'age' parameter must be one of .* Got 'groups'"):
        harmonize_labels(target, "utkface", age="groups")
    with pytest.raises(TypeError, match="must be a pandas DataFrame. Got dict"):
        harmonize_labels({"age": [30]}, "utkface")


def _bunch(source, **columns):
    frame = pd.DataFrame(columns)
    return Bunch(frame=frame, source=source, DESCR=f"{source} licence")


UTK = _bunch(
    "utkface", path=["u1", "u2"], age=[8, 75], gender=["Male", "Female"], race=["Asian", "Others"]
)
FAIR = _bunch(
    "fairface",
    path=["f1"],
    age=["50-59"],
    gender=["Female"],
    race=["Middle Eastern"],
    service_test=[True],
)
WIKI = _bunch("wiki", path=["w1"], age=[41], gender=["Male"], name=["X"])


def test_concat_common_columns():
    both = concat_datasets([UTK, FAIR])
    expected = pd.DataFrame(
        {
            "path": ["u1", "u2", "f1"],
            "age": ["3-9", "more than 70", "50-59"],
            "gender": ["Male", "Female", "Female"],
            "race": ["Asian", "Others", "Others"],
            "source": ["utkface", "utkface", "fairface"],
        }
    )
    pd.testing.assert_frame_equal(both.frame, expected, check_dtype=False)
    pd.testing.assert_frame_equal(
        both.target, expected[["age", "gender", "race"]], check_dtype=False
    )
    assert both.data.tolist() == ["u1", "u2", "f1"]
    assert both.target_names == ["age", "gender", "race"]
    assert "utkface licence" in both.DESCR and "fairface licence" in both.DESCR
    assert both.source == "combined"

    # IMDB-WIKI has no race, so the common labels drop it
    three = concat_datasets([UTK, FAIR, WIKI])
    assert three.target_names == ["age", "gender"]
    assert list(three.frame.columns) == ["path", "age", "gender", "source"]
    assert three.frame["source"].tolist() == ["utkface", "utkface", "fairface", "wiki"]
    assert three.frame["age"].iloc[-1] == "40-49"


def test_concat_all_columns_and_exact_ages():
    every = concat_datasets([UTK, WIKI], columns="all", age="exact")
    assert list(every.frame.columns) == ["path", "age", "gender", "race", "name", "source"]
    assert every.frame["age"].tolist() == [8, 75, 41]
    assert every.frame["race"].iloc[:2].tolist() == ["Asian", "Others"]
    assert pd.isna(every.frame["race"].iloc[2]) and pd.isna(every.frame["name"].iloc[0])
    X, y = concat_datasets([UTK, WIKI], columns="all", age="exact", return_X_y=True)
    assert X.tolist() == ["u1", "u2", "w1"] and list(y.columns) == ["age", "gender", "race"]
    with pytest.raises(ValueError, match="cannot be turned back into exact ages"):
        concat_datasets([UTK, FAIR], age="exact")


def test_concat_errors():
    with pytest.raises(ValueError, match="at least one data set"):
        concat_datasets([])
    with pytest.raises(ValueError, match="Item 1 has source 'mine'"):
        concat_datasets([UTK, _bunch("mine", path=["a"], age=[1])])
    with pytest.raises(ValueError, match="Item 0 has source None"):
        concat_datasets([pd.DataFrame({"age": [1]})])
    with pytest.raises(
        ValueError, match=r"The 'columns' parameter must be one of \['common', 'all'\]"
    ):
        concat_datasets([UTK], columns="some")


def test_concat_loaded_fixtures(tmp_path):
    utk = tmp_path / "utk"
    utk.mkdir()
    for name in ["4_0_2_1.jpg.chip.jpg", "33_1_3_2.jpg.chip.jpg"]:
        Image.new("RGB", (4, 4)).save(utk / name, "JPEG")
    fair = tmp_path / "fair"
    (fair / "val").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(fair / "val" / "1.jpg", "JPEG")
    (fair / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,60-69,Male,Latino_Hispanic,True\n"
    )
    both = concat_datasets([load_utkface(utk), load_fairface(fair, split="val")])
    assert both.frame[["age", "gender", "race", "source"]].to_numpy().tolist() == [
        ["30-39", "Female", "Indian", "utkface"],
        ["3-9", "Male", "Asian", "utkface"],
        ["60-69", "Male", "Others", "fairface"],
    ]
    assert all(isinstance(p, str) for p in both.data) and both.data.dtype == np.dtype(object)
