"""Age as classes: exact ages, fixed intervals, or FairFace's nine groups."""

import numbers
import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "AgeBinner",
    "FAIRFACE_AGE_GROUPS",
    "age_group_bounds",
    "age_group_midpoints",
    "aggregate_age_proba",
]

#: FairFace's nine age groups, spelt as in its published label files.
FAIRFACE_AGE_GROUPS = (
    "0-2",
    "3-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "more than 70",
)
_FAIRFACE_EDGES = (0, 3, 10, 20, 30, 40, 50, 60, 70)
# an interval's groups reach the oldest age: a placeholder such as 1e9 would make a huge head
_MAX_GROUPS = 10_000


def _group_label(lo, hi):
    return f"{lo}-{hi - 1}" if hi - lo > 1 else f"{lo}"


def age_group_bounds(label):
    """The ages in years an age class label covers, as ``(low, high)``.

    ``"a-b"`` covers ``(a, b)``; open-ended groups (``"70+"``, ``"more than
    70"``) ``(70, inf)``; an exact age ``(age, age)``.

    Examples
    --------
    >>> from gar_sklearn.preprocessing import age_group_bounds
    >>> age_group_bounds("20-29"), age_group_bounds("more than 70"), age_group_bounds(35)
    ((20.0, 29.0), (70.0, inf), (35.0, 35.0))
    """
    if isinstance(label, (numbers.Number, np.number)) and not isinstance(label, bool):
        return float(label), float(label)
    text = str(label).strip()
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)", text):
        return float(m[1]), float(m[2])
    if m := re.fullmatch(r"(?:more than\s*(\d+)|(\d+)\s*\+)", text):
        return float(m[1] or m[2]), float("inf")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text), float(text)
    raise ValueError(
        f"Cannot read an age from the class label {label!r}: expected a number, "
        "'a-b', 'N+' or 'more than N'."
    )


def age_group_midpoints(labels):
    """A representative age for each age class label.

    Exact ages map to themselves, ``"a-b"`` to ``(a + b) / 2``, and open-ended
    groups (``"70+"``, ``"more than 70"``) to five years above their lower edge.

    Parameters
    ----------
    labels : array-like
        Age class labels: numbers or strings of the forms above.

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> from gar_sklearn.preprocessing import age_group_midpoints
    >>> age_group_midpoints(["0-2", "20-29", "more than 70", 35]).tolist()
    [1.0, 24.5, 75.0, 35.0]
    """
    out = []
    for label in labels:
        low, high = age_group_bounds(label)
        out.append(low + 5.0 if np.isinf(high) else (low + high) / 2)
    return np.asarray(out, dtype=float)


