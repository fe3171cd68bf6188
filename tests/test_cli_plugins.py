"""--backbone takes any name the library knows; --plugin modules and 'gar_sklearn.backbones'
entry points register more before a model is built or loaded."""

import sys
import uuid

import pandas as pd
import pytest
from PIL import Image

import gar_sklearn
from gar_sklearn.cli import build_parser, main
from gar_sklearn.datasets import make_synthetic_faces

SMALL = ["--weights", "none", "--image-size", "16", "--epochs", "1", "-q"]
PLUGIN = """
from gar_sklearn.backbones import TinyConvNet, register_backbone

register_backbone({name!r}, build=TinyConvNet, split=TinyConvNet.split)
"""


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    X, y = make_synthetic_faces(12, image_size=16, random_state=0)
    names = [f"{i:02d}.png" for i in range(len(X))]
    for name, image in zip(names, X):
        Image.fromarray(image).save(root / name)
    y.assign(path=names).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def _name():
    return f"plugin_tiny_{uuid.uuid4().hex[:8]}"  # the registry is per process: a fresh name


def _train(labels, backbone, out, *extra):
    data = ["--data", str(labels), "--format", "csv"]
    return main(["train", *data, "--backbone", backbone, *SMALL, "--out", str(out), *extra])


def _last_error(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_the_parser_takes_any_backbone_name():
    for name in ("timm/legacy_xception.tf_in1k", "timm:resnet18", "my_registered_net"):
        args = build_parser().parse_args(
            ["train", "--data", "d", "--format", "csv"] + ["--backbone", name, "--out", "m"]
        )
        assert args.backbone == name


def test_an_unknown_backbone_is_the_librarys_error_in_cli_spelling(labels, tmp_path, capsys):
    assert _train(labels, "timm:no_such_net_xyz", tmp_path / "m.pt") == 1
    line = _last_error(capsys)
    assert line.startswith("error: ") and "'timm:no_such_net_xyz'" in line
    assert "'backbone' parameter" not in line and "Traceback" not in line


def test_a_plugin_file_registers_a_backbone_for_train_and_predict(labels, tmp_path, capsys):
    name = _name()
    plugin = tmp_path / "my_backbones.py"
    plugin.write_text(PLUGIN.format(name=name))
    model = tmp_path / "m.pt"
    assert _train(labels, name, model) == 1  # not registered yet
    assert f"'{name}'" in _last_error(capsys)
    assert _train(labels, name, model, "--plugin", str(plugin)) == 0
    assert gar_sklearn.load(model).backbone == name
    # predict imports the plugins before it loads the model
    predict = ["predict", str(model), str(labels), "--out", str(tmp_path / "p.csv"), "-q"]
    (tmp_path / "loud.py").write_text("raise RuntimeError('plugin ran')")
    assert main([*predict, "--plugin", str(tmp_path / "loud.py")]) == 1
    assert _last_error(capsys) == (
        f"error: --plugin '{tmp_path / 'loud.py'}' failed while being imported: "
        "RuntimeError: plugin ran"
    )
    assert not (tmp_path / "p.csv").exists()
    assert main([*predict, "--plugin", str(plugin)]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 12


def test_a_plugin_module_by_name_from_the_current_folder(labels, tmp_path, monkeypatch, capsys):
    name = _name()
    module = f"plug_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(name=name))
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    assert _train(labels, name, tmp_path / "m.pt", "--plugin", module) == 0
    assert sys.path == path_before


@pytest.mark.parametrize(
    "content, plugin, message",
    [
        (
            None,
            "no_such_plugin_module_xyz",
            "--plugin 'no_such_plugin_module_xyz': no module named",
        ),
        (None, "missing/plugin.py", "--plugin 'missing/plugin.py': no such file."),
        (
            "raise RuntimeError('boom')",
            "{dir}/broken.py",
            "failed while being imported: RuntimeError: boom",
        ),
        (
            "import no_such_dependency_xyz",
            "{dir}/needs.py",
            "failed while being imported: ModuleNotFoundError: No module named",
        ),
    ],
)
def test_plugin_errors(labels, tmp_path, capsys, content, plugin, message):
    plugin = plugin.format(dir=tmp_path)
    if content is not None:
        with open(plugin, "w") as f:
            f.write(content)
    assert _train(labels, "tiny", tmp_path / "m.pt", "--plugin", plugin) == 1
    assert message in _last_error(capsys)
    assert not (tmp_path / "m.pt").exists()


def _distribution(folder, entries):
    """An installed distribution in ``folder`` declaring ``entries`` as backbone plugins."""
    info = folder / "gar_plugins_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gar-plugins-demo\nVersion: 1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[gar_sklearn.backbones]\n{lines}\n")


def test_entry_points_register_backbones_and_a_broken_one_warns(
    labels, tmp_path, monkeypatch, capsys
):
    by_import, by_call = _name(), _name()
    module = f"demo_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        PLUGIN.format(name=by_import)
        + f"\n\ndef register():\n    register_backbone({by_call!r}, build=TinyConvNet, "
        "split=TinyConvNet.split)\n"
    )
    entries = {"mod": module, "func": f"{module}:register", "broken": "no_such_module_xyz"}
    _distribution(tmp_path, entries)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _train(labels, by_import, tmp_path / "a.pt") == 0
    assert _train(labels, by_call, tmp_path / "b.pt") == 0
    err = capsys.readouterr().err
    assert (
        "warning: The backbone plugin 'broken' (no_such_module_xyz, entry point group "
        "'gar_sklearn.backbones') could not be loaded: ModuleNotFoundError" in err
    )
    assert gar_sklearn.load(tmp_path / "b.pt").backbone == by_call
