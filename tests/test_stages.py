"""Stages derived from the forward pass, and the smallest image size a backbone takes."""

import copy
import os

import pytest
import torch
from torch import nn

from gar_sklearn.backbones import (
    available_backbones,
    build_backbone,
    check_input_size,
    smallest_input_size,
    split_by_trace,
)
from gar_sklearn.backbones._registry import _entry

# The default run builds one or two small members of each family (a few seconds together
# per family); the others are the same classes at other widths and depths, some with hundreds
# of millions of weights. GAR_SKLEARN_TEST_ALL_BACKBONES=1 runs every name.
REPRESENTATIVES = {
    "alexnet",
    "convnext_tiny",
    "densenet121",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "mnasnet0_5",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "resnet18",
    "resnet50",
    "shufflenet_v2_x0_5",
    "squeezenet1_0",
    "squeezenet1_1",
    "swin_t",
}
RUN_ALL = os.environ.get("GAR_SKLEARN_TEST_ALL_BACKBONES") == "1"
# A class token and position embeddings sit between the patch embedding and the encoder:
# no sequence of submodules reproduces these networks, which stay one stage.
UNSPLIT = {"vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"}
# fixed-size (ViT, MaxViT) or large-stride (Inception v3 needs 75 px) networks
PROBE = {"inception_v3": 80, "maxvit_t": 224, **{name: 224 for name in UNSPLIT}}
# the registered torchvision architectures (other tests may register backbones of their own)
TORCHVISION = [name for name in available_backbones() if _entry(name).arch is not None]


def _randomise_batch_norm(module):
    """Running statistics away from (0, 1), so that a misplaced BatchNorm shows."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _torchvision_features(model, name, x):
    """The oracle: torchvision's network with its classifier's last linear layer made an
    identity (SqueezeNet: its pooled convolutional features)."""
    if name.startswith("squeezenet"):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(model.features(x), 1), 1)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    parent, _, attr = linears[-1].rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, nn.Identity())
    if getattr(model, "aux_logits", False):
        model.aux_logits = False
        for aux in ("AuxLogits", "aux1", "aux2"):
            if hasattr(model, aux):
                setattr(model, aux, None)
    return model(x)


def test_all_torchvision_names_are_covered():
    from torchvision import models
    from torchvision.models import list_models

    assert set(TORCHVISION) == set(list_models(module=models))
    assert REPRESENTATIVES < set(TORCHVISION)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                name not in REPRESENTATIVES and not RUN_ALL,
                reason="a larger member of a tested family; GAR_SKLEARN_TEST_ALL_BACKBONES=1 runs it",
            ),
        )
        for name in TORCHVISION
    ],
)
def test_torchvision_stages_compose_to_the_network(name):
    entry = _entry(name)
    torch.manual_seed(0)
    model = entry.build().eval()
    _randomise_batch_norm(model)
    reference = copy.deepcopy(model)
    stages, n_features = entry.split(model)
    size = PROBE.get(name, 64)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _torchvision_features(reference, name, x)
        for _, stage in stages:
            x = stage.eval()(x)
    # all weights but the classifier's (and the auxiliary classifiers')
    n_weights = len(list(reference.parameters())) - 2 * name.startswith("squeezenet")
    assert x.shape == expected.shape == (2, n_features)
    torch.testing.assert_close(x, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    names = [stage_name for stage_name, _ in stages]
    assert len(set(names)) == len(names)
    if name in UNSPLIT:
        assert names == ["model"]
    else:
        assert len(names) >= 4 and names[-1] == "pool", names
        # each module sits in one stage only: freezing a prefix freezes exactly its weights
        params = [id(p) for _, stage in stages for p in stage.parameters()]
        assert len(params) == len(set(params)) == n_weights


class _Skip(nn.Module):
    """``c(b(a(x)) + a(x))``: a and b are chained, but a's output is used again later."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (
            nn.Conv2d(3, 4, 3),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.Conv2d(4, 5, 1),
        )

    def forward(self, x):
        y = self.a(x)
        return self.c(self.b(y) + y).mean((2, 3))


