"""The example scripts run end to end on a few real faces (skipped where UTKFace is absent)."""

import runpy
import sys

import pytest

from .conftest import REPO, UTKFACE, requires_utkface


def run_script(name, *args):
    argv = sys.argv
    sys.argv = [name, *map(str, args)]
    try:
        return runpy.run_path(str(REPO / "examples" / name), run_name="example")["main"]()
    finally:
        sys.argv = argv


@pytest.mark.realdata
@requires_utkface
def test_train_utkface_example(capsys):
    clf = run_script(
        "train_utkface.py",
        UTKFACE,
        "--n",
        120,
        "--image-size",
        32,
        "--epochs",
        1,
        "--weights",
        "none",
        "--freeze",
        15,
    )
    out = capsys.readouterr().out
    for line in (
        "gender accuracy",
        "race accuracy",
        "age (nine groups) accuracy",
        "age MAE",
        "wall time",
    ):
        assert line in out
    assert (
        clf.used_feature_cache_ and clf.classes_[1].dtype.kind in "iu"
    )  # exact ages, read out in groups
