"""Train/test splits that keep byte-identical images on one side."""

import hashlib
import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.utils import check_consistent_length, check_random_state

__all__ = ["find_duplicate_groups", "group_train_test_split"]

_N_THREADS = 8  # file reads and md5 release the GIL: threads overlap I/O and hashing


def _md5_file(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_pixels(arr):
    # shape and dtype are part of the identity: the same bytes as 2x8 or 4x4 differ
    arr = np.ascontiguousarray(arr)
    digest = hashlib.md5(f"{arr.shape}{arr.dtype.str}".encode(), usedforsecurity=False)
    digest.update(arr.tobytes())
    return digest.hexdigest()


def _hash_one(item):
    if isinstance(item, (str, os.PathLike)):
        return _md5_file(item)
    if isinstance(item, Image.Image):
        return _md5_pixels(np.asarray(item))
    if isinstance(item, np.ndarray):
        return _md5_pixels(item)
    raise TypeError(
        "Images to hash must be file paths (str or os.PathLike), PIL images or numpy arrays. "
        f"Got an item of type {type(item).__name__}."
    )


def _as_items(X):
    """A list of hashable image items (paths, arrays or PIL images) from ``X``."""
    if isinstance(X, pd.DataFrame):
        if "path" not in X.columns:
            raise ValueError(
                "The 'X' parameter given as a DataFrame must have a 'path' column (as the "
                f"loaders' frame does). Got columns {list(X.columns)}."
            )
        X = X["path"]
    if isinstance(X, pd.Series):
        return X.tolist()
    if isinstance(X, np.ndarray) and X.dtype.kind in "US":
        return [str(x) for x in X.ravel()]
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim < 2:
            raise ValueError(
                "The 'X' parameter given as a numeric array must hold images, with shape "
                f"(n_samples, H, W) or (n_samples, H, W, C). Got shape {X.shape}."
            )
        return list(X)
    if isinstance(X, (str, os.PathLike)):
        raise TypeError("The 'X' parameter must be a sequence of images, not a single path.")
    return list(X)


def _hash_images(X):
    """One md5 hex digest per image: file bytes for paths, pixel bytes otherwise."""
    items = _as_items(X)
    if any(isinstance(item, (str, os.PathLike)) for item in items) and len(items) > 1:
        with ThreadPoolExecutor(max_workers=_N_THREADS) as pool:
            return list(pool.map(_hash_one, items))
    return [_hash_one(item) for item in items]


def find_duplicate_groups(X):
    """Group ids under which byte-identical images share one id.

    For file paths the md5 of the file's bytes is compared, so two files
    holding the same JPEG bytes are duplicates (the same picture saved with
    different encoders is not detected). For in-memory images (a uint8 array
    of images, arrays, PIL images) the md5 of the pixel bytes and their shape
    is compared. Files are read by a small thread pool: 20,000 UTKFace images
    take a few seconds.

    Pass the result as ``groups`` to a group-aware splitter (``GroupKFold``,
    ``StratifiedGroupKFold``, :func:`group_train_test_split`) so copies of an
    image never sit on both sides of a split.

    Parameters
    ----------
    X : sequence of str or os.PathLike, ndarray of shape (n_samples, H, W[, C]), \
sequence of arrays or PIL images, or DataFrame with a ``path`` column
        The images.

    Returns
    -------
    groups : ndarray of int of shape (n_samples,)
        ``0, 1, 2, ...`` numbered in order of first appearance; equal ids mean
        identical images.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.datasets import find_duplicate_groups
    >>> images = np.zeros((4, 2, 2), dtype=np.uint8)
    >>> images[1] = 7  # images 0, 2 and 3 are identical
    >>> find_duplicate_groups(images).tolist()
    [0, 1, 0, 0]
    """
    digests = _hash_images(X)
    ids = {}
    return np.fromiter(
        (ids.setdefault(d, len(ids)) for d in digests), dtype=np.int64, count=len(digests)
    )


def _n_samples(a):
    return a.shape[0] if hasattr(a, "shape") and len(a.shape) else len(a)


def _take(a, indices):
    """Rows ``indices`` of ``a``, keeping its type (DataFrame, Series, array, list)."""
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return a.iloc[indices]
    if hasattr(a, "shape") and hasattr(a, "__getitem__") and not isinstance(a, (list, tuple)):
        return a[indices]
    return [a[i] for i in indices]


def _strata_keys(stratify):
    """One hashable stratum per row; a 2-D ``stratify`` stratifies on the column combination."""
    if isinstance(stratify, pd.DataFrame):
        return list(stratify.astype(str).agg("|".join, axis=1))
    arr = np.asarray(stratify, dtype=object)
    if arr.ndim == 2:
        return ["|".join(map(str, row)) for row in arr]
    return [str(v) for v in arr.ravel()]


def _check_test_size(test_size, n):
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 1 <= test_size < n:
            raise ValueError(
                f"The 'test_size' parameter given as an int must be in [1, {n - 1}] for "
                f"{n} samples. Got {test_size} instead."
            )
        return int(test_size)
    if (
        isinstance(test_size, numbers.Real)
        and not isinstance(test_size, bool)
        and 0 < test_size < 1
    ):
        return int(np.ceil(test_size * n))
    raise ValueError(
        "The 'test_size' parameter must be a float in (0, 1) or an int in [1, n_samples - 1]. "
        f"Got {test_size!r} instead."
    )


def _group_test_mask(group_ids, strata, n_test, rng):
    """Pick whole groups for the test side, about ``n_test`` samples, per stratum in proportion."""
    n = len(group_ids)
    _, group_sizes = np.unique(group_ids, return_counts=True)
    n_groups = len(group_sizes)
    # a group belongs to the stratum most of its members have (ties: the first one seen)
    n_strata = strata.max() + 1
    pairs, first, counts = np.unique(
        group_ids * n_strata + strata, return_index=True, return_counts=True
    )
    pair_group = pairs // n_strata
    order = np.lexsort((first, -counts, pair_group))
    best = order[np.r_[True, np.diff(pair_group[order]) != 0]]
    group_stratum = pairs[best] % n_strata
    stratum_sizes = np.bincount(group_stratum, weights=group_sizes, minlength=n_strata)

    # the test quota of each stratum: its share of n_test, rounded by largest remainder
    quota = stratum_sizes * n_test / n
    targets = np.floor(quota).astype(int)
    short = n_test - targets.sum()
    if short > 0:
        order = np.lexsort((rng.permutation(len(quota)), -(quota - targets)))
        targets[order[:short]] += 1

    # Groups are taken in a random order up to the quota: every group, large or small, has
    # about the same chance to be drawn (as in GroupShuffleSplit). The group that crosses the
    # quota is taken when overshooting by it misses the quota by less than stopping would.
    test_groups = np.zeros(n_groups, dtype=bool)
    for s, target in enumerate(targets):
        taken = 0
        for g in rng.permutation(np.flatnonzero(group_stratum == s)):
            if taken >= target:
                break
            size = group_sizes[g]
            if taken + size <= target or taken + size - target < target - taken:
                test_groups[g] = True
                taken += size
            elif taken:
                break
            # else: a group of more than twice the quota, skipped so the quota can be met
    return test_groups[group_ids]


def group_train_test_split(
    X, *arrays, test_size=0.2, random_state=None, groups=None, stratify=None
):
    """Split images and labels into train and test sets, keeping duplicates together.

    Like :func:`sklearn.model_selection.train_test_split`, but every group of
    samples sharing a ``groups`` value lands wholly on one side. With
    ``groups=None`` the groups are the byte-identical images of ``X`` (found
    by :func:`find_duplicate_groups`), so the same picture never appears in
    both the training and the test set.

    The test set holds about ``test_size`` of the *samples* (not of the
    groups): whole groups are drawn in a random order until the quota is
    met, so every sample has about the same chance to be drawn whatever the
    size of its group, and the test set misses the quota by at most half the
    largest group (per stratum). With ``stratify``, each stratum gets its own
    share of the quota, and a group counts in the stratum of the majority of
    its members.

    Parameters
    ----------
    X : sequence of paths, ndarray of images, sequence of arrays or PIL \
images, or DataFrame with a ``path`` column
        The images (hashed when ``groups`` is None).
    *arrays : sequence of array-like
        Further arrays to split the same way (labels, weights, ...), of the
        same length as ``X``: lists, numpy arrays, pandas objects.
    test_size : float or int, default=0.2
        Fraction of the samples in (0, 1) (rounded up), or their number.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of the groups.
    groups : array-like of shape (n_samples,), default=None
        Group labels (for example a person's identity); None hashes ``X``.
    stratify : array-like of shape (n_samples,) or (n_samples, n_columns), default=None
        Class labels to stratify on; several columns stratify on their
        combination (for example ``y[["gender", "race"]]``).

    Returns
    -------
    splitting : list of length 2 * (1 + len(arrays))
        ``X_train, X_test``, then the train and test part of each array, each
        of the type it was given, rows in their original order.

    See Also
    --------
    find_duplicate_groups : The group ids, for ``GroupKFold`` and friends.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.datasets import group_train_test_split
    >>> images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1)
    >>> images[5] = images[4]  # images 4 and 5 are duplicates
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> X_train, X_test, y_train, y_test = group_train_test_split(
    ...     images, y, test_size=2, random_state=5)
    >>> X_train.ravel().tolist(), X_test.ravel().tolist()  # the copies stay together
    ([0, 1, 2, 3], [4, 4])
    >>> y_test.tolist()
    [1, 1]
    """
    n = _n_samples(X)
    check_consistent_length(X, *arrays)
    n_test = _check_test_size(test_size, n)
    rng = check_random_state(random_state)
    if groups is None:
        groups = find_duplicate_groups(X)
    else:
        check_consistent_length(X, groups)
    _, group_ids = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    if stratify is None:
        strata = np.zeros(n, dtype=np.int64)
    else:
        check_consistent_length(X, stratify)
        _, strata = np.unique(np.asarray(_strata_keys(stratify), dtype=object), return_inverse=True)

    test = _group_test_mask(group_ids.ravel(), strata.ravel(), n_test, rng)
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    if not len(train_idx) or not len(test_idx):
        raise ValueError(
            f"Cannot split {n} samples in {group_ids.max() + 1} groups with "
            f"test_size={test_size!r}: one side would be empty. Use a test_size that a whole "
            "number of groups can meet."
        )
    out = []
    for a in (X, *arrays):
        out += [_take(a, train_idx), _take(a, test_idx)]
    return out
