"""IMDB-WIKI: the published MATLAB metadata (``imdb.mat``, ``wiki.mat``)."""

import numbers
import os

import numpy as np
import pandas as pd

from ._base import GENDERS, _existing, _make_bunch, _warn_skipped

__all__ = ["load_imdb_wiki"]

_SOURCES = ("imdb", "wiki")
_FIELDS = ("dob", "photo_taken", "full_path", "gender", "face_score", "second_face_score")
# MATLAB's datenum 1 is 1 January of year 0; Python's ordinal 1 is 1 January of year 1
_DATENUM_TO_ORDINAL = 366
_UNIX_EPOCH_DATENUM = 719529  # datenum of 1970-01-01
_MIN_AGE, _MAX_AGE = 0, 100

IMDB_WIKI_DESCR = """\
IMDB-WIKI ({source})
----------------
Photos of celebrities from IMDb and Wikipedia, cropped to the face, with the
date of birth and the year the photo was taken (so age = photo_taken minus
the birth year) and gender. The labels come from the web pages, not from
people looking at the faces: they are noisy. There are NO race labels, so
``target`` holds only age and gender; train the race head on another data set.
Rows without a face (face_score -inf or below min_face_score={min_face_score}),
with a second face, with an unknown gender or an age outside 0-100 were dropped.

Source: Rothe, Timofte and Van Gool, "Deep expectation of real and apparent
age from a single image without facial landmarks", IJCV 2018
(https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/).

Licence: academic research purposes only. The images were collected from the
internet and their copyright stays with their owners.
"""


def _find_mat(path, source):
    """The ``.mat`` file: ``path`` itself, ``path/<source>.mat`` or ``path/<source>_crop/<source>.mat``."""
    try:
        path = os.fspath(path)
    except TypeError as exc:
        raise TypeError(
            f"The 'path' parameter must be a str or os.PathLike. Got {type(path).__name__} instead."
        ) from exc
    if os.path.isfile(path):
        return path
    candidates = [
        os.path.join(path, f"{source}.mat"),
        os.path.join(path, f"{source}_crop", f"{source}.mat"),
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"The IMDB-WIKI metadata for source={source!r} was not found: 'path' must be the "
        f"{source}.mat file or a folder holding it, directly or in {source}_crop/. "
        f"Looked for {candidates}."
    )


def _read_struct(mat_path, source):
    """The metadata struct's fields as flat arrays (scipy imported here only)."""
    from scipy.io import loadmat  # scipy is needed by this loader alone

    try:
        mat = loadmat(mat_path)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise ValueError(
            f"{mat_path!r} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; the published "
            "IMDB-WIKI metadata is in the older format that it can."
        ) from exc
    if source not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(
            f"{mat_path!r} holds no struct named {source!r} (found {found}); pass the source "
            "that matches the file: 'imdb' for imdb.mat, 'wiki' for wiki.mat."
        )
    struct = mat[source][0, 0]
    missing = [f for f in _FIELDS if f not in struct.dtype.names]
    if missing:
        raise ValueError(f"The struct {source!r} in {mat_path!r} lacks the fields {missing}.")
    return {name: struct[name].ravel() for name in struct.dtype.names}


def _cell_strings(cells):
    """A MATLAB cell array of strings (as loadmat returns it) as a list of str ('' when empty)."""
    return [
        str(c.ravel()[0])
        if isinstance(c, np.ndarray) and c.size
        else ("" if isinstance(c, np.ndarray) else str(c))
        for c in cells
    ]


def _birth_years(datenums):
    """Year of each MATLAB datenum; -1 where it is missing or before year 1."""
    datenums = np.asarray(datenums, dtype=float)
    valid = np.isfinite(datenums) & (datenums >= _DATENUM_TO_ORDINAL + 1)
    days = np.where(valid, np.floor(np.where(valid, datenums, 0)) - _UNIX_EPOCH_DATENUM, 0)
    years = days.astype("int64").astype("datetime64[D]").astype("datetime64[Y]").astype("int64")
    return np.where(valid, years + 1970, -1)


