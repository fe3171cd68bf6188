"""gar-sklearn evaluate: a group-aware split, training, held-out predictions and the per-group
report, checked against the library run by hand on the same files; presets and their overrides."""

import argparse
import contextlib
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import gar_sklearn
from gar_sklearn.cli import build_parser, main
from gar_sklearn.cli._presets import DEFAULTS, PRESETS, apply_preset
from gar_sklearn.cli._reporting import plot_names
from gar_sklearn.datasets import UTKFACE_RACES, group_train_test_split, load_utkface
from gar_sklearn.datasets import make_synthetic_faces as faces
from gar_sklearn.preprocessing import AgeBinner

from .conftest import UTKFACE, requires_utkface

TINY_ARGS = ["--backbone", "tiny", "--weights", "none", "--image-size", "32", "--epochs", "2"]
OUTPUTS = {"model.pt", "split.csv", "predictions.csv", "report.txt", "report.json", "plots"}


def _md5(path):
    return hashlib.md5(open(path, "rb").read(), usedforsecurity=False).hexdigest()


@pytest.fixture(scope="module")
def utk_folder(tmp_path_factory):
    """90 synthetic faces named as UTKFace names them, plus 6 byte-identical copies of some
    of them under other labels (as the real data set has)."""
    folder = tmp_path_factory.mktemp("utk")
    X, y = faces(90, image_size=32, random_state=3)
    names = []
    for i, (image, row) in enumerate(zip(X, y.itertuples())):
        gender, race = int(row.gender == "Female"), UTKFACE_RACES.index(row.race)
        names.append(f"{row.age}_{gender}_{race}_2017010{i:05d}.jpg.chip.jpg")
        Image.fromarray(image).save(folder / names[-1], "JPEG", quality=90)
    for k in range(6):
        (folder / f"{30 + k}_{k % 2}_{k % 5}_2018010{k:05d}.jpg.chip.jpg").write_bytes(
            (folder / names[k * 7]).read_bytes()
        )
    return folder


