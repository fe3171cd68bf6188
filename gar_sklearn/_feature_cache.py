"""Cached stem activations: compute a frozen prefix of the network once per image and view.

Features live in a process-wide in-memory store (bounded, least recently used
configurations evicted first) and optionally in a cache directory on disk, so
that grid-search candidates sharing a backbone, its weights, the image size
and the frozen depth reuse them, also across processes and sessions.

The cache key of a configuration includes a fingerprint of the frozen
weights, so changing any of backbone, weights, image size, freeze depth or
the views never reuses stale features. Images are keyed by their path, size
and modification time (or by their pixels, for in-memory images).
"""

import hashlib
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from ._compat import tensor_version
from ._config import get_config
from ._data import (
    CollatedBatch,
    augment_in_place,
    collate_batch,
    loading_policy,
    releasing_batches,
    view_rng,
)
from ._fingerprint import fingerprint
from .backbones import fold_batch_norm, has_forward_hooks
from .preprocessing._pixels import resize_images

__all__ = [
    "FeatureCache",
    "config_key",
    "feature_cache",
    "resident_features",
    "stem_fingerprint",
]

STORAGE_DTYPE = torch.float16  # activations are bounded; half precision halves the memory


def weights_fingerprint(module):
    """A hash of the parameters and buffers of ``module``."""
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# module -> (identity of its tensors, fingerprint): weakly held, never pickled with the module
_fingerprints = weakref.WeakKeyDictionary()
_fingerprints_lock = threading.Lock()


def stem_fingerprint(module):
    """:func:`weights_fingerprint` of ``module``, computed again only when a tensor of
    it has changed since the last call.

    Hashing copies every weight to the CPU (on a GPU, a synchronisation and
    tens of MB per call); the fingerprint is kept beside the module with the
    storage and in-place version (:func:`~gar_sklearn._compat.tensor_version`)
    of each of its tensors: optimizer steps and ``load_state_dict`` bump the
    version, moving the module to another device gives new storage. As for
    the net's inference copy, writes through a tensor's ``.data`` go unseen.
    """
    key = tuple(
        (name, t.data_ptr(), tensor_version(t), t.dtype, tuple(t.shape))
        for name, t in module.state_dict(keep_vars=True).items()
    )
    with _fingerprints_lock:
        cached = _fingerprints.get(module)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = weights_fingerprint(module)
    with _fingerprints_lock:
        _fingerprints[module] = (key, digest)
    return digest


def resident_features(features, device):
    """``features`` (tensors, or None in their place) moved to ``device`` when it is
    not the CPU and together they fit in the ``cuda_feature_cache_bytes`` budget
    (:func:`gar_sklearn.get_config`); else as they are.

    Resident features reach the network without a host-to-device copy per batch.
    """
    features = list(features)
    if torch.device(device).type == "cpu":
        return features
    nbytes = sum(f.numel() * f.element_size() for f in features if f is not None)
    if nbytes > get_config()["cuda_feature_cache_bytes"]:
        return features
    return [None if f is None else f.to(device) for f in features]


def config_key(backbone, stem, image_size, n_views, augmenter):
    return "|".join(
        [
            str(backbone),
            stem_fingerprint(stem),
            f"size={image_size}",
            f"views={n_views}",
            f"aug={fingerprint(augmenter) if n_views > 1 else 'none'}",
            str(STORAGE_DTYPE),
        ]
    )


class _ViewDataset(Dataset):
    """(image index, view) pairs: view 0 is the image itself, views > 0 augmented copies.

    Batches come collated (see :class:`~gar_sklearn._data.ImageDataset`).
    """

    def __init__(self, source, pairs, keys, image_size, augmenter):
        self.source, self.pairs, self.keys = source, pairs, keys
        self.image_size, self.augmenter = image_size, augmenter

    def __len__(self):
        return len(self.pairs)

    def __getitems__(self, indices):
        pairs = [self.pairs[j] for j in indices]
        # read in this thread: forward passes run between batches (see ImageDataset's threads)
        images = resize_images(
            [self.source.read(i, self.image_size) for i, _ in pairs], self.image_size
        )
        if any(view > 0 for _, view in pairs):
            augment_in_place(
                images,
                self.augmenter,
                lambda j: (
                    view_rng(self.keys[pairs[j][0]], pairs[j][1]) if pairs[j][1] > 0 else None
                ),
            )
        return CollatedBatch((images,))

    def __getitem__(self, j):
        return self.__getitems__([j])[0][0]


