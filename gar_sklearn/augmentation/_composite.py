"""Augmenters made of other augmenters: the face default and a generic chain."""

import numpy as np

from ._base import BaseAugmenter, _check_scale, _check_unit_interval
from ._basic import _crop_resize, _flip, _random_light

__all__ = ["AugmentationPipeline", "FaceAugmenter"]


class FaceAugmenter(BaseAugmenter):
    """Random crop, horizontal flip and light adjustment, with flat parameters.

    Applies, in this order and each with its own draw, what
    :class:`RandomCrop`, :class:`RandomFlip` and :class:`RandomLight` do; with
    the same generator it gives exactly the output of
    ``AugmentationPipeline([RandomCrop(crop_p, crop_scale), RandomFlip(flip_p),
    RandomLight(light_p, brightness, contrast)])``. The parameters are flat so
    that a search can tune them through an estimator, e.g.
    ``{"augment__flip_p": [0.0, 0.5]}``.

    Parameters
    ----------
    crop_p : float, default=0.5
        Probability of a random resized crop.
    crop_scale : tuple of (float, float), default=(0.8, 1.0)
        Range of the fraction of the image area the crop keeps.
    flip_p : float, default=0.5
        Probability of a horizontal flip.
    light_p : float, default=0.5
        Probability of a brightness and contrast change.
    brightness : float, default=0.2
        Half-width of the brightness factor range, in [0, 1].
    contrast : float, default=0.2
        Half-width of the contrast factor range, in [0, 1].

    See Also
    --------
    AugmentationPipeline : Chain any augmenters.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import FaceAugmenter
    >>> image = np.zeros((32, 32, 3), dtype=np.uint8)
    >>> FaceAugmenter(flip_p=1.0).augment(image, np.random.default_rng(0)).shape
    (32, 32, 3)
    """

    def __init__(
        self,
        crop_p=0.5,
        crop_scale=(0.8, 1.0),
        flip_p=0.5,
        light_p=0.5,
        brightness=0.2,
        contrast=0.2,
    ):
        self.crop_p = crop_p
        self.crop_scale = crop_scale
        self.flip_p = flip_p
        self.light_p = light_p
        self.brightness = brightness
        self.contrast = contrast

    def _checked_params(self):
        owner = type(self).__name__
        return {
            "crop_p": _check_unit_interval(self.crop_p, "crop_p", owner),
            "crop_scale": _check_scale(self.crop_scale, "crop_scale", owner),
            "flip_p": _check_unit_interval(self.flip_p, "flip_p", owner),
            "light_p": _check_unit_interval(self.light_p, "light_p", owner),
            "brightness": _check_unit_interval(self.brightness, "brightness", owner),
            "contrast": _check_unit_interval(self.contrast, "contrast", owner),
        }

    def _augment(self, image, rng, crop_p, crop_scale, flip_p, light_p, brightness, contrast):
        out = image
        if rng.random() < crop_p:
            out = _crop_resize(out, rng, crop_scale)
        if rng.random() < flip_p:
            out = _flip(out)
        if rng.random() < light_p:
            out = _random_light(out, rng, brightness, contrast)
        return out


def _named_pairs(steps):
    """``steps`` as a list of (name, augmenter) pairs, or None if it is not one."""
    if isinstance(steps, (list, tuple)) and all(
        isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str) for step in steps
    ):
        return list(steps)
    return None


class AugmentationPipeline(BaseAugmenter):
    """Apply augmenters one after the other.

    Parameters
    ----------
    steps : list of augmenters or list of (str, augmenter) tuples
        Objects with an ``augment(image, rng)`` method, applied in order with
        the same generator. With named steps, ``get_params(deep=True)`` and
        ``set_params`` reach the steps' parameters as ``<name>__<param>``, as
        in a scikit-learn :class:`~sklearn.pipeline.Pipeline`, and a step can
        be replaced with ``set_params(<name>=other)``. An empty list is the
        identity.

    See Also
    --------
    FaceAugmenter : The usual crop, flip and light chain with flat parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import AugmentationPipeline, RandomFlip, RandomLight
    >>> pipe = AugmentationPipeline([("flip", RandomFlip(p=1.0)), ("light", RandomLight(p=0.0))])
    >>> pipe.set_params(light__p=0.25).get_params()["light__p"]
    0.25
    >>> image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    >>> pipe.augment(image, np.random.default_rng(0)).shape
    (1, 2, 3)
    """

    def __init__(self, steps):
        self.steps = steps

    def get_params(self, deep=True):
        params = super().get_params(deep=False)
        pairs = _named_pairs(self.steps) if deep else None
        for name, step in pairs or ():
            params[name] = step
            if hasattr(step, "get_params"):
                for key, value in step.get_params(deep=True).items():
                    params[f"{name}__{key}"] = value
        return params

    def set_params(self, **params):
        if "steps" in params:
            self.steps = params.pop("steps")
        pairs = _named_pairs(self.steps)
        if pairs is not None:
            replacements = {name: params.pop(name) for name, _ in pairs if name in params}
            if replacements:
                self.steps = [(name, replacements.get(name, step)) for name, step in pairs]
        # nested "<name>__<param>" keys (and unknown ones, which raise) go to the base class
        super().set_params(**params)
        return self

    def _checked_params(self):
        steps = self.steps
        message = (
            "The 'steps' parameter of AugmentationPipeline must be a list of augmenters (objects "
            "with an augment(image, rng) method) or of (name, augmenter) tuples with unique "
            f"names free of '__'. Got {steps!r} instead."
        )
        if not isinstance(steps, (list, tuple)):
            raise TypeError(message)
        pairs = _named_pairs(steps)
        if pairs is None:
            pairs = [(None, step) for step in steps]
            if any(isinstance(step, tuple) for step in steps):  # a mix, or malformed pairs
                raise ValueError(message)
        else:
            names = [name for name, _ in pairs]
            if len(set(names)) != len(names) or any("__" in name for name in names):
                raise ValueError(message)
            if "steps" in names:
                raise ValueError(
                    "AugmentationPipeline step names must not be 'steps', the name of the "
                    "parameter itself."
                )
        for position, (name, step) in enumerate(pairs):
            if not callable(getattr(step, "augment", None)):
                raise TypeError(
                    "Each step of AugmentationPipeline must have an augment(image, rng) method; "
                    f"step {name if name is not None else position!r} is a "
                    f"{type(step).__name__} without one."
                )
        return {"pairs": pairs}

    def _augment(self, image, rng, pairs):
        out = image
        for position, (name, step) in enumerate(pairs):
            out = step.augment(out, rng)
            if not (
                isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == image.shape
            ):
                got = (
                    f"dtype {out.dtype} and shape {out.shape}"
                    if isinstance(out, np.ndarray)
                    else f"a {type(out).__name__}"
                )
                raise ValueError(
                    f"Step {name if name is not None else position!r} of AugmentationPipeline "
                    f"must return a uint8 array of the input's shape {image.shape}; got {got}."
                )
        return out
