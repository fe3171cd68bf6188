"""save / load as data and tensors: round trips, safety, damaged and foreign files, pickle and joblib."""

import io
import os
import pickle
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier, _persistence
from gar_sklearn._persistence import register_persistence, write_checkpoint, write_file
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.backbones import TinyConvNet
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import TINY

SMALL = dict(TINY, image_size=16, max_epochs=2)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(48, image_size=16, random_state=11)


@pytest.fixture(scope="module")
def model(data):
    clf = MultiAttributeClassifier(
        age_bins="fairface",
        augment=FaceAugmenter(flip_p=0.3),
        num_workers=0,
        optimizer=torch.optim.SGD,
        **SMALL,
    )
    return clf.fit(*data)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.pt"
    model.save(path)
    return path


def assert_same_predictions(a, b, X):
    for p, q in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


# ---------------------------------------------------------------- round trips
def test_load_gives_identical_predictions_and_attributes(model, saved, data):
    X, _ = data
    loaded = gar_sklearn.load(saved)
    assert type(loaded) is MultiAttributeClassifier
    assert_same_predictions(model, loaded, X)
    pd.testing.assert_frame_equal(
        model.predict_frame(X, proba=True), loaded.predict_frame(X, proba=True)
    )
    assert loaded.attributes_ == ("gender", "age", "race")
    for a, b in zip(model.classes_, loaded.classes_):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
    np.testing.assert_array_equal(loaded.age_binner_.midpoints_, model.age_binner_.midpoints_)
    np.testing.assert_array_equal(loaded.age_binner_.edges_, model.age_binner_.edges_)
    for name in (
        "weights_",
        "stage_names_",
        "n_frozen_stages_",
        "image_size_",
        "used_feature_cache_",
    ):
        assert getattr(loaded, name) == getattr(model, name), name
    # the whole training history, batch records included
    assert list(loaded.history_) == list(model.history_)


def test_parameters_come_back_as_they_were(model, saved):
    loaded = gar_sklearn.load(saved)
    params, expected = loaded.get_params(deep=False), model.get_params(deep=False)
    assert isinstance(params["augment"], FaceAugmenter)
    assert params.pop("augment").get_params() == expected.pop("augment").get_params()
    assert params["optimizer"] is torch.optim.SGD  # a torch optimizer class is stored by name
    assert params == expected
    clone(loaded).set_params(max_epochs=1)  # usable for refitting


def test_one_dimensional_integer_labels_round_trip(tmp_path):
    X, y = make_synthetic_faces(30, image_size=16, random_state=1)
    ages = y.age.to_numpy()  # exact ages: integer classes
    clf = MultiAttributeClassifier(
        attributes=("age",), age_bins=None, **dict(SMALL, max_epochs=1)
    ).fit(X, ages)
    clf.save(tmp_path / "m.pt")
    loaded = gar_sklearn.load(tmp_path / "m.pt")
    assert loaded.classes_.dtype == clf.classes_.dtype and loaded.classes_.dtype.kind == "i"
    pred = loaded.predict(X)
    assert pred.shape == (30,) and pred.dtype == clf.predict(X).dtype
    np.testing.assert_array_equal(pred, clf.predict(X))


def test_load_needs_no_weights_file_and_keeps_the_random_state(tmp_path, data):
    X, y = data
    weights = tmp_path / "tiny.pth"
    torch.save(TinyConvNet().state_dict(), weights)
    clf = MultiAttributeClassifier(
        attributes=("gender",), **dict(SMALL, weights=str(weights), max_epochs=1)
    ).fit(X, y)
    clf.save(tmp_path / "m.pt")
    os.remove(weights)
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    loaded = gar_sklearn.load(tmp_path / "m.pt")
    assert torch.equal(torch.rand(2), expected)  # rebuilding the network drew no random numbers
    assert loaded.weights_ == str(weights)
    assert_same_predictions(clf, loaded, X)


