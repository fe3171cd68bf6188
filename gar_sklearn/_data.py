"""Torch datasets over the user's images: decoding, train-time augmentation, cached features.

The estimators never hand torch anything but these datasets. Images travel
as uint8 (N, 3, H, W) tensors; normalisation happens on the network side.
"""

import dataclasses
import hashlib
import multiprocessing
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from ._compat import release_worker_batch_records, shutdown_loader_workers
from ._config import get_config
from ._text import shown
from .preprocessing._images import ImageLoadError
from .preprocessing._pixels import resize_images

__all__ = [
    "ImageDataset",
    "FeatureDataset",
    "CollatedBatch",
    "collate_batch",
    "decode_images",
    "view_rng",
    "default_num_workers",
    "LoadingPolicy",
    "loading_policy",
    "map_in_threads",
    "augment_in_place",
    "worker_context",
    "releasing_batches",
]


def worker_context(num_workers):
    """The multiprocessing context of DataLoader workers: fork where the OS has it.

    Named explicitly because inside joblib's loky workers (GridSearchCV with
    ``n_jobs > 1``) the default context is loky's, whose processes a
    DataLoader cannot start.

    Fork also where the parent has initialised CUDA: the workers never touch
    CUDA (they read, resize and augment images into CPU tensors; pinning and
    the copy to the GPU happen in the parent), which ``tests/test_cuda_loading.py``
    checks, and forked workers share the decoded-image cache with the parent
    instead of each receiving a copy, as spawned ones would. An augmenter that
    calls CUDA inside a worker gets torch's error ("Cannot re-initialize CUDA
    in forked subprocess"), not a wrong result.
    """
    if not num_workers:
        return None
    return multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )


@dataclasses.dataclass(frozen=True)
class LoadingPolicy:
    """How batches reach a network on one kind of device (see :func:`loading_policy`).

    Attributes
    ----------
    num_workers : int
        DataLoader worker processes for ``num_workers="auto"`` where images
        must be decoded or augmented.
    persistent_workers : bool
        Keep a training loader's workers alive from one epoch to the next.
    prefetch_factor : int or None
        Batches each worker prepares ahead (None: torch's default, 2).
    pin_memory : bool
        Put batches in page-locked memory, so that copies to the device run
        asynchronously.
    image_cache_bytes : int
        The budget of the decoded-image cache (``image_cache="auto"``).
    """

    num_workers: int
    persistent_workers: bool
    prefetch_factor: int | None
    pin_memory: bool
    image_cache_bytes: int

    def loader_kwargs(self, num_workers, *, once=False):
        """DataLoader keyword arguments for ``num_workers`` workers; ``once``: a loader
        iterated a single time (prediction, feature extraction) keeps no workers."""
        kwargs = dict(
            num_workers=num_workers,
            multiprocessing_context=worker_context(num_workers),
            pin_memory=self.pin_memory,
        )
        if num_workers:  # torch refuses these without workers
            kwargs["persistent_workers"] = self.persistent_workers and not once
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        return kwargs


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def loading_policy(device, *, n_cpu=None, torch_threads=None, daemon=None):
    """Workers, pinning and the decoded-image cache's budget for a network on ``device``.

    On the CPU the workers compete with torch's compute threads: one worker
    per core those threads leave spare, at most 4, none where no core is
    spare (with no spare core a worker takes cores from the compute threads,
    which then stall at every synchronisation: ``docs/speed.md``); workers
    start afresh each epoch; the image cache's budget is the
    ``image_cache_bytes`` switch.

    On a GPU the CPU only feeds it: every core but one (the process driving
    the GPU) decodes, at most 8, in persistent workers that each prepare 4
    batches ahead into pinned memory; the image cache's budget is the
    ``cuda_image_cache_bytes`` switch (see :func:`gar_sklearn.get_config`).

    No workers in a daemonic process (a dask worker, a multiprocessing
    pool's), which may not start processes of its own.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    n_cpu, torch_threads, daemon : optional
        The cores this process may use, torch's thread count and whether the
        process is daemonic; measured when None.

    Returns
    -------
    LoadingPolicy

    Examples
    --------
    >>> from gar_sklearn._data import loading_policy
    >>> loading_policy("cpu", n_cpu=8, torch_threads=6).num_workers
    2
    >>> gpu = loading_policy("cuda:0", n_cpu=16, torch_threads=16)
    >>> gpu.num_workers, gpu.persistent_workers, gpu.prefetch_factor, gpu.pin_memory
    (8, True, 4, True)
    """
    kind = torch.device(device).type
    n_cpu = n_cpu if n_cpu is not None else _usable_cores() or 1
    torch_threads = torch_threads if torch_threads is not None else torch.get_num_threads()
    daemon = multiprocessing.current_process().daemon if daemon is None else daemon
    config = get_config()
    if kind == "cpu":
        workers = max(0, min(4, n_cpu - torch_threads))
        return LoadingPolicy(
            0 if daemon else workers, False, None, False, config["image_cache_bytes"]
        )
    workers = max(1, min(8, n_cpu - 1))
    return LoadingPolicy(
        0 if daemon else workers, True, 4, kind == "cuda", config["cuda_image_cache_bytes"]
    )


