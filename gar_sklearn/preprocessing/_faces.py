"""Finding faces in raw photos and cropping them like the aligned training sets.

The default detector is OpenCV's Haar cascade (``opencv-python-headless``, the
``face`` extra), imported only when it is actually needed, so the rest of
``gar_sklearn.preprocessing`` imports without it. Any other detector plugs in
as a callable that returns face boxes (and landmarks when it has them).
"""

import functools
import math
import numbers
import os
import warnings

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin

from .._progress import progress_bar
from ._images import ImageLoadError, as_image_source, load_image

__all__ = ["FaceCropper", "FaceCrops", "NoFaceWarning"]

_DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
_BORDERS = ("constant", "edge", "shift")
_ON_NO_FACE = ("warn", "ignore", "raise")
_ON_ERROR = ("raise", "skip")
_SHOWN = 5  # names quoted in warnings and errors before "and N more"


class NoFaceWarning(UserWarning):
    """Some images had no detected face, so they have no crop."""


def _import_cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "FaceCropper needs OpenCV, an optional dependency of gar-sklearn. Install it "
            'with: pip install "gar-sklearn[face]" (or pip install opencv-python-headless).'
        ) from exc
    return cv2


@functools.lru_cache(maxsize=8)
def _load_cascade(path):
    # cv2.CascadeClassifier cannot be pickled, so it lives in this cache and
    # never on the estimator.
    cv2 = _import_cv2()
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ValueError(
            f"OpenCV could not load the cascade file {path!r}: not a valid cascade XML."
        )
    return cascade


def _cascade_path(cascade):
    """Turn the 'cascade' parameter into an existing file path."""
    cv2 = _import_cv2()
    if not isinstance(cascade, (str, os.PathLike)):
        raise ValueError(
            "The 'cascade' parameter must be the file name of one of OpenCV's bundled Haar "
            f"cascades or a path to a cascade XML file. Got {cascade!r} instead."
        )
    path = os.fspath(cascade)
    if os.path.isfile(path):
        return path
    bundled = os.path.join(cv2.data.haarcascades, path)
    if os.path.isfile(bundled):
        return bundled
    faces = sorted(f for f in os.listdir(cv2.data.haarcascades) if "face" in f)
    raise ValueError(
        "The 'cascade' parameter must be the file name of one of OpenCV's bundled Haar "
        f"cascades (for faces: {faces}) or a path to a cascade XML file. Got {cascade!r} instead."
    )


def _detector_function(detector):
    """The 'detector' parameter as a function ``image -> detections``, or None for Haar."""
    if detector is None:
        return None
    if callable(getattr(detector, "detect", None)):
        return detector.detect
    if callable(detector):
        return detector
    raise ValueError(
        "The 'detector' parameter must be None (OpenCV's Haar cascade), a callable or an object "
        f"with a detect(image) method returning face boxes. Got {detector!r} instead."
    )


def _as_detections(result, where):
    """A detector's result as ``(boxes (n, 4) float, landmarks (n, k, 2) float or None)``.

    Accepted: boxes ``(x, y, w, h)`` as an array-like of shape (n, 4); a
    ``(boxes, landmarks)`` pair; a dict with ``"boxes"`` and optionally
    ``"landmarks"``.
    """
    landmarks = None
    if isinstance(result, dict):
        boxes, landmarks = result.get("boxes"), result.get("landmarks")
    elif isinstance(result, tuple) and len(result) == 2 and np.ndim(result[0]) == 2:
        boxes, landmarks = result
    else:
        boxes = result
    try:
        boxes = np.asarray([] if boxes is None else boxes, dtype=float).reshape(-1, 4)
        if landmarks is not None:
            landmarks = np.asarray(landmarks, dtype=float)
            if len(boxes) == 0 and landmarks.size == 0:
                landmarks = None
            elif landmarks.ndim != 3 or landmarks.shape[::2] != (len(boxes), 2):
                raise ValueError(f"landmarks of shape {landmarks.shape} for {len(boxes)} boxes")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The detector must return face boxes (x, y, w, h) in pixels as an array of shape "
            "(n_faces, 4), a (boxes, landmarks) pair with landmarks of shape (n_faces, k, 2), or "
            f"a dict with 'boxes' and optionally 'landmarks'. Got {result!r} for {where}."
        ) from exc
    if not np.isfinite(boxes).all() or (boxes[:, 2:] <= 0).any():
        raise ValueError(
            f"The detector returned boxes without a positive size or with missing values for {where}: "
            f"{boxes.tolist()}. Boxes are (x, y, w, h) in pixels."
        )
    return boxes, landmarks


