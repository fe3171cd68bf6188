"""BatchNorm folded into convolutions for inference: the same function, the original untouched."""

import pickle

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.backbones import fold_batch_norm
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import as_image_source


def _randomise_batch_norm(module, seed=0):
    """Running statistics and affine parameters away from their defaults (identity maps fold trivially)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return module


def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


def test_hand_computed_fold():
    # y = ((2x + 1) - 3) / sqrt(4) * 3 + 0.5 = 3x - 2.5
    conv = nn.Conv2d(1, 1, 1)
    bn = nn.BatchNorm2d(1)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        conv.bias.fill_(1.0)
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(4.0 - bn.eps)
        bn.weight.fill_(3.0)
        bn.bias.fill_(0.5)
    folded = fold_batch_norm(nn.Sequential(conv, bn))
    assert isinstance(folded[1], nn.Identity)
    assert folded[0].weight.item() == pytest.approx(3.0)
    assert folded[0].bias.item() == pytest.approx(-2.5)
    # a convolution without bias and a BatchNorm without affine parameters
    conv = nn.Conv2d(1, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1, affine=False)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(4.0 - bn.eps)
    folded = fold_batch_norm(nn.Sequential(conv, bn))  # y = (2x - 3) / 2 = x - 1.5
    assert folded[0].weight.item() == pytest.approx(1.0)
    assert folded[0].bias.item() == pytest.approx(-1.5)


@pytest.mark.parametrize(
    "name", ["mobilenet_v2", "resnet18", "resnet50", "efficientnet_b0", "googlenet"]
)
def test_torchvision_networks_compute_the_same_function(name):
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = _randomise_batch_norm(getattr(torchvision.models, name)(weights=None, **kwargs)).eval()
    model = model.to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batch_norm(model)
    assert _count(folded, nn.BatchNorm2d) == 0 < _count(model, nn.BatchNorm2d)
    x = torch.randn(2, 3, 48, 48).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected, got = model(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    # the original is untouched, and the copy keeps the channels-last weights
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in folded.parameters())
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


class _NotSequential(nn.Module):
    """conv then bn as attributes, but the forward puts a ReLU between them: no fold."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(torch.relu(self.conv(x)))


class _ReorderedSequential(nn.Sequential):
    def forward(self, x):  # the children run in reverse: not what their order says
        for m in reversed(self):
            x = m(x)
        return x


def test_what_is_not_folded():
    shared = nn.BatchNorm2d(4)
    cases = [
        nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)
        ),  # batch statistics
        nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)
        ),  # not right after the convolution
        nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3)),  # before it (DenseNet)
        _NotSequential(),
        _ReorderedSequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),
        nn.Sequential(
            nn.Conv2d(3, 4, 3), shared, nn.Conv2d(4, 4, 1), shared
        ),  # one BatchNorm at two places
        nn.Sequential(nn.Conv1d(3, 4, 3), nn.BatchNorm2d(4)),  # dimensions differ
    ]
    for model in cases:
        model = _randomise_batch_norm(model).eval()
        folded = fold_batch_norm(model)
        assert _count(folded, nn.modules.batchnorm._BatchNorm) == _count(
            model, nn.modules.batchnorm._BatchNorm
        )


