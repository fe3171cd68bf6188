"""The command never writes over its own inputs, and replaces a file of another kind only with
--force (train, predict, report, evaluate); files are written in one step."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gar_sklearn.cli import main
from gar_sklearn.cli._files import Inputs, check_output, file_kind, write_atomically
from gar_sklearn.datasets import make_synthetic_faces

TINY_ARGS = ["--backbone", "tiny", "--weights", "none", "--image-size", "16", "--epochs", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """12 synthetic faces, labels.csv beside them, and a model trained on them."""
    root = tmp_path_factory.mktemp("files")
    X, y = make_synthetic_faces(12, image_size=16, random_state=0)
    names = [f"{i:02d}.png" for i in range(len(X))]
    for name, image in zip(names, X):
        Image.fromarray(image).save(root / name)
    y.assign(path=names).to_csv(root / "labels.csv", index=False)
    model = root / "M.pt"
    args = ["train", "--data", str(root / "labels.csv"), "--format", "csv", *TINY_ARGS]
    assert main([*args, "--out", str(model), "-q"]) == 0
    return root


@pytest.fixture
def work(data, tmp_path):
    """A fresh copy of the data and model per test, so a test that fails cannot spoil others."""
    for item in data.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    return tmp_path


def _refused(argv, capsys, *fragments):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in line, line
    return line


def _snapshot(*paths):
    return {p: p.read_bytes() for p in paths}


# ---------------------------------------------------------------- an output that is an input
def test_predict_refuses_to_write_over_the_model(work, capsys):
    model, image = work / "M.pt", work / "00.png"
    before = _snapshot(model, image)
    line = _refused(["predict", str(model), str(image), "--out", str(model)], capsys, f"'{model}'")
    assert line == (
        f"error: --out '{model}' is the model file, an input of this command; it is never "
        "overwritten. Choose another output path."
    )
    assert _snapshot(model, image) == before


def test_predict_refuses_to_write_over_the_image_list_or_an_image(work, capsys):
    model, listing, image = work / "M.pt", work / "labels.csv", work / "03.png"
    before = _snapshot(model, listing, image)
    _refused(
        ["predict", str(model), str(listing), "--out", str(listing)],
        capsys,
        f"--out '{listing}' is the image list",
    )
    _refused(
        ["predict", str(model), str(work), "--out", str(image), "--force"],  # --force or not
        capsys,
        f"--out '{image}' is one of the images to predict",
    )
    assert _snapshot(model, listing, image) == before


def test_train_refuses_to_write_over_its_labels_or_images(work, capsys):
    labels = work / "labels.csv"
    before = _snapshot(labels, work / "05.png")
    train = ["train", "--data", str(labels), "--format", "csv", *TINY_ARGS, "-q"]
    _refused([*train, "--out", str(labels)], capsys, f"--out '{labels}' is the data file (--data)")
    _refused(
        [*train, "--out", str(work / "05.png"), "--force"],
        capsys,
        f"--out '{work / '05.png'}' is one of the images of --data",
    )
    assert _snapshot(labels, work / "05.png") == before
    from gar_sklearn.backbones import TinyConvNet

    weights = work / "w.pth"
    torch.save(TinyConvNet().state_dict(), weights)
    before = weights.read_bytes()
    argv = ["train", "--data", str(labels), "--format", "csv", "--backbone", "tiny"]
    _refused(
        [*argv, "--weights", str(weights), "--out", str(weights)],
        capsys,
        f"--out '{weights}' is the weights file (--weights)",
    )
    assert weights.read_bytes() == before


@pytest.mark.parametrize("link", [os.symlink, os.link], ids=["symbolic", "hard"])
def test_links_to_an_input_are_the_input(work, capsys, link):
    model, listing = work / "M.pt", work / "labels.csv"
    before = _snapshot(model, listing)
    link(model, work / "alias.pt")
    line = _refused(
        ["predict", str(model), str(work / "00.png"), "--out", str(work / "alias.pt"), "--force"],
        capsys,
    )
    assert line.startswith(f"error: --out '{work / 'alias.pt'}' is the model file ('{model}')")
    link(listing, work / "alias.csv")
    _refused(
        ["train", "--data", str(work / "alias.csv"), "--format", "csv", *TINY_ARGS]
        + ["--out", str(listing)],
        capsys,
        f"--out '{listing}' is the data file (--data) ('{work / 'alias.csv'}')",
    )
    assert _snapshot(model, listing) == before


def test_report_refuses_to_write_json_over_its_inputs(work, capsys):
    preds, labels = work / "preds.csv", work / "labels.csv"
    assert main(["predict", str(work / "M.pt"), str(labels), "--out", str(preds), "-q"]) == 0
    capsys.readouterr()
    before = _snapshot(preds, labels)
    report = ["report", str(preds), "--truth", str(labels), "--min-group-size", "1", "-q"]
    _refused(
        [*report, "--json", str(labels), "--force"], capsys, f"--json '{labels}' is the truth file"
    )
    _refused([*report, "--json", str(preds)], capsys, f"--json '{preds}' is the predictions file")
    assert _snapshot(preds, labels) == before


# ---------------------------------------------------------------- a file of another kind
def test_predict_replaces_a_model_by_a_csv_only_with_force(work, capsys):
    other = work / "other.pt"
    other.write_bytes((work / "M.pt").read_bytes())
    argv = ["predict", str(work / "M.pt"), str(work / "00.png"), "--out", str(other), "-q"]
    _refused(
        argv,
        capsys,
        f"--out '{other}' already exists and holds a gar_sklearn model file, not a CSV file; "
        "pass --force to replace it.",
    )
    assert file_kind(other) == "model"
    assert main([*argv, "--force"]) == 0
    assert pd.read_csv(other).path.tolist() == [str(work / "00.png")]


def test_train_replaces_a_csv_by_a_model_only_with_force_and_a_model_freely(work, capsys):
    import gar_sklearn

    table = work / "table.csv"
    pd.DataFrame({"a": [1]}).to_csv(table, index=False)
    train = ["train", "--data", str(work / "labels.csv"), "--format", "csv", *TINY_ARGS, "-q"]
    _refused(
        [*train, "--out", str(table)],
        capsys,
        f"--out '{table}' already exists and holds a CSV file, not a gar_sklearn model file",
    )
    assert table.read_text() == "a\n1\n"
    assert main([*train, "--out", str(table), "--force"]) == 0
    assert gar_sklearn.load(table).attributes_ == ("gender", "age", "race")
    assert main([*train, "--out", str(table)]) == 0  # a model over a model: no --force needed


def test_evaluate_checks_every_output_before_training(work, capsys):
    labels = work / "labels.csv"
    evaluate = ["evaluate", "--data", str(labels), "--format", "csv", *TINY_ARGS, "--no-plots"]
    out = work / "run"
    out.mkdir()
    os.symlink(labels, out / "split.csv")
    _refused(
        [*evaluate, "--out", str(out), "--force"],
        capsys,
        f"--out '{out / 'split.csv'}' is the data file (--data) ('{labels}')",
    )
    (out / "split.csv").unlink()
    (out / "model.pt").write_text("path\nx.png\n")
    _refused([*evaluate, "--out", str(out)], capsys, "pass --force")
    assert sorted(os.listdir(out)) == ["model.pt"]  # refused before anything was written
    _refused([*evaluate, "--out", str(labels)], capsys, f"--out '{labels}' is a file")


def test_an_output_folder_or_a_plots_file_is_refused(work, capsys):
    _refused(
        ["predict", str(work / "M.pt"), str(work / "00.png"), "--out", str(work)],
        capsys,
        f"--out '{work}' is a folder",
    )
    labels = str(work / "labels.csv")
    _refused(
        ["report", labels, "--truth", labels, "--plots", labels],
        capsys,
        f"--plots '{labels}' is a file",
    )


# ---------------------------------------------------------------- the helpers
def test_file_kinds(work, tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pth")
    (tmp_path / "r.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "noext").write_text('{"a": 1}')
    (tmp_path / "r.txt").write_text("Group report: a, b\n")
    (tmp_path / "table").write_text("path,gender\na.png,Male\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blob").write_bytes(bytes(range(256)))
    kinds = {
        work / "M.pt": "model",
        tmp_path / "state.pth": "archive",
        work / "00.png": "image",
        work / "labels.csv": "csv",
        tmp_path / "table": "csv",
        tmp_path / "r.json": "json",
        tmp_path / "noext": "json",
        tmp_path / "r.txt": "text",
        tmp_path / "empty.csv": "empty",
        tmp_path / "blob": "binary",
    }
    assert {p: file_kind(p) for p in kinds} == kinds


def test_an_empty_file_or_a_dangling_link_may_be_replaced(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for name in ("empty", "dangling", "absent"):
        check_output(tmp_path / name, "model", Inputs(), force=False)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "preds.csv"
    target.write_text("old")

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["preds.csv"]
    write_atomically(target, lambda tmp: np.savetxt(tmp, [1.0]))
    assert float(target.read_text()) == 1.0 and os.listdir(tmp_path) == ["preds.csv"]
