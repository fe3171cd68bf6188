"""What the loaders share: label sets, the skipped-rows warning, the Bunch layout."""

import os
import warnings

import numpy as np
from sklearn.utils import Bunch

from .._text import shown

__all__ = [
    "FAIRFACE_RACES",
    "GENDERS",
    "UTKFACE_RACES",
    "SkippedRowsWarning",
]

#: Gender labels, as every loader spells them.
GENDERS = ("Male", "Female")
#: UTKFace's five race labels, in the order of its codes 0-4.
UTKFACE_RACES = ("White", "Black", "Asian", "Indian", "Others")
#: FairFace's seven race labels, spelt as in its published label files.
FAIRFACE_RACES = (
    "White",
    "Black",
    "Latino_Hispanic",
    "East Asian",
    "Southeast Asian",
    "Indian",
    "Middle Eastern",
)

_MAX_LISTED = 10


class SkippedRowsWarning(UserWarning):
    """A loader skipped files or rows whose labels are missing or malformed.

    One warning per call gives the number skipped (by reason) and the first
    few names; the rest of the data set loads normally.
    """


def _warn_skipped(what, n_total, reasons, names=()):
    """Emit one SkippedRowsWarning.

    ``reasons`` maps a reason to its count (in the order to report);
    ``names`` lists ``(name, reason)`` pairs, of which the first few are shown.
    """
    n_skipped = sum(reasons.values())
    if not n_skipped:
        return
    by_reason = "; ".join(f"{count} {reason}" for reason, count in reasons.items() if count)
    message = f"Skipped {n_skipped} of {n_total} {what}: {by_reason}."
    if names:
        listed = shown(names, _MAX_LISTED, lambda pair: f"{pair[0]!r} ({pair[1]})")
        message += f" Skipped: {listed}."
    warnings.warn(message, SkippedRowsWarning, stacklevel=3)


def _make_bunch(frame, target_names, descr, source, return_X_y):
    """The Bunch (or ``(data, target)``) every loader returns.

    ``frame`` holds a ``path`` column, the target columns and any extra
    columns, with a fresh RangeIndex.
    """
    frame = frame.reset_index(drop=True)
    data = np.asarray(frame["path"].to_numpy(dtype=object), dtype=object)
    target = frame[list(target_names)].copy()
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=["path"],
        target_names=list(target_names),
        DESCR=descr,
        source=source,
    )


def _check_dir(path, param="path"):
    """``path`` as an existing directory, or a FileNotFoundError naming it."""
    try:
        path = os.fspath(path)
    except TypeError as exc:
        raise TypeError(
            f"The '{param}' parameter must be a str or os.PathLike. Got {type(path).__name__} "
            "instead."
        ) from exc
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"The '{param}' parameter must be an existing folder. Got {path!r}."
        )
    return path


def _list_files(folder):
    """Names of the regular files directly inside ``folder`` (one scandir, no stat)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _existing(root, relpaths):
    """Boolean mask: which of ``relpaths`` (relative to ``root``, '/'-separated) exist.

    Scans each distinct folder once instead of stat-ing every file, which
    keeps hundreds of thousands of rows fast.
    """
    listings = {}
    mask = np.zeros(len(relpaths), dtype=bool)
    for i, rel in enumerate(relpaths):
        folder, _, name = rel.replace("\\", "/").rpartition("/")
        if folder not in listings:
            listings[folder] = _list_files(os.path.join(root, folder))
        mask[i] = name in listings[folder]
    return mask
