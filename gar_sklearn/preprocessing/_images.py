"""Reading face images from paths, PIL images or arrays into uint8 RGB arrays.

Pillow reads every format and mode; plain JPEGs are decoded, and all images
resized, with torch's kernels (``_pixels``), which are several times faster
and give the same pixels (resizing: within 2). The torch side
(``gar_sklearn._data``) turns these arrays into batches.
"""

import ast
import hashlib
import os
import re
import threading
import warnings
from collections.abc import Mapping, Sequence, Set

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._pixels import read_jpeg, resize_images

__all__ = ["ImageLoadError", "load_image", "read_image", "as_image_source", "ImageSource"]


_MESSAGE = re.compile(r"Could not read image ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"): (.*?)\s*$")


class ImageLoadError(ValueError):
    """An image could not be read or decoded.

    Attributes
    ----------
    source : str
        The path (or a description of the in-memory item) that failed.
    """

    def __init__(self, source, reason=None):
        if reason is None:
            # re-created from a message alone, which is how a DataLoader worker's error is
            # re-raised in the main process: the message ends with the worker's traceback
            match = _MESSAGE.search(str(source))
            if match is None:
                self.source, self.reason = None, None
                super().__init__(str(source))
                return
            source, reason = ast.literal_eval(match.group(1)), match.group(2)
        self.source = str(source)
        self.reason = str(reason)
        super().__init__(f"Could not read image {self.source!r}: {self.reason}")

    def __reduce__(self):  # keep the two-argument constructor picklable (DataLoader workers)
        return (type(self), (self.source, self.reason))


def _to_rgb(img):
    """Convert any Pillow mode to 8-bit RGB (alpha is composited on white)."""
    try:
        return _convert_to_rgb(img)
    except ValueError as exc:
        raise ValueError(f"Cannot convert an image of mode {img.mode!r} to RGB ({exc}).") from exc


def _convert_to_rgb(img):
    mode = img.mode
    if mode == "La":  # premultiplied alpha: Pillow converts it to RGBA only through LA
        img, mode = img.convert("LA"), "LA"
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit and float images: rescale the full range of the type to 0-255
        arr = np.asarray(img, dtype=np.float64)
        top = 1.0 if mode == "F" else (65535.0 if mode.startswith("I;16") else max(arr.max(), 1.0))
        if mode == "I" and arr.max() <= 255:
            top = 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# warning filters are process-wide: images are decoded in threads, so opening is serialised
# (it reads the header only; decoding runs in parallel)
_OPEN_LOCK = threading.Lock()