def _kept_rows(fields, root, mat_path, min_face_score):
    """The rows to keep, and the per-row values read from ``fields``; warns about the others."""
    n = len(fields["full_path"])
    full_path = _cell_strings(fields["full_path"])
    face_score = fields["face_score"].astype(float)
    second = fields["second_face_score"].astype(float)
    gender = fields["gender"].astype(float)
    photo_taken = fields["photo_taken"].astype(float)
    birth_year = _birth_years(fields["dob"])
    age = photo_taken - birth_year

    # each row is counted under the first reason it meets
    checks = [  # (reason in the count, reason next to a listed name, rows meeting it)
        ("without a face (face_score -inf)", "no face", ~(face_score > -np.inf)),
        (
            f"with face_score below min_face_score={min_face_score}",
            "low face score",
            face_score < min_face_score,
        ),
        ("with a second face", "second face", ~np.isnan(second)),
        ("with an unknown gender", "unknown gender", ~np.isin(gender, (0.0, 1.0))),
        ("with a missing or invalid date of birth", "invalid dob", birth_year < 1),
        (
            f"with an age outside {_MIN_AGE}-{_MAX_AGE}",
            "age out of range",
            ~((age >= _MIN_AGE) & (age <= _MAX_AGE)),
        ),
    ]
    keep = np.ones(n, dtype=bool)
    reasons, skipped = {}, []
    for reason, short, bad in checks:
        hit = keep & bad
        reasons[reason] = int(hit.sum())
        skipped += [(full_path[i], short) for i in np.flatnonzero(hit)[:10]]
        keep &= ~bad
    candidates = np.flatnonzero(keep)
    present = _existing(root, [full_path[i] for i in candidates])
    present &= np.array([bool(full_path[i]) for i in candidates], dtype=bool)
    missing = candidates[~present]
    reasons["whose image file is missing"] = len(missing)
    skipped += [(full_path[i], "missing image file") for i in missing[:10]]
    keep[missing] = False
    _warn_skipped(f"rows of {os.path.basename(mat_path)}", n, reasons, skipped)

    values = dict(
        full_path=full_path,
        face_score=face_score,
        gender=gender,
        photo_taken=photo_taken,
        birth_year=birth_year,
        age=age,
    )
    return np.flatnonzero(keep), values


def _frame(fields, root, idx, v):
    """The Bunch's frame: one row per kept image."""
    full_path, gender = v["full_path"], v["gender"]
    frame = pd.DataFrame(
        {
            "path": pd.Series(
                [os.path.join(root, *full_path[i].split("/")) for i in idx], dtype="str"
            ),
            "age": v["age"][idx].astype("int64"),
            "gender": pd.Series(
                np.asarray(GENDERS, dtype=object)[(gender[idx] == 0).astype(int)], dtype="str"
            ),
            "name": pd.Series(
                _cell_strings(fields["name"][idx]) if "name" in fields else [""] * len(idx),
                dtype="str",
            ),
            "photo_taken": v["photo_taken"][idx].astype("int64"),
            "birth_year": v["birth_year"][idx].astype("int64"),
            "face_score": v["face_score"][idx],
        }
    )
    if "celeb_id" in fields and len(fields["celeb_id"]) == len(full_path):
        frame["celeb_id"] = fields["celeb_id"][idx].astype("int64")
    return frame