class _InPlace(nn.Module):
    """a, then an in-place shift between the submodules, then b."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)

    def forward(self, x):
        y = self.a(x)
        y += 1.0
        return self.b(y).mean((2, 3))


class _Twice(nn.Module):
    """One convolution applied twice: the second call is not a new stage."""

    def __init__(self):
        super().__init__()
        self.a, self.conv = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.conv(self.a(x))).mean((2, 3))


@pytest.mark.parametrize("model", [_Skip(), _InPlace()], ids=["skip", "in-place"])
def test_a_forward_that_is_no_chain_keeps_one_stage_and_the_network_intact(model):
    before = dict(model.named_modules())
    assert split_by_trace(model, probe_size=16) is None
    assert dict(model.named_modules()) == before


def test_a_module_called_twice_ends_the_chain_before_it():
    model = _Twice()
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        expected = model(x)
    stages = split_by_trace(model, probe_size=16)
    assert [name for name, _ in stages] == ["a", "pool"]
    with torch.no_grad():
        torch.testing.assert_close(stages[1][1](stages[0][1](x)), expected)


def _layered():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),  # a container, whole
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 16, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
    )


def test_stages_start_at_each_module_with_weights_but_normalisation():
    net = _layered().train()
    stages = split_by_trace(net, probe_size=32)
    assert [name for name, _ in stages] == ["0", "2", "5", "6", "pool"]
    assert [type(m).__name__ for m in stages[1][1]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert net.training  # the mode is restored


def test_stages_end_at_boundaries_then_follow_the_weights():
    torch.manual_seed(0)
    net = _layered().eval()
    reference = copy.deepcopy(net)
    stages = split_by_trace(net, probe_size=32, boundaries=["1", "5"])
    assert [name for name, _ in stages] == ["1", "5", "6", "pool"]
    assert [type(m).__name__ for m in stages[0][1]] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
    ]
    # the pool stage is the network with the chained modules made identities
    pool = stages[-1][1]
    assert pool is net and isinstance(pool[0][0], nn.Identity) and isinstance(pool[6], nn.Identity)
    assert isinstance(pool[7], nn.AdaptiveAvgPool2d)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        for _, stage in stages:
            x = stage(x)
    torch.testing.assert_close(x, expected)


# ------------------------------------------------------------------ input sizes
@pytest.mark.parametrize(
    "name, too_small, smallest", [("alexnet", 32, 63), ("densenet121", 16, 29), ("vgg11", 16, 32)]
)
def test_smallest_input_size_and_the_size_check(name, too_small, smallest):
    bb = build_backbone(name, weights=None)
    assert bb.smallest_input_size() == smallest == smallest_input_size(bb)
    # the oracle: the network run for real on random images fails one pixel below and works at it
    model = nn.Sequential(*[stage for _, stage in bb.stages]).eval()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="too small"):
            model(torch.randn(2, 3, smallest - 1, smallest - 1))
        assert model(torch.randn(2, 3, smallest, smallest)).shape == (2, bb.n_features)
    with pytest.raises(
        ValueError,
        match=rf"'image_size' parameter must be at least {smallest} for backbone '{name}'.*"
        rf"Got image_size={too_small} instead",
    ):
        bb.check_input_size(too_small)
    check_input_size(bb, smallest)  # no error


def test_size_check_of_a_fixed_size_network_and_of_a_plain_module():
    bb = build_backbone("vit_b_16", weights=None)
    with pytest.raises(ValueError, match=r"takes 224 x 224 pixels but not every larger size.*256"):
        bb.check_input_size(256)
    bb.check_input_size(224)
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.MaxPool2d(4), nn.Flatten(1))
    assert smallest_input_size(net) == 8
    with pytest.raises(ValueError, match="at least 8 for backbone 'Sequential'"):
        check_input_size(net, 7)
    with pytest.raises(ValueError, match="at least 8 for backbone 'mine'"):
        check_input_size(net, 7, name="mine")
    assert smallest_input_size(nn.Sequential(nn.Conv2d(3, 4, 2000))) is None


def test_size_probe_leaves_weights_and_modes_alone():
    bb = build_backbone("tiny", weights=None)
    state = {k: v.clone() for k, v in bb.stages[0][1].state_dict().items()}
    for _, stage in bb.stages:
        stage.train()
    assert bb.smallest_input_size() == 1
    assert all(stage.training for _, stage in bb.stages)
    assert all(torch.equal(state[k], v) for k, v in bb.stages[0][1].state_dict().items())
