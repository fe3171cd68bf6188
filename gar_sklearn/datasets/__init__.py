"""Loaders for UTKFace, FairFace and IMDB-WIKI, duplicate-aware splits, label harmonisation,
and synthetic faces for tests.

Every loader returns a :class:`~sklearn.utils.Bunch` with ``data`` (image
paths), ``target`` (a DataFrame of labels), ``frame``, ``feature_names``,
``target_names``, ``DESCR`` and ``source``, or ``(data, target)`` with
``return_X_y=True``. numpy, pandas and Pillow only (scipy for IMDB-WIKI's
``.mat`` files); no torch.
"""

from ._base import FAIRFACE_RACES, GENDERS, UTKFACE_RACES, SkippedRowsWarning
from ._fairface import load_fairface
from ._harmonize import FAIRFACE_TO_UTKFACE_RACE, concat_datasets, harmonize_labels
from ._imdb_wiki import load_imdb_wiki
from ._split import find_duplicate_groups, group_train_test_split
from ._synthetic import make_synthetic_faces
from ._utkface import load_utkface

__all__ = [
    "FAIRFACE_RACES",
    "FAIRFACE_TO_UTKFACE_RACE",
    "GENDERS",
    "UTKFACE_RACES",
    "SkippedRowsWarning",
    "concat_datasets",
    "find_duplicate_groups",
    "group_train_test_split",
    "harmonize_labels",
    "load_fairface",
    "load_imdb_wiki",
    "load_utkface",
    "make_synthetic_faces",
]
