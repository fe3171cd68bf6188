"""FairFace: its published label CSVs and image folders."""

import os

import numpy as np
import pandas as pd

from ..preprocessing import FAIRFACE_AGE_GROUPS
from ._base import (
    FAIRFACE_RACES,
    GENDERS,
    _check_dir,
    _existing,
    _make_bunch,
    _warn_skipped,
)

__all__ = ["load_fairface"]

# the token the published zip names carry for each padding
_PADDING_TOKENS = {"0.25": "margin025", "1.25": "margin125"}
_SPLITS = ("train", "val")

FAIRFACE_DESCR = """\
FairFace
--------
Face images balanced over seven race groups (White, Black, Latino_Hispanic,
East Asian, Southeast Asian, Indian, Middle Eastern), with gender (Male,
Female) and age in nine groups (0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59,
60-69, more than 70). Published as a train and a val split, each in two
crops: padding 0.25 (tight) and padding 1.25 (wide) around the face.
This load: split={split!r}, padding={padding!r}.

Source: Karkkainen and Joo, "FairFace: Face Attribute Dataset for Balanced
Race, Gender, and Age for Bias Measurement and Mitigation", WACV 2021
(https://github.com/joojs/fairface).

Licence: FairFace's repository publishes it under CC BY 4.0, but the images
are Flickr photos (YFCC-100M) whose copyright stays with their owners: use
them for non-commercial research only.
"""


def _check_padding(padding):
    key = str(padding).strip()  # 0.25 and "0.25" alike
    if key not in _PADDING_TOKENS:
        raise ValueError(
            f"The 'padding' parameter must be one of ['0.25', '1.25']. Got {padding!r} instead."
        )
    return key


def _find_image_root(path, split, padding):
    """The folder holding ``<split>/`` for the chosen padding (see :func:`load_fairface`)."""
    token = _PADDING_TOKENS[padding]
    other = _PADDING_TOKENS["1.25" if padding == "0.25" else "0.25"]
    if os.path.isdir(os.path.join(path, split)):
        if other in os.path.basename(os.path.abspath(path)).lower():
            raise ValueError(
                f"The folder {path!r} looks like the padding-{'1.25' if padding == '0.25' else '0.25'} "
                f"release ({other}) but padding={padding!r} was asked for."
            )
        return path
    candidates = sorted(
        entry.path for entry in os.scandir(path) if entry.is_dir() and token in entry.name.lower()
    )
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, split)):
            return candidate
        # unzipping into a folder of the zip's own name nests it one level deeper
        for entry in sorted(os.scandir(candidate), key=lambda e: e.name):
            if entry.is_dir() and os.path.isdir(os.path.join(entry.path, split)):
                return entry.path
    raise FileNotFoundError(
        f"No FairFace image folder for padding={padding!r} was found under {path!r}: expected "
        f"either {split}/ directly inside it, or a folder whose name contains {token!r} "
        f"(such as fairface-img-{token}-trainval/) holding {split}/ and val/."
    )


def _find_labels(path, root, split):
    name = f"fairface_label_{split}.csv"
    places = list(dict.fromkeys([path, root, os.path.dirname(os.path.abspath(root))]))
    for place in places:
        candidate = os.path.join(place, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"The FairFace label file {name} was not found in any of {places}.")


