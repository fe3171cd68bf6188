"""timm models as backbones: names, pretrained configs, stages, weights from files and caches."""

import os
import urllib.error
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from gar_sklearn.backbones import WeightsUnavailableError, build_backbone

timm = pytest.importorskip("timm")
huggingface_hub = pytest.importorskip("huggingface_hub")

TINY = "test_resnet"  # timm's 0.4M-weight test ResNet, pretrained tag r160_in1k


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face hub cache, and no download: each attempt is recorded, then fails
    as it does offline."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    attempts = []

    def offline(repo_id, filename, **kwargs):
        attempts.append((repo_id, filename))
        raise LocalEntryNotFoundError("Cannot reach the hub and the file is not in the cache.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    return SimpleNamespace(path=cache, attempts=attempts)


def _randomise_batch_norm(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def _features(bb, x):
    with torch.no_grad():
        for _, stage in bb.stages:
            x = stage.eval()(x)
    return x


def _timm_features(model, x):
    """The oracle: timm's own forward pass up to the pooled features."""
    with torch.no_grad():
        return model.eval().forward_head(model.forward_features(x), pre_logits=True)


def test_a_timm_model_by_name_with_its_pretrained_config_and_feature_info_stages():
    bb = build_backbone(f"timm/{TINY}", weights=None)
    model = timm.create_model(TINY, num_classes=0)
    cfg = model.pretrained_cfg
    assert bb.name == f"timm/{TINY}" and bb.weights is None
    assert bb.stage_names == [info["module"] for info in model.feature_info] + ["pool"]
    assert bb.n_features == model.num_features == 96
    assert bb.mean == tuple(cfg["mean"]) and bb.std == tuple(cfg["std"])
    assert bb.input_size == cfg["input_size"][-1] == 160
    assert bb.interpolation == cfg["interpolation"]
    # the "timm:" prefix and a pretrained tag name the same network
    same = build_backbone(f"timm:{TINY}.r160_in1k", weights=None)
    assert same.stage_names == bb.stage_names and same.input_size == 160


def test_weights_file_loads_and_the_stages_compute_timms_features(tmp_path):
    torch.manual_seed(0)
    full = _randomise_batch_norm(timm.create_model(TINY))  # with its 1000-class classifier
    path = tmp_path / "test_resnet.pth"
    torch.save(full.state_dict(), path)
    bb = build_backbone(f"timm/{TINY}", weights=path)
    assert bb.weights == str(path)
    x = torch.randn(2, 3, 48, 48)
    torch.testing.assert_close(_features(bb, x), _timm_features(full, x))
    # and the same from a .safetensors file
    from safetensors.torch import save_file

    save_file(full.state_dict(), tmp_path / "w.safetensors")
    again = build_backbone(f"timm/{TINY}", weights=tmp_path / "w.safetensors")
    torch.testing.assert_close(_features(again, x), _timm_features(full, x))


def test_weights_file_of_another_model_is_rejected(tmp_path):
    path = tmp_path / "effnet.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), path)
    with pytest.raises(ValueError, match=r"do not fit backbone 'timm/test_resnet'.*state_dict"):
        build_backbone(f"timm/{TINY}", weights=path)


def _cache_repo(cache, repo, state, filename="model.safetensors"):
    """Lay out a Hugging Face hub cache entry as a download leaves it."""
    from safetensors.torch import save_file

    revision = "0" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    (folder / "snapshots" / revision).mkdir(parents=True)
    save_file(state, folder / "snapshots" / revision / filename)


def test_default_weights_come_from_the_hugging_face_cache_offline(hf_cache):
    torch.manual_seed(1)
    full = _randomise_batch_norm(timm.create_model(TINY))
    _cache_repo(hf_cache.path, "timm/test_resnet.r160_in1k", full.state_dict())
    bb = build_backbone(f"timm/{TINY}", weights="DEFAULT")
    assert bb.weights == "timm/test_resnet.r160_in1k"
    assert hf_cache.attempts == []  # read from the cache, no download tried
    x = torch.randn(1, 3, 40, 40)
    torch.testing.assert_close(_features(bb, x), _timm_features(full, x))
    tagged = build_backbone(f"timm/{TINY}", weights="r160_in1k")  # the tag by name
    torch.testing.assert_close(_features(tagged, x), _timm_features(full, x))


def test_offline_without_cached_weights_names_the_ways_out(hf_cache):
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone(f"timm/{TINY}", weights="DEFAULT")
    message = str(info.value)
    assert "timm/test_resnet.r160_in1k" in message and "could not be downloaded" in message
    assert (
        str(hf_cache.path) in message and "weights=<path" in message and "weights=None" in message
    )
    # offline is not "file missing from the repository": no second file name is tried
    assert hf_cache.attempts == [("timm/test_resnet.r160_in1k", "model.safetensors")]


def test_weights_published_by_url_come_from_torchs_hub_cache(torch_home, hf_cache, monkeypatch):
    cfg = timm.models.get_pretrained_cfg("legacy_seresnet18.in1k").to_dict()
    assert not cfg.get("hf_hub_id") and cfg["url"]  # weights outside the Hugging Face hub
    downloads = []

    def offline(url, dst, *args, **kwargs):
        downloads.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError, match=r"put the file .*hub/checkpoints"):
        build_backbone("timm/legacy_seresnet18", weights="DEFAULT")
    assert downloads == [cfg["url"]]
    torch.manual_seed(2)
    full = timm.create_model("legacy_seresnet18")
    torch_home.mkdir(parents=True, exist_ok=True)
    torch.save(full.state_dict(), torch_home / os.path.basename(cfg["url"]))
    bb = build_backbone("timm/legacy_seresnet18", weights="DEFAULT")
    assert bb.weights == "timm/legacy_seresnet18.in1k" and len(downloads) == 1
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(_features(bb, x), _timm_features(full, x))


@pytest.mark.parametrize(
    "name, weights, message",
    [
        ("timm/no_such_model", None, r"must name a timm model after 'timm/'.*no_such_model"),
        ("timm/", None, r"must name a timm model"),
        (f"timm/{TINY}.nope", None, r"tag 'nope'.*\['r160_in1k'\]"),
        (f"timm/{TINY}", "IMAGENET1K_V1", r"one of the pretrained tags \['r160_in1k'\]"),
    ],
)
def test_names_and_tags_are_checked(name, weights, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(name, weights=weights)


@pytest.mark.parametrize(
    "name, n_features, n_stages",
    [
        ("timm/legacy_xception", 2048, 6),  # Xception
        ("timm/inception_resnet_v2", 1536, 6),  # InceptionResNetV2
        ("timm/resnetv2_50", 2048, 7),  # the pre-activation ResNet-v2 family of ResNet152V2
    ],
)
def test_the_original_works_backbones_missing_from_torchvision(name, n_features, n_stages):
    torch.manual_seed(3)
    bb = build_backbone(name, weights=None)
    torch.manual_seed(3)  # the same random weights
    model = timm.create_model(name[5:], num_classes=0)
    assert bb.n_features == n_features and len(bb.stage_names) == n_stages
    x = torch.randn(1, 3, 96, 96)
    expected = _timm_features(model, x)
    torch.testing.assert_close(_features(bb, x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(
    os.environ.get("GAR_SKLEARN_TEST_ALL_BACKBONES") != "1",
    reason="60 million weights; GAR_SKLEARN_TEST_ALL_BACKBONES=1 runs it",
)
def test_resnet152v2_is_reachable():
    bb = build_backbone("timm/resnetv2_152", weights=None)
    assert bb.n_features == 2048 and bb.stage_names[-1] == "pool" and len(bb.stage_names) == 7


def test_an_estimator_trains_freezes_caches_saves_and_restores_a_timm_backbone(tmp_path):
    from gar_sklearn import MultiAttributeClassifier, load
    from gar_sklearn.datasets import make_synthetic_faces

    X, y = make_synthetic_faces(24, image_size=32, random_state=0)
    clf = MultiAttributeClassifier(
        backbone=f"timm/{TINY}",
        weights=None,
        image_size=32,
        freeze="layer2",
        max_epochs=1,
        batch_size=8,
        validation_fraction=0,
        patience=None,
        random_state=0,
    ).fit(X, y)
    assert clf.used_feature_cache_ and clf.n_frozen_stages_ == 3
    assert clf.stage_names_ == ["act1", "layer1", "layer2", "layer3", "layer4", "pool"]
    path = tmp_path / "timm.pt"
    clf.save(path)
    restored = load(path)
    for a, b in zip(clf.predict_proba(X), restored.predict_proba(X)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_whole_timm_backbone_is_one_stage():
    bb = build_backbone(f"timm/{TINY}", weights=None, whole=True)
    assert bb.stage_names == ["model"] and bb.n_features == 96
    assert set(bb.stages[0][1].state_dict()) == set(
        timm.create_model(TINY, num_classes=0).state_dict()
    )
