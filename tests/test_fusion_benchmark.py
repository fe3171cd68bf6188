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
