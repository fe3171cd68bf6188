"""Growing a training set with augmented copies, in the imbalanced-learn style.

:class:`AugmentingOverSampler` is a sampler (``fit_resample``), so an
imbalanced-learn :class:`~imblearn.pipeline.Pipeline` runs it when fitting and
skips it at predict time. It returns the images as an
:class:`AugmentedImages` sequence that loads and augments each item only when
it is indexed, so a training set of file paths is never read into memory.
"""

import copy
import hashlib
import math
import numbers
import operator
import pickle
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from ..preprocessing import as_image_source, load_image
from ._composite import FaceAugmenter

__all__ = ["AugmentedImages", "AugmentingOverSampler"]


def _describe(obj):
    """A canonical, hashable description of an augmenter's configuration."""
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        params = obj.get_params(deep=False)
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        return (kind, tuple(sorted((key, _describe(value)) for key, value in params.items())))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(_describe(value) for value in obj))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((repr(key), _describe(value)) for key, value in obj.items())))
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return repr(obj)
    try:
        return pickle.dumps(obj).hex()
    except (pickle.PicklingError, TypeError, AttributeError):
        # an unpicklable oddity: its repr still tells configurations apart
        return repr(obj)


def _augmenter_token(augmenter):
    """A short digest of the augmenter's type and parameters, for cache keys."""
    return hashlib.blake2b(repr(_describe(augmenter)).encode(), digest_size=8).hexdigest()


class AugmentedImages(Sequence):
    """A lazy sequence of images: originals and seeded augmented copies of them.

    Item ``i`` is read only when indexed: ``load_image`` of its original, and
    for a copy numbered ``j``, ``augmenter.augment(that image,
    numpy.random.default_rng([seed, j]))``. The same item is therefore the
    same array every time, in every process, and the object pickles small
    (paths, not pixels) for data loader workers. Usually made by
    :meth:`AugmentingOverSampler.fit_resample`.

    Parameters
    ----------
    images : sequence or ndarray
        The originals, in any form :func:`~gar_sklearn.preprocessing.as_image_source`
        accepts: paths, PIL images, uint8 arrays, or one uint8 array of shape
        (n, H, W, 3).
    origins : array-like of int of shape (n_items,)
        For each item, the position of its original in ``images``.
    copies : array-like of int of shape (n_items,)
        For each item, ``-1`` for the original itself, otherwise the copy
        number ``j >= 0`` that seeds its augmentation.
    augmenter : augmenter
        An object with an ``augment(image, rng)`` method.
    seed : int
        Non-negative base seed of the copies.

    Attributes
    ----------
    is_copy : ndarray of bool of shape (n_items,)
        Whether each item is an augmented copy.
    """

    def __init__(self, images, origins, copies, augmenter, seed):
        source = as_image_source(images)
        origins = np.asarray(origins)
        copies = np.asarray(copies)
        if (
            origins.ndim != 1
            or copies.shape != origins.shape
            or (origins.size and (origins.dtype.kind not in "iu" or copies.dtype.kind not in "iu"))
        ):
            raise ValueError(
                "'origins' and 'copies' must be 1-D integer arrays of the same length; got "
                f"shapes {origins.shape} and {copies.shape}."
            )
        if origins.size and (origins.min() < 0 or origins.max() >= len(source)):
            raise ValueError(
                f"'origins' must be positions in images, between 0 and {len(source) - 1}; got "
                f"values from {origins.min()} to {origins.max()}."
            )
        if copies.size and copies.min() < -1:
            raise ValueError(f"'copies' must be -1 or copy numbers >= 0; got {copies.min()}.")
        if not callable(getattr(augmenter, "augment", None)):
            raise TypeError(
                "'augmenter' must have an augment(image, rng) method; got a "
                f"{type(augmenter).__name__}."
            )
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"'seed' must be a non-negative int; got {seed!r}.")
        # keep only the originals in use, so that a subset pickles small
        used, positions = np.unique(origins, return_inverse=True)
        if len(used) < len(source):
            source = source.subset(used)
            origins = positions
        self._source = source
        self._origins = origins.astype(np.intp)
        self._copies = copies.astype(np.int64)
        self.augmenter = augmenter
        self.seed = int(seed)

    @property
    def is_copy(self):
        return self._copies >= 0

    def __len__(self):
        return len(self._origins)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.subset(np.arange(len(self))[index])
        try:
            index = operator.index(index)
        except TypeError as exc:
            raise TypeError(
                f"AugmentedImages indices must be integers or slices; got {type(index).__name__}. "
                "Use .subset(indices) to select several items."
            ) from exc
        n_items = len(self)
        if not -n_items <= index < n_items:
            raise IndexError(f"index {index} is out of range for {n_items} images.")
        index %= n_items
        original = self._source.items[self._origins[index]]  # read once: it may be lazy too
        image = load_image(original)
        copy_number = int(self._copies[index])
        if copy_number >= 0:
            return self.augmenter.augment(image, np.random.default_rng([self.seed, copy_number]))
        if not image.flags.writeable or (
            isinstance(original, np.ndarray) and np.shares_memory(image, original)
        ):
            # an array of our own: never a view of the caller's pixels, and writable
            # (Pillow's are read-only, which torch.from_numpy warns about)
            image = image.copy()
        return image

    def cache_keys(self):
        """One hashable identity per item, for feature caches.

        Returns
        -------
        list of str
            For an original, the key :func:`~gar_sklearn.preprocessing.as_image_source`
            gives it (a path with its size and modification time, or a hash of
            the pixels); for a copy, that key followed by a digest of the
            augmenter's parameters, the seed and the copy number, so that a
            different augmentation never reuses another's features.
        """
        originals = self._source.cache_keys()
        token = _augmenter_token(self.augmenter)
        return [
            originals[origin]
            if copy_number < 0
            else f"{originals[origin]}|aug:{token}:{self.seed}:{copy_number}"
            for origin, copy_number in zip(self._origins.tolist(), self._copies.tolist())
        ]

    def subset(self, indices):
        """The items at ``indices``, as an AugmentedImages.

        Parameters
        ----------
        indices : array-like of int or bool
            Positions (or a boolean mask) of the items to keep.

        Returns
        -------
        AugmentedImages
        """
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.intp)
        indices = np.arange(len(self))[indices]  # checks bounds, reads masks and negatives
        return AugmentedImages(
            self._source, self._origins[indices], self._copies[indices], self.augmenter, self.seed
        )

    def __repr__(self):
        n_copies = int(self.is_copy.sum())
        return (
            f"AugmentedImages(n_items={len(self)}, n_originals={len(self) - n_copies}, "
            f"n_copies={n_copies})"
        )


