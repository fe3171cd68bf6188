"""Catalogue of faults, concurrency: fits, predictions, loads and searches run at the same
time in threads give exactly what each gives alone.

A fit's random numbers are its own (tests of issue 20 item 7): initial weights are drawn
under a lock from the fit's seed, dropout and stochastic depth draw from a generator of
the fit, and nothing drawn while training comes from torch's global generator.
"""

import threading

import numpy as np
import pytest
import torch
from torch import nn

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier, _training
from gar_sklearn._training._random import StochasticDepth, use_generator
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.backbones import Dropout, build_backbone
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY

# dropout (in two head layers), shuffling and augmentation: every random draw of a fit
PARAMS = dict(
    TINY,
    image_size=16,
    batch_size=8,
    max_epochs=3,
    head_hidden_units=16,
    dropout=0.5,
    augment=FaceAugmenter(),
    num_workers=0,
)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(48, image_size=16, random_state=9)


def in_threads(*calls):
    """Run the calls at the same time, one thread each; return their results in order."""
    results, errors = [None] * len(calls), []
    barrier = threading.Barrier(len(calls))

    def run(k):
        try:
            barrier.wait()
            results[k] = calls[k]()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    if errors:
        raise errors[0]
    return results


def assert_same_probas(a, b):
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


def fit_proba(data, **params):
    X, y = data
    return MultiAttributeClassifier(**dict(PARAMS, **params)).fit(X, y).predict_proba(X)


@pytest.fixture(scope="module")
def alone(data):
    return {seed: fit_proba(data, random_state=seed) for seed in (0, 1)}


def test_two_fits_at_the_same_time_give_what_each_gives_alone(data, alone):
    for _ in range(2):
        together = in_threads(
            lambda: fit_proba(data, random_state=0), lambda: fit_proba(data, random_state=1)
        )
        assert_same_probas(together[0], alone[0])
        assert_same_probas(together[1], alone[1])


def test_a_fit_and_a_load_at_the_same_time(data, alone, tmp_path):
    X, y = data
    saved = MultiAttributeClassifier(**dict(PARAMS, max_epochs=1)).fit(X, y)
    saved.save(tmp_path / "m.pt")
    loads = [lambda: gar_sklearn.load(tmp_path / "m.pt") for _ in range(3)]
    fitted, *loaded = in_threads(lambda: fit_proba(data, random_state=0), *loads)
    assert_same_probas(fitted, alone[0])
    for model in loaded:
        assert_same_probas(model.predict_proba(X), saved.predict_proba(X))


def test_predictions_in_threads_equal_predictions_alone(data):
    X, y = data
    clf = MultiAttributeClassifier(**dict(PARAMS, max_epochs=1)).fit(X, y)
    expected = clf.predict_proba(X)
    for got in in_threads(*[lambda: clf.predict_proba(X) for _ in range(4)]):
        assert_same_probas(got, expected)


def test_a_grid_search_in_threads_equals_the_sequential_one(data):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV, KFold

    X, y = data
    search = GridSearchCV(
        MultiAttributeClassifier(**dict(PARAMS, max_epochs=1, random_state=0)),
        {"dropout": np.arange(2) * 0.4},
        cv=KFold(2, shuffle=True, random_state=0),
    )
    sequential = search.fit(X, y).cv_results_["split0_test_score"]
    with parallel_backend("threading", n_jobs=4):
        threaded = search.set_params(n_jobs=4).fit(X, y).cv_results_["split0_test_score"]
    np.testing.assert_array_equal(threaded, sequential)


def test_training_draws_nothing_from_torchs_global_generator(data, monkeypatch):
    X, y = data
    states = []
    original = _training.MultiHeadNet.train_step

    def train_step(self, batch, **kwargs):
        states.append(torch.get_rng_state())
        return original(self, batch, **kwargs)

    monkeypatch.setattr(_training.MultiHeadNet, "train_step", train_step)
    MultiAttributeClassifier(**dict(PARAMS, random_state=2)).fit(X, y)
    assert len(states) > 10
    assert all(torch.equal(s, states[0]) for s in states)


# ---------------------------------------------------------------- the fit's random layers
@pytest.mark.parametrize(
    "arch, kinds",
    [
        ("mobilenet_v3_small", {Dropout}),  # torch's nn.Dropout in the projection
        ("efficientnet_b0", {StochasticDepth}),  # torchvision's stochastic depth in the blocks
    ],
)
def test_backbone_random_layers_draw_from_the_fits_generator(arch, kinds):
    module = nn.Sequential(*[m for _, m in build_backbone(arch, weights=None).stages])
    generator = torch.Generator().manual_seed(4)
    use_generator(module, generator).train()
    random = [m for m in module.modules() if getattr(m, "generator", None) is generator]
    assert {type(m) for m in random} == kinds and len(random) > 0
    assert not any(type(m) is nn.Dropout for m in module.modules())
    x = torch.rand(4, 3, 32, 32) * 255
    before = torch.get_rng_state()
    first = module(x)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is untouched
    generator.manual_seed(4)
    torch.testing.assert_close(module(x), first, rtol=0, atol=0)  # the generator decides


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_with_a_generator_draws_what_torchvisions_draws(mode):
    from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth

    x = torch.rand(64, 3, 2, 2)
    torch.manual_seed(7)
    expected = TorchvisionStochasticDepth(0.3, mode).train()(x)
    ours = StochasticDepth(0.3, mode).train()
    ours.generator = torch.Generator().manual_seed(7)  # the same stream as torch's seeded one
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=0)
    assert ours.eval()(x) is x


def test_timm_drop_path_is_replaced_by_stochastic_depth_by_row():
    timm_drop = pytest.importorskip("timm.layers.drop")
    x = torch.rand(64, 3, 2, 2)
    torch.manual_seed(5)
    expected = timm_drop.DropPath(0.25).train()(x)
    module = use_generator(
        nn.Sequential(timm_drop.DropPath(0.25)), torch.Generator().manual_seed(5)
    )
    assert type(module[0]) is StochasticDepth and module.training
    torch.testing.assert_close(module.train()(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("inplace", [False, True])
def test_dropout_with_a_generator_leaves_the_global_one_alone(inplace):
    # in place (and on GPUs) the mask is a Bernoulli draw, else 16-bit draws, from the generator
    x = torch.rand(8, 16) + 0.5
    drop = Dropout(0.4, inplace=inplace).train()
    drop.generator = torch.Generator().manual_seed(1)
    before = torch.get_rng_state()
    out = drop(x.clone())
    assert torch.equal(torch.get_rng_state(), before)
    kept = out != 0
    assert 0 < kept.sum() < x.numel()
    torch.testing.assert_close(out[kept], x[kept] / 0.6, rtol=1e-4, atol=0)
    drop.generator.manual_seed(1)
    torch.testing.assert_close(drop(x.clone()), out, rtol=0, atol=0)