def load_imdb_wiki(path, source="imdb", *, min_face_score=1.0, return_X_y=False):
    """Load IMDB-WIKI from its published ``.mat`` metadata and face crops.

    ``age`` is the year the photo was taken minus the year of birth (the
    ``dob`` MATLAB datenum, converted with Python ordinal = datenum - 366);
    ``gender`` is 1 -> "Male", 0 -> "Female". IMDB-WIKI has **no race
    labels**: ``target`` holds ``age`` and ``gender`` only.

    Rows are dropped, as the data set's users do (e.g. the widely used
    ``yu4u/age-gender-estimation`` clean-up, whose default face-score
    threshold is 1.0), when: no face was found (``face_score`` is -inf), the
    face score is below ``min_face_score``, a second face was found
    (``second_face_score`` is not NaN), the gender is unknown (NaN), the date
    of birth is missing or invalid, the age is outside 0-100, or the image
    file is missing. Each dropped row is counted under the first of these
    reasons it meets, and one :class:`SkippedRowsWarning` gives the counts.
    On the full data set this drops a large share of the rows.

    **Folder layout.** The face-crop archives ``imdb_crop.tar`` and
    ``wiki_crop.tar`` unpack to ``imdb_crop/`` (or ``wiki_crop/``) holding the
    ``.mat`` file and the folders ``00/`` to ``99/``; ``full_path`` (e.g.
    ``01/nm0000001_rm124825600_1899-5-10_1968.jpg``) is relative to it.
    ``path`` may be the ``.mat`` file, the folder holding it, or that
    folder's parent. The images are looked for next to the ``.mat`` file.

    Read the licence in ``DESCR``: IMDB-WIKI is for academic research only.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.mat`` file or a folder, as above.
    source : {"imdb", "wiki"}, default="imdb"
        Which half: ``imdb.mat`` (struct ``imdb``) or ``wiki.mat`` (struct ``wiki``).
    min_face_score : float, default=1.0
        Drop rows whose face detector score is below this. Use ``-np.inf`` to
        drop only the rows without a face.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As :func:`load_utkface`, with ``target`` columns ``age`` (int) and
        ``gender``; ``frame`` also holds ``name``, ``photo_taken``,
        ``birth_year`` and ``face_score`` (and ``celeb_id`` for IMDb);
        ``source`` is ``"imdb"`` or ``"wiki"``.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from scipy.io import savemat
    >>> from gar_sklearn.datasets import load_imdb_wiki
    >>> with tempfile.TemporaryDirectory() as root:
    ...     os.makedirs(os.path.join(root, "17"))
    ...     open(os.path.join(root, "17", "a.jpg"), "wb").close()
    ...     cells = np.empty(1, dtype=object)
    ...     cells[0] = "17/a.jpg"
    ...     savemat(os.path.join(root, "wiki.mat"), {"wiki": {
    ...         "dob": np.array([726834.0]),  # 1990-01-01
    ...         "photo_taken": np.array([2015]), "full_path": cells,
    ...         "gender": np.array([0.0]), "face_score": np.array([3.2]),
    ...         "second_face_score": np.array([np.nan])}})
    ...     X, y = load_imdb_wiki(root, source="wiki", return_X_y=True)
    >>> y
       age  gender
    0   25  Female
    """
    if source not in _SOURCES:
        raise ValueError(
            f"The 'source' parameter must be one of ['imdb', 'wiki']. Got {source!r} instead."
        )
    if not isinstance(min_face_score, numbers.Real) or np.isnan(min_face_score):
        raise ValueError(
            f"The 'min_face_score' parameter must be a number. Got {min_face_score!r} instead."
        )
    mat_path = _find_mat(path, source)
    root = os.path.dirname(mat_path)
    fields = _read_struct(mat_path, source)
    n = len(fields["full_path"])
    if any(len(fields[f]) != n for f in _FIELDS):
        raise ValueError(
            f"The fields {list(_FIELDS)} of {mat_path!r} must have one entry per image; got "
            f"lengths { {f: len(fields[f]) for f in _FIELDS} }."
        )

    idx, values = _kept_rows(fields, root, mat_path, min_face_score)
    frame = _frame(fields, root, idx, values)
    descr = IMDB_WIKI_DESCR.format(source=source, min_face_score=min_face_score)
    return _make_bunch(frame, ["age", "gender"], descr, source, return_X_y)