def _round(value):
    """Round half up: Python's round() goes to even, which would shift boxes by parity."""
    return math.floor(value + 0.5)


def _crop_box(box, image_shape, margin, border="constant"):
    """The square crop around a face box, enlarged by ``margin`` on each side.

    The crop's side is ``max(w, h) * (1 + 2 * margin)`` pixels (rounded), centred
    on the box centre: ``margin`` of the box size is added on every side, which
    is how dlib (and so FairFace) defines its chip ``padding``. With
    ``border="shift"`` the square is made to fit the image instead: shrunk to
    the image's shorter side when larger, then moved inside.

    Parameters
    ----------
    box : tuple of 4 numbers
        The face box ``(x, y, w, h)``.
    image_shape : tuple
        ``(H, W, ...)`` of the image.
    margin : float
    border : {"constant", "edge", "shift"}

    Returns
    -------
    tuple of 4 int
        ``(x0, y0, x1, y1)``: the crop is ``image[y0:y1, x0:x1]``; with
        "constant" or "edge" it may reach outside the image.
    """
    x, y, w, h = box
    height, width = image_shape[:2]
    side = max(1, _round(max(w, h) * (1 + 2 * margin)))
    if border == "shift":
        side = min(side, height, width)
    x0 = _round(x + w / 2 - side / 2)
    y0 = _round(y + h / 2 - side / 2)
    if border == "shift":
        x0 = min(max(x0, 0), width - side)
        y0 = min(max(y0, 0), height - side)
    return x0, y0, x0 + side, y0 + side


def _extract(image, crop_box, border="constant"):
    """``image[y0:y1, x0:x1]``, padded with black ("constant") or edge pixels outside the image."""
    x0, y0, x1, y1 = crop_box
    height, width = image.shape[:2]
    inner = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pad = ((max(-y0, 0), max(y1 - height, 0)), (max(-x0, 0), max(x1 - width, 0)), (0, 0))
    if not any(any(p) for p in pad[:2]):
        return np.ascontiguousarray(inner)
    if border == "edge" and inner.size:
        return np.pad(inner, pad, mode="edge")
    return np.pad(inner, pad, mode="constant")


def _quote(names):
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


class FaceCrops(list):
    """The faces found by :meth:`FaceCropper.transform`: a list of crops plus where each came from.

    A plain list of uint8 RGB arrays as far as estimators are concerned, so it
    can be passed as X to any of the library's estimators. Rows are ordered by
    source image, then by face position within the image (left to right, then
    top to bottom). Slicing returns a plain list.

    Attributes
    ----------
    source_index : ndarray of shape (n_faces,) of int
        For each crop, the position in X of the image it was cut from.
    boxes : ndarray of shape (n_faces, 4) of int
        For each crop, the detected face box ``(x, y, w, h)`` in pixels of the
        original (upright) image, before the margin is added.
    no_face : ndarray of int
        Positions in X of the images where no face was found.
    failed : ndarray of int
        Positions in X of the images that could not be read
        (``on_error="skip"``).
    errors : dict
        Maps each position in ``failed`` to the reason.
    sources : list of str
        A name for every input image: its path, or ``"X[i]"``.
    landmarks : list
        For each crop, the detector's landmarks as an array of shape (k, 2)
        of ``(x, y)`` in pixels of the original image, or None (the Haar
        cascade gives none).
    """

    def __init__(
        self,
        crops=(),
        *,
        source_index=(),
        boxes=(),
        no_face=(),
        failed=(),
        errors=None,
        sources=(),
        landmarks=None,
    ):
        super().__init__(crops)
        self.source_index = np.asarray(source_index, dtype=np.intp)
        self.boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        self.no_face = np.asarray(no_face, dtype=np.intp)
        self.failed = np.asarray(failed, dtype=np.intp)
        self.errors = dict(errors or {})
        self.sources = list(sources)
        n_faces = len(self.source_index)
        self.landmarks = [None] * n_faces if landmarks is None else list(landmarks)
        if len(self.landmarks) != n_faces:
            raise ValueError(
                f"FaceCrops needs one landmarks entry per face ({n_faces}); got {len(self.landmarks)}."
            )

    @property
    def n_images(self):
        """The number of input images."""
        return len(self.sources)

    def to_frame(self):
        """One row per face, plus one row per image without a face or that failed.

        Returns
        -------
        pandas.DataFrame
            Columns ``source_index``, ``source``, ``face_index`` (position of
            the face within its image), ``face_found``, ``x``, ``y``, ``w``,
            ``h`` (missing where no face) and ``error`` (missing unless the
            image could not be read), and ``landmarks`` (an array of shape
            (k, 2) per face) when the detector gave landmarks. Rows are
            sorted by ``source_index``; the
            rows with ``face_found`` are in the order of the crops, so
            ``frame.loc[frame.face_found, "gender"] = predictions`` lines up.
        """
        frame = _faces_frame(self.sources, self.source_index, self.boxes, self.errors)
        if any(points is not None for points in self.landmarks):
            column = [None] * len(frame)
            for row, points in zip(np.flatnonzero(frame["face_found"]), self.landmarks):
                column[row] = points  # the face rows are in the crops' order
            frame["landmarks"] = pd.Series(column, dtype=object)
        return frame

    def __repr__(self):
        return (
            f"FaceCrops(n_faces={len(self)}, n_images={self.n_images}, "
            f"no_face={self.no_face.tolist()}, failed={self.failed.tolist()})"
        )