def default_num_workers(device="cpu"):
    """DataLoader workers that decode while a network on ``device`` computes
    (:func:`loading_policy`): on the CPU one per core that torch's threads leave
    spare, at most 4; None (0) where no core is spare or in a daemonic process.
    """
    return loading_policy(device).num_workers


_pool_lock = threading.Lock()
_pool_state = {"pool": None, "key": None}


def map_in_threads(fn, items):
    """``[fn(x) for x in items]``, in as many threads as torch computes with.

    For work in the main process while no network computes (decoding the
    image cache) and for augmenting a batch. Inside a DataLoader worker,
    serially. Decoding and numpy release the GIL, so the work uses every core.
    """
    n = torch.get_num_threads()
    if get_worker_info() is not None or n < 2 or len(items) < 2:
        return [fn(x) for x in items]
    key = (os.getpid(), n)  # a forked child gets none of the parent's threads: a pool of its own
    with _pool_lock:
        if _pool_state["key"] != key:
            if _pool_state["pool"] is not None and _pool_state["key"][0] == os.getpid():
                _pool_state["pool"].shutdown(wait=False)  # torch's thread count changed
            _pool_state["pool"], _pool_state["key"] = ThreadPoolExecutor(max_workers=n), key
        pool = _pool_state["pool"]
    return list(pool.map(fn, items))


def releasing_batches(loader):
    """Iterate over ``loader``; when its batches come from worker processes, let go of
    torch's records of each after use (:func:`~gar_sklearn._compat.release_worker_batch_records`):
    else resident memory grows by a batch per batch. When the loop ends early (an
    unreadable image, an error while computing, a break), the workers are stopped at
    once (:func:`~gar_sklearn._compat.shutdown_loader_workers`)."""
    iterator = iter(loader)
    finished = False
    try:
        for batch in iterator:
            yield batch
            if loader.num_workers:
                release_worker_batch_records()
        finished = True
    except (TypeError, ValueError) as exc:
        message = _worker_error_message(exc)
        if message is None:
            raise
        raise type(exc)(message) from None
    finally:
        if not finished:  # persistent workers of a loop that ran to its end serve the next one
            shutdown_loader_workers(iterator)


def _worker_error_message(exc):
    """The message of a TypeError or ValueError raised in a DataLoader worker (an item of X
    of the wrong kind), which torch re-raises with the worker's traceback in the message;
    None for another error."""
    text = str(exc)
    if type(exc) not in (TypeError, ValueError) or not text.startswith("Caught "):
        return None
    prefix = f"\n{type(exc).__name__}: "
    at = text.rfind(prefix)
    return text[at + len(prefix) :].strip() if at >= 0 and "Original Traceback" in text else None


def view_rng(key, view):
    """The generator of augmented view ``view`` of the image with cache key ``key``.

    Seeded by the image's identity so that the same image gets the same views
    in every fit (and every grid-search candidate): cached views stay valid.
    """
    digest = int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([digest, view])


def augment_in_place(images, augmenter, rng_of):
    """Augment the images of a uint8 batch (n, 3, S, S) with channels-last memory, in threads.

    Image ``j`` is replaced by ``augmenter.augment(image, rng_of(j))``, or
    left as it is where ``rng_of(j)`` is None. The threads work on numpy
    views of the batch's memory: no torch call runs outside torch's thread.
    """
    pixels = images.permute(0, 2, 3, 1).numpy()  # (n, S, S, 3) views

    def augment(j):
        rng = rng_of(j)
        if rng is not None:
            pixels[j] = augmenter.augment(pixels[j], rng)

    map_in_threads(augment, range(len(pixels)))


