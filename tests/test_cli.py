"""The gar-sklearn command: train -> predict -> report end to end in subprocesses, the rest
(arguments, errors and their spelling, joins, face detection) in-process through ``main([...])``.

Output-file safety is in test_cli_files.py, evaluate in test_cli_evaluate.py, plugins in
test_cli_plugins.py."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import gar_sklearn
from gar_sklearn.cli import _errors, _model, _report, main
from gar_sklearn.datasets import UTKFACE_RACES, make_synthetic_faces

from .conftest import REPO

TINY_ARGS = ["--backbone", "tiny", "--weights", "none", "--image-size", "32", "--epochs", "2"]
PRED_COLUMNS = [
    "path",
    "gender",
    "age",
    "race",
    "gender_proba",
    "age_proba",
    "race_proba",
    "age_years",
    "status",
]
# one thread per subprocess: tiny networks gain nothing from more, and the cores are shared
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(*args, timeout=300, module="gar_sklearn.cli"):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def overall(text):
    """The 'Overall' table of a printed report as a dict."""
    lines = text.splitlines()
    at = lines.index("Overall")
    return dict(zip(lines[at + 1].split(), map(float, lines[at + 2].split())))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """60 synthetic faces as PNGs under img/, labels.csv next to img/, and one broken file."""
    root = tmp_path_factory.mktemp("data")
    (root / "img").mkdir()
    X, y = make_synthetic_faces(60, image_size=32, random_state=0)
    names = [f"img/{i:03d}.png" for i in range(len(X))]
    for name, image in zip(names, X):
        Image.fromarray(image).save(root / name)
    pd.DataFrame({"path": names, **{c: y[c] for c in y.columns}}).to_csv(
        root / "labels.csv", index=False
    )
    (root / "img" / "broken.png").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def model_path(dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    assert (
        main(
            [
                "train",
                "--data",
                str(dataset / "labels.csv"),
                "--format",
                "csv",
                *TINY_ARGS,
                "--out",
                str(path),
                "-q",
            ]
        )
        == 0
    )
    return path


# ---------------------------------------------------------------- end to end
def test_train_predict_report_chain_in_subprocesses(dataset, tmp_path):
    model, preds, plots = tmp_path / "out" / "model.pt", tmp_path / "preds.csv", tmp_path / "plots"

    done = run(
        "train", "--data", dataset / "labels.csv", "--format", "csv", *TINY_ARGS, "--out", model
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["epoch", "train_loss"] and "valid_acc_gender" in lines[0]
    assert [line.split()[0] for line in lines[2:4]] == ["1", "2"]
    assert f"Saved the model to {model}" in done.stdout
    est = gar_sklearn.load(model)
    assert est.attributes_ == ("gender", "age", "race")
    assert len(est.classes_[1]) == 9  # numeric ages: FairFace's nine groups (--age-bins auto)

    done = run("predict", model, dataset / "img", "--out", preds)
    assert done.returncode == 0, done.stderr
    assert re.search(r"warning: Skipped 1 unreadable images: .*broken\.png", done.stderr)
    assert "on_error" not in done.stderr  # the command always skips: no Python spelling
    assert "Traceback" not in done.stderr
    out = pd.read_csv(preds)
    assert list(out.columns) == PRED_COLUMNS and len(out) == 61
    broken = out[out.path.str.endswith("broken.png")]
    assert broken.status.tolist() == ["unreadable"] and broken[PRED_COLUMNS[1:-1]].isna().all(
        axis=None
    )
    # the same predictions as the library gives in this process
    ok = out[out.status == "ok"].reset_index(drop=True)
    expected = est.predict_frame(ok.path.tolist(), proba=True)
    for column in ("gender", "age", "race"):
        assert ok[column].astype(str).tolist() == expected[column].astype(str).tolist()
    np.testing.assert_allclose(ok.gender_proba, expected.gender_proba, atol=1e-4)
    np.testing.assert_allclose(ok.age_years, expected.age_years, atol=1e-2)

    done = run(
        "report",
        preds,
        "--truth",
        dataset / "labels.csv",
        "--by",
        "race,gender",
        "--min-group-size",
        "1",
        "--plots",
        plots,
    )
    assert done.returncode == 0, done.stderr
    assert "60 of 61 predicted images compared" in done.stderr
    assert "1 image not in the truth file left out" in done.stderr  # broken.png: unlabelled
    assert done.stdout.startswith("Group report: 60 samples")
    truth = pd.read_csv(dataset / "labels.csv")
    truth["path"] = [os.path.normpath(os.path.join(dataset, p)) for p in truth.path]
    joined = ok.merge(truth, on="path", suffixes=("", "_true"))
    table = overall(done.stdout)
    assert table["gender_accuracy"] == pytest.approx(
        (joined.gender == joined.gender_true).mean(), abs=1e-3
    )
    assert table["race_accuracy"] == pytest.approx(
        (joined.race == joined.race_true).mean(), abs=1e-3
    )
    assert table["age_mae"] == pytest.approx(
        (joined.age_years - joined.age_true).abs().mean(), abs=1e-2
    )
    expected_plots = {"confusion_matrices.png", "age_error.png"} | {
        f"accuracy_{a}_by_{g}.png" for a in ("gender", "age", "race") for g in ("race", "gender")
    }
    assert set(os.listdir(plots)) == expected_plots
    for name in expected_plots:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_in_a_subprocess_have_exit_codes_and_no_traceback(tmp_path):
    done = run("train", "--format", "csv", "--out", tmp_path / "m.pt")
    assert done.returncode == 2
    assert "the following arguments are required: --data" in done.stderr
    done = run("predict", tmp_path / "missing.pt", tmp_path)
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: No such gar_sklearn file: '{tmp_path / 'missing.pt'}'."
    )
    assert "Traceback" not in done.stderr


def test_console_script_and_modules_answer_help_and_version():
    done = run("--version", module="gar_sklearn", timeout=60)
    assert done.returncode == 0 and done.stdout == f"gar-sklearn {gar_sklearn.__version__}\n"
    done = run("predict", "--help", timeout=60)
    assert done.returncode == 0 and "--detect" in done.stdout
    script = shutil.which("gar-sklearn")
    if script is None:
        pytest.skip("the gar-sklearn console script is not installed (pip install -e .)")
    done = subprocess.run(
        [script, "--help"], capture_output=True, text=True, env=ENV, timeout=60, check=False
    )
    assert done.returncode == 0
    for command in ("train", "predict", "report", "evaluate"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.MULTILINE)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"gar-sklearn {gar_sklearn.__version__}\n"


# ---------------------------------------------------------------- help and usage errors
@pytest.mark.parametrize(
    "command, options",
    [
        (
            "train",
            [
                "--data",
                "--format",
                "--model",
                "--backbone",
                "--weights",
                "--freeze",
                "--age-bins",
                "--epochs",
                "--n",
                "--random-state",
                "--quiet",
                "--verbose",
                "--debug",
                "--preset",
                "--age-sigma",
                "--test-time-flip",
                "--lr-schedule",
                "--force",
                "--plugin",
            ],
        ),
        ("predict", ["--detect", "--out", "--margin", "--max-faces", "--quiet", "--force"]),
        ("report", ["--truth", "--by", "--plots", "--json", "--min-group-size", "--details"]),
        ("evaluate", ["--data", "--test-size", "--preset", "--by", "--no-plots", "--out"]),
    ],
)
def test_help_of_each_command(command, options, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gar-sklearn {command}")
    for option in options:
        assert option in out, option


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (
            ["train", "--data", "d", "--format", "xml", "--out", "m"],
            "argument --format: invalid choice: 'xml'",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "--epochs", "0"],
            "argument --epochs: must be a positive integer; got '0'",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "--age-bins", "decades"],
            "argument --age-bins: must be auto, fairface, none or a positive interval in years; got 'decades'",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "--freeze", "-3"],
            "argument --freeze: must be",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "-q", "-v"],
            "not allowed with argument",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "--weight-averaging", "mean"],
            "argument --weight-averaging: must be none, ema or swa; got 'mean'",
        ),
        (
            ["train", "--data", "d", "--format", "csv", "--out", "m", "--averaging-start", "-1"],
            "argument --averaging-start: must be an integer >= 0; got '-1'",
        ),
        (["predict", "model.pt"], "the following arguments are required: PATH"),
        (
            ["report", "p.csv", "--truth", "t.csv", "--by", "race,,gender"],
            "argument --by: must be column names",
        ),
        (["report", "p.csv"], "the following arguments are required: --truth"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("usage: gar-sklearn")


# ---------------------------------------------------------------- runtime errors
def _fail(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_runtime_errors_exit_1_with_a_message(dataset, model_path, tmp_path, capsys):
    labels = str(dataset / "labels.csv")
    train = ["train", "--format", "csv", *TINY_ARGS, "--out", str(tmp_path / "m.pt")]
    assert _fail([*train, "--data", str(tmp_path / "nope.csv")], capsys) == (
        f"error: The training data file '{tmp_path / 'nope.csv'}' does not exist."
    )
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 4)
    assert _fail([*train, "--data", str(junk)], capsys).startswith(
        f"error: Could not read the training data file '{junk}' as CSV"
    )
    unlabelled = tmp_path / "unlabelled.csv"
    pd.DataFrame({"path": ["a.png"], "name": ["x"]}).to_csv(unlabelled, index=False)
    assert _fail([*train, "--data", str(unlabelled)], capsys) == (
        f"error: The training data file '{unlabelled}' needs at least one label column of "
        "['gender', 'age', 'race']; it has the columns ['path', 'name']."
    )
    no_paths = tmp_path / "no_paths.csv"
    pd.DataFrame({"image": ["a.png"], "gender": ["Male"]}).to_csv(no_paths, index=False)
    assert "needs a 'path' column (or 'file')" in _fail([*train, "--data", str(no_paths)], capsys)
    assert _fail(
        ["train", "--data", labels, "--format", "csv", "--backbone", "resnet19", "--out", "m"],
        capsys,
    ).startswith("error: --backbone must be one of")
    assert _fail(
        [*train, "--data", labels, "--weights", str(tmp_path / "w.pth")], capsys
    ).startswith("error: --weights names the file")
    assert _fail([*train, "--data", str(dataset), "--format", "utkface"], capsys) == (
        f"error: No labelled images were found in '{dataset}' (--format utkface)."
    )  # PNGs without UTKFace names
    only_age = tmp_path / "only_age.csv"
    pd.DataFrame({"path": ["a.png", "b.png"], "age": [3, 40]}).to_csv(only_age, index=False)
    assert _fail([*train, "--data", str(only_age), "--model", "fusion"], capsys) == (
        "error: --model fusion needs a gender label and at least one of age, race; the data has "
        "['age']. Use --model multi."
    )

    assert _fail(["predict", str(tmp_path / "none.pt"), labels], capsys) == (
        f"error: No such gar_sklearn file: '{tmp_path / 'none.pt'}'."
    )
    assert "is not a gar_sklearn file" in _fail(["predict", labels, labels], capsys)
    assert _fail(["predict", str(model_path), str(tmp_path / "ghost.png")], capsys) == (
        f"error: No such file or folder: '{tmp_path / 'ghost.png'}'."
    )
    (tmp_path / "empty").mkdir()
    assert "holds no images" in _fail(["predict", str(model_path), str(tmp_path / "empty")], capsys)

    preds = tmp_path / "p.csv"
    pd.DataFrame({"path": ["img/000.png"], "gender": ["Male"], "gender_proba": [0.9]}).to_csv(
        preds, index=False
    )
    assert _fail(["report", str(preds), "--truth", labels, "--by", "skin"], capsys) == (
        f"error: --by names ['skin'], which the truth file '{labels}' lacks; it has the columns "
        "['path', 'gender', 'age', 'race']."
    )
    assert "has no prediction columns" in _fail(["report", labels, "--truth", labels], capsys)


def test_unavailable_weights_are_a_clean_error(dataset, tmp_path, monkeypatch, capsys):
    from gar_sklearn.backbones import _weights

    def offline(member):
        raise _weights.WeightsUnavailableError(
            f"The pretrained weights {member} could not be downloaded."
        )

    monkeypatch.setattr(_weights, "_ensure_cached", offline)
    monkeypatch.setattr(_weights, "hub_checkpoint_path", lambda m: tmp_path / "absent.pth")
    line = _fail(
        [
            "train",
            "--data",
            str(dataset / "labels.csv"),
            "--format",
            "csv",
            "--backbone",
            "resnet18",
            "--out",
            str(tmp_path / "m.pt"),
        ],
        capsys,
    )
    assert (
        line
        == "error: The pretrained weights ResNet18_Weights.IMAGENET1K_V1 could not be downloaded."
    )


def test_unexpected_errors_name_their_type():
    assert _errors.describe(ValueError("bad value")) == "bad value"
    assert _errors.describe(TypeError("no")) == "TypeError: no (run with --debug for the traceback)"


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such gar_sklearn file"):
        main(["predict", str(tmp_path / "none.pt"), str(tmp_path), "--debug"])


# ---------------------------------------------------------------- train options
def test_utkface_folder_trains_a_fusion_model_on_a_subset(tmp_path, capsys):
    X, y = make_synthetic_faces(40, image_size=32, random_state=1)
    folder = tmp_path / "utk"
    folder.mkdir()
    for i, (image, row) in enumerate(zip(X, y.itertuples())):
        name = f"{row.age}_{int(row.gender == 'Female')}_{UTKFACE_RACES.index(row.race)}_2017011617452{i:04d}.jpg.chip.jpg"
        Image.fromarray(image).save(folder / name, "JPEG")
    out = tmp_path / "fusion.pt"
    assert (
        main(
            [
                "train",
                "--data",
                str(folder),
                "--format",
                "utkface",
                "--model",
                "fusion",
                "--n",
                "30",
                *TINY_ARGS,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    est = gar_sklearn.load(out)
    assert type(est).__name__ == "GenderFusionClassifier"
    assert est.attributes_ == ("gender", "age", "race")
    assert sum(est.subset_sizes_.values()) == 30
    printed = capsys.readouterr().out
    assert re.search(r"^shared network: \d+ epochs", printed, re.MULTILINE)


def test_group_labelled_ages_are_kept_as_classes(dataset, tmp_path):
    labels = pd.read_csv(dataset / "labels.csv")
    labels["path"] = [str(dataset / p) for p in labels.path]  # absolute paths work too
    labels["age"] = np.where(labels.age < 20, "0-19", "20+")
    table = tmp_path / "groups.csv"
    labels[["path", "age", "gender"]].to_csv(table, index=False)
    out = tmp_path / "m.pt"
    assert (
        main(
            ["train", "--data", str(table), "--format", "csv", *TINY_ARGS, "--out", str(out), "-q"]
        )
        == 0
    )
    est = gar_sklearn.load(out)
    assert est.attributes_ == ("gender", "age") and est.age_binner_ is None
    assert est.classes_[1].tolist() == ["0-19", "20+"]


def test_weight_averaging_and_calibration_reach_the_model(dataset, tmp_path):
    out = tmp_path / "m.pt"
    argv = ["train", "--data", str(dataset / "labels.csv"), "--format", "csv", *TINY_ARGS]
    argv += ["--weight-averaging", "EMA", "--ema-decay", "0.9", "--averaging-start", "1"]
    assert main([*argv, "--calibrate", "--out", str(out), "-q"]) == 0
    est = gar_sklearn.load(out)
    params = est.get_params()
    assert (params["weight_averaging"], params["ema_decay"], params["averaging_start"]) == (
        "ema",
        0.9,
        1,
    )
    assert params["calibrate"] and len(est.temperatures_) == len(est.attributes_)
    argv[argv.index("EMA")] = "none"
    assert main([*argv, "--no-calibrate", "--out", str(out), "--force", "-q"]) == 0
    est = gar_sklearn.load(out)
    assert est.weight_averaging is None and est.temperatures_ is None


def test_freeze_auto():
    from gar_sklearn.backbones import build_backbone

    freeze = _model.resolve_freeze
    assert freeze("auto", build_backbone("mobilenet_v2", weights=None), "DEFAULT") == 15
    assert freeze("auto", build_backbone("resnet18", weights=None), "DEFAULT") == 4
    assert freeze("auto", build_backbone("mobilenet_v2", weights=None), None) is None
    assert freeze(3, None, "DEFAULT") == 3


@pytest.mark.parametrize("freeze, p", [(12, 1.0), ("backbone", 1.0), (None, 0.5), (0, 0.5)])
def test_flip_augmentation_mirrors_the_second_cached_view_or_half_the_images(freeze, p):
    assert _model._augmenter("flip", freeze).p == p
    assert _model._augmenter("none", freeze) is None


# ---------------------------------------------------------------- predict
def test_predict_a_csv_of_paths_to_stdout(dataset, model_path, tmp_path, capsys):
    listing = tmp_path / "lists" / "some.csv"
    listing.parent.mkdir()
    relative = [os.path.relpath(dataset / "img" / f"{i:03d}.png", listing.parent) for i in (4, 2)]
    pd.DataFrame({"path": relative}).to_csv(listing, index=False)
    assert main(["predict", str(model_path), str(listing), "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    from io import StringIO

    frame = pd.read_csv(StringIO(out))
    assert frame.path.tolist() == [
        str(dataset / "img" / "004.png"),
        str(dataset / "img" / "002.png"),
    ]
    expected = gar_sklearn.load(model_path).predict_frame(frame.path.tolist(), proba=True)
    assert frame.race.tolist() == expected.race.tolist()
    assert (frame.status == "ok").all()


def test_predict_detect_one_row_per_face(model_path, tmp_path, capsys):
    pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    from gar_sklearn.preprocessing import FaceCropper

    photo, blank, broken = (
        tmp_path / "astronaut.jpg",
        tmp_path / "blank.png",
        tmp_path / "broken.jpg",
    )
    Image.fromarray(data.astronaut()).save(photo, "JPEG", quality=95)
    Image.new("RGB", (120, 90), (128, 128, 128)).save(blank)
    broken.write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "faces.csv"
    assert (
        main(
            [
                "predict",
                str(model_path),
                str(photo),
                str(blank),
                str(broken),
                "--detect",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"warning: No face found in 1 of 3 images: '{blank}'" in err
    assert f"Wrote predictions for 1 face in 3 images (1 unreadable, 1 no face) to {out}" in err
    assert re.search(r"warning: Skipped 1 unreadable images: .*broken\.jpg", err)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "face_index", "x", "y", "w", "h", *PRED_COLUMNS[1:]]
    assert frame.path.tolist() == [str(photo), str(blank), str(broken)]
    assert frame.status.tolist() == ["ok", "no face", "unreadable"]
    assert frame.loc[1:, ["face_index", "x", "gender", "age_years"]].isna().all(axis=None)
    # the box is the detector's, the prediction the model's on the detector's crop
    boxes = FaceCropper().detect([str(photo)])
    assert (
        frame.loc[0, ["x", "y", "w", "h"]].tolist() == boxes.loc[0, ["x", "y", "w", "h"]].tolist()
    )
    model = gar_sklearn.load(model_path)
    crops = FaceCropper(size=32).transform([str(photo)])
    expected = model.predict_frame(np.stack(crops), proba=True)
    assert frame.loc[0, "gender"] == expected.loc[0, "gender"]
    assert frame.loc[0, "race_proba"] == pytest.approx(expected.loc[0, "race_proba"], abs=1e-4)


# ---------------------------------------------------------------- report
def _write(target, **columns):
    pd.DataFrame(columns).to_csv(target, index=False)
    return str(target)


def test_report_numbers_against_a_hand_computed_example(tmp_path, capsys):
    truth = _write(
        tmp_path / "truth.csv",
        path=["a.png", "b.png", "c.png", "d.png"],
        gender=["Male", "Female", "Female", "Male"],
        age=[5, 25, 33, 71],
        race=["White", "White", "Black", "Black"],
    )
    preds = _write(
        tmp_path / "preds.csv",
        path=[str(tmp_path / n) for n in ("a.png", "b.png", "c.png", "d.png")],
        gender=["Male", "Male", "Female", "Female"],
        age=["3-9", "20-29", "20-29", "more than 70"],
        race=["White", "Black", "Black", "Black"],
        gender_proba=0.9,
        age_proba=0.5,
        race_proba=0.8,
        age_years=[6.0, 24.0, 30.0, 75.0],
        status="ok",
    )
    assert main(["report", preds, "--truth", truth, "--by", "race", "--min-group-size", "1"]) == 0
    out = capsys.readouterr().out
    # gender 2/4 right, age groups 3/4 (33 is in 30-39), race 3/4, MAE (1 + 1 + 3 + 4) / 4
    assert overall(out) == {
        "gender_accuracy": 0.5,
        "age_accuracy": 0.75,
        "race_accuracy": 0.75,
        "age_mae": 2.25,
        "n": 4.0,
    }
    by_race = out[out.index("By race") :].splitlines()
    assert by_race[2].split() == ["Black", "0.500", "0.500", "1.000", "3.500", "2"]
    assert by_race[3].split() == ["White", "0.500", "1.000", "0.500", "1.000", "2"]


def test_report_matches_by_file_name_and_skips_ambiguous_and_multi_face_images(tmp_path, capsys):
    truth = _write(
        tmp_path / "truth.csv",
        file=["img/a.png", "img/b.png", "img/c.png", "x/d.png"],
        gender=["Male", "Female", "Female", "Male"],
        race=["Asian", "White", "White", "Black"],
    )
    preds = _write(
        tmp_path / "preds.csv",
        path=[
            "elsewhere/a.png",
            "elsewhere/b.png",
            "elsewhere/b.png",
            "elsewhere/c.png",
            "one/d.png",
            "two/d.png",
            "elsewhere/e.png",
        ],
        face_index=[0, 0, 1, None, 0, 0, 0],
        gender=["Male", "Male", "Female", None, "Male", "Male", "Male"],
        gender_proba=0.9,
        status=["ok", "ok", "ok", "no face", "ok", "ok", "ok"],
    )
    assert main(["report", preds, "--truth", truth, "--by", "race", "--min-group-size", "1"]) == 0
    out, err = capsys.readouterr()
    # a.png matched by name; b.png has two faces; c.png none; d.png is two images; e.png unknown
    assert overall(out) == {"gender_accuracy": 1.0, "n": 1.0}
    assert (
        "1 of 6 predicted images compared; 3 images not in the truth file left out; 1 image "
        "without a prediction (unreadable or no face) left out; 1 image with several faces left out."
    ) in err


def test_report_without_any_match_is_an_error(tmp_path, capsys):
    truth = _write(tmp_path / "truth.csv", path=["a.png"], gender=["Male"])
    preds = _write(tmp_path / "preds.csv", path=["b.png"], gender=["Male"], gender_proba=0.9)
    assert _fail(["report", preds, "--truth", truth, "--by", "gender"], capsys).startswith(
        "error: No prediction matched a row of the truth file"
    )


@pytest.mark.parametrize(
    "age, groups, expected",
    [
        (5, ["0-9", "10-19", "20+"], "0-9"),
        (19, ["0-9", "10-19", "20+"], "10-19"),
        (64, ["0-9", "10-19", "20+"], "20+"),
        (71, ["60-69", "more than 70"], "more than 70"),
        (33, ["33", "34"], "33"),
        (95, ["0-9", "80-89"], _report.NO_GROUP),
    ],
)
def test_true_age_goes_to_the_predicted_group_holding_it(age, groups, expected):
    assert _report.age_group_of(age, groups) == expected


def test_true_ages_like_predictions():
    true, pred = _report.true_ages_like(
        pd.Series([2, 15, 80]),
        pd.Series(["0-2", "10-19", "10-19"]),
        pd.Series(["0-2", "10-19", "more than 70"]),
    )
    assert true.tolist() == ["0-2", "10-19", "more than 70"]  # FairFace's groups, all nine known
    assert pred.tolist() == ["0-2", "10-19", "10-19"]
    true, pred = _report.true_ages_like(
        pd.Series([30, 41]), pd.Series([30.0, 40.0]), pd.Series([30.0, 40.0])
    )
    assert true.tolist() == [30, 41] and pred.tolist() == [30, 40]  # exact ages on both sides


# ---------------------------------------------------------------- CLI spelling of library messages
@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "The backbone 'tiny' has no pretrained weights to download; use weights=None or "
            "weights=<path to a state_dict file>. Got weights='DEFAULT'.",
            "The backbone 'tiny' has no pretrained weights to download; use --weights none or "
            "--weights <path to a state_dict file>. Got --weights DEFAULT.",
        ),
        (
            "The 'age_sigma' parameter must be None or a positive float. Got -1 instead.",
            "--age-sigma must be none or a positive float. Got -1 instead.",
        ),
        (
            "2 of 5 groups have fewer than min_group_size=30 samples. Lower 'min_group_size' "
            "to include them.",
            "2 of 5 groups have fewer than --min-group-size 30 samples. Lower "
            "--min-group-size to include them.",
        ),
        (
            "Skipped 2 unreadable images (on_error='skip'): 'a.png', 'b.png'.",
            "Skipped 2 unreadable images: 'a.png', 'b.png'.",
        ),
        (
            "Training was interrupted after 3 of max_epochs=10 epochs.",
            "Training was interrupted after 3 of --epochs 10 epochs.",
        ),
        ("test_time_flip=True doubles the time.", "--test-time-flip doubles the time."),
        (
            "The 'n_samples' parameter must be at most the 5 valid images. Got 9 instead.",
            "--n must be at most the 5 valid images. Got 9 instead.",
        ),
        # left alone: names inside paths, parameters the command does not expose, plain words
        (
            "No such file '/runs/max_epochs=3/min_group_size.csv'.",
            "No such file '/runs/max_epochs=3/min_group_size.csv'.",
        ),
        (
            "At least 2 training images are needed; got n_samples=1.",
            "At least 2 training images are needed; got n_samples=1.",
        ),
        ("The weights None of the backbone.", "The weights None of the backbone."),
    ],
)
def test_library_messages_in_cli_spelling(message, expected):
    assert _errors.cli_spelling(message) == expected
    assert _errors.describe(ValueError(message)) == expected


def test_cli_spelling_in_real_errors_and_warnings(dataset, model_path, tmp_path, capsys):
    labels = str(dataset / "labels.csv")
    train = ["train", "--data", labels, "--format", "csv", "--out", str(tmp_path / "m.pt")]
    assert _fail([*train, "--backbone", "tiny"], capsys) == (
        "error: The backbone 'tiny' has no pretrained weights to download; use --weights none "
        "or --weights <path to a state_dict file>. Got --weights DEFAULT."
    )
    line = _fail([*train, *TINY_ARGS, "--freeze", "9"], capsys)
    assert line.startswith("error: --freeze must be none, 'backbone', an int in [0, 4] or one")
    assert line.endswith("Got 9 instead.")
    # the small-group warning of a report at the default --min-group-size 30
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(model_path), labels, "--out", str(preds), "-q"]) == 0
    assert main(["report", str(preds), "--truth", labels, "--by", "race"]) == 0
    err = capsys.readouterr().err
    assert "have fewer than --min-group-size 30 samples" in err
    assert "Lower --min-group-size to include them." in err
    assert "min_group_size" not in err