def _faces_frame(sources, source_index, boxes, errors):
    n_images = len(sources)
    face_index = np.zeros(len(source_index), np.int64)
    for i in np.unique(source_index):
        mine = source_index == i
        face_index[mine] = np.arange(np.count_nonzero(mine))
    # one row without a box for every image without a face, merged in image order
    empty = np.setdiff1d(np.arange(n_images), source_index)
    index = np.concatenate([source_index, empty]).astype(np.int64)
    found = np.concatenate([np.ones(len(source_index), bool), np.zeros(len(empty), bool)])
    order = np.lexsort((~found, index))  # stable, so the faces keep the crops' order

    def column(values):
        out = pd.array(np.concatenate([values, np.zeros(len(empty), np.int64)]), dtype="Int64")
        out[~found] = pd.NA
        return out[order]

    return pd.DataFrame(
        {
            "source_index": index[order],
            "source": pd.array([sources[i] for i in index[order]], dtype="str"),
            "face_index": column(face_index),
            "face_found": found[order],
            "x": column(boxes[:, 0]),
            "y": column(boxes[:, 1]),
            "w": column(boxes[:, 2]),
            "h": column(boxes[:, 3]),
            "error": pd.array([errors.get(int(i)) for i in index[order]], dtype="str"),
        }
    )