def _open(path):
    """``Image.open`` without Pillow's DecompressionBombWarning: up to Pillow's hard limit
    (twice the warning's), big photos are photos; beyond it Pillow still raises."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


_HUGE_PIXELS = 4096 * 4096


def _shrink_huge(img, size):
    """Box-average a huge image down to a few times ``size`` before any conversion:
    a 100-megapixel photo would otherwise be converted to RGB (300 MB) to be thrown away."""
    if size is None or img.width * img.height <= _HUGE_PIXELS:
        return img
    factor = min(img.size) // (4 * size)
    if factor < 2 or img.mode not in ("L", "LA", "RGB", "RGBA", "RGBX", "I", "F", "CMYK"):
        return img
    return img.reduce(factor)


def _from_array(arr):
    if arr.ndim in (2, 3) and 0 in arr.shape[:2]:
        raise ValueError(f"An image array must have at least one pixel; got shape {arr.shape}.")
    if arr.dtype != np.uint8:
        raise ValueError(
            "Images given as arrays must have dtype uint8 (values 0-255); "
            f"got dtype {arr.dtype}. If your values are floats in [0, 1], pass "
            "(x * 255).round().astype(np.uint8)."
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.array(_to_rgb(Image.fromarray(arr, mode="RGBA")))  # writable
    raise ValueError(
        "An image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
        f"got shape {arr.shape}."
    )


def load_image(image, size=None):
    """Read one image as an 8-bit RGB array.

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or ndarray
        A path to an image file, a Pillow image, or a uint8 array of shape
        (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Files are turned upright
        according to their EXIF orientation. Grayscale, palette, CMYK, 16-bit
        and images with an alpha channel (composited on white) are converted.
        Files of up to ``2 * PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 179
        million by default; a 10,000 x 10,000 photo is 100 million) are
        read; larger ones raise :class:`ImageLoadError`, as Pillow's
        decompression-bomb guard would.
    size : int or None, default=None
        When given, the image is resized to ``(size, size)`` pixels
        (bilinear, antialiased when shrinking).

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype uint8

    Raises
    ------
    ImageLoadError
        When a file is missing, unreadable, truncated, not an image, or too
        large.
    ValueError
        When an array has the wrong dtype or shape, or no pixels.
    TypeError
        When ``image`` is none of the types above.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.preprocessing import load_image
    >>> load_image(np.zeros((40, 30), dtype=np.uint8), size=16).shape
    (16, 16, 3)
    """
    img = read_image(image, size)
    if size is None or img.shape[:2] == (size, size):
        return img
    return resize_images([img], size)[0].permute(1, 2, 0).numpy()


def read_image(image, size=None):
    """Read one image as an 8-bit RGB array, upright, before resizing to ``size``.

    What :func:`load_image` resizes; batches resize many at once with
    :func:`~gar_sklearn.preprocessing._pixels.resize_images`. ``size`` only
    lets a large JPEG be decoded at a reduced scale that still covers it.
    Raises as :func:`load_image` does.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.preprocessing import read_image
    >>> read_image(np.zeros((40, 30), dtype=np.uint8), size=16).shape
    (40, 30, 3)
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        pixels = read_jpeg(path, size, _HUGE_PIXELS)
        if pixels is not None:
            return pixels
        try:
            with _open(path) as img:
                if size is not None and img.format == "JPEG":
                    # decode at a reduced DCT scale when that still covers `size`: much faster
                    img.draft("RGB", (size, size))
                img.load()
                img = ImageOps.exif_transpose(img)
                img = _shrink_huge(img, size)
                mode = img.mode
                img = _to_rgb(img)
        except FileNotFoundError as exc:
            raise ImageLoadError(path, "no such file") from exc
        except IsADirectoryError as exc:
            raise ImageLoadError(path, "is a directory, not an image file") from exc
        except UnidentifiedImageError as exc:
            raise ImageLoadError(path, "not a recognised image format") from exc
        except Image.DecompressionBombError as exc:
            raise ImageLoadError(
                path,
                f"too large to decode safely ({exc}); the limit is 2 * PIL.Image.MAX_IMAGE_PIXELS "
                f"= {2 * Image.MAX_IMAGE_PIXELS} pixels: raise PIL.Image.MAX_IMAGE_PIXELS for "
                "files you trust",
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            if str(exc).startswith("Cannot convert an image of mode"):
                raise ImageLoadError(path, f"unsupported image mode {mode!r} ({exc})") from exc
            raise ImageLoadError(path, f"corrupt or truncated image ({exc})") from exc
    elif isinstance(image, Image.Image):
        img = _to_rgb(ImageOps.exif_transpose(image))
    elif isinstance(image, np.ndarray):
        return np.ascontiguousarray(_from_array(image))
    else:
        raise TypeError(
            "Each image must be a file path, a PIL.Image.Image or a uint8 ndarray; "
            f"got {type(image).__name__}."
        )
    return np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy needs one


class ImageSource:
    """An indexable view of X, the user's images, whatever form they come in.

    Not public API: estimators build one with :func:`as_image_source`.
    """

    def __init__(self, items, kind, positions=None):
        self.items = items
        self.kind = kind  # "array" or "sequence"
        self.positions = positions  # each item's index in the user's X, when a subset

    def __len__(self):
        return len(self.items)

    def _position(self, index):
        return index if self.positions is None else int(self.positions[index])

    def load(self, index, size=None):
        return self._call(load_image, index, size)

    def read(self, index, size=None):
        """Item ``index`` as :func:`read_image` gives it: not resized yet."""
        return self._call(read_image, index, size)

    def _call(self, reader, index, size):
        try:
            return reader(self.items[index], size=size)
        except ImageLoadError:
            raise
        except (TypeError, ValueError) as exc:  # a bad in-memory item: say which one
            raise (TypeError if isinstance(exc, TypeError) else ValueError)(
                f"X[{self._position(index)}]: {exc}"
            ) from exc

    def describe(self, index):
        """A short name of item ``index`` for messages: its path, or its position in X."""
        item = self.items[index] if self.kind == "sequence" else None
        if isinstance(item, (str, os.PathLike)):
            return os.fspath(item)
        return f"X[{self._position(index)}]"

    def subset(self, indices):
        indices = np.asarray(indices, dtype=np.intp)
        positions = indices if self.positions is None else np.asarray(self.positions)[indices]
        if self.kind == "array":
            return ImageSource(self.items[indices], "array", positions)
        if hasattr(self.items, "subset"):
            return ImageSource(self.items.subset(indices), "sequence", positions)
        return ImageSource([self.items[i] for i in indices], "sequence", positions)

    def cache_keys(self):
        """One hashable identity per image, for feature caches.

        Paths are identified by their absolute path, size and modification
        time; in-memory images by a hash of their pixels.
        """
        if hasattr(self.items, "cache_keys"):
            return list(self.items.cache_keys())
        keys = []
        for i in range(len(self.items)):
            item = self.items[i]
            if isinstance(item, (str, os.PathLike)):
                path = os.path.abspath(os.fspath(item))
                try:
                    st = os.stat(path)
                    keys.append(f"path:{path}:{st.st_size}:{st.st_mtime_ns}")
                except OSError:
                    keys.append(f"path:{path}:missing")
            else:
                arr = np.ascontiguousarray(load_image(item))
                digest = hashlib.blake2b(arr.tobytes(), digest_size=16)
                digest.update(str(arr.shape).encode())
                keys.append(f"pixels:{digest.hexdigest()}")
        return keys


def as_image_source(X):
    """Check X and wrap it as an :class:`ImageSource`.

    Accepts a sequence (list, tuple, pandas Series, 1-D object array) of
    paths, PIL images or arrays, or one uint8 array of shape (n, H, W, 3),
    (n, H, W, 1) or (n, H, W).
    """
    if isinstance(X, ImageSource):
        return X
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(
            "X must be a sequence of images (paths, PIL images or arrays) or an "
            f"array of shape (n_samples, H, W[, 3]); got a single {type(X).__name__} "
            f"{X!r}. Wrap a single image in a list."
        )
    if isinstance(X, Image.Image):
        raise TypeError(
            "X must be a sequence of images; got a single PIL image. Wrap it in a list."
        )
    if isinstance(X, (Mapping, Set)):
        raise TypeError(
            "X must be a sequence of images (paths, PIL images or arrays) or an array of shape "
            f"(n_samples, H, W[, 3]); got a {type(X).__name__}, which has no order."
        )
    if hasattr(X, "to_numpy") and not hasattr(X, "columns"):  # pandas Series of paths
        X = X.to_numpy()
    if hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise ValueError(
                "X as a DataFrame must have exactly one column of image paths; "
                f"got {X.shape[1]} columns: {list(X.columns)}."
            )
        X = X.iloc[:, 0].to_numpy()
    if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "US":
        if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[3] not in (1, 3, 4)):
            raise ValueError(
                "X given as a numeric array must have shape (n_samples, H, W) or "
                f"(n_samples, H, W, 3); got an array of shape {X.shape}."
            )
        if X.ndim == 3 and X.shape[2] in (3, 4):  # not grayscale images 3 or 4 pixels wide
            raise ValueError(
                f"X given as an array of shape {X.shape} reads as {len(X)} grayscale images "
                f"{X.shape[2]} pixels wide; pass one colour image in a list, or as X[None]."
            )
        if X.dtype != np.uint8:
            raise ValueError(
                f"X given as an array must have dtype uint8 (pixel values 0-255); got {X.dtype}. "
                "If your values are floats in [0, 1], pass (X * 255).round().astype(np.uint8)."
            )
        if len(X) == 0:
            raise ValueError("X is empty: expected at least one image, got 0.")
        if 0 in X.shape[1:3]:
            raise ValueError(
                f"The images in X must have at least one pixel; got X of shape {X.shape}."
            )
        return ImageSource(X, "array")
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(f"X given as an array of paths must be 1-D; got shape {X.shape}.")
    elif not isinstance(X, Sequence) and not (hasattr(X, "__len__") and hasattr(X, "__getitem__")):
        raise TypeError(
            "X must be a sequence of images (paths, PIL images or uint8 arrays) or a uint8 "
            f"array of shape (n_samples, H, W[, 3]); got {type(X).__name__}."
        )
    if len(X) == 0:
        raise ValueError("X is empty: expected at least one image, got 0.")
    return ImageSource(X, "sequence")
