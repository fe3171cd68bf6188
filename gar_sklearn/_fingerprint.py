"""Fingerprints of configurations and data: what makes a cache entry or a checkpoint reusable.

One description of parameters serves every cache key and checkpoint of the
package: :func:`describe` turns a value (estimators and augmenters through
their ``get_params``, recursively) into JSON-able data that two equal
configurations share, and :func:`fingerprint` digests it. No torch here.
"""

import hashlib
import json
import numbers
import os
import pickle
from enum import Enum

import numpy as np

__all__ = ["data_fingerprint", "describe", "fingerprint"]


def _class_name(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def describe(value):
    """A canonical, JSON-able description of a configuration value.

    Estimators and augmenters are described by their class and
    ``get_params(deep=False)``, recursively; arrays by a digest of their
    bytes; classes by name; other objects by their class and a digest of
    their pickle (their repr when they do not pickle).

    Examples
    --------
    >>> from gar_sklearn.augmentation import RandomFlip
    >>> describe(RandomFlip(p=0.5)) == describe(RandomFlip(p=0.5))
    True
    >>> describe((1, 2.5, None))
    {'__tuple__': [1, 2.5, None]}
    """
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, np.generic):
        return describe(value.item())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, list):
        return [describe(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [describe(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: describe(v) for k, v in sorted(value.items())}
        items = sorted(([describe(k), describe(v)] for k, v in value.items()), key=repr)
        return {"__items__": items}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, type):
        return {"__class__": _class_name(value)}
    if isinstance(value, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16)
        return {"__ndarray__": digest.hexdigest(), "dtype": value.dtype.str, "shape": value.shape}
    if hasattr(value, "get_params"):
        params = value.get_params(deep=False)
        return {"__object__": _class_name(type(value)), "params": describe(params)}
    try:
        token = hashlib.blake2b(pickle.dumps(value), digest_size=16).hexdigest()
    except (pickle.PicklingError, TypeError, AttributeError):
        token = repr(value)  # an unpicklable oddity: its repr still tells configurations apart
    return {"__object__": _class_name(type(value)), "token": token}


def fingerprint(value, digest_size=8):
    """A hex digest of :func:`describe` ``(value)``.

    Examples
    --------
    >>> from gar_sklearn.augmentation import RandomFlip
    >>> fingerprint(RandomFlip(p=0.5)) == fingerprint(RandomFlip(p=0.5))
    True
    >>> fingerprint(RandomFlip(p=0.5)) == fingerprint(RandomFlip(p=0.4))
    False
    """
    text = json.dumps(describe(value), sort_keys=True, allow_nan=True, default=list)
    return hashlib.blake2b(text.encode(), digest_size=digest_size).hexdigest()


def data_fingerprint(*parts):
    """A digest of images (:class:`~gar_sklearn.preprocessing._images.ImageSource`)
    and label codes (arrays); None parts count as absent."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if part is None:
            h.update(b"none|")
        elif isinstance(part, np.ndarray):
            h.update(f"array|{part.dtype.str}|{part.shape}|".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif part.kind == "array":
            h.update(f"images|{part.items.dtype.str}|{part.items.shape}|".encode())
            h.update(np.ascontiguousarray(part.items).tobytes())
        else:
            h.update(f"files|{len(part)}|".encode())
            for key in part.cache_keys():
                h.update(str(key).encode() + b"\0")
    return h.hexdigest()