def test_model_saved_from_cuda_loads_on_cpu(model, data, tmp_path, monkeypatch):
    # tensors are written from the CPU, so only device_ says "cuda"; a CPU-only machine maps it to the CPU
    gpu_like = pickle.loads(pickle.dumps(model))
    gpu_like.device_ = "cuda:1"
    gpu_like.save(tmp_path / "m.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = gar_sklearn.load(tmp_path / "m.pt")
    assert loaded.device_ == "cpu" and str(loaded.net_.device) == "cpu"
    assert_same_predictions(model, loaded, data[0])
    assert gar_sklearn.load(tmp_path / "m.pt", device="cpu").device_ == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        gar_sklearn.load(tmp_path / "m.pt", device="cuda")


def test_parameters_that_are_not_data_are_dropped_with_a_warning(data, tmp_path):
    class Mirror:
        def augment(self, image, rng):
            return image[:, ::-1]

    clf = MultiAttributeClassifier(
        attributes=("gender",), augment=Mirror(), num_workers=0, **dict(SMALL, max_epochs=1)
    ).fit(*data)
    with pytest.warns(
        UserWarning, match=r"not data and are not saved: \{'augment': '<.*Mirror object"
    ):
        clf.save(tmp_path / "m.pt")
    loaded = gar_sklearn.load(tmp_path / "m.pt")
    assert loaded.augment is None  # the default; augmenters never run at predict time
    assert_same_predictions(clf, loaded, data[0])


def test_save_before_fit():
    with pytest.raises(NotFittedError):
        MultiAttributeClassifier().save("never.pt")


# ---------------------------------------------------------------- composites through the registry
class Pair(BaseEstimator):
    """A stand-in for a meta-estimator such as GenderFusionClassifier."""

    def __init__(self, weight=0.5):
        self.weight = weight

    def fit(self, X, y):
        raise NotImplementedError  # fitted by hand below


def test_a_meta_estimator_saves_its_parts_through_the_registry(model, data, tmp_path, monkeypatch):
    monkeypatch.setattr(_persistence, "_REGISTRY", dict(_persistence._REGISTRY))

    def dump(est):
        return {"weight": est.weight, "parts_": est.parts_, "order_": ("a", "b")}

    def restore(state, device):
        est = Pair(weight=state["weight"])
        est.parts_, est.order_ = state["parts_"], state["order_"]
        return est

    register_persistence(Pair, dump, restore)
    pair = Pair(weight=0.25)
    pair.parts_ = {"a": model, "b": model}
    pair.order_ = ("a", "b")
    _persistence.save(pair, tmp_path / "pair.pt")
    loaded = gar_sklearn.load(tmp_path / "pair.pt")
    assert isinstance(loaded, Pair) and loaded.weight == 0.25 and loaded.order_ == ("a", "b")
    assert loaded.parts_["a"] is not loaded.parts_["b"]
    for part in loaded.parts_.values():
        assert_same_predictions(model, part, data[0])
    monkeypatch.delitem(_persistence._REGISTRY, _persistence._class_key(Pair))
    with pytest.raises(TypeError, match="Cannot save a Pair: its class is not registered"):
        _persistence.save(pair, tmp_path / "pair2.pt")


# ---------------------------------------------------------------- safety and bad files
class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_loading_never_runs_code_from_the_file(tmp_path):
    target = str(tmp_path / "created_by_the_file")
    path = tmp_path / "evil.pt"
    torch.save({"format": "gar_sklearn", "format_version": 1, "config": _Payload(target)}, path)
    with pytest.raises(ValueError, match="holds Python objects, not only data and tensors"):
        gar_sklearn.load(path)
    assert not os.path.exists(target)


@pytest.mark.parametrize(
    "config, match",
    [
        (
            {"__estimator__": "os:system", "state": {}},
            "only classes of gar_sklearn and torch.optim are loaded",
        ),
        (
            {"__object__": "builtins:eval", "params": {}, "fitted": {}},
            "only classes of gar_sklearn",
        ),
        ({"__class__": "torch.optim.lr_scheduler:LambdaLR"}, "which is not loaded"),
        (
            {"__estimator__": "gar_sklearn._nowhere:Model", "state": {}},
            "which this version of gar_sklearn does not have",
        ),
        ({"weights": 1}, "holds no estimator"),
    ],
)
def test_files_naming_other_code_are_refused(tmp_path, config, match):
    write_file(tmp_path / "m.pt", "model", config, {})
    with pytest.raises(ValueError, match=match):
        gar_sklearn.load(tmp_path / "m.pt")


def test_files_that_are_not_gar_sklearn_models(tmp_path, model):
    state = tmp_path / "state_dict.pt"
    torch.save(TinyConvNet().state_dict(), state)
    with pytest.raises(
        ValueError,
        match="is not a gar_sklearn file: it holds a dict without the gar_sklearn header",
    ):
        gar_sklearn.load(state)
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(model))
    with pytest.raises(
        ValueError,
        match="not a gar_sklearn file but a Python pickle.*unpickle only files you trust",
    ):
        gar_sklearn.load(pickled)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(
        ValueError, match="notes.txt' is not a gar_sklearn file, or it is corrupted or truncated"
    ):
        gar_sklearn.load(text)
    with pytest.raises(FileNotFoundError, match="No such gar_sklearn file"):
        gar_sklearn.load(tmp_path / "absent.pt")
    write_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    with pytest.raises(
        ValueError, match="holds a training checkpoint, not a fitted estimator.*checkpoint_dir"
    ):
        gar_sklearn.load(tmp_path / "last.pt")