def load_fairface(path, split="train", padding="0.25", *, return_X_y=False):
    """Load FairFace from its published label CSVs and image folders.

    Age stays as FairFace's nine groups and race as its seven classes; use
    :func:`harmonize_labels` to map them onto UTKFace's labels.

    **Folder layout.** FairFace publishes ``fairface_label_train.csv`` and
    ``fairface_label_val.csv`` (columns ``file, age, gender, race,
    service_test``, with ``file`` like ``train/1.jpg``) and one image zip per
    padding, ``fairface-img-margin025-trainval.zip`` (padding 0.25) and
    ``fairface-img-margin125-trainval.zip`` (padding 1.25), each holding
    ``train/`` and ``val/``. ``path`` may be:

    - the image root itself (the folder holding ``train/`` and ``val/``); the
      padding cannot be checked then, except that a folder named for the other
      padding is refused;
    - a parent folder holding the unzipped image folders, whose names must
      contain ``margin025`` or ``margin125`` (as the zips' names do); the one
      for ``padding`` is used, also when unzipping nested it one level deeper.

    The CSVs are looked for in ``path``, then in the image root, then in its
    parent folder.

    Rows whose image file is missing, or whose age, gender or race is not one
    of FairFace's labels, are skipped and counted in one
    :class:`SkippedRowsWarning`.

    Read the licence in ``DESCR``: the images are for non-commercial research only.

    Parameters
    ----------
    path : str or os.PathLike
        The image root or a parent folder, as above.
    split : {"train", "val"}, default="train"
        Which published split.
    padding : {"0.25", "1.25"}, default="0.25"
        Which crop: 0.25 (tight around the face) or 1.25 (wider).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As :func:`load_utkface`: ``data`` (image paths), ``target``
        (``age`` group, ``gender``, ``race``), ``frame`` (``path``, the
        targets and the boolean ``service_test``), ``feature_names``,
        ``target_names``, ``DESCR``, ``source="fairface"``.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from gar_sklearn.datasets import load_fairface
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     root = os.path.join(parent, "fairface-img-margin025-trainval")
    ...     os.makedirs(os.path.join(root, "val"))
    ...     Image.new("RGB", (8, 8)).save(os.path.join(root, "val", "1.jpg"))
    ...     with open(os.path.join(parent, "fairface_label_val.csv"), "w") as f:
    ...         _ = f.write("file,age,gender,race,service_test\\n"
    ...                     "val/1.jpg,3-9,Male,East Asian,False\\n")
    ...     X, y = load_fairface(parent, split="val", return_X_y=True)
    >>> y
       age gender        race
    0  3-9   Male  East Asian
    """
    path = _check_dir(path)
    if split not in _SPLITS:
        raise ValueError(
            f"The 'split' parameter must be one of ['train', 'val']. Got {split!r} instead."
        )
    padding = _check_padding(padding)
    root = _find_image_root(path, split, padding)
    malformed = []  # lines with too many fields: counted, not fatal
    labels = pd.read_csv(
        _find_labels(path, root, split),
        dtype=str,
        keep_default_na=False,
        engine="python",
        on_bad_lines=lambda line: malformed.append(",".join(line)),
    )
    missing = {"file", "age", "gender", "race"} - set(labels.columns)
    if missing:
        raise ValueError(
            f"The FairFace label file for split={split!r} must have the columns file, age, gender, "
            f"race (and service_test). Columns {sorted(missing)} are missing."
        )
    labels = labels.fillna("").apply(lambda col: col.str.strip())  # short lines leave NaN
    files = labels["file"].tolist()

    valid_label = (
        labels["age"].isin(FAIRFACE_AGE_GROUPS)
        & labels["gender"].isin(GENDERS)
        & labels["race"].isin(FAIRFACE_RACES)
    ).to_numpy()
    present = _existing(root, files) & (labels["file"] != "").to_numpy()
    keep = valid_label & present
    bad_label = ~valid_label
    no_file = valid_label & ~present
    skipped = [(line, "malformed line") for line in malformed]
    skipped += [(files[i], "invalid label") for i in np.flatnonzero(bad_label)]
    skipped += [(files[i], "missing image file") for i in np.flatnonzero(no_file)]
    _warn_skipped(
        f"rows of fairface_label_{split}.csv",
        len(labels) + len(malformed),
        {
            "malformed CSV lines (too many fields)": len(malformed),
            "with an age, gender or race outside FairFace's labels": int(bad_label.sum()),
            "whose image file is missing": int(no_file.sum()),
        },
        skipped,
    )

    kept = labels[keep]
    frame = pd.DataFrame(
        {
            "path": [os.path.join(root, *f.replace("\\", "/").split("/")) for f in kept["file"]],
            "age": kept["age"].to_numpy(),
            "gender": kept["gender"].to_numpy(),
            "race": kept["race"].to_numpy(),
        }
    ).astype("str")
    if "service_test" in kept.columns:
        frame["service_test"] = kept["service_test"].str.lower().eq("true").to_numpy()
    descr = FAIRFACE_DESCR.format(split=split, padding=padding)
    return _make_bunch(frame, ["age", "gender", "race"], descr, "fairface", return_X_y)
