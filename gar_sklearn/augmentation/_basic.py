"""The three basic augmenters: random resized crop, horizontal flip, light.

Each one first draws ``u = rng.random()`` and acts only when ``u < p``, so
``p=0`` never acts (the output equals the input) and ``p=1`` always does. The
kernels (``_crop_resize``, ``_flip``, ``_random_light``) are shared with
:class:`~gar_sklearn.augmentation.FaceAugmenter`, which must draw exactly the
same numbers as the same augmenters chained in a pipeline.
"""

import math

import numpy as np
from PIL import Image

from ._base import BaseAugmenter, _check_scale, _check_unit_interval

__all__ = ["RandomCrop", "RandomFlip", "RandomLight"]

# ITU-R 601-2 luma weights, as Pillow's convert("L") and torchvision's rgb_to_grayscale
_LUMA = np.array([0.299, 0.587, 0.114])


def _crop_resize(image, rng, scale):
    """Crop a random region of area fraction in ``scale``, resize it back."""
    height, width = image.shape[:2]
    side = math.sqrt(rng.uniform(scale[0], scale[1]))
    crop_h = min(height, max(1, round(side * height)))
    crop_w = min(width, max(1, round(side * width)))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    if (crop_h, crop_w) == (height, width):
        return image.copy()
    # crop first: resize(box=...) would let the filter reach pixels outside the region
    region = Image.fromarray(np.ascontiguousarray(image[top : top + crop_h, left : left + crop_w]))
    return np.array(region.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def _flip(image):
    # .copy(), not ascontiguousarray: for a one-pixel-wide image the reversed view
    # already counts as contiguous and would be returned as is
    return image[:, ::-1].copy()


def _adjust_light(image, brightness_factor, contrast_factor):
    """Scale brightness, then blend with the mean gray level for contrast.

    ``b = clip(brightness_factor * x, 0, 255)``, then
    ``clip(contrast_factor * b + (1 - contrast_factor) * mean_gray(b), 0, 255)``
    rounded to the nearest integer (ties to even), computed in float64 so
    nothing wraps around.
    """
    out = np.clip(image.astype(np.float64) * brightness_factor, 0.0, 255.0)
    if contrast_factor != 1.0:
        gray_mean = float((out @ _LUMA).mean())
        out = np.clip(contrast_factor * out + (1.0 - contrast_factor) * gray_mean, 0.0, 255.0)
    return np.rint(out).astype(np.uint8)


def _random_light(image, rng, brightness, contrast):
    brightness_factor = rng.uniform(1.0 - brightness, 1.0 + brightness)
    contrast_factor = rng.uniform(1.0 - contrast, 1.0 + contrast)
    return _adjust_light(image, brightness_factor, contrast_factor)


class RandomCrop(BaseAugmenter):
    """Crop a random region and resize it back to the input size.

    A random resized crop that keeps the aspect ratio of the image: the
    region covers a fraction ``s ~ Uniform(scale)`` of the image area, so its
    sides are ``round(sqrt(s) * H)`` by ``round(sqrt(s) * W)`` pixels (at
    least 1), at a uniformly random position; it is resized back to
    ``(H, W)`` with bilinear interpolation (Pillow). A crop that rounds to the
    whole image returns the image unchanged.

    Parameters
    ----------
    p : float, default=0.5
        Probability of cropping an image; ``0`` never crops.
    scale : tuple of (float, float), default=(0.8, 1.0)
        Range ``(low, high)`` of the fraction of the image area kept, with
        ``0 < low <= high <= 1``.

    See Also
    --------
    FaceAugmenter : Crop, flip and light adjustment with flat parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import RandomCrop
    >>> image = np.full((8, 6, 3), 7, dtype=np.uint8)
    >>> out = RandomCrop(p=1.0, scale=(0.25, 0.5)).augment(image, np.random.default_rng(0))
    >>> out.shape, int(out.min()), int(out.max())
    ((8, 6, 3), 7, 7)
    """

    def __init__(self, p=0.5, scale=(0.8, 1.0)):
        self.p = p
        self.scale = scale

    def _checked_params(self):
        owner = type(self).__name__
        return {
            "p": _check_unit_interval(self.p, "p", owner),
            "scale": _check_scale(self.scale, "scale", owner),
        }

    def _augment(self, image, rng, p, scale):
        if rng.random() < p:
            return _crop_resize(image, rng, scale)
        return image.copy()


class RandomFlip(BaseAugmenter):
    """Mirror an image left to right.

    Parameters
    ----------
    p : float, default=0.5
        Probability of flipping an image; ``0`` never flips.

    See Also
    --------
    FaceAugmenter : Crop, flip and light adjustment with flat parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import RandomFlip
    >>> image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    >>> RandomFlip(p=1.0).augment(image, np.random.default_rng(0))[..., 0]
    array([[ 6,  3,  0],
           [15, 12,  9]], dtype=uint8)
    """

    def __init__(self, p=0.5):
        self.p = p

    def _checked_params(self):
        return {"p": _check_unit_interval(self.p, "p", type(self).__name__)}

    def _augment(self, image, rng, p):
        if rng.random() < p:
            return _flip(image)
        return image.copy()


class RandomLight(BaseAugmenter):
    """Randomly change the brightness and contrast of an image.

    Two factors are drawn, ``a ~ Uniform(1 - brightness, 1 + brightness)``
    and ``c ~ Uniform(1 - contrast, 1 + contrast)``. Every pixel value ``x``
    becomes ``b = clip(a * x, 0, 255)`` (a brighter or darker exposure that
    saturates), then ``clip(c * b + (1 - c) * m, 0, 255)`` where ``m`` is the
    mean gray level of ``b`` (luma ``0.299 R + 0.587 G + 0.114 B``), rounded
    to the nearest integer. The arithmetic is in float64: values never wrap
    around, and brighter inputs never come out darker than darker ones.

    Parameters
    ----------
    p : float, default=0.5
        Probability of adjusting an image; ``0`` never adjusts.
    brightness : float, default=0.2
        Half-width of the brightness factor range, in [0, 1].
    contrast : float, default=0.2
        Half-width of the contrast factor range, in [0, 1].

    See Also
    --------
    FaceAugmenter : Crop, flip and light adjustment with flat parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import RandomLight
    >>> image = np.full((2, 2, 3), 100, dtype=np.uint8)
    >>> out = RandomLight(p=1.0, brightness=0.5, contrast=0.0).augment(
    ...     image, np.random.default_rng(0))
    >>> int(out[0, 0, 0])  # 100 times a factor drawn in [0.5, 1.5]
    77
    """

    def __init__(self, p=0.5, brightness=0.2, contrast=0.2):
        self.p = p
        self.brightness = brightness
        self.contrast = contrast

    def _checked_params(self):
        owner = type(self).__name__
        return {
            "p": _check_unit_interval(self.p, "p", owner),
            "brightness": _check_unit_interval(self.brightness, "brightness", owner),
            "contrast": _check_unit_interval(self.contrast, "contrast", owner),
        }

    def _augment(self, image, rng, p, brightness, contrast):
        if rng.random() < p:
            return _random_light(image, rng, brightness, contrast)
        return image.copy()