class FeatureCache:
    """Stem activations by configuration and image key, in memory and optionally on disk."""

    def __init__(self, max_bytes=None):
        self.max_bytes = max_bytes
        self._tables = OrderedDict()  # config -> {image_key: tensor (n_views, ...)}
        self._loaded_chunks = {}  # config -> set of chunk files read
        self._on_disk = {}  # (config, cache_dir) -> image keys stored there
        self._lock = threading.Lock()

    def clear(self):
        with self._lock:
            self._tables.clear()
            self._loaded_chunks.clear()
            self._on_disk.clear()

    def limit(self):
        """The memory budget: ``max_bytes``, or the ``feature_cache_bytes`` switch of
        :func:`gar_sklearn.set_config` when it is None."""
        return get_config()["feature_cache_bytes"] if self.max_bytes is None else self.max_bytes

    def nbytes(self):
        return sum(
            t.numel() * t.element_size() for table in self._tables.values() for t in table.values()
        )

    @staticmethod
    def _dir(cache_dir, config):
        return Path(cache_dir) / hashlib.sha1(config.encode()).hexdigest()[:20]

    def _table(self, config, cache_dir):
        table = self._tables.setdefault(config, {})
        self._tables.move_to_end(config)
        if cache_dir is not None:
            folder = self._dir(cache_dir, config)
            seen = self._loaded_chunks.setdefault((config, str(cache_dir)), set())
            on_disk = self._on_disk.setdefault((config, str(cache_dir)), set())
            for chunk in sorted(folder.glob("chunk-*.pt")) if folder.exists() else []:
                if chunk.name in seen:
                    continue
                try:
                    data = torch.load(chunk, map_location="cpu", weights_only=True)
                    table.update(zip(data["keys"], data["features"]))
                    on_disk.update(data["keys"])
                except Exception:  # a partial or foreign file: recompute rather than fail
                    pass
                seen.add(chunk.name)
        return table

    def _evict(self, keep):
        while self.nbytes() > self.limit() and len(self._tables) > 1:
            oldest = next(iter(self._tables))
            if oldest == keep:
                break
            del self._tables[oldest]
            for index in (self._loaded_chunks, self._on_disk):
                for key in [k for k in index if k[0] == oldest]:
                    del index[key]

    def get(
        self,
        module,
        source,
        keys,
        *,
        backbone,
        image_size,
        n_views=1,
        augmenter=None,
        stem=None,
        device="cpu",
        batch_size=64,
        num_workers=0,
        cache_dir=None,
        progress=None,
    ):
        """Features of every image of ``source`` as a tensor (n, n_views, ...).

        Computes (and stores) only the images whose key is not cached yet,
        through ``stem``: ``module.stem`` with BatchNorm folded, made here when
        not given (a fitted net keeps one in its inference module).
        ``progress``, when given, is called as ``progress(total)`` with the
        number of views to compute, only when there are some, and returns a
        bar (such as :func:`gar_sklearn._progress.progress_bar`'s) whose
        ``update(n)`` is called after each batch and ``close()`` at the end.
        """
        if n_views > 1 and augmenter is None:
            raise ValueError("More than one cached view needs an augmenter to make the others.")
        config = config_key(backbone, module.stem, image_size, n_views, augmenter)
        with self._lock:
            table = self._table(config, cache_dir)
        missing = [i for i, k in enumerate(keys) if k not in table]
        if missing:
            bar = progress(len(missing) * n_views) if progress is not None else None
            try:
                new = self._compute(
                    module,
                    source,
                    keys,
                    missing,
                    image_size,
                    n_views,
                    augmenter,
                    device,
                    batch_size,
                    num_workers,
                    bar,
                    stem=stem,
                )
            finally:
                if bar is not None:
                    bar.close()
            with self._lock:
                table.update(zip([keys[i] for i in missing], new))
        if cache_dir is not None:  # persist what the disk lacks, computed now or earlier
            on_disk = self._on_disk.setdefault((config, str(cache_dir)), set())
            unsaved = list(dict.fromkeys(k for k in keys if k not in on_disk))
            if unsaved:
                self._write_chunk(
                    cache_dir, config, unsaved, torch.stack([table[k] for k in unsaved])
                )
                on_disk.update(unsaved)
        out = torch.stack([table[k] for k in keys])
        with self._lock:
            self._evict(keep=config)
        return out

    @staticmethod
    def _write_chunk(cache_dir, config, keys, features):
        folder = FeatureCache._dir(cache_dir, config)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.txt").write_text(config)
        tmp = folder / f"partial-{uuid.uuid4().hex}.tmp"
        torch.save({"keys": list(keys), "features": features.contiguous()}, tmp)
        os.replace(
            tmp, folder / f"chunk-{uuid.uuid4().hex}.pt"
        )  # atomic: readers never see half a file

    @staticmethod
    def _compute(
        module,
        source,
        keys,
        indices,
        image_size,
        n_views,
        augmenter,
        device,
        batch_size,
        num_workers,
        progress,
        stem=None,
    ):
        pairs = [(i, v) for i in indices for v in range(n_views)]
        loader = DataLoader(
            _ViewDataset(source, pairs, keys, image_size, augmenter),
            batch_size=batch_size,
            **loading_policy(device).loader_kwargs(num_workers, once=True),
            collate_fn=collate_batch,
            # a generator of its own: iterating would otherwise draw from torch's global one, and a
            # fit from a cold cache would then train with other dropout masks than one from a warm cache
            generator=torch.Generator(),
        )
        # the stem as prediction runs it (BatchNorm folded: the same activations to float rounding)
        if stem is None:
            fold = get_config()["fold_batch_norm"] and not has_forward_hooks(module.stem)
            stem = fold_batch_norm(module.stem) if fold else module.stem
        was_training = stem.training
        stem.eval()
        chunks = []
        try:
            with torch.inference_mode():
                # releasing: else resident memory grows by a batch per batch
                for (images,) in releasing_batches(loader):
                    feats = stem(module.normalize(images.to(device, non_blocking=True)))
                    chunks.append(feats.to(STORAGE_DTYPE).cpu())  # half the bytes to copy
                    if progress is not None:
                        progress.update(len(chunks[-1]))
        finally:
            stem.train(was_training)
        feats = torch.cat(chunks)
        return feats.reshape(len(indices), n_views, *feats.shape[1:])


#: The process-wide cache the estimators use.
feature_cache = FeatureCache()