def test_truncated_and_corrupted_files(saved, tmp_path):
    blob = saved.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        gar_sklearn.load(truncated)
    # flip one bit inside the largest tensor's bytes: only the checksum notices
    buf = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    offset = (
        info.header_offset
        + 30
        + len(info.filename.encode())
        + len(info.extra)
        + info.file_size // 2
    )
    buf[offset] ^= 0x10
    corrupted = tmp_path / "corrupted.pt"
    corrupted.write_bytes(bytes(buf))
    with pytest.raises(ValueError, match="corrupted: its content does not match the checksum"):
        gar_sklearn.load(corrupted)


def test_file_of_another_format_version(tmp_path, monkeypatch, model):
    monkeypatch.setattr(_persistence, "FORMAT_VERSION", 2)
    model.save(tmp_path / "future.pt")
    monkeypatch.undo()
    with pytest.raises(
        ValueError,
        match=rf"written by gar_sklearn {gar_sklearn.__version__} in file format "
        r"version 2; this gar_sklearn .* reads format version 1 only",
    ):
        gar_sklearn.load(tmp_path / "future.pt")


def test_saving_replaces_a_file_atomically(model, saved, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    model.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]


# ---------------------------------------------------------------- pickle and joblib
def test_joblib_and_pickle_keep_working(model, data, saved, tmp_path):
    X, _ = data
    joblib.dump(model, tmp_path / "m.joblib")
    assert_same_predictions(model, joblib.load(tmp_path / "m.joblib"), X)
    loaded = gar_sklearn.load(saved)
    again = pickle.loads(pickle.dumps(loaded))  # a loaded model pickles like a fitted one
    assert_same_predictions(model, again, X)


def test_gender_fusion_model_saves_and_loads(tmp_path):
    from gar_sklearn import GenderFusionClassifier

    X, y = make_synthetic_faces(100, image_size=16, gender_dependent=True, random_state=0)
    part = dict(TINY, image_size=16, max_epochs=1)
    model = GenderFusionClassifier(
        MultiAttributeClassifier(attributes=("gender",), **part),
        MultiAttributeClassifier(attributes=("age", "race"), age_bins="fairface", **part),
        routing="soft",
        random_state=0,
        strategy="separate",  # the write-up's design: a network per part
    ).fit(X, y)
    model.save(tmp_path / "fusion.gar")
    loaded = gar_sklearn.load(tmp_path / "fusion.gar")
    assert type(loaded) is GenderFusionClassifier and loaded.routing == "soft"
    assert set(loaded.specialists_) == {"Male", "Female"}
    for p, q in zip(model.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(model.predict_age(X), loaded.predict_age(X))