class ImageDataset(Dataset):
    """Images of an :class:`~gar_sklearn.preprocessing._images.ImageSource` as uint8 tensors.

    A loader's batch (``__getitems__``) is read, resized at once
    (:func:`~gar_sklearn.preprocessing._pixels.resize_images`) and comes
    collated: pass :func:`collate_batch` as the loader's ``collate_fn``.
    A single item is that batch of one.

    Parameters
    ----------
    source : ImageSource
    image_size : int
    targets : ndarray of shape (n, n_attributes) of int, optional
        Encoded labels; without them the item's second element is a validity
        flag (1 for a readable image, 0 for one skipped).
    augmenter : object with ``augment(image, rng)``, optional
        Applied to each resized image with a generator seeded by
        ``(seed, epoch, index)``: fresh each epoch, reproducible, and
        independent of which worker process loads the item.
    decoded : ndarray (n, S, S, 3) uint8, optional
        Pre-decoded images (the decoded-image cache), used instead of ``source``.
    on_error : {"raise", "skip"}
        With "skip", unreadable images come back as zeros with flag 0.
    threads : bool, default=False
        Read a batch's images in threads (:func:`map_in_threads`), for reading
        with no network computing between batches (:func:`decode_images`);
        between forward passes one thread reads faster (``docs/speed.md``).
    """

    def __init__(
        self,
        source,
        image_size,
        targets=None,
        augmenter=None,
        seed=0,
        decoded=None,
        on_error="raise",
        threads=False,
    ):
        self.source = source
        self.image_size = image_size
        self.targets = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        self.augmenter = augmenter
        self.seed = seed
        self.decoded = decoded
        self.on_error = on_error
        self.threads = threads
        self.epoch = 0

    def __len__(self):
        return len(self.source) if self.decoded is None else len(self.decoded)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _read(self, index):
        """The image before resizing and 1, or zeros and 0 for an unreadable one under "skip"."""
        if self.decoded is not None:
            return self.decoded[index], 1
        try:
            return self.source.read(index, self.image_size), 1
        except ImageLoadError:
            if self.on_error != "skip":
                raise
            return np.zeros((self.image_size, self.image_size, 3), np.uint8), 0

    def __getitems__(self, indices):
        read = (
            map_in_threads(self._read, indices)
            if self.threads
            else [self._read(i) for i in indices]
        )
        images = resize_images([img for img, _ in read], self.image_size)
        if self.augmenter is not None:
            augment_in_place(
                images,
                self.augmenter,
                lambda j: (
                    np.random.default_rng([self.seed, self.epoch, indices[j]])
                    if read[j][1]
                    else None
                ),
            )
        labels = (
            self.targets[torch.as_tensor(indices, dtype=torch.long)]
            if self.targets is not None
            else torch.tensor([ok for _, ok in read])
        )
        return CollatedBatch(({"images": images}, labels))

    def __getitem__(self, index):
        x, y = self.__getitems__([index])
        return {"images": x["images"][0]}, y[0]


class FeatureDataset(Dataset):
    """Cached stem activations, one or several views per image.

    Parameters
    ----------
    features : tensor of shape (n, n_views, ...)
    targets : ndarray of shape (n, n_attributes) of int
    random_view : bool
        Pick a view per item and epoch at random (training); else view 0, the
        un-augmented image (validation).
    dtype : torch.dtype or None, default=torch.float32
        The dtype of the batches; None: the stored one (float16 halves the
        bytes copied to a GPU, where the network converts them).

    A loader's batch is fetched with one indexing operation
    (``__getitems__``) and comes already collated: pass
    :func:`collate_batch` as the loader's ``collate_fn``. On cached features
    a training step costs about a millisecond, and fetching and stacking
    rows one by one cost half as much again.
    """

    def __init__(self, features, targets, random_view=False, seed=0, dtype=torch.float32):
        self.features = features
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.random_view = random_view
        self.seed = seed
        self.dtype = dtype
        self.set_epoch(0)

    def __len__(self):
        return len(self.features)

    def set_epoch(self, epoch):
        self.epoch = epoch
        n_views = self.features.shape[1]
        # each image's view this epoch, drawn for all at once from (seed, epoch)
        self._views = (
            torch.from_numpy(
                np.random.default_rng([self.seed, epoch]).integers(n_views, size=len(self))
            )
            if self.random_view and n_views > 1
            else None
        )

    def _batch(self, index):
        views = 0 if self._views is None else self._views[index]
        features = self.features[index, views]
        return {"features": features if self.dtype is None else features.to(self.dtype)}, (
            self.targets[index]
        )

    def __getitem__(self, index):
        return self._batch(index)

    def __getitems__(self, indices):
        return CollatedBatch(self._batch(torch.as_tensor(indices, dtype=torch.long)))


class CollatedBatch(tuple):
    """A batch ``(X, y)`` that a dataset's ``__getitems__`` has already collated."""


def collate_batch(batch):
    """A DataLoader ``collate_fn``: a :class:`CollatedBatch` as it is, anything else through torch's default."""
    if isinstance(batch, CollatedBatch):
        return tuple(batch)
    return default_collate(batch)


def decode_images(source, indices, image_size, on_error="raise"):
    """Decode (and resize) ``source[indices]`` into one uint8 array.

    Read as an :class:`ImageDataset` batch is (resized by torch at once), in
    threads and in chunks of 256 images.

    Returns
    -------
    decoded : ndarray of shape (len(indices), image_size, image_size, 3)
    failed : list of int
        Positions (into ``indices``) of unreadable images; only with on_error="skip".
    """
    indices = np.asarray(indices, dtype=np.intp)
    out = np.empty((len(indices), image_size, image_size, 3), dtype=np.uint8)
    failed = []
    dataset = ImageDataset(source, image_size, on_error=on_error, threads=True)
    chunk = 256
    for start in range(0, len(indices), chunk):
        x, readable = dataset.__getitems__(indices[start : start + chunk].tolist())
        out[start : start + len(readable)] = x["images"].permute(0, 2, 3, 1).numpy()
        failed.extend(start + int(pos) for pos in torch.nonzero(readable == 0).flatten())
    return out, failed


def warn_skipped(names, what="images"):
    warnings.warn(
        f"Skipped {len(names)} unreadable {what} (on_error='skip'): {shown(names)}.",
        UserWarning,
        stacklevel=3,
    )
