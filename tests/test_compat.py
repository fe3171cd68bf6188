"""The private parts of other libraries that gar_sklearn relies on (gar_sklearn/_compat.py).

Each test fails loudly when a new release of torch or scikit-learn changes one.
"""

import numbers

import torch

from gar_sklearn import _compat


def test_a_tensors_version_counts_its_in_place_changes():
    weight = torch.nn.Parameter(torch.zeros(3))
    before = _compat.tensor_version(weight)
    with torch.no_grad():
        weight.add_(1.0)
    assert _compat.tensor_version(weight) == before + 1
    weight.grad = torch.ones(3)
    torch.optim.SGD([weight], lr=0.1).step()
    assert _compat.tensor_version(weight) > before + 1
    module = torch.nn.Linear(2, 2)
    versions = [_compat.tensor_version(p) for p in module.parameters()]
    module.load_state_dict(torch.nn.Linear(2, 2).state_dict())
    assert all(_compat.tensor_version(p) > v for p, v in zip(module.parameters(), versions))


def test_torch_still_keeps_records_of_worker_batches():
    from torch.multiprocessing import reductions

    assert callable(reductions.shared_cache.free_dead_references)
    _compat.release_worker_batch_records()  # runs, and leaves no record of a freed batch


def test_scikit_learn_constraints_still_read_as_declared():
    integer = _compat.Interval(numbers.Integral, 1, None, closed="left")
    assert (integer.type, integer.left, integer.right, integer.closed) == (
        numbers.Integral,
        1,
        None,
        "left",
    )
    assert integer.is_satisfied_by(3) and not integer.is_satisfied_by(0)
    options = _compat.StrOptions({"a", "b"})
    assert options.options == {"a", "b"} and options.is_satisfied_by("a")
    assert _compat.make_constraint("boolean").is_satisfied_by(True)
    assert _compat.make_constraint(None).is_satisfied_by(None)
    methods = _compat.make_constraint(_compat.HasMethods(["augment"]))
    assert not methods.is_satisfied_by("flip")


def test_a_loader_iterators_workers_stop_when_asked():
    import multiprocessing

    from torch.utils.data import DataLoader

    loader = DataLoader(
        list(range(64)),
        batch_size=4,
        num_workers=2,
        multiprocessing_context=multiprocessing.get_context("fork"),
    )
    iterator = iter(loader)
    next(iterator)
    workers = list(iterator._workers)
    assert all(w.is_alive() for w in workers)
    _compat.shutdown_loader_workers(iterator)
    assert not any(w.is_alive() for w in workers)
    _compat.shutdown_loader_workers(iterator)  # a second time: nothing to do
    _compat.shutdown_loader_workers(iter(DataLoader(list(range(4)))))  # no workers: nothing
