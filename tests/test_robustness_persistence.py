"""Catalogue of bad inputs, persistence: well-formed files whose estimator lacks fields or
holds fields of the wrong kind are refused at load with a ValueError naming the file and
what is wrong, never an error from inside prediction.

Foreign, pickled, truncated and corrupted files, files naming other code and other format
versions are covered in tests/test_persistence.py; the disk in tests/test_robustness_disk.py.
"""

import json

import numpy as np
import pytest

import gar_sklearn
from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn._persistence import _load_payload, write_file
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY

SMALL = dict(TINY, image_size=16, max_epochs=1)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(40, image_size=16, gender_dependent=True, random_state=2)


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    MultiAttributeClassifier(**dict(SMALL, age_bins="fairface")).fit(*data).save(path)
    return path


@pytest.fixture(scope="module")
def saved_fusion(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("fusion") / "fusion.pt"
    GenderFusionClassifier(
        MultiAttributeClassifier(attributes=("gender",), **SMALL),
        MultiAttributeClassifier(attributes=("age", "race"), validation_fraction=0, **SMALL),
        random_state=0,
        strategy="separate",  # the write-up's design: a network per part
    ).fit(*data).save(path)
    return path


def rewritten(path, tmp_path, change):
    """A well-formed copy of the model file ``path`` (valid checksum) with its configuration
    changed by ``change(config)``."""
    payload = _load_payload(path)
    config = json.loads(payload["config"])
    change(config)
    out = tmp_path / "changed.pt"
    write_file(out, "model", config, payload["tensors"])
    return out


def drop(*keys):
    def change(config):
        entry = config["state"]
        for key in keys[:-1]:
            entry = entry[key]
        del entry[keys[-1]]

    return change


def put(value, *keys):
    def change(config):
        entry = config["state"]
        for key in keys[:-1]:
            entry = entry[key]
        entry[keys[-1]] = value

    return change


MISSING = [
    ("params",),
    ("fitted",),
    ("network",),
    ("fitted", "attributes_"),
    ("fitted", "classes_"),
    ("fitted", "_one_d"),
    ("fitted", "age_binner_"),
    ("fitted", "image_size_"),
    ("fitted", "n_frozen_stages_"),
    ("network", "state_dict"),
    ("network", "stem_frozen"),
    ("network", "channels_last"),
    ("network", "history"),
]


@pytest.mark.parametrize("keys", MISSING, ids=["/".join(k) for k in MISSING])
def test_a_model_lacking_a_field_is_refused_at_load_naming_it(saved, tmp_path, keys):
    path = rewritten(saved, tmp_path, drop(*keys))
    what = {"fitted": "the fitted attribute(s)", "network": "the network's entries"}
    kind = what[keys[0]] if len(keys) == 2 else "the entries"
    with pytest.raises(ValueError) as info:
        gar_sklearn.load(path)
    assert str(info.value) == (
        f"{str(path)!r} cannot be loaded: The MultiAttributeClassifier in the file lacks {kind} "
        f"['{keys[-1]}']: the file is damaged or was not written by estimator.save."
    )


MALFORMED = {
    "fitted attributes as a list": (
        put([1, 2], "fitted"),
        r"MultiAttributeClassifier in the file holds a list where the fitted attribute\(s\)",
    ),
    "classes_ as a number": (
        put(5, "fitted", "classes_"),
        r"MultiAttributeClassifier cannot be rebuilt from its data \(TypeError: 'int' object "
        r"is not iterable\)",
    ),
    "an unknown parameter": (
        put(1, "params", "colour"),
        r"cannot be rebuilt from its data \(TypeError: .*unexpected keyword argument 'colour'\)",
    ),
    "a network without weights": (
        put({}, "network", "state_dict"),
        r"The saved weights do not fit a 'tiny' network with heads of \[2, 9, 5\] classes",
    ),
    "a history that is not a list": (
        put(7, "network", "history"),
        r"cannot be rebuilt from its data \(TypeError",
    ),
    "heads for other classes": (
        put(["a", "b", "c"], "fitted", "classes_", 0),
        r"do not fit a 'tiny' network with heads of \[3, 9, 5\] classes",
    ),
}


@pytest.mark.parametrize("change, match", MALFORMED.values(), ids=list(MALFORMED))
def test_a_model_with_malformed_fields_is_refused_at_load(saved, tmp_path, change, match):
    path = rewritten(saved, tmp_path, change)
    with pytest.raises(ValueError, match=match) as info:
        gar_sklearn.load(path)
    assert str(info.value).startswith(f"{str(path)!r} cannot be loaded: ")


FUSION_MISSING = ["gender_estimator_", "specialists_", "classes_", "_gender_map", "_class_maps"]


@pytest.mark.parametrize("name", FUSION_MISSING)
def test_a_fusion_model_lacking_a_field_is_refused_at_load(saved_fusion, tmp_path, name):
    path = rewritten(saved_fusion, tmp_path, drop("fitted", name))
    with pytest.raises(
        ValueError,
        match=rf"GenderFusionClassifier in the file lacks the fitted attribute\(s\) \['{name}'\]",
    ):
        gar_sklearn.load(path)


def test_a_fusion_model_whose_part_lacks_a_field_is_refused(saved_fusion, tmp_path):
    def change(config):
        del config["state"]["fitted"]["specialists_"]["Male"]["state"]["fitted"]["classes_"]

    path = rewritten(saved_fusion, tmp_path, change)
    with pytest.raises(
        ValueError,
        match=r"MultiAttributeClassifier in the file lacks the fitted attribute\(s\) \['classes_'\]",
    ):
        gar_sklearn.load(path)


def test_the_complete_files_load_and_predict(saved, saved_fusion, data):
    X, _ = data
    for path in (saved, saved_fusion):
        proba = gar_sklearn.load(path).predict_proba(X[:4])
        for p in proba:
            np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


# ---------------------------------------------------------------- files and paths at load
def test_loading_a_folder_an_empty_file_or_zeros(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such gar_sklearn file: '.*'"):
        gar_sklearn.load(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"empty.pt' is not a gar_sklearn file, or it is corrupted"
    ):
        gar_sklearn.load(tmp_path / "empty.pt")
    (tmp_path / "zeros.pt").write_bytes(bytes(4096))
    with pytest.raises(
        ValueError, match=r"zeros.pt' is not a gar_sklearn file, or it is corrupted"
    ):
        gar_sklearn.load(tmp_path / "zeros.pt")


def test_loading_onto_a_device_this_machine_lacks(saved, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises((ValueError, RuntimeError), match=r"cuda"):
        gar_sklearn.load(saved, device="cuda")
    with pytest.raises(ValueError, match=r"'device'"):
        gar_sklearn.load(saved, device="tpu")


def test_saving_an_unfitted_fusion_estimator():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GenderFusionClassifier().save("never.pt")
