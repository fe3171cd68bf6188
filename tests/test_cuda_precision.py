"""Gradient callbacks under mixed precision, on the CPU: bfloat16 through CPU autocast, and
float16 with its gradient scaler (CPU autocast computes in float16 too). Gradient-norm
clipping must see the true (unscaled) gradients and bound each step."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, GradientNormClipping

from gar_sklearn._data import FeatureDataset, ImageDataset
from gar_sklearn._training import TrainingSettings, make_net
from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing._images import as_image_source

CLIP = 1e-3


class GradNorms(Callback):
    """Record the gradients' total norm each time they are computed."""

    def initialize(self):
        self.norms_ = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.detach().flatten() for _, p in named_parameters if p.grad is not None]
        self.norms_.append(float(torch.cat(grads).norm()))


def _module():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MultiHeadNetwork(build_backbone("tiny", weights=None), [2, 3], dropout=0.0)


def _one_step(precision, callbacks, init_scale=None):
    """Train one batch of 16 images with plain SGD (lr=1): the step is minus the gradient."""
    X, y = make_synthetic_faces(16, image_size=16, random_state=0)
    codes = np.stack([(y["gender"] == "Male").to_numpy(), y["race"].factorize()[0] % 3], 1)
    ds = ImageDataset(as_image_source(X), 16, codes)
    settings = TrainingSettings(
        optimizer="sgd",
        lr=1.0,
        max_epochs=1,
        patience=None,
        lr_schedule=None,
        batch_size=16,
        precision=precision,
    )
    net = make_net(
        _module(),
        settings,
        attributes=("a", "b"),
        device="cpu",
        train_ds=ds,
        seed=0,
        callbacks=callbacks,
    )
    net.initialize()
    if init_scale is not None:  # a scale that does not overflow float16 on this tiny net
        net.grad_scaler_ = torch.amp.GradScaler("cpu", init_scale=init_scale)
    before = [p.detach().clone() for p in net.module_.parameters()]
    net.partial_fit(ds, None)
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(net.module_.parameters(), before)])
    return net, float(step.norm())


CASES = [("float32", None), ("bfloat16", None), ("float16", 2.0**10)]


@pytest.mark.parametrize("precision, init_scale", CASES)
def test_gradient_clipping_bounds_the_step(precision, init_scale):
    recorder = GradNorms()
    net, step = _one_step(
        precision,
        [("grads", recorder), ("clip", GradientNormClipping(gradient_clip_value=CLIP))],
        init_scale,
    )
    assert len(recorder.norms_) == 1
    # the true gradient is far larger than the bound: clipping decided the step...
    assert recorder.norms_[0] > 100 * CLIP
    # ...and it clipped the unscaled gradient: a clipped scaled gradient, unscaled after,
    # would give a step init_scale times smaller
    assert step == pytest.approx(CLIP, rel=1e-2)
    if precision == "float16":
        assert net.grad_scaler_ is not None and net.grad_scaler_.get_scale() == init_scale


@pytest.mark.parametrize("precision, init_scale", CASES[1:])
def test_callbacks_see_the_gradients_of_float32_training(precision, init_scale):
    """The norms seen under mixed precision match float32's (not init_scale times them)."""
    norms = {}
    for p, scale in [("float32", None), (precision, init_scale)]:
        recorder = GradNorms()
        _one_step(p, [("grads", recorder)], scale)
        norms[p] = recorder.norms_[0]
    assert norms[precision] == pytest.approx(norms["float32"], rel=0.1)


def test_float16_overflow_skips_the_step_and_the_callbacks_still_run():
    recorder = GradNorms()
    net, step = _one_step("float16", [("grads", recorder)], init_scale=2.0**100)
    assert step == 0.0  # inf gradients: the scaler skipped the step
    assert len(recorder.norms_) == 1 and not np.isfinite(recorder.norms_[0])
    assert net.grad_scaler_.get_scale() < 2.0**100  # and lowered its scale


def test_float16_features_train_under_autocast():
    backbone = build_backbone("tiny", weights=None)
    module = MultiHeadNetwork(backbone, [2, 3], n_frozen=len(backbone.stage_names))
    images = torch.randint(0, 255, (16, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        feats = module.stem(module.normalize(images)).unsqueeze(1).half()
    codes = np.zeros((16, 2), int)
    settings = TrainingSettings(max_epochs=1, patience=None, lr_schedule=None, precision="bf16")
    ds = FeatureDataset(feats, codes, dtype=None)  # float16 batches, converted by the net
    net = make_net(module, settings, attributes=("a", "b"), device="cpu", train_ds=ds, seed=0)
    net.fit(ds, None)
    assert np.isfinite(net.history[-1, "train_loss"])
