"""Feeding a GPU, checked on the CPU: workers and caches per device, persistent workers
that see every epoch, non-blocking copies, features converted on the device, and
DataLoader workers that never touch CUDA."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from gar_sklearn import MultiAttributeClassifier, config_context, get_config
from gar_sklearn._data import (
    FeatureDataset,
    ImageDataset,
    collate_batch,
    loading_policy,
    worker_context,
)
from gar_sklearn._feature_cache import _ViewDataset, resident_features
from gar_sklearn._training import TrainingSettings, _datasets, _net, make_net
from gar_sklearn.augmentation import RandomFlip
from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing._images import as_image_source

from .conftest import TINY


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    X, y = make_synthetic_faces(24, image_size=16, random_state=0)
    paths = []
    for i, image in enumerate(X):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths, y


# ---------------------------------------------------------------- the policy
@pytest.mark.parametrize(
    "n_cpu, threads, expected",
    [(8, 6, 2), (16, 1, 4), (2, 2, 0), (4, 8, 0), (1, 1, 0)],
)
def test_cpu_policy_leaves_the_cores_to_torch(n_cpu, threads, expected):
    policy = loading_policy("cpu", n_cpu=n_cpu, torch_threads=threads, daemon=False)
    assert policy.num_workers == expected
    assert (policy.persistent_workers, policy.prefetch_factor, policy.pin_memory) == (
        False,
        None,
        False,
    )
    assert policy.image_cache_bytes == get_config()["image_cache_bytes"]


@pytest.mark.parametrize("n_cpu, expected", [(16, 8), (64, 8), (4, 3), (2, 1), (1, 1)])
def test_gpu_policy_feeds_the_gpu_from_every_core_but_one(n_cpu, expected):
    # torch's thread count does not matter: the GPU computes
    policy = loading_policy("cuda:1", n_cpu=n_cpu, torch_threads=n_cpu, daemon=False)
    assert policy.num_workers == expected
    assert (policy.persistent_workers, policy.prefetch_factor, policy.pin_memory) == (
        True,
        4,
        True,
    )
    assert policy.image_cache_bytes == get_config()["cuda_image_cache_bytes"]


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_no_workers_in_a_daemonic_process(device):
    assert loading_policy(device, n_cpu=16, torch_threads=1, daemon=True).num_workers == 0


def test_image_cache_budgets_are_the_switches():
    with config_context(image_cache_bytes=5, cuda_image_cache_bytes=7):
        assert loading_policy("cpu").image_cache_bytes == 5
        assert loading_policy("cuda").image_cache_bytes == 7


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 256), st.integers(1, 256))
def test_policy_bounds(n_cpu, threads):
    cpu = loading_policy("cpu", n_cpu=n_cpu, torch_threads=threads, daemon=False)
    assert 0 <= cpu.num_workers <= 4 and cpu.num_workers + threads <= max(n_cpu, threads)
    gpu = loading_policy("cuda", n_cpu=n_cpu, torch_threads=threads, daemon=False)
    assert 1 <= gpu.num_workers <= 8 and gpu.num_workers <= max(1, n_cpu - 1)


def test_loader_kwargs_are_accepted_by_a_dataloader():
    gpu = loading_policy("cuda", n_cpu=4, torch_threads=4, daemon=False)
    assert gpu.loader_kwargs(0) == dict(
        num_workers=0, multiprocessing_context=None, pin_memory=True
    )
    kwargs = gpu.loader_kwargs(2)
    assert kwargs["persistent_workers"] and kwargs["prefetch_factor"] == 4
    assert gpu.loader_kwargs(2, once=True)["persistent_workers"] is False
    kwargs["pin_memory"] = False  # no GPU here to pin for
    loader = DataLoader(list(range(10)), batch_size=5, **kwargs)
    assert sorted(torch.cat(list(loader)).tolist()) == list(range(10))


def test_the_estimators_workers_and_image_cache_follow_the_device(image_files):
    paths, _ = image_files
    source = as_image_source(paths)
    gpu_workers = loading_policy("cuda").num_workers
    assert gpu_workers >= 1
    assert _datasets.loader_workers("auto", source, "cuda") == gpu_workers
    assert _datasets.loader_workers(3, source, "cuda") == 3
    ds = ImageDataset(source, 8)
    assert _datasets.train_workers("auto", ds, None, "cuda") == gpu_workers
    assert _datasets.valid_workers("auto", ds, "cuda") == gpu_workers
    cached = ImageDataset(source, 8, decoded=np.zeros((len(paths), 8, 8, 3), np.uint8))
    assert _datasets.valid_workers("auto", cached, "cuda") == 0  # nothing to decode
    assert _datasets.train_workers("auto", cached, None, "cuda") == 0
    assert _datasets.train_workers("auto", cached, RandomFlip(), "cuda") == gpu_workers
    with config_context(image_cache_bytes=0, cuda_image_cache_bytes=2**30):
        assert _datasets._decoded(source, 8, "auto", "cpu") is None
        assert _datasets._decoded(source, 8, "auto", "cuda").shape == (len(paths), 8, 8, 3)


def _tiny_module():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MultiHeadNetwork(build_backbone("tiny", weights=None), [2, 3], dropout=0.0)


def test_a_training_net_on_a_gpu_gets_the_gpu_loaders(image_files):
    # building the net touches no GPU: only its loader settings are checked here
    paths, _ = image_files
    ds = ImageDataset(as_image_source(paths), 8, np.zeros((len(paths), 2), int))
    net = make_net(
        _tiny_module(),
        TrainingSettings(),
        attributes=("a", "b"),
        device="cuda",
        train_ds=ds,
        val_ds=ds,
        workers=3,
        valid_workers=2,
    )
    train, valid = net.get_params_for("iterator_train"), net.get_params_for("iterator_valid")
    assert (train["num_workers"], train["persistent_workers"], train["prefetch_factor"]) == (
        3,
        True,
        4,
    )
    assert train["pin_memory"] and valid["pin_memory"] and valid["num_workers"] == 2
    assert train["multiprocessing_context"].get_start_method() == "fork"
    # features already on the device cannot be pinned
    on_device = FeatureDataset(torch.zeros(4, 1, 8, device="meta"), np.zeros((4, 2), int))
    net = make_net(
        _tiny_module(), TrainingSettings(), attributes=("a", "b"), device="cuda", train_ds=on_device
    )
    assert net.get_params_for("iterator_train")["pin_memory"] is False
    cpu = make_net(
        _tiny_module(), TrainingSettings(), attributes=("a", "b"), device="cpu", train_ds=ds
    )
    assert not cpu.get_params_for("iterator_train")["pin_memory"]


# ------------------------------------------------- persistent workers and epochs
def _epoch_batches(net, ds, epochs):
    loader = net.get_iterator(ds, training=True)
    out = []
    for _ in range(epochs):
        net.history.new_epoch()
        out.append(torch.cat([x["images"] for x, _ in loader]))
    return out, loader


def test_persistent_workers_see_every_epoch(image_files):
    paths, _ = image_files
    source = as_image_source(paths)
    codes = np.zeros((len(paths), 2), int)
    runs = {}
    for persistent in (False, True):
        ds = ImageDataset(source, 16, codes, augmenter=RandomFlip(p=0.5), seed=3)
        net = make_net(
            _tiny_module(),
            TrainingSettings(batch_size=8),
            attributes=("a", "b"),
            device="cpu",
            train_ds=ds,
            seed=5,
        )
        net.set_params(
            iterator_train__num_workers=2,
            iterator_train__multiprocessing_context=worker_context(2),
            iterator_train__persistent_workers=persistent,
        )
        net.initialize()
        runs[persistent], loader = _epoch_batches(net, ds, 3)
        assert isinstance(loader.dataset, _net._SharedEpoch) is persistent
    for fresh, kept in zip(runs[False], runs[True]):
        assert torch.equal(fresh, kept)
    # the augmentation does change between epochs: a stale epoch would be seen
    assert not all(torch.equal(runs[False][0], other) for other in runs[False][1:])


class _EpochEcho(torch.utils.data.Dataset):
    epoch = 0

    def __len__(self):
        return 3

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return self.epoch


def test_shared_epoch_reaches_a_copy():
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401 (torch's reductions: tensors in shared memory)

    shared = _net._SharedEpoch(_EpochEcho())
    copy = pickle.loads(ForkingPickler.dumps(shared))  # as a spawned worker receives it
    shared.set_epoch(4)
    assert copy[0] == 4 and copy.__getitems__([0, 1]) == [4, 4] and len(copy) == 3


# ------------------------------------------------------------- copies to the device
class _Recording(torch.Tensor):
    """A tensor that notes the dtype and arguments of each ``to`` call."""

    calls = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.to:
            cls.calls.append((args[0].dtype, kwargs or {}))
        return super().__torch_function__(func, types, args, kwargs)


def test_to_device_copies_without_blocking_and_converts_half_after_the_copy():
    _Recording.calls.clear()
    features = torch.ones(2, 3, dtype=torch.float16).as_subclass(_Recording)
    images = torch.ones(2, 3, dtype=torch.uint8).as_subclass(_Recording)
    out = _net.to_device({"features": features, "images": images}, "cpu")
    assert out["features"].dtype == torch.float32 and out["images"].dtype == torch.uint8
    moves = [(dtype, kw) for dtype, kw in _Recording.calls if kw.get("non_blocking")]
    # the float16 tensor crosses as float16: the conversion comes after the move
    assert [dtype for dtype, _ in moves] == [torch.float16, torch.uint8]
    assert _net.to_device([1, 2], "cpu") == [1, 2]


def test_training_moves_batches_through_to_device(monkeypatch):
    seen, original = [], _net.to_device

    def recording(x, device):
        seen.append(type(x).__name__)
        return original(x, device)

    monkeypatch.setattr(_net, "to_device", recording)
    X, y = make_synthetic_faces(16, image_size=16, random_state=0)
    MultiAttributeClassifier(max_epochs=1, validation_fraction=0, **{**TINY, "image_size": 16}).fit(
        X, y
    )
    assert "dict" in seen and "Tensor" in seen  # the inputs, and the targets in get_loss


def test_feature_dataset_keeps_half_precision_for_the_device():
    feats = torch.randn(4, 2, 5).half()
    assert FeatureDataset(feats, np.zeros((4, 1), int))[0][0]["features"].dtype == torch.float32
    kept = FeatureDataset(feats, np.zeros((4, 1), int), dtype=None).__getitems__([0, 2])
    assert kept[0]["features"].dtype == torch.float16
    assert torch.equal(kept[0]["features"], feats[[0, 2], 0])


def test_resident_features_move_when_they_fit():
    a, b = torch.zeros(4, 2, 8, dtype=torch.float16), torch.zeros(2, 1, 8, dtype=torch.float16)
    nbytes = (a.numel() + b.numel()) * 2
    assert all(f.device.type == "cpu" for f in resident_features([a, b], "cpu"))
    with config_context(cuda_feature_cache_bytes=nbytes):
        moved = resident_features([a, None, b], "meta")  # "meta" stands in for a GPU
        assert moved[1] is None and moved[0].is_meta and moved[2].is_meta
    with config_context(cuda_feature_cache_bytes=nbytes - 1):
        assert not any(f.is_meta for f in resident_features([a, b], "meta"))


# ------------------------------------------------------- workers never touch CUDA
class _CudaInWorker(RuntimeError):
    pass


def _forbid_cuda():
    """In a DataLoader worker: make any use of CUDA raise (also where there is a GPU)."""
    if torch.utils.data.get_worker_info() is None or getattr(torch.cuda, "_gar_forbidden", False):
        return

    def refuse(*args, **kwargs):
        raise _CudaInWorker("a DataLoader worker touched CUDA")

    torch.cuda._lazy_init = refuse  # every CUDA use goes through it, C++ calls too
    torch.cuda._gar_forbidden = True


@pytest.fixture
def cuda_forbidden_in_workers(monkeypatch):
    for cls in (ImageDataset, _ViewDataset):
        original = cls.__getitems__

        def guarded(self, indices, original=original):
            _forbid_cuda()
            return original(self, indices)

        monkeypatch.setattr(cls, "__getitems__", guarded)


def test_the_probe_catches_cuda_in_a_worker(image_files, cuda_forbidden_in_workers):
    class CudaAugmenter:
        def augment(self, image, rng):
            torch.zeros(1, device="cuda")
            return image

    ds = ImageDataset(as_image_source(image_files[0]), 8, augmenter=CudaAugmenter())
    loader = DataLoader(
        ds,
        batch_size=4,
        num_workers=1,
        multiprocessing_context=worker_context(1),
        collate_fn=collate_batch,
    )
    with pytest.raises(Exception, match="touched CUDA"):
        next(iter(loader))


def test_workers_never_touch_cuda(image_files, cuda_forbidden_in_workers):
    paths, y = image_files
    params = dict(max_epochs=1, num_workers=1, augment=RandomFlip(), **{**TINY, "image_size": 16})
    full = MultiAttributeClassifier(**params).fit(paths, y)  # decoding and augmenting
    cached = MultiAttributeClassifier(freeze="backbone", cache_views=2, image_cache=False, **params)
    cached.fit(paths, y)  # cached views made in workers
    for clf in (full, cached):
        assert clf.predict(paths).shape == (len(paths), 3)  # predicting from files
