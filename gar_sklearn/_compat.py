"""The private parts of other libraries that gar_sklearn uses, in one place.

Each is worth its price (what it buys is said beside it), and each has a test
in ``tests/test_compat.py`` that fails loudly when a new release changes it.
Nothing else in the package reaches into another library's private names.
"""

__all__ = [
    "HasMethods",
    "Interval",
    "Options",
    "StrOptions",
    "make_constraint",
    "release_worker_batch_records",
    "shutdown_loader_workers",
    "tensor_version",
]

# scikit-learn's parameter constraints (private module, public in spirit: third-party
# estimators declare ``_parameter_constraints`` with them, as imbalanced-learn does)
from sklearn.utils._param_validation import (  # noqa: E402
    HasMethods,
    Interval,
    Options,
    StrOptions,
    make_constraint,
)


def tensor_version(tensor):
    """torch's count of in-place changes of ``tensor`` (``Tensor._version``).

    It tells whether a cached copy of a network (its BatchNorm-folded
    inference copy) is still current after optimizer steps or
    ``load_state_dict``, without comparing the weights.
    """
    return tensor._version


def release_worker_batch_records():
    """Let go of torch's records of batches received from DataLoader workers and since freed.

    torch notes every shared-memory storage a worker sends and prunes the notes
    only when there are more than 128 (``torch.multiprocessing.reductions.shared_cache``):
    the notes left between freed batches keep the heap from reusing their
    memory, so that resident memory grows by about a batch per batch. Called
    once per batch, memory stays flat. Does nothing where torch has no such
    records.
    """
    import contextlib

    from torch.multiprocessing import reductions

    cache = getattr(reductions, "shared_cache", None)
    if cache is None or not hasattr(cache, "free_dead_references"):
        return
    # the pin-memory thread adds to it
    with getattr(cache, "lock", None) or contextlib.nullcontext():
        cache.free_dead_references()


def shutdown_loader_workers(iterator):
    """Stop the worker processes of a DataLoader's iterator now.

    torch stops them when the iterator is exhausted or garbage collected
    (``_MultiProcessingDataLoaderIter._shutdown_workers``, from its
    ``__del__``). When an error leaves a loop over a loader, the traceback
    holds the iterator, and with it live workers, for as long as the error is
    kept; a process forked meanwhile then collects a copy of the iterator and
    prints "AssertionError: can only test a child process". Does nothing for
    an iterator without workers, or one already stopped.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
