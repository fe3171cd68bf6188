"""Pipeline steps that turn image references into pixel arrays."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._images import ImageLoadError, as_image_source

__all__ = ["ImageLoader"]


class ImageLoader(TransformerMixin, BaseEstimator):
    """Read images (paths, PIL images or arrays) into one uint8 array.

    A stateless pipeline step for when later steps need pixels rather than
    paths (for example a scikit-learn model on raw pixels, or to load a set
    once and reuse it). The library's estimators read paths themselves and
    stream them from disk, so they need no loader in front: for tens of
    thousands of images pass the paths, since this step holds every decoded
    image in memory at once (``size**2 * 3`` bytes each).

    Parameters
    ----------
    size : int, default=224
        Side of the square output images.
    on_error : {"raise", "skip"}, default="raise"
        "skip" leaves an all-zero image in place of an unreadable file and
        records its position in ``failed_`` (rows stay aligned with y).

    Attributes
    ----------
    failed_ : list of int
        Positions of unreadable images in the last ``transform`` (with "skip").

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.preprocessing import ImageLoader
    >>> X = [np.zeros((30, 40, 3), dtype=np.uint8), np.full((10, 10), 255, dtype=np.uint8)]
    >>> out = ImageLoader(size=8).fit_transform(X)
    >>> out.shape, out.dtype.name, int(out[1].min())
    ((2, 8, 8, 3), 'uint8', 255)
    """

    def __init__(self, size=224, on_error="raise"):
        self.size = size
        self.on_error = on_error

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learnt."""
        if not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise ValueError(
                f"The 'size' parameter must be a positive int. Got {self.size!r} instead."
            )
        if self.on_error not in ("raise", "skip"):
            raise ValueError(
                f"The 'on_error' parameter must be 'raise' or 'skip'. Got {self.on_error!r} instead."
            )
        return self

    def transform(self, X):
        """Decode and resize every image.

        Returns
        -------
        ndarray of shape (n_samples, size, size, 3), uint8
        """
        self.fit()
        source = as_image_source(X)
        out = np.zeros((len(source), self.size, self.size, 3), dtype=np.uint8)
        self.failed_ = []
        for i in range(len(source)):
            try:
                out[i] = source.load(i, self.size)
            except ImageLoadError:
                if self.on_error == "raise":
                    raise
                self.failed_.append(i)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
