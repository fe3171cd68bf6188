"""glibc's allocator, set to keep freed memory for reuse in CPU training and inference.

With glibc's default settings, every batch's large activation tensors are
handed back to the kernel when freed (unmapped, or trimmed off the top of the
heap) and faulted back in, page by page and zero-filled, by the next batch;
on a CPU that can cost more than the convolutions themselves (measured in
``docs/speed.md``). PyTorch's CPU tuning guides recommend the same cure
through another allocator (jemalloc, tcmalloc) preloaded at start-up.

The settings are process-wide, so the estimators apply them once, the first
time they fit or predict on the CPU, and only where glibc is the C library:
no large block is mapped on its own (``M_MMAP_MAX=0``), and up to 2 GiB freed
at the top of the heap (``M_TRIM_THRESHOLD``) plus 1 GiB of padding
(``M_TOP_PAD``) stay with the process. The price: the process keeps the memory
of its largest batch after it, instead of returning it to the system. The
``tune_cpu_allocator`` switch of :func:`gar_sklearn.set_config` (or the
environment variable ``GAR_SKLEARN_TUNE_CPU_ALLOCATOR=0``) keeps glibc's
defaults.
"""

import ctypes
import platform
import threading

from ._config import get_config

__all__ = ["tune_cpu_allocator"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2**30))

_lock = threading.Lock()
_state = {"applied": None}  # None: not tried yet; then True or False


def tune_cpu_allocator():
    """Apply the settings above once per process; return whether they are in effect.

    While the ``tune_cpu_allocator`` switch is off, nothing is applied (once
    applied, the settings stay for the life of the process). False where the
    C library is not glibc or where ``mallopt`` refuses a setting.
    """
    with _lock:
        if _state["applied"] is None and get_config()["tune_cpu_allocator"]:
            _state["applied"] = _apply()
        return bool(_state["applied"])


def _apply():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
