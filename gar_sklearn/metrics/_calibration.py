"""Calibration of predicted probabilities."""

import numpy as np

__all__ = ["expected_calibration_error"]


def expected_calibration_error(y_true, proba, *, classes, n_bins=15):
    """Expected calibration error of the top-class probability (equal-width bins).

    Predictions are binned by their confidence (the largest probability of
    each row) into ``n_bins`` equal-width bins of [0, 1]; the ECE is the
    average over bins of ``|accuracy - mean confidence|``, weighted by the
    fraction of samples in the bin (Guo et al., 2017).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in ``classes`` order.
    classes : array-like of shape (n_classes,)
        The labels of the columns (an estimator's ``classes_[k]``).
    n_bins : int, default=15

    Returns
    -------
    float

    Examples
    --------
    >>> from gar_sklearn.metrics import expected_calibration_error
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    >>> round(expected_calibration_error(["a", "b", "b", "a"], proba, classes=["a", "b"], n_bins=2), 3)
    0.25
    """
    proba = np.asarray(proba, dtype=float)
    y_true = np.asarray(y_true)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(
            f"proba must have shape (n_samples, {len(classes)}) to match classes; got {proba.shape}."
        )
    if len(y_true) != len(proba):
        raise ValueError(f"y_true has {len(y_true)} labels but proba has {len(proba)} rows.")
    if len(y_true) == 0:
        raise ValueError("Expected at least one sample, got 0.")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"The 'n_bins' parameter must be a positive int. Got {n_bins!r} instead.")
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)
