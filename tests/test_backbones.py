"""Backbone registry and weights: names, feature sizes, the hub cache, local files, offline errors."""

import shutil
import urllib.error

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gar_sklearn.backbones import (
    Dropout,
    MultiHeadNetwork,
    WeightsUnavailableError,
    available_backbones,
    build_backbone,
    register_backbone,
    resolve_freeze,
)

from .conftest import MOBILENET_V2_FILE

# The feature sizes torchvision documents for each classifier's input.
EXPECTED_FEATURES = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "mobilenet_v2": 1280,
    "mobilenet_v3_large": 1280,
    "densenet121": 1024,
    "densenet201": 1920,
    "efficientnet_b0": 1280,
    "vgg19": 4096,
    "tiny": 32,
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
    bb = build_backbone("shufflenet_v2_x0_5", weights=None)  # stages derived from its forward
    assert bb.stage_names[0] == "conv1" and bb.stage_names[-2:] == ["conv5", "pool"]
    net = MultiHeadNetwork(bb, [2, 3], n_frozen=3).eval()
    out = net(images=torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert [tuple(o.shape) for o in out] == [(2, 2), (2, 3)]


def test_input_size_and_interpolation_of_random_weights_follow_the_architecture():
    from torchvision.models import get_model_weights

    bb = build_backbone("efficientnet_b1", weights=None)
    transforms = get_model_weights("efficientnet_b1").DEFAULT.transforms()
    assert bb.input_size == transforms.crop_size[0] == 240
    assert bb.interpolation == transforms.interpolation.value
    assert bb.mean == (0.485, 0.456, 0.406) and bb.name == "efficientnet_b1"
    assert build_backbone("tiny", weights=None).input_size is None


def test_googlenet_weights_get_the_statistics_of_torchvisions_input_transform(torch_home):
    from torchvision.models import GoogLeNet, GoogLeNet_Weights, get_model

    from gar_sklearn.backbones import hub_checkpoint_path

    torch.manual_seed(0)
    state = get_model("googlenet", weights=None, init_weights=True).state_dict()  # with aux heads
    target = hub_checkpoint_path(GoogLeNet_Weights.DEFAULT)
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    bb = build_backbone("googlenet", weights="DEFAULT")
    assert bb.weights == "GoogLeNet_Weights.IMAGENET1K_V1"
    assert bb.mean == bb.std == (0.5, 0.5, 0.5)
    # the oracle: torchvision's pretrained GoogLeNet, which normalises with ImageNet's
    # statistics and then converts them inside the network (transform_input=True)
    oracle = GoogLeNet(transform_input=True, init_weights=False)
    oracle.load_state_dict(state)
    oracle.fc = nn.Identity()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    net = MultiHeadNetwork(bb, [2]).eval()
    imagenet = (images / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = oracle.eval()(imagenet)
        got = net.body(net.stem(net.normalize(images)))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(
        ValueError, match=r"'backbone' parameter must be one of \[.*'resnet50'.*Got 'resnet19'"
    ):
        build_backbone("resnet19", weights=None)


def test_unknown_weights_name_lists_valid_ones():
    with pytest.raises(
        ValueError, match=r"one of \['DEFAULT', 'IMAGENET1K_V1'\].*Got 'IMAGENET9K'"
    ):
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
    assert (bb.input_size, bb.interpolation) == (224, "bilinear")  # the weights' transforms
    assert bb.mean == pytest.approx((0.485, 0.456, 0.406)) and bb.std == pytest.approx(
        (0.229, 0.224, 0.225)
    )
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


@pytest.mark.parametrize(
    "freeze, expected", [(None, 0), ("backbone", 4), (2, 2), ("block2", 2), ("pool", 4)]
)
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


@settings(max_examples=40, deadline=None)
@given(
    channels_last=st.booleans(),
    layout_in=st.sampled_from(["nchw", "nhwc", "float"]),
    seed=st.integers(0, 2**16),
)
def test_normalize_in_one_pass_matches_the_formula_in_float64(channels_last, layout_in, seed):
    from gar_sklearn.backbones._network import Normalize

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (2, 5, 4, 3), dtype=torch.uint8, generator=g).permute(0, 3, 1, 2)
    if layout_in == "nchw":
        x = x.contiguous()
    elif layout_in == "float":
        x = x.to(torch.float64)
    out = Normalize(mean, std, channels_last=channels_last)(x)
    expected = (
        x.double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    ) / torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-6)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)


# ---------------------------------------------------------------- the heads' dropout
def _kept_scale(p):
    dropped = round(p * 65536)
    return 65536 / (65536 - dropped)


@settings(max_examples=60, deadline=None)
@given(
    p=st.floats(0.01, 0.95),
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_dropout_zeroes_or_scales_each_element_by_the_inverse_keep_probability(p, shape, seed):
    x = torch.rand(shape) + 0.5  # no zeros of its own
    torch.manual_seed(seed)
    y = Dropout(p).train()(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] * _kept_scale(p), rtol=1e-6)
    assert (
        abs(_kept_scale(p) - 1 / (1 - p)) <= 1e-4 / (1 - p) ** 2
    )  # p rounded to a multiple of 1/65536
    torch.manual_seed(seed)
    assert torch.equal(Dropout(p).train()(x), y)  # torch's generator reproduces the mask


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_keeps_the_mean_like_torch(p):
    torch.manual_seed(0)
    x = torch.ones(1001, 999)  # not a multiple of 4 elements
    n = x.numel()
    ours, theirs = Dropout(p).train()(x), nn.Dropout(p).train()(x)
    sigma = (p * (1 - p) / n) ** 0.5
    for y in (ours, theirs):  # nn.Dropout as the oracle: both within 5 binomial sigmas of p
        assert abs((y == 0).float().mean().item() - p) < 5 * sigma
        assert abs(y.mean().item() - 1.0) < 5 * sigma / (1 - p)


