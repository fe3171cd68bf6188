"""load_imdb_wiki on .mat fixtures written in the published nested-struct layout."""

import os
import warnings
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import loadmat, savemat

from gar_sklearn.datasets import SkippedRowsWarning, load_imdb_wiki
from gar_sklearn.datasets._imdb_wiki import _birth_years


def datenum(year, month, day):
    """MATLAB's serial date number (the inverse of the loader's conversion)."""
    return float(date(year, month, day).toordinal() + 366)


def _cells(strings):
    cells = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        cells[0, i] = np.array([s]) if s else np.array([], dtype="<U1")
    return cells


# full_path, dob, photo_taken, gender, face_score, second_face_score, name, has image
ROWS = [
    (
        "01/nm0000001_rm124825600_1899-5-10_1968.jpg",
        datenum(1899, 5, 10),
        1968,
        1.0,
        4.5,
        np.nan,
        "Fred Astaire",
        True,
    ),
    ("02/a_1970-07-15_2000.jpg", datenum(1970, 7, 15) + 0.5, 2000, 0.0, 1.0, np.nan, "Ann", True),
    ("02/noface.jpg", datenum(1980, 1, 1), 2010, 1.0, -np.inf, np.nan, "B", True),
    ("03/lowscore.jpg", datenum(1980, 1, 1), 2010, 1.0, 0.5, np.nan, "C", True),
    ("03/second.jpg", datenum(1980, 1, 1), 2010, 0.0, 3.0, 2.2, "D", True),
    ("04/nogender.jpg", datenum(1980, 1, 1), 2010, np.nan, 3.0, np.nan, "E", True),
    ("04/badyear.jpg", 0.0, 2010, 1.0, 3.0, np.nan, "F", True),
    ("05/old.jpg", datenum(1880, 1, 1), 2000, 1.0, 3.0, np.nan, "G", True),
    ("05/unborn.jpg", datenum(2012, 1, 1), 2010, 0.0, 3.0, np.nan, "H", True),
    ("06/lost.jpg", datenum(1990, 1, 1), 2015, 0.0, 3.0, np.nan, "I", False),
    ("06/noface_nogender.jpg", datenum(1980, 1, 1), 2010, np.nan, -np.inf, np.nan, "J", True),
    ("07/baby.jpg", datenum(2010, 3, 1), 2010, 0.0, 2.0, np.nan, "", True),
]


def _write_dataset(folder, source, rows=ROWS, with_celebs=True):
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if row[7]:
            (folder / row[0]).parent.mkdir(parents=True, exist_ok=True)
            (folder / row[0]).write_bytes(b"\xff\xd8\xff")
    n = len(rows)
    locations = np.empty((1, n), dtype=object)
    for i in range(n):
        locations[0, i] = np.array([[1.0, 2.0, 30.0, 40.0]])
    struct = {
        "dob": np.array([[r[1] for r in rows]]),
        "photo_taken": np.array([[r[2] for r in rows]], dtype=np.uint16),
        "full_path": _cells([r[0] for r in rows]),
        "gender": np.array([[r[3] for r in rows]]),
        "name": _cells([r[6] for r in rows]),
        "face_location": locations,
        "face_score": np.array([[r[4] for r in rows]]),
        "second_face_score": np.array([[r[5] for r in rows]]),
    }
    if with_celebs:
        struct["celeb_names"] = _cells(sorted({r[6] for r in rows if r[6]}))
        struct["celeb_id"] = np.array([[100 + i for i in range(n)]], dtype=np.uint16)
    savemat(folder / f"{source}.mat", {source: struct})
    return folder / f"{source}.mat"


