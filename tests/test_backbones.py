"""Backbone registry and weights: names, feature sizes, the hub cache, local files, offline errors."""

import shutil
import urllib.error

import pytest
import torch
from torch import nn

from gar_sklearn.backbones import (
    MultiHeadNetwork,
    WeightsUnavailableError,
    available_backbones,
    build_backbone,
    resolve_freeze,
)

from .conftest import MOBILENET_V2_FILE

# The feature sizes torchvision documents for each classifier's input.
EXPECTED_FEATURES = {
    "resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048,
    "mobilenet_v2": 1280, "mobilenet_v3_large": 1280, "densenet121": 1024, "densenet201": 1920,
    "efficientnet_b0": 1280, "vgg19": 4096, "tiny": 32,
}


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache for the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.mark.parametrize("name", list(EXPECTED_FEATURES))
def test_registered_backbones_produce_documented_feature_sizes(name):
    bb = build_backbone(name, weights=None)
    assert bb.n_features == EXPECTED_FEATURES[name]
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for _, stage in bb.stages:
            stage.eval()
            x = stage(x)
    assert tuple(x.shape) == (1, EXPECTED_FEATURES[name])


def test_any_torchvision_classifier_by_name():
    assert "convnext_tiny" in available_backbones()
    bb = build_backbone("shufflenet_v2_x0_5", weights=None)
    assert bb.stage_names == ["model"]
    net = MultiHeadNetwork(bb, [2, 3]).eval()
    out = net(images=torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert [tuple(o.shape) for o in out] == [(2, 2), (2, 3)]


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match=r"'backbone' parameter must be one of \[.*'resnet50'.*Got 'resnet19'"):
        build_backbone("resnet19", weights=None)


def test_unknown_weights_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"one of \['DEFAULT', 'IMAGENET1K_V1'\].*Got 'IMAGENET9K'"):
        build_backbone("resnet18", weights="IMAGENET9K")


def test_tiny_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("tiny", weights="DEFAULT")


def test_offline_without_cached_file_names_both_ways_out(torch_home, monkeypatch):
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("resnet18", weights="DEFAULT")
    message = str(info.value)
    assert "could not be downloaded" in message
    assert str(torch_home) in message and "hub/checkpoints" in message
    assert "weights=<path" in message
    assert calls == ["https://download.pytorch.org/models/resnet18-f37072fd.pth"]


@pytest.mark.skipif(not MOBILENET_V2_FILE.exists(), reason=f"{MOBILENET_V2_FILE} is absent")
@pytest.mark.parametrize("weights", ["DEFAULT", "IMAGENET1K_V1"])
def test_mobilenet_v2_loads_from_hub_cache_offline(torch_home, monkeypatch, weights):
    torch_home.mkdir(parents=True)
    shutil.copy(MOBILENET_V2_FILE, torch_home / MOBILENET_V2_FILE.name)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    if weights == "DEFAULT":
        # torchvision's DEFAULT is IMAGENET1K_V2; offline, the cached V1 file stands in for it
        with pytest.warns(UserWarning, match="using the cached MobileNet_V2_Weights.IMAGENET1K_V1"):
            bb = build_backbone("mobilenet_v2", weights=weights)
    else:
        bb = build_backbone("mobilenet_v2", weights=weights)
    assert bb.weights == "MobileNet_V2_Weights.IMAGENET1K_V1"
    assert bb.mean == pytest.approx((0.485, 0.456, 0.406)) and bb.std == pytest.approx((0.229, 0.224, 0.225))
    expected = torch.load(MOBILENET_V2_FILE, map_location="cpu", weights_only=True)
    loaded = nn.Sequential(*[m for _, m in bb.stages[:-1]]).state_dict()
    assert len(loaded) == len(expected) - 2  # everything but the 1000-class classifier
    for key, tensor in loaded.items():
        assert torch.equal(tensor, expected[f"features.{key}"]), key


def test_local_state_dict_file_round_trip(tmp_path):
    from torchvision.models import resnet18

    model = resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    bb = build_backbone("resnet18", weights=str(path))
    assert bb.weights == str(path)
    assert torch.equal(bb.stages[1][1][0].conv1.weight, model.layer1[0].conv1.weight)
    random = build_backbone("resnet18", weights=None)
    assert not torch.equal(random.stages[1][1][0].conv1.weight, model.layer1[0].conv1.weight)


def test_weights_file_for_another_architecture_is_rejected(tmp_path):
    from torchvision.models import resnet18

    path = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), path)
    with pytest.raises(ValueError, match=r"do not fit backbone 'mobilenet_v2'"):
        build_backbone("mobilenet_v2", weights=path)


def test_missing_weights_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_backbone("resnet18", weights="/nonexistent/resnet18.pth")


def test_weights_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="Could not read the weights file"):
        build_backbone("resnet18", weights=path)


@pytest.mark.parametrize("freeze, expected", [(None, 0), ("backbone", 4), (2, 2), ("block2", 2), ("pool", 4)])
def test_resolve_freeze(freeze, expected):
    assert resolve_freeze(freeze, ["block1", "block2", "block3", "pool"]) == expected


@pytest.mark.parametrize("freeze", ["layer9", 7, -1, 1.5])
def test_resolve_freeze_rejects(freeze):
    with pytest.raises(ValueError, match="'freeze' parameter"):
        resolve_freeze(freeze, ["block1", "block2", "block3", "pool"])


def test_frozen_stem_stays_in_eval_mode_and_gets_no_gradient():
    net = MultiHeadNetwork(build_backbone("tiny", weights=None), [2], n_frozen=2)
    net.train()
    assert not net.stem.training and net.body.training
    out = net(images=torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8))
    out[0].sum().backward()
    assert all(p.grad is None for p in net.stem.parameters())
    assert all(p.grad is not None for p in net.body.parameters())


def test_normalize_uses_weights_statistics():
    bb = build_backbone("tiny", weights=None)
    net = MultiHeadNetwork(bb, [2])
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = (1.0 - torch.tensor(bb.mean)) / torch.tensor(bb.std)
    assert torch.allclose(net.normalize(x)[0, :, 0, 0], expected)