class FaceCropper(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Find the faces in photos and crop each one, square, with a margin.

    Raw photos are not the aligned face crops that gender, age and race models
    are trained on. This transformer finds every face with a detector (by
    default OpenCV's Haar cascade, for frontal faces; any other through
    ``detector``), cuts a square around each face box enlarged by
    ``margin`` on every side (FairFace's 0.25 by default), and resizes it to
    ``size`` pixels. It returns a :class:`FaceCrops` list that records which
    input image each face came from. Images without a face are reported (a
    :class:`NoFaceWarning` and ``FaceCrops.no_face``), never dropped silently.

    The Haar cascade needs OpenCV: ``pip install "gar-sklearn[face]"``.
    Stateless: ``fit`` only checks the parameters.

    Parameters
    ----------
    margin : float, default=0.25
        Fraction of the face box size added on each side of it: the crop's
        side is ``(1 + 2 * margin)`` times the box side, so 0.25 gives 1.5
        times the box. This is dlib's ``padding`` as used by FairFace's
        ``get_face_chips(..., padding=0.25)`` ("0.5 doubles the width of the
        cropped area"), applied to the Haar box instead of dlib's
        landmark-based chip, so the framing is close to, not identical with,
        FairFace's.
    size : int or None, default=224
        Side of the output square crops in pixels. None keeps each crop at its
        size in the photo (crops then differ in size).
    border : {"constant", "edge", "shift"}, default="constant"
        Where the enlarged square reaches outside the photo: pad with black
        (as dlib's face chips do), repeat the edge pixels, or move (and if
        needed shrink) the square to lie inside the photo, which keeps only
        real pixels but puts the face off-centre.
    min_size : int, float or None, default=None
        Smallest face to report: an int is a side in pixels of the original
        photo, a float in (0, 1] a fraction of the photo's shorter side. None
        keeps the detector's own minimum (the Haar cascade's: 24 pixels at
        detection scale).
    scale_factor : float, default=1.1
        Step between the Haar detector's scales (``detectMultiScale``'s
        ``scaleFactor``): smaller finds more faces, more slowly.
    min_neighbors : int, default=5
        Overlapping detections a Haar face needs (``minNeighbors``): higher
        gives fewer false faces and misses more real ones.
    max_faces : int or None, default=None
        Keep at most this many faces per photo, the largest ones.
    on_no_face : {"warn", "ignore", "raise"}, default="warn"
        What to do when some photos have no face: warn (:class:`NoFaceWarning`
        naming the count and the first photos), stay silent, or raise a
        ValueError. They are always listed in ``FaceCrops.no_face``.
    on_error : {"raise", "skip"}, default="raise"
        What to do with files that cannot be read: raise
        :class:`~gar_sklearn.preprocessing.ImageLoadError`, or warn and list
        them in ``FaceCrops.failed``.
    detect_size : int or None, default=800
        Photos whose longer side exceeds this are shrunk to it for detection
        (much faster on camera-sized photos; 800 is FairFace's working size).
        Boxes are mapped back and crops cut from the full-resolution photo.
        None detects at full size.
    detect_padding : float, default=0.15
        Before detection, the photo is extended on every side by this fraction
        of its longer side, repeating the edge pixels, and boxes are mapped
        back (those centred outside the photo are dropped). The detector needs
        some context around a face, so without it faces that fill the frame,
        such as already aligned crops, are often missed (see docs/faces.md).
        0 disables it.
    cascade : str or path, default="haarcascade_frontalface_default.xml"
        The Haar cascade: a file name from ``cv2.data.haarcascades`` (for
        example ``"haarcascade_frontalface_alt2.xml"``) or a path to an XML
        file.
    detector : callable, object with a ``detect`` method, or None, default=None
        Another face detector in place of the Haar cascade (which then needs
        no OpenCV): called as ``detector(image)`` (or ``detector.detect(image)``)
        on each photo as a uint8 RGB array of shape (H, W, 3), shrunk and
        padded as ``detect_size`` and ``detect_padding`` say, it returns the
        face boxes ``(x, y, w, h)`` in pixels of that array, as an array-like
        of shape (n_faces, 4), or with landmarks as a ``(boxes, landmarks)``
        pair or a dict ``{"boxes": ..., "landmarks": ...}`` (landmarks of
        shape (n_faces, k, 2), ``(x, y)`` in pixels). Boxes and landmarks are
        mapped back to the original photo. ``scale_factor``,
        ``min_neighbors`` and ``cascade`` are then unused. To save or clone a
        cropper, give a picklable detector (a module-level function or an
        object), not a lambda.
    verbose : int, default=0
        1 draws a progress bar over the photos on stderr when it is a
        terminal; 2 draws it also when not; 0 never.

    See Also
    --------
    FaceCrops : The result of :meth:`transform`.
    gar_sklearn.preprocessing.load_image : How each photo is read.

    Notes
    -----
    "Alignment" here is a consistent square framing and scale: faces are
    not rotated upright, even when a detector gives landmarks (they are
    recorded in ``FaceCrops.landmarks``). The Haar cascade finds frontal,
    roughly upright faces; tilted and profile faces are often missed. Photos
    are read upright according to their EXIF orientation.

    In a :class:`~sklearn.pipeline.Pipeline` before a classifier, ``predict``
    returns one row per face, not per photo. At fit time the crops only line
    up with y when every photo has exactly one face, so
    :meth:`fit_transform` raises otherwise: crop the training photos first,
    or train on aligned crops.

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> from gar_sklearn.preprocessing import FaceCropper
    >>> crops = FaceCropper(size=64).transform([astronaut()])
    >>> len(crops), crops[0].shape, crops.source_index.tolist()
    (1, (64, 64, 3), [0])
    """

    def __init__(
        self,
        margin=0.25,
        size=224,
        *,
        border="constant",
        min_size=None,
        scale_factor=1.1,
        min_neighbors=5,
        max_faces=None,
        on_no_face="warn",
        on_error="raise",
        detect_size=800,
        detect_padding=0.15,
        cascade=_DEFAULT_CASCADE,
        detector=None,
        verbose=0,
    ):
        self.margin = margin
        self.size = size
        self.border = border
        self.min_size = min_size
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.max_faces = max_faces
        self.on_no_face = on_no_face
        self.on_error = on_error
        self.detect_size = detect_size
        self.detect_padding = detect_padding
        self.cascade = cascade
        self.detector = detector
        self.verbose = verbose

    # ------------------------------------------------------------ validation
    def _check_params(self):
        def is_int(value):
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        def is_real(value):
            return (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )

        if not is_real(self.margin) or self.margin < 0:
            raise ValueError(
                f"The 'margin' parameter must be a float >= 0. Got {self.margin!r} instead."
            )
        for name, lo in (("size", 1), ("max_faces", 1), ("detect_size", 32)):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < lo):
                raise ValueError(
                    f"The '{name}' parameter must be None or an int >= {lo}. Got {value!r} instead."
                )
        ms = self.min_size
        if ms is not None and not (
            (is_int(ms) and ms >= 1) or (is_real(ms) and not is_int(ms) and 0 < ms <= 1)
        ):
            raise ValueError(
                "The 'min_size' parameter must be None, an int >= 1 (pixels) or a float in "
                f"(0, 1] (fraction of the shorter image side). Got {ms!r} instead."
            )
        if not is_real(self.scale_factor) or self.scale_factor <= 1:
            raise ValueError(
                f"The 'scale_factor' parameter must be a float > 1. Got {self.scale_factor!r} instead."
            )
        if not is_int(self.min_neighbors) or self.min_neighbors < 0:
            raise ValueError(
                f"The 'min_neighbors' parameter must be an int >= 0. Got {self.min_neighbors!r} instead."
            )
        if not is_real(self.detect_padding) or not 0 <= self.detect_padding <= 1:
            raise ValueError(
                f"The 'detect_padding' parameter must be a float in [0, 1]. Got {self.detect_padding!r} instead."
            )
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(
                f"The 'verbose' parameter must be an int >= 0. Got {self.verbose!r} instead."
            )
        for name, allowed in (
            ("border", _BORDERS),
            ("on_no_face", _ON_NO_FACE),
            ("on_error", _ON_ERROR),
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(
                    f"The '{name}' parameter must be one of {list(allowed)}. Got {value!r} instead."
                )
        detect = _detector_function(self.detector)
        if detect is not None:
            return None, detect
        return _load_cascade(_cascade_path(self.cascade)), None

    # ------------------------------------------------------------ public API
    def fit(self, X=None, y=None):
        """Check the parameters (and that OpenCV and the cascade load); learns nothing.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        return self

    def transform(self, X):
        """Crop every face found in X.

        Parameters
        ----------
        X : sequence of paths, PIL images or uint8 arrays, or uint8 ndarray of shape (n, H, W[, 3])
            The photos.

        Returns
        -------
        FaceCrops
            A list of uint8 arrays of shape ``(size, size, 3)``, ordered by
            photo, then left to right (then top to bottom) within a photo,
            with ``source_index``, ``boxes``, ``no_face``, ``failed`` and
            ``sources``.
        """
        return self._run(X, crop=True)

    def detect(self, X):
        """Locate the faces in X without cropping them.

        Parameters
        ----------
        X : sequence of paths, PIL images or uint8 arrays, or uint8 ndarray of shape (n, H, W[, 3])

        Returns
        -------
        pandas.DataFrame
            One row per face (in the order :meth:`transform` returns the
            crops), plus one row with ``face_found=False`` and a missing box
            for every photo without a face or that could not be read; see
            :meth:`FaceCrops.to_frame` for the columns.
        """
        return self._run(X, crop=False).to_frame()

    def fit_transform(self, X, y=None):
        """Crop the faces, checking that they still line up with y.

        Raises
        ------
        ValueError
            When y is given and some photo has no face or several faces: the
            crops would no longer correspond to the labels.
        """
        crops = self.fit(X, y).transform(X)
        if y is not None and not np.array_equal(crops.source_index, np.arange(crops.n_images)):
            raise ValueError(
                f"FaceCropper found {len(crops)} faces in {crops.n_images} images, so the crops "
                "no longer line up with y (fitting needs exactly one face per image). Crop the "
                "training photos first with FaceCropper().transform(X) and take "
                "y[crops.source_index] as the labels, or train on aligned face crops."
            )
        return crops

    # --------------------------------------------------------------- the work
    def _run(self, X, crop):
        cascade, detect = self._check_params()
        src = as_image_source(X)
        sources = [src.describe(i) for i in range(len(src))]
        crops, source_index, boxes, landmarks, no_face, errors = [], [], [], [], [], {}
        for i in progress_bar(self.verbose, desc="faces", iterable=range(len(src))):
            try:
                image = src.load(i)
            except ImageLoadError as exc:
                if self.on_error == "raise":
                    raise
                errors[i] = exc.reason
                continue
            found = self._detect_one(cascade, detect, image, sources[i])
            if not found:
                no_face.append(i)
            for box, points in found:
                source_index.append(i)
                boxes.append(box)
                landmarks.append(points)
                if crop:
                    crops.append(self._crop_one(image, box))
        if errors:
            failed = [sources[i] for i in errors]
            warnings.warn(
                f"Skipped {len(failed)} unreadable images (on_error='skip'): {_quote(failed)}.",
                UserWarning,
                stacklevel=3,
            )
        if no_face and self.on_no_face != "ignore":
            names = [sources[i] for i in no_face]
            message = f"No face found in {len(no_face)} of {len(src)} images: {_quote(names)}."
            if self.on_no_face == "raise":
                raise ValueError(
                    message + " Set on_no_face='warn' or 'ignore' to continue without them."
                )
            warnings.warn(
                message + " They have no crop; their positions are in FaceCrops.no_face.",
                NoFaceWarning,
                stacklevel=3,
            )
        return FaceCrops(
            crops,
            source_index=source_index,
            boxes=boxes,
            no_face=no_face,
            failed=list(errors),
            errors=errors,
            sources=sources,
            landmarks=landmarks,
        )

    def _detect_one(self, cascade, detect, image, where):
        """``[(box, landmarks or None), ...]``: boxes ``(x, y, w, h)`` in original pixels,
        clipped to the image, left to right."""
        height, width = image.shape[:2]
        scale = 1.0
        if self.detect_size is not None and max(height, width) > self.detect_size:
            scale = self.detect_size / max(height, width)
        size = (max(1, _round(width * scale)), max(1, _round(height * scale)))
        pad = _round(self.detect_padding * max(size))
        if detect is None:
            found, points = self._haar(cascade, image, scale, size, pad), None
        else:
            view = image
            if scale != 1.0:
                view = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
            if pad:
                view = np.pad(view, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            found, points = _as_detections(detect(view), where)
        return self._to_original(found, points, scale, pad, height, width)

    def _min_side(self, height, width):
        """``min_size`` in pixels of the original photo, or None."""
        if self.min_size is None:
            return None
        if isinstance(self.min_size, numbers.Integral):
            return self.min_size
        return self.min_size * min(height, width)

    def _haar(self, cascade, image, scale, size, pad):
        """Haar boxes ``(x, y, w, h)`` in pixels of the shrunk, padded grayscale photo."""
        cv2 = _import_cv2()
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if pad:
            gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        options = {}
        min_px = self._min_side(*image.shape[:2])
        if min_px is not None:
            side = max(1, math.ceil(min_px * scale))
            options["minSize"] = (side, side)
        found = cascade.detectMultiScale(
            gray,
            scaleFactor=float(self.scale_factor),
            minNeighbors=int(self.min_neighbors),
            **options,
        )
        return np.asarray(found, dtype=float).reshape(-1, 4)

    def _to_original(self, found, points, scale, pad, height, width):
        """Map detections back to the photo, then keep, clip, select and order them."""
        min_px = self._min_side(height, width)
        kept = []
        for k, (bx, by, bw, bh) in enumerate(found):
            x, y, w, h = (bx - pad) / scale, (by - pad) / scale, bw / scale, bh / scale
            if not (0 <= x + w / 2 < width and 0 <= y + h / 2 < height):
                continue  # a "face" found in the replicated border
            if min_px is not None and max(w, h) < min_px:
                continue
            x0, y0 = max(_round(x), 0), max(_round(y), 0)
            x1, y1 = min(_round(x + w), width), min(_round(y + h), height)
            landmarks = None if points is None else (points[k] - pad) / scale
            kept.append(((x0, y0, x1 - x0, y1 - y0), landmarks))
        if self.max_faces is not None and len(kept) > self.max_faces:
            largest = sorted(range(len(kept)), key=lambda k: -kept[k][0][2] * kept[k][0][3])
            kept = [kept[k] for k in sorted(largest[: self.max_faces])]
        return sorted(kept, key=lambda item: (item[0][0], item[0][1]))

    def _crop_one(self, image, box):
        face = _extract(image, _crop_box(box, image.shape, self.margin, self.border), self.border)
        return load_image(face, size=self.size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        return tags