def _num_rows(y):
    if y is None:
        raise ValueError(
            "AugmentingOverSampler.fit_resample requires y, the labels of the images; got None."
        )
    if hasattr(y, "iloc"):
        return len(y)
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"y must be an array-like with one row per image; got the scalar {y!r}.")
    return y.shape[0]


def _take_rows(y, rows):
    if hasattr(y, "iloc"):
        # positions now mean rows of X_res; sample_indices_ maps them back to the input
        return y.iloc[rows].reset_index(drop=True)
    return np.asarray(y)[rows]


def _spread_evenly(selected, n_copies, rng):
    """Which original each copy is of: rounds over ``selected``, each round shuffled.

    Every original gets ``n_copies // len(selected)`` or one more copies.
    """
    n_rounds = math.ceil(n_copies / len(selected))
    rounds = rng.permuted(np.tile(selected, (n_rounds, 1)), axis=1)
    return rounds.ravel()[:n_copies]


class AugmentingOverSampler(BaseEstimator):
    """Grow a training set, or a subset of it, with augmented copies.

    ``fit_resample(X, y)`` keeps the selected rows (all of them, or those
    ``subset`` picks) and appends augmented copies of them until there are
    ``target_size`` rows. The copies go round the originals in rounds, each
    round in a random order, so every original gets ``k`` or ``k + 1``
    copies rather than some none and some many. Copy ``j`` is
    ``augmenter.augment(original, numpy.random.default_rng([seed_, j]))``,
    made only when the returned :class:`AugmentedImages` is indexed.

    A sampler in the imbalanced-learn sense: in an
    :class:`imblearn.pipeline.Pipeline` it runs when the pipeline is fitted
    and is skipped at predict and score time. The labels of a copy are those
    of its original.

    Parameters
    ----------
    augmenter : augmenter or None, default=None
        Object with an ``augment(image, rng)`` method making the copies;
        ``None`` means :class:`FaceAugmenter` with its defaults. It is cloned,
        so later changes to it do not alter a returned set.
    target_size : int, float or None, default=None
        Number of rows returned. An int is a count; a float a multiple of
        ``len(X)`` (``1.0`` is the size of the full set, rounded to the
        nearest int); ``None`` means ``len(X)``: no growth without
        ``subset``, and with it, the subset grown to the size of the full
        set. It may not be smaller than the number of selected rows.
    subset : array-like of bool, callable or None, default=None
        Rows to keep and grow: a boolean mask of length ``len(X)`` (by
        position), or a callable ``subset(y)`` returning one. Rows left out
        are not returned. ``None`` selects every row.
    random_state : int, RandomState instance or None, default=None
        Seeds which originals are copied and the copies' augmentation.

    Attributes
    ----------
    augmenter_ : augmenter
        The (cloned) augmenter used by the returned images.
    seed_ : int
        Base seed of the copies.
    sample_indices_ : ndarray of int of shape (n_rows,)
        Position in ``X`` of the original of each returned row.

    See Also
    --------
    AugmentedImages : The lazy sequence of images returned.
    FaceAugmenter : The default augmenter.

    Examples
    --------
    >>> import numpy as np
    >>> from gar_sklearn.augmentation import AugmentingOverSampler
    >>> X = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    >>> y = np.array([0, 0, 1, 1])
    >>> X_res, y_res = AugmentingOverSampler(target_size=10, random_state=0).fit_resample(X, y)
    >>> len(X_res), X_res[9].shape, int(X_res.is_copy.sum())
    (10, (8, 8, 3), 6)
    >>> sampler = AugmentingOverSampler(subset=y == 1, random_state=0)
    >>> X_ones, y_ones = sampler.fit_resample(X, y)
    >>> len(X_ones), y_ones.tolist()
    (4, [1, 1, 1, 1])
    """

    # how imbalanced-learn recognises a sampler without this package importing it
    _estimator_type = "sampler"

    def __init__(self, augmenter=None, target_size=None, subset=None, random_state=None):
        self.augmenter = augmenter
        self.target_size = target_size
        self.subset = subset
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.two_d_array = False  # X holds images, not feature rows
        return tags

    def fit_resample(self, X, y):
        """Return the selected rows followed by augmented copies of them.

        Parameters
        ----------
        X : sequence or ndarray
            Images: a list or array of paths, PIL images or uint8 arrays, or
            one uint8 array of shape (n, H, W, 3). Nothing is read here.
        y : array-like or pandas DataFrame/Series of n rows
            Labels, one row per image.

        Returns
        -------
        X_res : AugmentedImages of length n_rows
            The selected originals in their order, then the copies.
        y_res : ndarray, DataFrame or Series of n_rows rows
            The rows of ``y`` of each original (``iloc`` for pandas, with a
            fresh ``RangeIndex``).
        """
        source = as_image_source(X)
        n_samples = len(source)
        n_labels = _num_rows(y)
        if n_labels != n_samples:
            raise ValueError(
                "X and y must have the same number of rows; got "
                f"{n_samples} images and {n_labels} labels."
            )
        selected = np.flatnonzero(self._check_subset(y, n_samples))
        target_size = self._check_target_size(n_samples, len(selected))
        augmenter = self._check_augmenter()
        random_state = check_random_state(self.random_state)
        seed = int(random_state.randint(2**32, dtype=np.int64))
        # a separate stream: default_rng(seed) would be the same as copy 0's default_rng([seed, 0])
        order_rng = np.random.default_rng(int(random_state.randint(2**32, dtype=np.int64)))

        n_copies = target_size - len(selected)
        origins = np.concatenate([selected, _spread_evenly(selected, n_copies, order_rng)])
        copies = np.concatenate([np.full(len(selected), -1), np.arange(n_copies)])
        self.augmenter_ = augmenter
        self.seed_ = seed
        self.sample_indices_ = origins
        X_res = AugmentedImages(source, origins, copies, augmenter, seed)
        return X_res, _take_rows(y, origins)

    def _check_subset(self, y, n_samples):
        subset = self.subset
        if subset is None:
            return np.ones(n_samples, dtype=bool)
        mask = subset(y) if callable(subset) else subset
        if hasattr(mask, "to_numpy") and str(mask.dtype) in ("bool", "boolean"):
            mask = mask.to_numpy(dtype=bool, na_value=False)
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (n_samples,):
            what = "The callable 'subset' returned" if callable(subset) else "Got"
            raise ValueError(
                "The 'subset' parameter of AugmentingOverSampler must be None, a boolean mask "
                f"of length len(X) = {n_samples}, or a callable on y returning one. {what} an "
                f"array of dtype {mask.dtype} and shape {mask.shape} instead."
            )
        if not mask.any():
            raise ValueError(
                "The 'subset' parameter of AugmentingOverSampler selects no rows: there is "
                "nothing to grow."
            )
        return mask

    def _check_target_size(self, n_samples, n_selected):
        value = self.target_size
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if value is None:
            target_size = n_samples
        elif is_number and isinstance(value, numbers.Integral) and value >= 1:
            target_size = int(value)
        elif is_number and not isinstance(value, numbers.Integral) and 0 < value < math.inf:
            target_size = round(float(value) * n_samples)
        else:
            raise ValueError(
                "The 'target_size' parameter of AugmentingOverSampler must be None, an int >= 1 "
                f"or a positive float (a multiple of len(X)). Got {value!r} instead."
            )
        if target_size < n_selected:
            raise ValueError(
                f"The 'target_size' parameter of AugmentingOverSampler asks for {target_size} "
                f"rows, fewer than the {n_selected} rows selected; an over-sampler never drops "
                f"rows. Got target_size={value!r} with len(X) = {n_samples}."
            )
        return target_size

    def _check_augmenter(self):
        augmenter = self.augmenter
        if augmenter is None:
            return FaceAugmenter()
        if isinstance(augmenter, type) or not callable(getattr(augmenter, "augment", None)):
            raise TypeError(
                "The 'augmenter' parameter of AugmentingOverSampler must be None or an object "
                f"with an augment(image, rng) method. Got {augmenter!r} instead."
            )
        return clone(augmenter) if hasattr(augmenter, "get_params") else copy.deepcopy(augmenter)