@pytest.fixture(scope="module")
def evaluated(utk_folder, tmp_path_factory):
    """The output folder and the captured streams of one evaluate run."""
    out = tmp_path_factory.mktemp("runs") / "utk"
    argv = ["evaluate", "--data", str(utk_folder), "--format", "utkface", *TINY_ARGS]
    argv += ["--lr", "0.01", "--min-group-size", "1", "--random-state", "1", "--out", str(out)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return out, code, stdout.getvalue(), stderr.getvalue()


def test_evaluate_writes_every_result(evaluated):
    out, code, stdout, stderr = evaluated
    assert code == 0, stderr
    assert set(os.listdir(out)) == OUTPUTS
    expected_plots = plot_names(
        ["gender", "age", "race"], ["race", "gender", ("race", "gender")], ages=True
    )
    assert sorted(os.listdir(out / "plots")) == sorted(expected_plots)
    for name in expected_plots:
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # progress throughout, on stderr; the epoch table and the report on stdout
    for step in ("Looking for byte-identical images among 96 images", "Split: ", "Training "):
        assert step in stderr, step
    assert "Predicting 20 held-out images" in stderr
    assert stdout.splitlines()[0].split()[:2] == ["epoch", "train_loss"]
    report_text = (out / "report.txt").read_text()
    assert report_text.startswith("Group report: 20 samples") and report_text.strip() in stdout


def test_the_split_keeps_duplicates_on_one_side(evaluated, utk_folder):
    out = evaluated[0]
    split = pd.read_csv(out / "split.csv")
    on_disk = sorted(str(p) for p in utk_folder.iterdir())
    assert sorted(split.path) == on_disk  # every image once, with an absolute path
    assert (split.split == "test").sum() == 20  # ceil(0.2 * 96) whole groups met exactly
    md5 = split.path.map(_md5)
    assert md5.nunique() == 90  # the 6 copies are found ...
    assert (split.groupby(md5).split.nunique() == 1).all()  # ... and never straddle the split
    assert (split.groupby(md5).duplicate_group.nunique() == 1).all()
    assert split.duplicate_group.nunique() == 90
    # the labels are those of the file names
    first = split.iloc[0]
    age, gender, race = os.path.basename(first.path).split("_")[:3]
    assert (first.age, first.gender, first.race) == (
        int(age),
        ["Male", "Female"][int(gender)],
        UTKFACE_RACES[int(race)],
    )


def test_predictions_and_report_match_the_saved_model(evaluated):
    out = evaluated[0]
    split = pd.read_csv(out / "split.csv")
    preds = pd.read_csv(out / "predictions.csv")
    test = split[split.split == "test"]
    assert preds.path.tolist() == test.path.tolist() and (preds.status == "ok").all()
    model = gar_sklearn.load(out / "model.pt")
    again = model.predict_frame(preds.path.tolist(), proba=True, age_groups="fairface")
    for column in ("gender", "age", "race", "age_group"):
        assert preds[column].astype(str).tolist() == again[column].astype(str).tolist()
    np.testing.assert_allclose(preds.age_years, again.age_years, atol=5e-3)

    truth = test.reset_index(drop=True)
    overall = json.loads((out / "report.json").read_text())["overall"]
    age9 = AgeBinner("fairface").fit([0]).transform(truth.age.to_numpy(dtype=float))
    assert overall["n"] == 20
    assert overall["gender_accuracy"] == pytest.approx((preds.gender == truth.gender).mean())
    assert overall["race_accuracy"] == pytest.approx((preds.race == truth.race).mean())
    assert overall["age_accuracy"] == pytest.approx(np.mean(preds.age_group == age9))
    assert overall["age_mae"] == pytest.approx((preds.age_years - truth.age).abs().mean())


def test_report_json_holds_the_groups_and_the_run(evaluated):
    out = evaluated[0]
    data = json.loads((out / "report.json").read_text())
    assert list(data["by_group"]) == ["race", "gender", "race x gender"]
    assert data["n_train"] == 76 and data["n_test"] == 20 and data["n_unreadable_test"] == 0
    assert data["settings"]["backbone"] == "tiny" and data["settings"]["preset"] == "default"
    split = pd.read_csv(out / "split.csv")
    preds = pd.read_csv(out / "predictions.csv")
    truth = split[split.split == "test"].reset_index(drop=True)
    for row in data["by_group"]["gender"]:
        mask = (truth.gender == row["group"]).to_numpy()
        assert row["n"] == mask.sum()
        assert row["race_accuracy"] == pytest.approx((preds.race == truth.race)[mask].mean())


# ---------------------------------------------------------------- presets
def _parsed(*options):
    argv = ["evaluate", "--data", "d", "--format", "csv", "--out", "o", *options]
    return apply_preset(build_parser().parse_args(argv))


def test_an_option_wins_over_the_preset_which_wins_over_the_defaults():
    assert all(set(settings) <= set(DEFAULTS) for settings in PRESETS.values())
    plain = _parsed()  # every setting has its option, and its default when left out
    assert {k: getattr(plain, k) for k in DEFAULTS} == DEFAULTS
    best = _parsed(
        "--preset", "cpu-best", "--epochs", "3", "--no-test-time-flip", "--patience", "2"
    )
    expected = {**DEFAULTS, **PRESETS["cpu-best"], "epochs": 3, "test_time_flip": False}
    assert {k: getattr(best, k) for k in DEFAULTS} == {**expected, "patience": 2}
    assert _parsed("--preset", "cpu-best", "--age-sigma", "none").age_sigma is None


def test_cpu_best_builds_the_benchmark_model(monkeypatch):
    """The estimator the command builds with --preset cpu-best has the parameters of the one
    benchmarks/accuracy_utkface.py --weight-averaging ema builds, whatever either changes."""
    from gar_sklearn.backbones import build_backbone
    from gar_sklearn.cli._model import build_estimator

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    try:
        import accuracy_utkface

        parser = argparse.ArgumentParser()
        accuracy_utkface.add_recipe_arguments(parser)
        bench = accuracy_utkface.build(parser.parse_args(["--weight-averaging", "ema"]))
    finally:
        for name in ("_common", "_intervals", "accuracy_utkface"):
            sys.modules.pop(name, None)
    target = pd.DataFrame({"age": [5, 30, 70], "gender": ["Male", "Female", "Male"]})
    target["race"] = ["White", "Black", "Asian"]
    cli = build_estimator(
        _parsed("--preset", "cpu-best"), target, build_backbone("mobilenet_v2", weights=None)
    )
    ours, theirs = cli.get_params(deep=False), bench.get_params(deep=False)
    # what only the command sets: its error policy, output and seed; the benchmark's cache
    for name in ("on_error", "verbose", "random_state", "cache_dir", "attributes", "augment"):
        ours.pop(name), theirs.pop(name)
    assert ours == theirs
    assert cli.augment.get_params() == bench.augment.get_params()


def test_cpu_best_is_the_benchmark_recipe():
    """The preset holds the settings benchmarks/accuracy_utkface.py builds its model with."""
    recipe = PRESETS["cpu-best"]
    assert recipe["backbone"] == "mobilenet_v2" and recipe["freeze"] == 12
    assert (recipe["age_bins"], recipe["age_sigma"]) == (1, 2.5)
    assert (recipe["optimizer"], recipe["lr_schedule"], recipe["patience"]) == (
        "adamw",
        "onecycle",
        None,
    )
    assert recipe["augment"] == "flip" and recipe["cache_views"] == 2
    assert recipe["test_time_flip"] is True and recipe["batch_size"] == 64
    assert recipe["weight_averaging"] == "ema"  # with --weight-averaging ema


def test_cpu_best_preset_with_overrides_builds_the_recipe(utk_folder, tmp_path, capsys):
    from gar_sklearn.augmentation import RandomFlip

    out = tmp_path / "best"
    argv = ["evaluate", "--data", str(utk_folder), "--format", "utkface", "--preset", "cpu-best"]
    argv += [*TINY_ARGS, "--freeze", "2", "--batch-size", "16", "--no-plots", "-q"]
    assert main([*argv, "--min-group-size", "1", "--out", str(out)]) == 0
    model = gar_sklearn.load(out / "model.pt")
    params = model.get_params()
    names = ("age_sigma", "optimizer", "lr_schedule", "patience", "test_time_flip")
    for name in (*names, "weight_averaging"):
        assert params[name] == PRESETS["cpu-best"][name], name
    assert (params["backbone"], params["freeze"], params["batch_size"]) == ("tiny", 2, 16)
    assert params["augment"].get_params() == RandomFlip(p=1.0).get_params()
    assert model.used_feature_cache_ and len(model.history_) == 2
    assert (np.diff(model.classes_[1].astype(int)) == 1).all()  # exact ages, year by year
    # the held-out images are those benchmarks/_common.utkface_split picks at this seed
    X, y = load_utkface(utk_folder, return_X_y=True)
    _, X_test = group_train_test_split(X, test_size=0.2, random_state=0)
    split = pd.read_csv(out / "split.csv")
    assert sorted(split.path[split.split == "test"]) == sorted(X_test)
    assert set(os.listdir(out)) == OUTPUTS - {"plots"}


def test_evaluate_a_fusion_model_on_a_csv_without_ages(utk_folder, tmp_path, capsys):
    X, y = load_utkface(utk_folder, return_X_y=True)
    table = tmp_path / "labels.csv"
    y[["gender", "race"]].assign(path=X).to_csv(table, index=False)
    out = tmp_path / "fusion"
    argv = ["evaluate", "--data", str(table), "--format", "csv", "--model", "fusion", *TINY_ARGS]
    assert main([*argv, "--test-size", "30", "--min-group-size", "1", "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["n_test"] == 30 and data["by"] == ["race", "gender", ["race", "gender"]]
    assert set(data["overall"]) == {"gender_accuracy", "race_accuracy", "n"}
    assert type(gar_sklearn.load(out / "model.pt")).__name__ == "GenderFusionClassifier"
    assert sorted(os.listdir(out / "plots")) == sorted(
        plot_names(["gender", "race"], ["race", "gender", ("race", "gender")], ages=False)
    )
    printed = capsys.readouterr().out
    assert "shared network: 2 epochs" in printed  # GenderFusionClassifier's default strategy


def test_evaluate_usage_and_runtime_errors(utk_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--data", "d", "--format", "csv", "--out", "o", "--test-size", "1.5"])
    assert exc.value.code == 2
    assert "argument --test-size: must be a fraction in (0, 1)" in capsys.readouterr().err
    argv = ["evaluate", "--data", str(utk_folder), "--format", "utkface", *TINY_ARGS]
    assert main([*argv, "--by", "skin", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err
        == "error: --by names ['skin'], which the labels lack; they have ['gender', 'age', 'race']."
    )
    assert not (tmp_path / "o").exists()


def test_argument_namespace_without_a_preset_is_left_alone():
    args = apply_preset(argparse.Namespace(preset="default", backbone="tiny"))
    assert args.backbone == "tiny" and args.freeze == "auto"


# ---------------------------------------------------------------- real faces
@pytest.mark.realdata
@requires_utkface
def test_evaluate_on_real_utkface_faces(tmp_path, capsys):
    out = tmp_path / "utk"
    argv = ["evaluate", "--data", str(UTKFACE / "images"), "--format", "utkface", "--n", "300"]
    argv += [*TINY_ARGS[:-1], "1", "--min-group-size", "5", "--no-plots", "--out", str(out)]
    assert main(argv) == 0
    split = pd.read_csv(out / "split.csv")
    assert len(split) == 300 and (split.split == "test").sum() == 60
    assert split.path.map(os.path.isfile).all()
    data = json.loads((out / "report.json").read_text())
    assert data["overall"]["n"] + data["n_unreadable_test"] == 60
    assert {row["group"] for row in data["by_group"]["race"]} <= set(UTKFACE_RACES)
    assert "By race x gender" in capsys.readouterr().out


@pytest.mark.realdata
@requires_utkface
def test_real_duplicates_stay_on_one_side(tmp_path):
    """40 groups of byte-identical faces (duplicates.csv) among 120 other faces: each group is
    found and held out, or not, as a whole."""
    listed = pd.read_csv(UTKFACE / "duplicates.csv")
    groups = listed.md5.drop_duplicates().sample(40, random_state=0)
    dup = listed[listed.md5.isin(groups)]
    labels = pd.read_csv(UTKFACE / "labels.csv").dropna()
    others = labels[~labels.file.isin(listed.file)].sample(120, random_state=0)
    table = pd.concat([dup[labels.columns], others]).sample(frac=1, random_state=0)
    table["path"] = [str(UTKFACE / f) for f in table.pop("file")]
    table.to_csv(tmp_path / "faces.csv", index=False)
    out = tmp_path / "dup"
    argv = ["evaluate", "--data", str(tmp_path / "faces.csv"), "--format", "csv", *TINY_ARGS[:-1]]
    argv += ["1", "--test-size", "0.3", "--no-plots", "-q", "--out", str(out)]
    assert main(argv) == 0
    split = pd.read_csv(out / "split.csv")
    md5 = split.path.map(dict(zip(table.path, table.path.map(_md5))))
    assert md5.nunique() == 40 + 120 == split.duplicate_group.nunique()
    assert (split.groupby(md5).split.nunique() == 1).all()
    assert (split.groupby(md5).duplicate_group.nunique() == 1).all()
    assert md5[split.split == "test"].isin(set(dup.md5)).any()  # some groups held out whole
