"""UTKFace: labels read from the image file names."""

import numbers
import os
import re

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ._base import GENDERS, UTKFACE_RACES, _check_dir, _make_bunch, _warn_skipped

__all__ = ["load_utkface"]

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_MAX_AGE = 120
# age_gender_race_ then anything: only the three label fields are checked, so a
# damaged date or extension (e.g. "..._20170116220224657 .jpg.chip.jpg") still loads.
_NAME = re.compile(r"^([^_]*)_([^_]*)_([^_]*)_")

UTKFACE_DESCR = """\
UTKFace (aligned and cropped faces)
-----------------------------------
Face images of people aged 0 to 116, named ``age_gender_race_date.jpg.chip.jpg``:
gender 0 = Male, 1 = Female; race 0 White, 1 Black, 2 Asian, 3 Indian,
4 Others. The labels were estimated by an algorithm and checked by people, so
some are wrong; some images are byte-identical duplicates (keep each group on
one side of a split: see ``group_train_test_split``).

Source: Zhang, Song and Qi, "Age Progression/Regression by Conditional
Adversarial Autoencoder", CVPR 2017 (https://susanqq.github.io/UTKFace/).

Licence: non-commercial research purposes only. The images were collected from
the internet and their copyright stays with their owners.
"""


def _parse_name(name):
    """``(age, gender, race)`` from a UTKFace file name, or ``(None, reason)``."""
    match = _NAME.match(name)
    if match is None:
        return None, "a label field is missing"
    fields = match.groups()
    if not all(re.fullmatch(r"\d+", f) for f in fields):
        return None, "a label field is not a whole number"
    age, gender, race = (int(f) for f in fields)
    if age > _MAX_AGE:
        return None, f"age outside 0-{_MAX_AGE}"
    if gender >= len(GENDERS):
        return None, "gender code outside 0-1"
    if race >= len(UTKFACE_RACES):
        return None, "race code outside 0-4"
    return (age, GENDERS[gender], UTKFACE_RACES[race]), None


def _scan_images(root):
    """Relative paths ('/'-separated) of the image files under ``root``, recursively."""
    found = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir():
                    stack.append(child)
                elif entry.name.lower().endswith(_IMAGE_EXTENSIONS) and entry.is_file():
                    found.append(child)
    found.sort()
    return found


def _stratified_subset(strata, n_samples, rng):
    """Indices of ``n_samples`` rows drawn without replacement, proportionally per stratum."""
    keys, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    # largest-remainder allocation: every stratum gets its share, rounded, summing to n_samples
    quota = counts * n_samples / counts.sum()
    alloc = np.floor(quota).astype(int)
    short = n_samples - alloc.sum()
    if short:
        order = np.lexsort((rng.permutation(len(keys)), -(quota - alloc)))
        alloc[order[:short]] += 1
    chosen = [
        rng.choice(np.flatnonzero(inverse == k), size=alloc[k], replace=False)
        for k in range(len(keys))
        if alloc[k]
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=int)


def load_utkface(path, *, n_samples=None, random_state=None, return_X_y=False):
    """Load UTKFace: image paths and the labels in their file names.

    Every ``.jpg``/``.jpeg``/``.png`` file under ``path`` (searched
    recursively, so both the folder of images and a parent holding an
    ``images/`` folder work) named ``age_gender_race_date.jpg.chip.jpg`` is
    one sample. Only the three label fields are read; the date and extension
    are not checked.

    Files whose names lack a label field, hold a non-numeric one, a gender
    code other than 0-1, a race code other than 0-4 or an age above 120 are
    skipped and reported by one :class:`SkippedRowsWarning` giving their count
    and the first ten names. (The published UTKFace has three files without a
    race field, such as ``61_1_20170109142408075.jpg.chip.jpg``.)

    Read the licence in ``DESCR``: UTKFace is for non-commercial research only.

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding the images, directly or in subfolders.
    n_samples : int, default=None
        Load only this many images, drawn without replacement and stratified by
        gender x race (each pair keeps its share, rounded), for quick runs.
        ``None`` loads them all.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of ``n_samples``; unused when ``n_samples`` is None.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of object, shape (n_samples,)
            Image paths (``path`` joined with the relative path), sorted.
        target : DataFrame of shape (n_samples, 3)
            ``age`` (int), ``gender`` ("Male"/"Female"), ``race`` ("White",
            "Black", "Asian", "Indian", "Others").
        frame : DataFrame of shape (n_samples, 4)
            ``path`` and the target columns.
        feature_names : list of str
            ``["path"]``.
        target_names : list of str
            ``["age", "gender", "race"]``.
        DESCR : str
            Description and licence.
        source : str
            ``"utkface"`` (used by :func:`concat_datasets`).

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from gar_sklearn.datasets import load_utkface
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ["25_0_0_20170101.jpg.chip.jpg", "3_1_2_20170102.jpg.chip.jpg"]:
    ...         Image.new("RGB", (8, 8)).save(os.path.join(folder, name), "JPEG")
    ...     X, y = load_utkface(folder, return_X_y=True)
    >>> y
       age  gender   race
    0   25    Male  White
    1    3  Female  Asian
    """
    root = _check_dir(path)
    if n_samples is not None and (
        not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1
    ):
        raise ValueError(
            f"The 'n_samples' parameter must be a positive int or None. Got {n_samples!r} instead."
        )
    files = _scan_images(root)
    if not files:
        raise FileNotFoundError(
            f"No .jpg, .jpeg or .png images were found under {root!r}; 'path' must be the UTKFace "
            "folder (holding the images directly or in subfolders)."
        )

    rows, skipped = [], []
    for rel in files:
        labels, reason = _parse_name(rel.rpartition("/")[2])
        if labels is None:
            skipped.append((rel, reason))
        else:
            rows.append((os.path.join(root, *rel.split("/")), *labels))
    reasons = {}
    for _, reason in skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    _warn_skipped(
        "image files whose names do not hold valid UTKFace labels (age_gender_race_...)",
        len(files),
        reasons,
        skipped,
    )

    frame = pd.DataFrame(rows, columns=["path", "age", "gender", "race"])
    frame = frame.astype({"path": "str", "age": "int64", "gender": "str", "race": "str"})
    if n_samples is not None:
        if n_samples > len(frame):
            raise ValueError(
                f"The 'n_samples' parameter must be at most the {len(frame)} valid images found "
                f"under {root!r}. Got {n_samples} instead."
            )
        rng = check_random_state(random_state)
        strata = (frame["gender"] + "|" + frame["race"]).to_numpy(dtype=object)
        frame = frame.iloc[_stratified_subset(strata, n_samples, rng)]
    return _make_bunch(frame, ["age", "gender", "race"], UTKFACE_DESCR, "utkface", return_X_y)