def _load(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_imdb_wiki(*args, **kwargs)
    return result, [w for w in caught if issubclass(w.category, SkippedRowsWarning)]


def test_fixture_has_the_published_layout(tmp_path):
    mat = loadmat(_write_dataset(tmp_path / "wiki_crop", "wiki"))
    struct = mat["wiki"]
    assert struct.shape == (1, 1)
    assert struct[0, 0]["dob"].shape == (1, len(ROWS))
    assert struct[0, 0]["dob"][0][0] == datenum(1899, 5, 10)
    first = struct[0, 0]["full_path"][0][0]
    assert first.shape == (1,) and first[0] == ROWS[0][0]
    assert struct[0, 0]["name"][0][11].size == 0  # an empty name, as in the real files


def test_labels_and_dropped_rows(tmp_path):
    _write_dataset(tmp_path / "imdb_crop", "imdb")

    bunch, caught = _load(tmp_path, source="imdb")

    assert bunch.target.to_dict("list") == {
        "age": [69, 30, 0],
        "gender": ["Male", "Female", "Female"],
    }
    assert bunch.target["age"].dtype == np.int64
    root = tmp_path / "imdb_crop"
    assert list(bunch.data) == [os.path.join(root, *ROWS[i][0].split("/")) for i in (0, 1, 11)]
    assert bunch.frame["name"].tolist() == ["Fred Astaire", "Ann", ""]
    assert bunch.frame["photo_taken"].tolist() == [1968, 2000, 2010]
    assert bunch.frame["birth_year"].tolist() == [1899, 1970, 2010]
    assert bunch.frame["face_score"].tolist() == [4.5, 1.0, 2.0]
    assert bunch.frame["celeb_id"].tolist() == [100, 101, 111]
    assert bunch.target_names == ["age", "gender"] and "race" not in bunch.frame
    assert "NO race labels" in bunch.DESCR and "research" in bunch.DESCR
    assert bunch.source == "imdb"

    assert len(caught) == 1
    message = str(caught[0].message)
    assert "Skipped 9 of 12 rows of imdb.mat" in message
    assert (
        "'02/noface.jpg' (no face)" in message and "'06/lost.jpg' (missing image file)" in message
    )
    for part in [
        "2 without a face (face_score -inf)",  # the row also lacking a gender counts here
        "1 with face_score below min_face_score=1.0",
        "1 with a second face",
        "1 with an unknown gender",
        "1 with a missing or invalid date of birth",
        "2 with an age outside 0-100",
        "1 whose image file is missing",
    ]:
        assert part in message


def test_min_face_score_moves_the_threshold(tmp_path):
    _write_dataset(tmp_path, "wiki", with_celebs=False)
    with pytest.warns(SkippedRowsWarning, match="Skipped 8 of 12"):
        kept = load_imdb_wiki(tmp_path, source="wiki", min_face_score=-np.inf, return_X_y=True)[0]
    assert "03/lowscore.jpg" in {"/".join(p.split(os.sep)[-2:]) for p in kept}
    assert "02/noface.jpg" not in {"/".join(p.split(os.sep)[-2:]) for p in kept}
    strict, caught = _load(tmp_path, source="wiki", min_face_score=2.5)
    assert strict.frame["face_score"].tolist() == [4.5]
    assert "3 with face_score below min_face_score=2.5" in str(caught[0].message)
    assert "celeb_id" not in strict.frame


@pytest.mark.parametrize("where", ["mat file", "its folder", "the parent"])
def test_path_forms(tmp_path, where):
    mat = _write_dataset(tmp_path / "wiki_crop", "wiki")
    path = {"mat file": mat, "its folder": mat.parent, "the parent": tmp_path}[where]
    X, _ = _load(path, source="wiki", return_X_y=True)[0]
    assert len(X) == 3 and all(os.path.isfile(p) for p in X)


def test_only_metadata_drops_every_row_without_crashing(tmp_path):
    mat = _write_dataset(tmp_path, "wiki")
    for sub in tmp_path.iterdir():
        if sub.is_dir():
            for f in sub.iterdir():
                f.unlink()
    bunch, caught = _load(mat, source="wiki")
    assert len(bunch.data) == 0 and list(bunch.target.columns) == ["age", "gender"]
    assert "4 whose image file is missing" in str(caught[0].message)


def test_errors(tmp_path):
    mat = _write_dataset(tmp_path, "wiki")
    with pytest.raises(
        ValueError, match=r"The 'source' parameter must be one of \['imdb', 'wiki'\]. Got 'imbd'"
    ):
        load_imdb_wiki(tmp_path, source="imbd")
    with pytest.raises(ValueError, match="holds no struct named 'imdb'"):
        load_imdb_wiki(mat, source="imdb")
    with pytest.raises(FileNotFoundError, match=r"imdb.mat .* imdb_crop/"):
        load_imdb_wiki(tmp_path, source="imdb")
    with pytest.raises(
        ValueError, match="The 'min_face_score' parameter must be a number. Got 'high'"
    ):
        load_imdb_wiki(tmp_path, source="wiki", min_face_score="high")
    savemat(tmp_path / "imdb.mat", {"imdb": {"dob": np.array([1.0]), "full_path": _cells(["a"])}})
    with pytest.raises(ValueError, match=r"lacks the fields \['photo_taken'"):
        load_imdb_wiki(tmp_path, source="imdb")


def test_datenum_known_values():
    # MATLAB: datenum(2000,1,1) = 730486, datenum(1970,1,1) = 719529, day 367 = 1 January of year 1
    years = _birth_years([730486.0, 730485.99, 719529.0, 367.0, 366.0, 0.0, np.nan, -5.0])
    assert years.tolist() == [2000, 1999, 1970, 1, -1, -1, -1, -1]


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=367.0, max_value=1_000_000.0))
def test_datenum_matches_python_ordinals(datenum_value):
    expected = date.fromordinal(int(datenum_value) - 366).year
    assert _birth_years([datenum_value]).tolist() == [expected]