@settings(max_examples=40, deadline=None)
@given(
    in_groups=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    groups=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    bias=st.booleans(),
    affine=st.booleans(),
    dim=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 2**16),
)
def test_fold_matches_conv_then_batch_norm(
    in_groups, out_per_group, groups, kernel, stride, bias, affine, dim, seed
):
    torch.manual_seed(seed)
    conv_type = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
    bn_type = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]
    out = out_per_group * groups
    model = nn.Sequential(
        conv_type(
            in_groups * groups,
            out,
            kernel,
            stride=stride,
            groups=groups,
            bias=bias,
            padding=kernel // 2,
        ),
        bn_type(out, affine=affine),
    )
    model = _randomise_batch_norm(model, seed).eval()
    folded = fold_batch_norm(model)
    assert isinstance(folded[1], nn.Identity)
    x = torch.randn((2, in_groups * groups) + (5,) * dim)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_predict_runs_the_folded_network_and_follows_the_weights():
    X, y = make_synthetic_faces(24, image_size=32, random_state=1)
    clf = MultiAttributeClassifier(
        backbone="mobilenet_v2",
        weights=None,
        image_size=32,
        max_epochs=1,
        batch_size=8,
        validation_fraction=0,
        patience=None,
        random_state=0,
    ).fit(X, y)
    net = clf.net_
    _randomise_batch_norm(
        net.module_, seed=3
    )  # bumps the buffers' versions: the folded copy is stale

    def unfolded_probas():
        from gar_sklearn._data import ImageDataset

        images = ImageDataset(as_image_source(X), 32).__getitems__(list(range(len(X))))[0]
        net.module_.eval()
        with torch.inference_mode():
            return [torch.softmax(lg, 1).numpy() for lg in net.module_(**images)]

    folded = net.inference_module()
    assert folded is net.inference_module()  # kept while the weights stay
    assert _count(folded, nn.BatchNorm2d) == 0 < _count(net.module_, nn.BatchNorm2d)
    for got, expected in zip(clf.predict_proba(X), unfolded_probas()):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # a change of the weights (as a training step makes) rebuilds the copy
        net.module_.heads[0][-1].weight.mul_(3.0)
    assert net.inference_module() is not folded
    for got, expected in zip(clf.predict_proba(X), unfolded_probas()):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
    # the copy is not pickled: one copy of the weights in a saved model
    assert "_inference_cache" in net.__dict__
    assert "_inference_cache" not in pickle.loads(pickle.dumps(net)).__dict__


def test_forward_hooks_see_the_network_they_were_registered_on():
    X, y = make_synthetic_faces(16, image_size=32, random_state=2)
    clf = MultiAttributeClassifier(
        backbone="tiny",
        weights=None,
        image_size=32,
        max_epochs=1,
        batch_size=8,
        validation_fraction=0,
        patience=None,
        random_state=0,
    ).fit(X, y)
    net = clf.net_
    _randomise_batch_norm(net.module_, seed=4)
    folded_proba = clf.predict_proba(X)
    assert net.inference_module() is not net.module_
    seen = []
    handle = net.module_.body.register_forward_hook(
        lambda module, args, out: seen.append((module, len(out)))
    )
    try:
        assert net.inference_module() is net.module_ and not net.module_.training
        hooked_proba = clf.predict_proba(X)
    finally:
        handle.remove()
    assert seen == [
        (net.module_.body, 8),
        (net.module_.body, 8),
    ]  # the registered module, batch by batch
    for a, b in zip(hooked_proba, folded_proba):  # unfolded and folded: the same to float rounding
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert net.inference_module() is not net.module_  # folded again once the hook is gone


def test_predict_from_cached_features_reuses_the_folded_stem(monkeypatch):
    import gar_sklearn._feature_cache as fc

    X, y = make_synthetic_faces(60, image_size=16, random_state=5)
    fc.feature_cache.clear()
    clf = MultiAttributeClassifier(
        backbone="tiny",
        weights=None,
        image_size=16,
        freeze=2,
        max_epochs=1,
        batch_size=16,
        validation_fraction=0,
        patience=None,
        random_state=0,
    ).fit(X[:40], y.iloc[:40])
    assert clf.used_feature_cache_
    folds = []
    real = fc.fold_batch_norm
    monkeypatch.setattr(fc, "fold_batch_norm", lambda module: folds.append(module) or real(module))
    for start in (40, 50):  # images not cached yet, predicted one call after another
        clf.predict(X[start : start + 10])
    assert folds == []  # extracted through the inference module's stem, not a new copy per call
    # and the features are what that folded stem computes
    stem = clf.net_.inference_module().stem
    images = torch.as_tensor(np.asarray(X[40:60])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        expected = stem(clf.net_.module_.normalize(images)).half()
    source = as_image_source(X[40:60])
    got = fc.feature_cache.get(
        clf.net_.module_, source, source.cache_keys(), backbone="tiny", image_size=16
    )
    torch.testing.assert_close(got[:, 0], expected, rtol=0, atol=0)
