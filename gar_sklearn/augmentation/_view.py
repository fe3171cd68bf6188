"""Augmenters as Pipeline steps: the view of X that ``fit_transform`` hands the next step.

A scikit-learn :class:`~sklearn.pipeline.Pipeline` calls ``fit_transform``
on each step before the last one when it is fitted, and ``transform`` when
it predicts or scores. An augmenter's ``transform`` returns the images as
they are; its ``fit_transform`` returns an :class:`AugmentedView`: the same
images, untouched, carrying the augmenter. The estimators' ``fit``, given a
view, trains on its images and augments them afresh every epoch, as their
``augment`` parameter does. So predictions and cross-validation scores are
never made on augmented images.
"""

import numbers
from collections.abc import Sequence

import numpy as np

from .._fingerprint import describe

__all__ = ["AugmentedView", "pipeline_augmenter"]


class AugmentedView(Sequence):
    """Images as given, with the augmenter that the estimator fitting on them applies.

    What an augmenter step of a Pipeline passes to the next step when the
    pipeline is fitted. Read as a sequence (or with ``numpy.asarray``) it is
    the images themselves: a step that does not know about augmentation sees
    the originals. :class:`~gar_sklearn.MultiAttributeClassifier` and
    :class:`~gar_sklearn.GenderFusionClassifier` unwrap it and augment the
    training images each epoch.

    Parameters
    ----------
    images : sequence or ndarray
        The images, in any form the estimators accept; nothing is read or
        copied.
    augmenter : augmenter
        An object with an ``augment(image, rng)`` method.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import AugmentedView, RandomFlip
    >>> X = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    >>> view = RandomFlip().fit_transform(X)
    >>> isinstance(view, AugmentedView), len(view), view.images is X
    (True, 3, True)
    >>> RandomFlip().fit(X).transform(X) is X  # predict and score: the images as they are
    True
    """

    def __init__(self, images, augmenter):
        self.images = images
        self.augmenter = augmenter

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        images = self.images
        if isinstance(index, numbers.Integral):
            return images.iloc[index] if hasattr(images, "iloc") else images[index]
        if hasattr(images, "iloc"):
            return AugmentedView(images.iloc[index], self.augmenter)
        if isinstance(images, np.ndarray):
            return AugmentedView(images[index], self.augmenter)
        positions = np.arange(len(images))[index]
        return AugmentedView([images[i] for i in positions], self.augmenter)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.images, dtype=dtype)

    def __repr__(self):
        return f"AugmentedView(n_images={len(self)}, augmenter={self.augmenter!r})"


def pipeline_augmenter(X, augment, owner):
    """``(images, augmenter)`` for an estimator's fit: X unwrapped from an
    :class:`AugmentedView` and its augmenter, else X and the ``augment`` parameter.

    Raises a ValueError when both are given and differ.
    """
    if not isinstance(X, AugmentedView):
        return X, augment
    if augment is not None and describe(augment) != describe(X.augmenter):
        raise ValueError(
            f"{owner} got two augmenters: its 'augment' parameter {augment!r} and "
            f"{X.augmenter!r} from the Pipeline step before it. Keep one: set augment=None, "
            "or remove the augmentation step from the Pipeline."
        )
    return X.images, X.augmenter