def aggregate_age_proba(proba, ages, bins="fairface"):
    """Sum a probability distribution over ages into age groups.

    A model trained on fine age classes (exact ages, say) can then answer in
    coarser groups: each class's probability goes to the group holding its
    representative age.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities of the age classes.
    ages : array-like of shape (n_classes,)
        The representative age of each class (see :func:`age_group_midpoints`).
    bins : "fairface", int or sequence of int, default="fairface"
        The groups, as in :class:`AgeBinner`.

    Returns
    -------
    group_proba : ndarray of shape (n_samples, n_groups)
    groups : ndarray of shape (n_groups,)
        The group labels, in the columns' order.

    Examples
    --------
    >>> from gar_sklearn.preprocessing import aggregate_age_proba
    >>> p, groups = aggregate_age_proba([[0.2, 0.3, 0.5]], ages=[8, 9, 25])
    >>> p.round(2).tolist(), groups[[1, 3]].tolist()
    ([[0.0, 0.5, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]], ['3-9', '20-29'])
    """
    proba = np.asarray(proba, dtype=float)
    ages = np.asarray(ages, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(ages):
        raise ValueError(
            f"proba must have shape (n_samples, {len(ages)}), one column per age; got {proba.shape}."
        )
    binner = AgeBinner(bins=bins).fit(ages)
    member = binner.transform(ages)[:, None] == binner.classes_[None, :]
    return proba @ member.astype(float), binner.classes_


class AgeBinner(TransformerMixin, BaseEstimator):
    """Bin exact ages into age groups.

    Parameters
    ----------
    bins : "fairface", int or sequence of int, default="fairface"
        ``"fairface"``: FairFace's nine groups (0-2, 3-9, 10-19, ..., 60-69,
        "more than 70"). An int ``k``: groups of ``k`` years starting at 0, the
        last one open-ended above the oldest age seen in ``fit``; ``k=1``
        keeps exact ages (integers), so classification over its groups is
        exact-age estimation. A sequence: the increasing lower edges of the
        groups, the last group open-ended (``"N+"``).

    Attributes
    ----------
    edges_ : ndarray of int
        Lower edge of each group.
    classes_ : ndarray
        The group labels, in age order.
    midpoints_ : ndarray of float
        A representative age per group (see :func:`age_group_midpoints`).

    Examples
    --------
    >>> from gar_sklearn.preprocessing import AgeBinner
    >>> AgeBinner().fit_transform([1, 25, 71]).tolist()
    ['0-2', '20-29', 'more than 70']
    >>> AgeBinner(bins=10).fit([3, 47]).transform([3, 47]).tolist()
    ['0-9', '40+']
    >>> AgeBinner(bins=1).fit_transform([3, 47]).tolist()
    [3, 47]
    """

    def __init__(self, bins="fairface"):
        self.bins = bins

    @staticmethod
    def _validate_ages(ages):
        if np.asarray(ages).dtype == bool:
            raise ValueError("Ages must be numbers; got booleans (True/False).")
        ages = pd.to_numeric(pd.Series(np.asarray(ages).ravel()), errors="coerce").to_numpy(float)
        if np.isnan(ages).any():
            bad = np.flatnonzero(np.isnan(ages))[:5].tolist()
            raise ValueError(
                "Ages must be numbers with no missing values; got a missing or non-numeric "
                f"value at positions {bad}."
            )
        infinite = np.flatnonzero(np.isinf(ages))
        if len(infinite):
            raise ValueError(
                f"Ages must be finite numbers; got {ages[infinite[0]]} at positions "
                f"{infinite[:5].tolist()}."
            )
        if (ages < 0).any():
            raise ValueError(
                f"Ages must be non-negative; got {ages.min()} at positions "
                f"{np.flatnonzero(ages < 0)[:5].tolist()}."
            )
        return ages

    def fit(self, ages, y=None):
        """Set the group edges from ``bins`` (and the oldest age, for an interval)."""
        ages = self._validate_ages(ages)
        bins = self.bins
        if isinstance(bins, str):
            if bins != "fairface":
                raise ValueError(
                    "The 'bins' parameter must be 'fairface', a positive int or a sequence of "
                    f"edges. Got {bins!r} instead."
                )
            self.edges_ = np.asarray(_FAIRFACE_EDGES)
            self.classes_ = np.asarray(FAIRFACE_AGE_GROUPS, dtype=object)
        elif isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
            if bins < 1:
                raise ValueError(f"The 'bins' interval must be a positive int. Got {bins} instead.")
            top = int(ages.max()) if len(ages) else 0
            if top // bins >= _MAX_GROUPS:
                raise ValueError(
                    f"bins={bins} makes {top // bins + 1} age groups up to the oldest age, "
                    f"{ages.max():g}; at most {_MAX_GROUPS} are allowed. Check the ages for "
                    "placeholders or other units, or use wider bins."
                )
            self.edges_ = np.arange(0, top + 1, bins)
            if bins == 1:
                self.classes_ = self.edges_.copy()
            else:
                labels = [_group_label(lo, hi) for lo, hi in zip(self.edges_[:-1], self.edges_[1:])]
                self.classes_ = np.asarray(labels + [f"{self.edges_[-1]}+"], dtype=object)
        else:
            edges = np.asarray(bins)
            if (
                edges.ndim != 1
                or len(edges) < 1
                or edges.dtype.kind not in "iuf"
                or np.any(np.diff(edges) <= 0)
            ):
                raise ValueError(
                    "The 'bins' parameter given as a sequence must hold strictly increasing "
                    f"lower edges. Got {bins!r} instead."
                )
            self.edges_ = edges.astype(int)
            labels = [_group_label(lo, hi) for lo, hi in zip(self.edges_[:-1], self.edges_[1:])]
            self.classes_ = np.asarray(labels + [f"{self.edges_[-1]}+"], dtype=object)
        self.midpoints_ = (
            self.edges_.astype(float)
            if isinstance(bins, numbers.Integral) and bins == 1
            else age_group_midpoints(self.classes_)
        )
        return self

    def transform(self, ages):
        """Map each age to its group label.

        Parameters
        ----------
        ages : array-like of shape (n_samples,)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        ages = self._validate_ages(ages)
        if (ages < self.edges_[0]).any():
            raise ValueError(
                f"Age {ages.min()} lies below the first group, which starts at {self.edges_[0]}."
            )
        idx = np.searchsorted(self.edges_, ages, side="right") - 1
        return self.classes_[idx]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags
