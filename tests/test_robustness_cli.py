"""Catalogue of bad inputs and faults, the command: each ends with one ``error:`` line in
the command's spelling and exit code 1 (2 for bad arguments, 130 for Ctrl-C), never a
traceback, and never a lost or overwritten file.

Usage errors, missing and unreadable data files, unknown backbones and weights, and output
files that are inputs are covered in tests/test_cli.py and tests/test_cli_files.py; an
interrupted fusion fit in tests/test_robustness_interruption.py.
"""

import errno
import json
import os
import signal

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import gar_sklearn
from gar_sklearn import _persistence
from gar_sklearn.cli import main
from gar_sklearn.datasets import make_synthetic_faces

TRAIN = ["--format", "csv", "--backbone", "tiny", "--weights", "none", "--image-size", "16"]
TRAIN += ["--epochs", "1", "-q"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder of 40 faces, labels.csv, and a model trained on them."""
    root = tmp_path_factory.mktemp("cli")
    X, y = make_synthetic_faces(40, image_size=16, gender_dependent=True, random_state=3)
    names = []
    for i, image in enumerate(X):
        names.append(f"{i}.png")
        Image.fromarray(image).save(root / names[-1])
    pd.DataFrame({"path": names, **{c: y[c] for c in y.columns}}).to_csv(
        root / "labels.csv", index=False
    )
    assert (
        main(["train", "--data", str(root / "labels.csv"), "--out", str(root / "m.pt"), *TRAIN])
        == 0
    )
    return root


def failing(argv, capsys, code=1):
    """The command's last stderr line, after checking the exit code and that no traceback shows."""
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def labels_with(work, tmp_path, change, name="changed.csv"):
    table = pd.read_csv(work / "labels.csv")
    table["path"] = [str(work / p) for p in table["path"]]
    out = tmp_path / name
    change(table).to_csv(out, index=False)
    return out


# ---------------------------------------------------------------- bad labels and settings
def with_infinite_age(table):
    table["age"] = table["age"].astype(float)
    table.loc[3, "age"] = np.inf
    return table


@pytest.mark.parametrize(
    "change, options, message",
    [
        (
            with_infinite_age,
            [],
            "error: y['age'] cannot be binned with --age-bins fairface: Ages must be finite "
            "numbers; got inf at positions [3].",
        ),
        (
            lambda t: t.assign(age=-t["age"] - 1),
            [],
            "error: y['age'] cannot be binned with --age-bins fairface: Ages must be "
            "non-negative; got",
        ),
        (
            lambda t: t.assign(gender="Male"),
            ["--model", "fusion"],
            "error: --model fusion needs exactly two gender values; the data has ['Male'].",
        ),
        (lambda t: t, ["--image-size", "100000"], "error: --image-size must be at most 8192"),
        (lambda t: t, ["--device", "tpu"], "error: --device must be 'auto', 'cpu', 'cuda'"),
    ],
    ids=["infinite age", "negative ages", "one gender for fusion", "huge image size", "device"],
)
def test_bad_labels_and_settings_in_train(work, tmp_path, capsys, change, options, message):
    data = labels_with(work, tmp_path, change)
    out = tmp_path / "model.pt"
    line = failing(["train", "--data", data, "--out", out, *TRAIN, *options], capsys)
    assert line.startswith(message)
    assert not out.exists()


def test_a_header_naming_a_column_twice_is_refused(work, tmp_path, capsys):
    text = (
        (work / "labels.csv").read_text().replace("path,gender,age,race", "path,gender,age,gender")
    )
    (tmp_path / "dup.csv").write_text(text)
    assert failing(
        ["train", "--data", tmp_path / "dup.csv", "--out", tmp_path / "m.pt", *TRAIN], capsys
    ) == (
        f"error: The training data file '{tmp_path / 'dup.csv'}' names the column(s) ['gender'] "
        "more than once in its header; rename or drop the duplicates."
    )


def test_a_header_only_labels_file(work, tmp_path, capsys):
    (tmp_path / "header.csv").write_text("path,gender,age,race\n")
    assert (
        failing(
            ["train", "--data", tmp_path / "header.csv", "--out", tmp_path / "m.pt", *TRAIN], capsys
        )
        == f"error: No labelled images were found in '{tmp_path / 'header.csv'}' (--format csv)."
    )


def test_corrupt_images_in_the_training_data_are_skipped_with_a_warning(work, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    data = labels_with(
        work,
        tmp_path,
        lambda t: pd.concat([t, t.iloc[:1].assign(path=str(tmp_path / "broken.png"))]),
    )
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.pt"), *TRAIN]) == 0
    err = capsys.readouterr().err
    assert f"warning: Skipped 1 unreadable images: '{tmp_path / 'broken.png'}'." in err
    assert gar_sklearn.load(tmp_path / "m.pt").predict([str(work / "0.png")]).shape == (1, 3)


# ---------------------------------------------------------------- bad model files
def test_predict_with_a_text_file_as_the_model(work, capsys):
    assert failing(["predict", work / "labels.csv", work / "0.png"], capsys) == (
        f"error: '{work / 'labels.csv'}' is not a gar_sklearn file, or it is corrupted or "
        "truncated (it is not a zip archive, as gar_sklearn files are)."
    )


def test_predict_with_a_model_lacking_a_field(work, tmp_path, capsys):
    payload = _persistence._load_payload(work / "m.pt")
    config = json.loads(payload["config"])
    del config["state"]["fitted"]["classes_"]
    _persistence.write_file(tmp_path / "damaged.pt", "model", config, payload["tensors"])
    line = failing(["predict", tmp_path / "damaged.pt", work / "0.png"], capsys)
    assert line == (
        f"error: '{tmp_path / 'damaged.pt'}' cannot be loaded: The MultiAttributeClassifier in "
        "the file lacks the fitted attribute(s) ['classes_']: the file is damaged or was not "
        "written by estimator.save."
    )


def test_predict_with_a_training_checkpoint_as_the_model(work, tmp_path, capsys):
    _persistence.write_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    line = failing(["predict", tmp_path / "last.pt", work / "0.png"], capsys)
    assert "holds a training checkpoint, not a fitted estimator" in line


# ---------------------------------------------------------------- the disk
def full_disk(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_persistence.os, "fsync", fsync)


def test_train_on_a_full_disk_names_the_cause_and_keeps_the_old_model(
    work, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "m.pt"
    out.write_bytes((work / "m.pt").read_bytes())
    before = out.read_bytes()
    full_disk(monkeypatch)
    line = failing(["train", "--data", work / "labels.csv", "--out", out, *TRAIN], capsys)
    assert line == (
        f"error: [Errno 28] Could not write '{out}': No space left on device (ENOSPC); the "
        "file already there is unchanged."
    )
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]


def test_predict_on_a_full_disk_names_the_output_not_a_temporary_file(
    work, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "preds.csv"
    out.write_text("path,gender\nold.png,Male\n")
    real_to_csv = pd.DataFrame.to_csv

    def to_csv(self, path, *args, **kwargs):
        real_to_csv(self, path, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    line = failing(["predict", work / "m.pt", work / "0.png", "--out", out], capsys)
    assert line == (
        f"error: [Errno 28] Could not write '{out}': No space left on device (ENOSPC); the "
        "file already there is unchanged."
    )
    assert out.read_text() == "path,gender\nold.png,Male\n" and os.listdir(tmp_path) == [
        "preds.csv"
    ]


def test_a_stale_temporary_of_a_killed_predict_is_removed_by_the_next(work, tmp_path, capsys):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".preds.csv.{dead.pid}.tmp"
    stale.write_text("half")
    out = tmp_path / "preds.csv"
    assert main(["predict", str(work / "m.pt"), str(work / "0.png"), "--out", str(out)]) == 0
    assert os.listdir(tmp_path) == ["preds.csv"]


# ---------------------------------------------------------------- Ctrl-C
def test_ctrl_c_while_predicting_exits_130_and_writes_nothing(work, tmp_path, monkeypatch, capsys):
    from gar_sklearn import MultiAttributeClassifier

    def interrupted(self, *args):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(MultiAttributeClassifier, "_batch_probas", interrupted)
    out = tmp_path / "preds.csv"
    line = failing(["predict", work / "m.pt", work / "0.png", "--out", out], capsys, code=130)
    assert line == "error: interrupted"
    assert os.listdir(tmp_path) == []