def test_dropout_gradient_is_the_mask_and_eval_is_the_identity():
    torch.manual_seed(1)
    x = (torch.rand(64, 130) + 0.5).requires_grad_()
    drop = Dropout(0.3).train()
    y = drop(x)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())  # d(x * mask)/dx = mask
    assert drop.eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert not torch.equal(
        Dropout(0.3).train()(x), Dropout(0.3).train()(x)
    )  # a fresh mask each call


@pytest.mark.parametrize("p, inplace", [(1.0, False), (0.5, True), (1e-6, False)])
def test_dropout_corner_cases_behave_like_torch(p, inplace):
    x = torch.rand(8, 16) + 0.5
    torch.manual_seed(3)
    expected = nn.Dropout(p, inplace=inplace).train()(x.clone())
    torch.manual_seed(3)
    assert torch.equal(Dropout(p, inplace=inplace).train()(x.clone()), expected)


def test_heads_use_the_fast_dropout_and_keep_their_parameter_names():
    net = MultiHeadNetwork(
        build_backbone("tiny", weights=None), [2, 3], hidden_units=4, dropout=0.2
    )
    drops = [m for m in net.heads.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 4 and all(type(m) is Dropout for m in drops)
    # nn.Dropout has no state: saved models' keys are those of nn.Dropout heads
    assert [k for k in net.state_dict() if k.startswith("heads.0")] == [
        "heads.0.1.weight",
        "heads.0.1.bias",
        "heads.0.4.weight",
        "heads.0.4.bias",
    ]


# ---------------------------------------------------------------- registered backbones
def _small():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
    )


@pytest.fixture
def registry():
    """Registrations made by a test are undone after it."""
    from gar_sklearn.backbones import _registry

    saved = dict(_registry._REGISTRY)
    yield register_backbone
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)


def test_registered_backbone_with_statistics_and_named_weights(registry, tmp_path):
    torch.manual_seed(0)
    trained = _small()
    path = tmp_path / "faces.pth"
    torch.save(trained.state_dict(), path)
    registry(
        "faces_net",
        _small,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        weights={"faces": path},
        input_size=112,
        interpolation="bicubic",
    )
    for weights in ("DEFAULT", "faces"):  # the only named weights are the default
        bb = build_backbone("faces_net", weights=weights)
        assert bb.weights == "faces_net.faces" and bb.stage_names == ["0", "3", "pool"]
        assert (bb.mean, bb.std) == ((0.5,) * 3, (0.5,) * 3)
        assert (bb.n_features, bb.input_size, bb.interpolation) == (6, 112, "bicubic")
        x = torch.randn(2, 3, 16, 16)
        with torch.no_grad():
            expected = trained.eval()(x)
            for _, stage in bb.stages:
                x = stage.eval()(x)
        torch.testing.assert_close(x, expected)
    random = build_backbone("faces_net", weights=None)
    assert random.weights is None and random.mean == (0.5,) * 3  # the network's statistics
    net = MultiHeadNetwork(random, [2])
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert torch.allclose(net.normalize(white), torch.ones(1, 3, 2, 2))  # (1 - 0.5) / 0.5
    with pytest.raises(
        ValueError, match=r"no pretrained weights named 'other'.*\['DEFAULT', 'faces'\]"
    ):
        build_backbone("faces_net", weights="other")


def test_registered_backbone_weights_by_url_use_the_hub_cache(registry, torch_home, monkeypatch):
    url = "https://example.invalid/models/faces-0123abcd.pth"
    registry("url_net", _small, weights={"v1": url, "v2": url}, default_weights="v2")
    downloads = []

    def offline(source, dst, *args, **kwargs):
        downloads.append(source)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("url_net", weights="DEFAULT")
    assert "'v2' of backbone 'url_net'" in str(info.value) and "faces-0123abcd.pth" in str(
        info.value
    )
    assert downloads == [url]
    torch_home.mkdir(parents=True, exist_ok=True)
    torch.save(_small().state_dict(), torch_home / "faces-0123abcd.pth")
    assert build_backbone("url_net", weights="v1").weights == "url_net.v1"
    assert downloads == [url]  # read from the cache


def test_registered_backbone_without_weights_and_bad_registrations(registry):
    registry("bare", _small)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("bare", weights="DEFAULT")
    with pytest.raises(
        ValueError, match=r"'default_weights' parameter must be one of .*'a'.*Got 'b'"
    ):
        registry("bad", _small, weights={"a": "a.pth"}, default_weights="b")
    registry("not_features", lambda: nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match=r"features \(N, n_features\)"):
        build_backbone("not_features", weights=None)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "resnet18", "squeezenet1_1", "tiny"])
def test_whole_builds_one_stage_computing_the_same_features(name):
    torch.manual_seed(0)
    split = build_backbone(name, weights=None)
    torch.manual_seed(0)
    whole = build_backbone(name, weights=None, whole=True)
    assert whole.stage_names == ["model"] and whole.n_features == split.n_features
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = x
        for _, stage in split.stages:
            expected = stage.eval()(expected)
        got = whole.stages[0][1].eval()(x)
    torch.testing.assert_close(got, expected)
    if name == "shufflenet_v2_x0_5":  # the network's own parameter names, its classifier gone
        from torchvision.models import get_model

        keys = set(get_model(name, weights=None).state_dict()) - {"fc.weight", "fc.bias"}
        assert set(whole.stages[0][1].state_dict()) == keys
