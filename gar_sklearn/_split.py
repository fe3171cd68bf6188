"""The validation hold-out of a fit, shared by the estimators (no torch)."""

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["holdout_split", "n_holdout"]


def n_holdout(n, fraction):
    """How many of ``n`` images a ``fraction`` holds out: at least one."""
    return max(1, int(round(n * fraction)))


def holdout_split(labels, n_valid, random_state, keep_classes_in_train=False):
    """Training and validation positions, stratified on the first column when possible.

    Parameters
    ----------
    labels : ndarray of shape (n, n_attributes)
        Encoded or plain labels; the first column stratifies the split when
        each of its classes has at least 2 images and both sides can hold one
        of each class.
    n_valid : int
        The number of validation positions.
    random_state : int
        Seeds the split.
    keep_classes_in_train : bool, default=False
        Move back to training every validation position with a class (in any
        column) that no training position has: a model that learns its
        classes from its training rows could not score them.

    Returns
    -------
    train, valid : ndarray of int
        Sorted positions into ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[0], [0], [1], [1], [0], [1]])
    >>> train, valid = holdout_split(labels, 2, random_state=0)
    >>> sorted(labels[valid, 0].tolist())  # one of each class
    [0, 1]
    """
    labels = np.asarray(labels)
    n = len(labels)
    strata = labels[:, 0]
    _, counts = np.unique(strata, return_counts=True)
    can_stratify = counts.min() >= 2 and min(n_valid, n - n_valid) >= len(counts)
    train, valid = train_test_split(
        np.arange(n),
        test_size=n_valid,
        random_state=int(random_state),
        stratify=strata if can_stratify else None,
    )
    if keep_classes_in_train:
        unseen = np.zeros(len(valid), dtype=bool)
        for k in range(labels.shape[1]):
            unseen |= ~np.isin(labels[valid, k], labels[train, k])
        train, valid = np.concatenate([train, valid[unseen]]), valid[~unseen]
    return np.sort(train), np.sort(valid)
