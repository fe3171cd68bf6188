"""Device and precision choices, checked on the CPU with torch.cuda mocked where needed:
device indices, precision="auto", the CUDA speed switches, the random state of
checkpoints across GPU counts, and the frozen stem's fingerprint computed once."""

import numpy as np
import pytest
import torch

from gar_sklearn import MultiAttributeClassifier, config_context
from gar_sklearn import _feature_cache as fc
from gar_sklearn._training import (
    _device,
    cuda_speed_settings,
    make_net,
    resolve_device,
    resolve_precision,
    restore_training_state,
    training_state,
)
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine that says it has two GPUs."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# ---------------------------------------------------------------- devices
def test_gpu_indices_are_checked_against_the_machine(two_gpus):
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(
        ValueError, match=r"names GPU 7, but this machine has 2 GPU\(s\) \(cuda:0 to cuda:1\)"
    ):
        resolve_device("cuda:7")


def test_gpu_requested_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        resolve_device("cuda:0")
    with pytest.raises(
        ValueError,
        match=r"'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got 'gpu0'",
    ):
        resolve_device("gpu0")


def test_an_estimator_refuses_a_missing_gpu_before_training(two_gpus):
    X, y = make_synthetic_faces(8, image_size=16, random_state=0)
    with pytest.raises(ValueError, match="names GPU 3"):
        MultiAttributeClassifier(device="cuda:3", **{**TINY, "image_size": 16}).fit(X, y)


# ---------------------------------------------------------------- precision
@pytest.mark.parametrize("major, expected", [(9, torch.bfloat16), (8, torch.bfloat16), (7, None)])
def test_auto_precision_on_a_gpu(monkeypatch, major, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    assert resolve_precision("auto", "cuda:0") is expected


def test_auto_precision_on_the_cpu_is_float32():
    assert resolve_precision("auto", "cpu") is None
    assert resolve_precision("auto") is None
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match=r"must be one of \['auto', 'float32'.*Got 'half'"):
        resolve_precision("half")


def test_estimator_accepts_auto_precision():
    X, y = make_synthetic_faces(24, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(precision="auto", max_epochs=1, **{**TINY, "image_size": 16})
    clf.fit(X, y)
    assert clf.net_.amp_dtype is None and clf.net_.grad_scaler_ is None  # float32 on the CPU
    reference = MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).fit(X, y)
    for p, q in zip(clf.predict_proba(X), reference.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(
        ValueError, match=r"'precision' parameter must be one of \['auto', .*Got 'half'"
    ):
        MultiAttributeClassifier(precision="half", **TINY).fit(X, y)


# ------------------------------------------------------------ CUDA speed switches
def _flags():
    return {
        (owner, name): getattr(owner, name)
        for fl in _device._CUDA_FLAGS.values()
        for owner, name, _ in fl
    }


def test_speed_switches_set_torch_flags_on_a_gpu_and_restore_them():
    before = _flags()
    with cuda_speed_settings("cuda:0"):
        inside = _flags()
    assert _flags() == before
    for fl in _device._CUDA_FLAGS.values():
        for owner, name, value in fl:
            assert inside[(owner, name)] == value
    assert torch.backends.cudnn.benchmark is False  # torch's default, back


def test_speed_switches_off_or_on_the_cpu_leave_the_flags_alone():
    before = _flags()
    with cuda_speed_settings("cpu"):
        assert _flags() == before
    with config_context(cuda_tf32=False, cudnn_benchmark=False), cuda_speed_settings("cuda"):
        assert _flags() == before
    with config_context(cuda_tf32=False), cuda_speed_settings("cuda"):
        assert torch.backends.cudnn.benchmark is True
        tf32 = [(o, n) for o, n, _ in _device._CUDA_FLAGS["cuda_tf32"]]
        assert all(_flags()[key] == before[key] for key in tf32)


def test_speed_switches_are_restored_after_an_error():
    before = _flags()
    with pytest.raises(RuntimeError), cuda_speed_settings("cuda"):
        raise RuntimeError
    assert _flags() == before


def test_fit_and_predict_run_under_the_speed_switches(monkeypatch):
    from gar_sklearn import _multi_attribute

    devices = []
    original = _multi_attribute.cuda_speed_settings

    def recording(device):
        devices.append(device)
        return original(device)

    monkeypatch.setattr(_multi_attribute, "cuda_speed_settings", recording)
    X, y = make_synthetic_faces(16, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).fit(X, y)
    clf.predict(X)
    assert devices == ["cpu", "cpu"]


# --------------------------------------------- random state across GPU counts
def test_checkpoints_hold_no_per_gpu_random_state(monkeypatch, two_gpus):
    """A fit draws from its own generator (not torch's per-GPU ones), so a checkpoint
    written with any number of GPUs resumes with any other: nothing per GPU is saved
    or restored."""
    from gar_sklearn._training import TrainingSettings
    from gar_sklearn.backbones import MultiHeadNetwork, build_backbone

    module = MultiHeadNetwork(build_backbone("tiny", weights=None), [2])
    settings = TrainingSettings(patience=None, lr_schedule=None)
    net = make_net(module, settings, attributes=("a",), device="cpu").initialize()

    def refuse(*args, **kwargs):
        raise AssertionError("torch's per-GPU generators must not be read or set")

    for name in ("get_rng_state_all", "set_rng_state_all", "get_rng_state", "set_rng_state"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    net.device = "cuda:0"  # as a net that trained on a GPU; nothing here runs on it
    state = training_state(net)
    assert "cuda" not in state["rng"]
    restore_training_state(net, state)
    net.device = "cpu"  # resumed on the CPU
    restore_training_state(net, state)


# ------------------------------------------------ the frozen stem's fingerprint
def test_stem_fingerprint_is_kept_until_a_weight_changes():
    stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    first = fc.stem_fingerprint(stem)
    assert first == fc.weights_fingerprint(stem)
    with torch.no_grad():
        stem[0].weight.add_(1.0)  # as an optimizer step
    second = fc.stem_fingerprint(stem)
    assert second != first and second == fc.weights_fingerprint(stem)
    stem.load_state_dict({k: v.clone() for k, v in stem.state_dict().items()})
    assert fc.stem_fingerprint(stem) == second  # same values, recomputed
    stem[1].running_mean += 1  # a buffer changes in place
    assert fc.stem_fingerprint(stem) == fc.weights_fingerprint(stem) != second


@pytest.mark.parametrize("patience, expected", [(None, 1), (1, 2)])
def test_fingerprint_computed_once_per_fit_and_predict(monkeypatch, patience, expected):
    calls = []
    original = fc.weights_fingerprint

    def counting(module):
        calls.append(module)
        return original(module)

    monkeypatch.setattr(fc, "weights_fingerprint", counting)
    fc.feature_cache.clear()
    X, y = make_synthetic_faces(40, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(
        freeze="backbone", max_epochs=2, patience=patience, **{**TINY, "image_size": 16}
    ).fit(X, y)
    assert clf.used_feature_cache_
    assert len(calls) == 1  # training and validation features: one hash of the stem
    for _ in range(3):
        clf.predict(X)
    clf.predict_proba(X[:5])
    # early stopping loads the best weights into every tensor (the frozen stem's too,
    # unchanged in value): one more hash, at the first predict; then none
    assert len(calls) == expected
