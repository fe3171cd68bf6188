"""The global configuration: set_config, get_config, config_context and their switches."""

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier, config_context, get_config, set_config
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import REPO, TINY

DEFAULTS = {
    "tune_cpu_allocator": True,
    "fold_batch_norm": True,
    "fused_adam": True,
    "fast_dropout": True,
    "feature_cache_bytes": 4 * 2**30,
    "predict_cache_bytes": 2**29,
    "image_cache_bytes": 2 * 2**30,
    "cuda_image_cache_bytes": 8 * 2**30,
    "cuda_feature_cache_bytes": 2 * 2**30,
    "cuda_tf32": True,
    "cudnn_benchmark": True,
    "accelerator": None,
}


def test_defaults_and_a_copy_that_changes_nothing():
    config = get_config()
    assert config == DEFAULTS
    config["fold_batch_norm"] = False
    assert get_config()["fold_batch_norm"] is True


def test_set_config_and_config_context():
    set_config(predict_cache_bytes=123)
    try:
        assert get_config()["predict_cache_bytes"] == 123
        with config_context(predict_cache_bytes=7, fused_adam=False):
            assert get_config()["predict_cache_bytes"] == 7 and not get_config()["fused_adam"]
        assert get_config()["predict_cache_bytes"] == 123 and get_config()["fused_adam"]
    finally:
        set_config(predict_cache_bytes=DEFAULTS["predict_cache_bytes"])


def test_a_context_is_the_threads_own():
    seen = {}

    def other():
        seen["other"] = get_config()["fold_batch_norm"]

    with config_context(fold_batch_norm=False):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert get_config()["fold_batch_norm"] is False
    assert seen["other"] is True


@pytest.mark.parametrize(
    "switches, match",
    [
        ({"fast": True}, r"'fast' is not a gar_sklearn configuration switch; the switches are \["),
        ({"fold_batch_norm": 1}, r"The 'fold_batch_norm' switch must be True or False. Got 1"),
        ({"predict_cache_bytes": -1}, r"must be an int >= 0 \(bytes\). Got -1 instead"),
        ({"image_cache_bytes": "2GB"}, r"must be an int >= 0 \(bytes\). Got '2GB' instead"),
        (
            {"accelerator": "cuda"},
            r"'accelerator' switch must be None or an accelerate.Accelerator",
        ),
    ],
)
def test_bad_switches_are_refused_and_change_nothing(switches, match):
    with pytest.raises(ValueError, match=match):
        set_config(**switches, fused_adam=False)
    with pytest.raises(ValueError, match=match):
        with config_context(**switches):
            pass
    assert get_config() == DEFAULTS


def _config_in_subprocess(env):
    code = "import json, gar_sklearn; print(json.dumps(gar_sklearn.get_config()))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
        timeout=120,
    )
    return done


def test_environment_variables_set_the_defaults():
    done = _config_in_subprocess(
        {"GAR_SKLEARN_FOLD_BATCH_NORM": "off", "GAR_SKLEARN_FEATURE_CACHE_BYTES": "1e9"}
    )
    config = json.loads(done.stdout)
    assert config["fold_batch_norm"] is False and config["feature_cache_bytes"] == 10**9
    # the allocator's variable of earlier versions still works
    assert (
        json.loads(_config_in_subprocess({"GAR_SKLEARN_TUNE_MALLOC": "0"}).stdout)[
            "tune_cpu_allocator"
        ]
        is False
    )
    bad = _config_in_subprocess({"GAR_SKLEARN_FUSED_ADAM": "maybe"})
    assert bad.returncode != 0
    assert "GAR_SKLEARN_FUSED_ADAM must be True or False; expected one of 1/0" in bad.stderr


def test_fold_batch_norm_switch_decides_what_predict_runs():
    X, y = make_synthetic_faces(24, image_size=16, random_state=0)
    clf = MultiAttributeClassifier(max_epochs=1, **{**TINY, "image_size": 16}).fit(X, y)
    folded = clf.predict_proba(X)
    assert clf.net_.inference_module() is not clf.net_.module_
    with config_context(fold_batch_norm=False):
        assert clf.net_.inference_module() is clf.net_.module_
        plain = clf.predict_proba(X)
    for a, b in zip(folded, plain):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fused_adam_switch(monkeypatch):
    from gar_sklearn._training import _build

    made = []

    class Recording(_build.OPTIMIZERS["adam"]):
        def __init__(self, params, **kwargs):
            made.append(kwargs.get("fused"))
            super().__init__(params, **kwargs)

    monkeypatch.setitem(_build.OPTIMIZERS, "adam", Recording)
    X, y = make_synthetic_faces(24, image_size=16, random_state=0)
    params = dict(max_epochs=1, freeze="backbone", **{**TINY, "image_size": 16})
    MultiAttributeClassifier(**params).fit(X, y)
    with config_context(fused_adam=False):
        MultiAttributeClassifier(**params).fit(X, y)
    assert made == [True, None]


def test_image_cache_budget(tmp_path):
    from PIL import Image

    from gar_sklearn._training import _datasets
    from gar_sklearn.preprocessing._images import as_image_source

    X, _ = make_synthetic_faces(4, image_size=16, random_state=0)
    paths = []
    for i, image in enumerate(X):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    source = as_image_source(paths)
    assert _datasets._decoded(source, 8, "auto").shape == (4, 8, 8, 3)
    with config_context(image_cache_bytes=4 * 8 * 8 * 3 - 1):
        assert _datasets._decoded(source, 8, "auto") is None
        assert _datasets._decoded(source, 8, True) is not None


def test_feature_cache_budget_follows_the_switch():
    from gar_sklearn._feature_cache import FeatureCache

    assert FeatureCache().limit() == DEFAULTS["feature_cache_bytes"]
    with config_context(feature_cache_bytes=10):
        assert FeatureCache().limit() == 10
        assert FeatureCache(max_bytes=3).limit() == 3


def test_public_names():
    assert {"set_config", "get_config", "config_context"} <= set(gar_sklearn.__all__)


def test_fast_dropout_switch_chooses_the_mask():
    import torch

    from gar_sklearn.backbones import Dropout

    x = torch.ones(64, 1280)
    drop = Dropout(0.3).train()
    drop.generator = torch.Generator().manual_seed(0)
    with config_context(fast_dropout=False):  # one Bernoulli draw per element, from the generator
        plain = drop(x)
    expected = torch.empty_like(x).bernoulli_(0.7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, expected / 0.7, rtol=0, atol=0)
    drop.generator.manual_seed(0)
    fast = drop(x)  # 16-bit slices of 64-bit draws: another mask, the same expectation
    assert not torch.equal(fast, plain)
    levels = 1 << 16
    dropped = round(0.3 * levels)
    scale = torch.tensor(levels / (levels - dropped), dtype=torch.float32).item()
    assert set(fast.unique().tolist()) == {0.0, scale}
    assert abs((fast == 0).float().mean().item() - 0.3) < 0.01
