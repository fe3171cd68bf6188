"""The datasets of a fit: decoded images, or a frozen stem's cached features."""

import numpy as np
import torch

from .._data import (
    FeatureDataset,
    ImageDataset,
    decode_images,
    loading_policy,
    warn_skipped,
)
from .._feature_cache import feature_cache, resident_features
from .._progress import progress_bar
from ..augmentation import RandomFlip

__all__ = [
    "drop_unreadable",
    "feature_datasets",
    "image_datasets",
    "loader_workers",
    "stem_features",
    "train_workers",
    "valid_workers",
]


def loader_workers(num_workers, source, device="cpu"):
    """DataLoader workers for reading ``source`` beside a network on ``device``: the
    ``num_workers`` parameter, where ``"auto"`` means the device's workers
    (:func:`~gar_sklearn._data.loading_policy`) for files and none for in-memory images."""
    if num_workers != "auto":
        return int(num_workers)
    return loading_policy(device).num_workers if source.kind == "sequence" else 0


def train_workers(num_workers, train_ds, augment, device="cpu"):
    """Worker processes for the training loader: to decode files, or to augment."""
    train_ds = getattr(train_ds, "dataset", train_ds)  # inside a SampleDataset
    if not isinstance(train_ds, ImageDataset):
        return 0  # cached features: nothing to load
    if num_workers != "auto":
        return int(num_workers)
    decodes = train_ds.decoded is None and train_ds.source.kind == "sequence"
    return loading_policy(device).num_workers if decodes or augment is not None else 0


def valid_workers(num_workers, val_ds, device="cpu"):
    """Worker processes for the validation loader: only to decode files (validation
    images held in the decoded-image cache or in memory need none)."""
    decodes = (
        isinstance(val_ds, ImageDataset)
        and val_ds.decoded is None
        and val_ds.source.kind == "sequence"
    )
    return loader_workers(num_workers, val_ds.source, device) if decodes else 0


def drop_unreadable(source, labels):
    """``source`` and ``labels`` (array or DataFrame) without the unreadable images."""
    _, failed = decode_images(source, np.arange(len(source)), 8, on_error="skip")
    if not failed:
        return source, labels
    warn_skipped([source.describe(i) for i in failed])
    keep = np.setdiff1d(np.arange(len(source)), failed)
    if len(keep) == 0:
        raise ValueError("None of the images in X could be read; nothing to train on.")
    labels = labels.iloc[keep].reset_index(drop=True) if hasattr(labels, "iloc") else labels[keep]
    return source.subset(keep), labels


def _decoded(source, image_size, image_cache, device="cpu"):
    """All images of ``source`` decoded into one uint8 array, when ``image_cache`` allows
    (``"auto"``: within the budget of ``device``'s :func:`~gar_sklearn._data.loading_policy`)."""
    same_size = source.kind == "array" and source.items.shape[1:3] == (image_size,) * 2
    if image_cache is False or same_size:
        return None
    nbytes = len(source) * image_size**2 * 3
    if image_cache == "auto" and nbytes > loading_policy(device).image_cache_bytes:
        return None
    decoded, _ = decode_images(source, np.arange(len(source)), image_size)
    return decoded


def image_datasets(
    train, val, *, image_size, augment, seed, image_cache, device="cpu", mirror_val=False
):
    """Training and validation datasets of images, and with ``mirror_val`` the
    validation images' mirror images (else None); ``train`` and ``val`` are
    ``(source, codes)`` pairs (``val`` may be None)."""
    source, codes = train
    train_ds = ImageDataset(
        source,
        image_size,
        codes,
        augmenter=augment,
        seed=seed,
        decoded=_decoded(source, image_size, image_cache, device),
    )
    val_ds = mirrored = None
    if val is not None:
        source, codes = val
        decoded = _decoded(source, image_size, image_cache, device)
        val_ds = ImageDataset(source, image_size, codes, decoded=decoded)
        if mirror_val:
            mirrored = ImageDataset(
                source, image_size, codes, augmenter=RandomFlip(p=1.0), decoded=decoded
            )
    return train_ds, val_ds, mirrored


def stem_features(module, source, *, cache, n_views=1, augmenter=None, stem=None):
    """The frozen stem's activations of every image of ``source`` (n, n_views, ...).

    ``cache`` holds how to reach the feature cache: ``backbone``,
    ``image_size``, ``device``, ``batch_size``, ``num_workers``,
    ``cache_dir`` and ``verbose``.
    """
    return feature_cache.get(
        module,
        source,
        source.cache_keys(),
        backbone=cache["backbone"],
        image_size=cache["image_size"],
        n_views=n_views,
        augmenter=augmenter,
        stem=stem,
        device=cache["device"],
        batch_size=max(cache["batch_size"], 64),
        num_workers=loader_workers(cache["num_workers"], source, cache["device"]),
        cache_dir=cache["cache_dir"],
        progress=lambda total: progress_bar(cache["verbose"], total, desc="features"),
    )


def feature_datasets(module, train, val, *, cache, n_views, augment, seed, mirror_val=False):
    """Training and validation datasets of cached features, the validation images'
    mirror images' features with ``mirror_val`` (else None), and the bytes of one
    view of one image; ``train`` and ``val`` as for :func:`image_datasets`.

    On a GPU the features stay in their storage dtype (float16) until the
    network converts them on the device, and move to the device at once when
    they fit there (:func:`~gar_sklearn._feature_cache.resident_features`).
    """
    source, codes = train
    feats = stem_features(module, source, cache=cache, n_views=n_views, augmenter=augment)
    view_bytes = feats[0, 0].numel() * feats.element_size()
    mirror_val = mirror_val and val is not None
    # view 0 is the image itself, view 1 its mirror image, as a prediction with test-time flip
    # extracts them
    val_feats = (
        None
        if val is None
        else stem_features(
            module,
            val[0],
            cache=cache,
            n_views=2 if mirror_val else 1,
            augmenter=RandomFlip(p=1.0) if mirror_val else None,
        )
    )
    feats, val_feats = resident_features([feats, val_feats], cache["device"])
    dtype = None if torch.device(cache["device"]).type == "cuda" else torch.float32
    train_ds = FeatureDataset(feats, codes, random_view=True, seed=seed, dtype=dtype)
    val_ds = None if val is None else FeatureDataset(val_feats, val[1], dtype=dtype)
    mirrored = FeatureDataset(val_feats[:, 1:], val[1], dtype=dtype) if mirror_val else None
    return train_ds, val_ds, mirrored, view_bytes
