"""The benchmark scripts run end to end on a few real faces, so they cannot rot.

Their numbers at this size mean nothing; the full runs are in docs/benchmarks.md.
"""

import sys

import numpy as np
import pytest

from .conftest import REPO, requires_utkface

pytestmark = [pytest.mark.realdata, requires_utkface]


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    yield
    for name in ("_common", "_intervals", "accuracy_utkface", "cache_utkface", "switches"):
        sys.modules.pop(name, None)


def test_accuracy_benchmark(benchmarks, tmp_path):
    import accuracy_utkface

    results = accuracy_utkface.main(
        [
            "--n",
            "160",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--weights",
            "none",
            "--verbose",
            "0",
            "--out",
            str(tmp_path / "acc"),
            "--plots",
            str(tmp_path),
        ]
    )
    for key in (
        "gender_accuracy",
        "race_accuracy",
        "age9_accuracy",
        "age_mae",
        "age_mae_argmax",
        "race_ece",
    ):
        assert key in results["overall"]
    assert {row["race"] for row in results["by_race"]} <= {
        "White",
        "Black",
        "Asian",
        "Indian",
        "Others",
    }
    assert (tmp_path / "acc.json").stat().st_size > 0 and "| metric |" in (
        tmp_path / "acc.md"
    ).read_text()
    assert (tmp_path / "utkface_race_accuracy_by_race.png").stat().st_size > 0


def test_cache_benchmark(benchmarks, tmp_path):
    import cache_utkface

    results = cache_utkface.main(
        [
            "--n",
            "120",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--weights",
            "none",
            "--modes",
            "heads",
            "grid",
            "grid_hidden",
            "--out",
            str(tmp_path / "cache"),
        ]
    )
    heads, grid, grid_hidden = results["rows"]
    assert heads["extracted_views"] == results["n_train"]  # one pass over the training images
    assert 0 < heads["extraction_s"] <= heads["fit_s"]
    for row in (grid, grid_hidden):
        assert (
            row["extracted_views"] <= results["n_train"]
        )  # candidates and folds share one extraction
        assert row["grid_over_one_fit"] == round(row["fit_s"] / row["one_fit_s"], 3)
    assert "hidden_units" in grid_hidden["best"] and "dropout" in grid["best"]
    mean_fit = (grid_hidden["one_fit_s"] + grid_hidden["one_fit_hidden_s"]) / 2
    assert grid_hidden["grid_over_mean_fit"] == round(grid_hidden["fit_s"] / mean_fit, 3)


def test_switches_benchmark(benchmarks, tmp_path):
    import switches

    switches.main(
        [
            "--n",
            "48",
            "--pairs",
            "2",
            "--sizes",
            "32",
            "--model",
            "tiny",
            "--freeze",
            "1",
            "--out",
            str(tmp_path / "switches"),
        ]
    )
    text = (tmp_path / "switches.md").read_text()
    for switch in ("fold_batch_norm", "fused_adam", "fast_dropout", "tune_cpu_allocator"):
        assert f"| {switch} | 32 |" in text


def test_gender_gap_by_age_benchmark(benchmarks, tmp_path):
    import gender_gap_by_age
    from _common import utkface_split

    try:
        _, X_test, _, y_test = utkface_split(n=400)
        # a saved run that gets gender right for every face from 15 years on, and for every
        # other younger one
        young = y_test["age"].to_numpy() < 15
        correct = ~young | (np.arange(len(young)) % 2 == 0)
        path = tmp_path / "run.npz"
        np.savez(path, test_paths=np.asarray(X_test, dtype=str), gender_correct=correct)
        results = gender_gap_by_age.main(
            ["--predictions", str(path), "--n", "400", "--min-race-size", "5", "--n-boot", "50"]
        )
    finally:
        sys.modules.pop("gender_gap_by_age", None)
    frame = y_test.assign(correct=correct, young=young)
    for row in results["by_race"]:
        rows = frame[frame.race == row["race"]]
        assert row["n"] == len(rows) and row["n_young"] == rows.young.sum()
        assert row["gender_accuracy"] == pytest.approx(rows.correct.mean())
        assert row["gender_accuracy_old"] == 1.0
        assert row["share_young"] == pytest.approx(rows.young.mean())
    old = results["gaps"]["old"]
    assert old["value"] == 0.0 and old["lower"] == old["upper"] == 0.0  # every race at 1.0
    by_race = frame.groupby("race").correct.agg(["mean", "size"])
    kept = by_race[by_race["size"] >= 5]["mean"]
    assert results["gaps"]["all"]["value"] == pytest.approx(kept.max() - kept.min())
