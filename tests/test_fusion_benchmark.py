"""benchmarks/fusion_vs_multi.py runs end to end on a few real faces (its smoke mode).

Its numbers at this size mean nothing; the full run is in docs/fusion.md.
"""

import json
import sys

import pytest

from .conftest import REPO, UTKFACE, requires_utkface

pytestmark = [pytest.mark.realdata, requires_utkface]


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    yield
    for name in ("_common", "accuracy_utkface", "fusion_vs_multi"):
        sys.modules.pop(name, None)


@pytest.mark.filterwarnings("ignore::gar_sklearn.datasets.SkippedRowsWarning")
def test_fusion_benchmark_smoke_run(benchmark, tmp_path):
    import fusion_vs_multi

    out = tmp_path / "fusion"
    results = fusion_vs_multi.main(
        [
            "--data",
            str(UTKFACE),
            "--n",
            "120",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--weights",
            "none",
            "--bootstrap",
            "50",
            "--threads",
            "1",
            "--verbose",
            "0",
            "--out",
            str(out),
        ]
    )
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["config"]["weights_loaded"] == "None" and saved["config"]["freeze"] == 12
    fusions = [
        f"GenderFusion {v} ({r})"
        for v in ("separate", "shared", "shared_gender_net", "finetune")
        for r in ("hard", "soft")
    ]
    assert list(saved["models"]) == ["MultiAttributeClassifier", *fusions]
    assert list(saved["differences"]) == list(saved["targets"]) == fusions
    text = out.with_suffix(".md").read_text()
    assert "| GenderFusion shared (soft) - MultiAttributeClassifier |" in text
    assert "### Issue 24's target" in text
    n_test = saved["data"]["n_test"]
    for model in saved["models"].values():
        overall = model["overall"]
        assert overall["n"] == n_test and model["fit_seconds"] >= 0
        for metric in ("gender_accuracy", "age_accuracy", "race_accuracy"):
            assert 0 <= overall[metric] <= 1
            # the overall figure is the size-weighted mean of the per-group ones
            for by in ("by_gender", "by_race"):
                groups = model[by].values()
                weighted = sum(g[metric] * g["n"] for g in groups) / sum(g["n"] for g in groups)
                assert weighted == pytest.approx(overall[metric])
        assert overall["age_mae"] >= 0
    for name in ("separate", "shared"):  # hard and soft routing share one fitted model
        hard, soft = (saved["models"][f"GenderFusion {name} ({r})"] for r in ("hard", "soft"))
        assert hard["fit_seconds"] == soft["fit_seconds"]
        # routing changes the age and race columns only
        assert hard["overall"]["gender_accuracy"] == soft["overall"]["gender_accuracy"]
    # the target check follows the intervals
    for label, checks in saved["targets"].items():
        d = saved["differences"][label]
        assert checks["age_accuracy_no_worse"] == (d["age_accuracy"]["ci95"][1] >= 0)
        assert checks["gender_accuracy_better"] == (d["gender_accuracy"]["ci95"][0] > 0)
        ratio = (
            saved["models"][label]["fit_seconds"]
            / saved["models"]["MultiAttributeClassifier"]["fit_seconds"]
        )
        assert checks["fit_time_ok"] == (ratio <= 1.3)


@pytest.mark.filterwarnings("ignore::gar_sklearn.datasets.SkippedRowsWarning")
def test_fusion_benchmark_reads_a_saved_baseline(benchmark, tmp_path):
    """--baseline: the saved per-image results stand in for the MultiAttributeClassifier
    fit, and the differences are taken against them, image by image."""
    import fusion_vs_multi
    import numpy as np
    from _common import utkface_split

    X_train, X_test, y_train, y_test = utkface_split(data=str(UTKFACE), n=120)
    n = len(X_test)
    rng = np.random.default_rng(0)
    saved = {
        "gender_correct": rng.random(n) < 0.5,
        "race_correct": np.zeros(n, dtype=bool),  # every race wrong: the difference is the accuracy
        "age9_correct": np.ones(n, dtype=bool),
        "age_error": np.full(n, 3.0),
    }
    np.savez(tmp_path / "base.npz", test_paths=np.asarray(X_test, dtype=str), **saved)
    args = ["--data", str(UTKFACE), "--n", "120", "--image-size", "32", "--epochs", "1"]
    args += ["--weights", "none", "--bootstrap", "20", "--threads", "1", "--verbose", "0"]
    args += ["--variants", "shared", "--baseline", str(tmp_path / "base.npz")]
    results = fusion_vs_multi.main([*args, "--baseline-fit-seconds", "100"])
    base = results["models"]["MultiAttributeClassifier"]
    assert base["fit_seconds"] == 100 and base["predict_seconds"] is None
    assert base["overall"]["gender_accuracy"] == pytest.approx(saved["gender_correct"].mean())
    assert base["overall"]["age_mae"] == pytest.approx(3.0)
    assert list(results["models"]) == ["MultiAttributeClassifier"] + [
        f"GenderFusion shared ({r})" for r in ("hard", "soft")
    ]
    for label in ("GenderFusion shared (hard)", "GenderFusion shared (soft)"):
        model, diff = results["models"][label], results["differences"][label]
        assert diff["race_accuracy"]["difference"] == pytest.approx(
            model["overall"]["race_accuracy"]
        )
        assert diff["age_mae"]["difference"] == pytest.approx(model["overall"]["age_mae"] - 3.0)
        ratio = model["fit_seconds"] / 100
        assert results["targets"][label]["fit_time_ok"] == (ratio <= 1.3)
    # other test images are refused
    np.savez(tmp_path / "other.npz", test_paths=np.asarray(X_test[::-1], dtype=str), **saved)
    with pytest.raises(SystemExit, match="other test images"):
        fusion_vs_multi.main([*args[:-1], str(tmp_path / "other.npz")])
    # without the fit time, the fit-time check is not met (not measured)
    results = fusion_vs_multi.main(args)
    assert results["models"]["MultiAttributeClassifier"]["fit_seconds"] is None
    assert not any(c["fit_time_ok"] for c in results["targets"].values())
