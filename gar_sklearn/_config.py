"""The library's global configuration: memory budgets and speed switches, in one place.

Modelled on scikit-learn's ``set_config`` / ``get_config`` / ``config_context``:
each switch has a default, which an environment variable of the same name in
upper case with the prefix ``GAR_SKLEARN_`` can change when the library is
imported (``GAR_SKLEARN_TUNE_CPU_ALLOCATOR=0``), and which ``set_config``
changes for the process and ``config_context`` for a block of code in the
current thread. Nothing here imports torch.

The measured gain of each speed switch is in ``docs/speed.md``.
"""

import os
import threading
from contextlib import contextmanager

__all__ = ["config_context", "get_config", "set_config"]


def _flag(text):
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off; got {text!r}")


def _size(text):
    return int(float(text))


def _no_environment(text):
    raise ValueError("an accelerator can only be given with set_config or config_context")


# name: (default, parse an environment value, description for errors)
_SWITCHES = {
    "tune_cpu_allocator": (True, _flag, "True or False"),
    "fold_batch_norm": (True, _flag, "True or False"),
    "fused_adam": (True, _flag, "True or False"),
    "fast_dropout": (True, _flag, "True or False"),
    "feature_cache_bytes": (4 * 2**30, _size, "an int >= 0 (bytes)"),
    "predict_cache_bytes": (2**29, _size, "an int >= 0 (bytes)"),
    "image_cache_bytes": (2 * 2**30, _size, "an int >= 0 (bytes)"),
    "cuda_image_cache_bytes": (8 * 2**30, _size, "an int >= 0 (bytes)"),
    "cuda_feature_cache_bytes": (2 * 2**30, _size, "an int >= 0 (bytes)"),
    "cuda_tf32": (True, _flag, "True or False"),
    "cudnn_benchmark": (True, _flag, "True or False"),
    "accelerator": (None, _no_environment, "None or an accelerate.Accelerator"),
}
# the environment variables of earlier versions, still read
_OLD_NAMES = {
    "tune_cpu_allocator": "GAR_SKLEARN_TUNE_MALLOC",
}


def _from_environment():
    config = {}
    for name, (default, parse, allowed) in _SWITCHES.items():
        env = f"GAR_SKLEARN_{name.upper()}"
        text = os.environ.get(env, os.environ.get(_OLD_NAMES.get(name, ""), None))
        if text is None:
            config[name] = default
            continue
        try:
            config[name] = parse(text)
        except ValueError as exc:
            raise ValueError(
                f"The environment variable {env} must be {allowed}; {exc}. Unset it to use "
                f"the default {default!r}."
            ) from None
    return config


_global_config = _from_environment()
_local = threading.local()


def _thread_config():
    if not hasattr(_local, "config"):
        _local.config = _global_config.copy()
    return _local.config


def _check(name, value):
    if name not in _SWITCHES:
        raise ValueError(
            f"{name!r} is not a gar_sklearn configuration switch; the switches are "
            f"{sorted(_SWITCHES)}."
        )
    default, _, allowed = _SWITCHES[name]
    if name == "accelerator":
        ok = value is None or all(hasattr(value, a) for a in ("prepare", "device", "reduce"))
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if not ok:
        raise ValueError(f"The {name!r} switch must be {allowed}. Got {value!r} instead.")
    return value


def get_config():
    """The current values of the configuration switches.

    Returns
    -------
    dict
        A copy: changing it changes nothing; use :func:`set_config`.

    - ``tune_cpu_allocator`` (True): on the CPU, set glibc's allocator to
      keep freed memory for reuse (see :mod:`gar_sklearn._allocator`); applied
      the first time an estimator fits or predicts on the CPU, for the whole
      process.
    - ``fold_batch_norm`` (True): prediction and feature extraction run a copy
      of the network with BatchNorm folded into the convolutions.
    - ``fused_adam`` (True): Adam and AdamW chosen by name use torch's fused
      kernel where it applies.
    - ``fast_dropout`` (True): the heads' dropout masks on the CPU are built
      from 16-bit slices of 64-bit draws (``p`` rounded to a multiple of
      1/65536) instead of one draw per element.
    - ``feature_cache_bytes`` (4 GiB): the in-memory budget of cached stem
      features (least recently used configurations are dropped first).
    - ``predict_cache_bytes`` (512 MiB): a model trained from cached features
      predicts through the feature cache when the features of X fit in this
      many bytes, else it streams the images.
    - ``image_cache_bytes`` (2 GiB): ``image_cache="auto"`` decodes the
      training images once into memory when they fit in this many bytes.
    - ``cuda_image_cache_bytes`` (8 GiB): the same budget (host memory) for
      a fit that runs on a GPU, where decoding would keep the GPU waiting.
    - ``cuda_feature_cache_bytes`` (2 GiB): on a GPU, the cached features of
      a fit move to GPU memory once, before training, when they fit in this
      many bytes (0: never); else each batch is copied from pinned memory.
    - ``cuda_tf32`` (True): fits and predictions on a GPU let float32 matrix
      products and convolutions use TensorFloat-32 tensor cores (torch's
      ``allow_tf32`` flags, restored afterwards); False leaves torch's flags
      as they are.
    - ``cudnn_benchmark`` (True): fits and predictions on a GPU let cuDNN
      time its convolution algorithms once per input shape and keep the
      fastest (``torch.backends.cudnn.benchmark``, restored afterwards);
      False leaves the flag as it is.
    - ``accelerator`` (None): an ``accelerate.Accelerator``; fits then train
      through it, data-parallel over the processes that ``accelerate launch``
      started (one per GPU), with its mixed precision (see
      ``docs/scaling.md``). Set it with :func:`set_config` or
      :func:`config_context` only.

    Examples
    --------
    >>> import gar_sklearn
    >>> gar_sklearn.get_config()["fold_batch_norm"]
    True
    """
    return _thread_config().copy()


def set_config(**switches):
    """Set configuration switches for the whole process (see :func:`get_config`).

    Parameters
    ----------
    **switches
        ``name=value`` pairs; an unknown name or a value of the wrong type
        raises a ValueError and changes nothing.

    Examples
    --------
    >>> import gar_sklearn
    >>> gar_sklearn.set_config(predict_cache_bytes=0)  # always stream the images
    >>> gar_sklearn.get_config()["predict_cache_bytes"]
    0
    >>> gar_sklearn.set_config(predict_cache_bytes=2**29)
    """
    checked = {name: _check(name, value) for name, value in switches.items()}
    _global_config.update(checked)
    _thread_config().update(checked)


@contextmanager
def config_context(**switches):
    """Set configuration switches within a ``with`` block, in the current thread.

    Examples
    --------
    >>> import gar_sklearn
    >>> with gar_sklearn.config_context(fold_batch_norm=False):
    ...     gar_sklearn.get_config()["fold_batch_norm"]
    False
    >>> gar_sklearn.get_config()["fold_batch_norm"]
    True
    """
    checked = {name: _check(name, value) for name, value in switches.items()}
    config = _thread_config()
    saved = config.copy()
    config.update(checked)
    try:
        yield
    finally:
        config.clear()
        config.update(saved)
