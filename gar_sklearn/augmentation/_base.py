"""The augmenter contract and the parameter checks the augmenters share.

An augmenter is a scikit-learn style object whose ``augment(image, rng)``
returns a new uint8 ``(H, W, 3)`` array of the same shape, drawing all its
randomness from ``rng``. Estimators call it in their training data loader
only, so nothing here is ever applied at predict or score time. As a
Pipeline step, an augmenter's ``transform`` returns the images untouched and
its ``fit_transform`` an :class:`~gar_sklearn.augmentation.AugmentedView` of
them, which the next step's fit augments every epoch.
"""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._view import AugmentedView

__all__ = ["BaseAugmenter"]


class BaseAugmenter(TransformerMixin, BaseEstimator):
    """Base class of the augmenters: validates, then delegates to ``_augment``.

    Subclasses store their parameters untouched in ``__init__``, check them in
    ``_checked_params`` (returning a dict of keyword arguments for
    ``_augment``) and implement ``_augment(image, rng, **params)``, which must
    return a new array and take every random number from ``rng``.

    Every augmenter is also a Pipeline step that only acts on the training
    path: ``Pipeline([("augment", FaceAugmenter()), ("clf",
    MultiAttributeClassifier())])`` trains on images augmented afresh every
    epoch and predicts and scores on the images as given.
    """

    def fit(self, X=None, y=None):
        """Check the parameters; there is nothing to learn.

        Parameters
        ----------
        X : images, ignored
        y : ignored

        Returns
        -------
        self
        """
        self._checked_params()
        return self

    def transform(self, X):
        """Return X as it is: images are augmented only while an estimator fits on them.

        Parameters
        ----------
        X : images

        Returns
        -------
        X : the same object
        """
        return X

    def fit_transform(self, X, y=None, **fit_params):
        """Check the parameters and hand X on with this augmenter, for the next step's fit.

        Parameters
        ----------
        X : images
        y : ignored

        Returns
        -------
        AugmentedView
            X itself (nothing is read or copied), carrying this augmenter:
            the estimators' ``fit`` augments its images afresh every epoch.
        """
        self.fit(X, y)
        return AugmentedView(X, self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: transform needs no fit
        tags.input_tags.two_d_array = False  # X holds images, not feature rows
        return tags

    def augment(self, image, rng):
        """Return a randomly augmented copy of one image.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3) and dtype uint8
            The image; it is never modified.
        rng : numpy.random.Generator
            The only source of randomness: the same generator state gives the
            same output.

        Returns
        -------
        ndarray of shape (H, W, 3) and dtype uint8
            A new array (never a view of ``image``).
        """
        name = type(self).__name__
        _check_image(image, f"{name}.augment")
        _check_rng(rng, f"{name}.augment")
        out = self._augment(image, rng, **self._checked_params())
        if np.shares_memory(out, image):  # the contract promises a new array
            out = out.copy()
        return out

    def _checked_params(self):
        return {}

    def _augment(self, image, rng, **params):
        raise NotImplementedError


def _check_image(image, where):
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{where} expects a uint8 ndarray of shape (H, W, 3); got {type(image).__name__}. "
            "Read images with gar_sklearn.preprocessing.load_image."
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(
            f"{where} expects a uint8 ndarray of shape (H, W, 3) with H, W >= 1; got dtype "
            f"{image.dtype} and shape {image.shape}. Read images with "
            "gar_sklearn.preprocessing.load_image."
        )


def _check_rng(rng, where):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"The 'rng' argument of {where} must be a numpy.random.Generator, e.g. "
            f"numpy.random.default_rng(0). Got {type(rng).__name__} instead."
        )


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_unit_interval(value, name, owner):
    """A probability or strength: a real number in [0, 1]."""
    if not _is_real(value) or not 0 <= value <= 1:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a float in the range [0, 1]. "
            f"Got {value!r} instead."
        )
    return float(value)


def _check_scale(value, name, owner):
    """An area range ``(low, high)`` with ``0 < low <= high <= 1``."""
    try:
        low, high = value
        valid = (
            not isinstance(value, str)
            and _is_real(low)
            and _is_real(high)
            and 0 < low <= high <= 1
            and math.isfinite(low)
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a pair (low, high) of area fractions "
            f"with 0 < low <= high <= 1. Got {value!r} instead."
        )
    return float(low), float(high)
