"""glibc's allocator, set to keep freed memory for reuse in CPU training and inference.

With glibc's default settings, every batch's large activation tensors are
handed back to the kernel when freed (unmapped, or trimmed off the top of the
heap) and faulted back in, page by page and zero-filled, by the next batch.
On a 2-core machine that costs more than the convolutions themselves: in
``benchmarks/speed.py``, MobileNetV2's pure forward pass at 224 px ran at
55 images/s with the defaults and at 126 with the settings below (128 px:
193 against 406; a training step at 224 px: 24 against 29).
PyTorch's CPU tuning guides recommend the same cure
through another allocator (jemalloc, tcmalloc) preloaded at start-up.

The settings are process-wide, so the estimators apply them once, the first
time they fit or predict on the CPU, and only where glibc is the C library:
no large block is mapped on its own (``M_MMAP_MAX=0``), and up to 2 GiB freed
at the top of the heap (``M_TRIM_THRESHOLD``) plus 1 GiB of padding
(``M_TOP_PAD``) stay with the process. The price: the process keeps the memory
of its largest batch after it, instead of returning it to the system. Set the
environment variable ``GAR_SKLEARN_TUNE_MALLOC=0`` to keep glibc's defaults.
"""

import ctypes
import os
import platform
import threading

__all__ = ["tune_cpu_allocator"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2**30))

_lock = threading.Lock()
_state = {"applied": None}  # None: not tried yet; then True or False


def enabled():
    """Whether the environment allows the tuning (``GAR_SKLEARN_TUNE_MALLOC``, on by default)."""
    return os.environ.get("GAR_SKLEARN_TUNE_MALLOC", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def tune_cpu_allocator():
    """Apply the settings above once per process; return whether they are in effect.

    False where the C library is not glibc, where ``GAR_SKLEARN_TUNE_MALLOC=0``
    or where ``mallopt`` refuses a setting.
    """
    with _lock:
        if _state["applied"] is None:
            _state["applied"] = _apply()
        return _state["applied"]


def _apply():
    if not enabled() or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
