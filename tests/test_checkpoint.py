"""Interrupted training: checkpoints, resuming a killed fit exactly, KeyboardInterrupt."""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.utils.validation import check_is_fitted

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier, _training
from gar_sklearn._persistence import read_file
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import REPO, TINY

# A fit that exercises every piece of training state: dropout (torch's random
# state), shuffling, a plateau scheduler, early stopping with its best weights.
PARAMS = dict(TINY, image_size=16, batch_size=16, max_epochs=5, patience=3)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(60, image_size=16, random_state=3)


@pytest.fixture(scope="module")
def reference(data):
    """The uninterrupted fit."""
    return MultiAttributeClassifier(**PARAMS).fit(*data)


def history_without_time(clf):
    """The history less the epochs' durations, the only wall-clock values in it."""
    return [{k: v for k, v in row.items() if k != "dur"} for row in clf.history_]


def assert_same_fit(a, b, X):
    assert history_without_time(a) == history_without_time(b)
    sa, sb = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    for p, q in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(p, q)


def interrupt_at(monkeypatch, epoch, exc=KeyboardInterrupt):
    """Raise ``exc`` in the second training batch of ``epoch`` (1-based)."""
    original = _training.MultiHeadNet.train_step

    def train_step(self, batch, **kwargs):
        if len(self.history) == epoch and len(self.history[-1]["batches"]) == 1:
            raise exc()
        return original(self, batch, **kwargs)

    monkeypatch.setattr(_training.MultiHeadNet, "train_step", train_step)


KILLED_FIT = textwrap.dedent("""
    import os, sys
    import torch
    from gar_sklearn import MultiAttributeClassifier, _training

    torch.set_num_threads(int(sys.argv[2]))  # as in the test process: the float rounding depends on it
    from gar_sklearn.datasets import make_synthetic_faces

    original = _training.MultiHeadNet.train_step

    def train_step(self, batch, **kwargs):
        # killed in the middle of epoch 3: no Python clean-up, no on_train_end
        if len(self.history) == 3 and len(self.history[-1]["batches"]) == 1:
            os._exit(17)
        return original(self, batch, **kwargs)

    _training.MultiHeadNet.train_step = train_step
    X, y = make_synthetic_faces(60, image_size=16, random_state=3)
    MultiAttributeClassifier(checkpoint_dir=sys.argv[1], **{params!r}).fit(X, y)
""")


def test_fit_killed_in_a_subprocess_resumes_to_the_uninterrupted_result(data, reference, tmp_path):
    folder = tmp_path / "ckpt"
    script = KILLED_FIT.replace("{params!r}", repr(PARAMS))
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(torch.get_num_threads())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 17, done.stderr[-2000:]
    state = read_file(folder / "last.pt", "checkpoint")
    assert state["epoch"] == 2 and not state["finished"]  # the last complete epoch
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]

    resumed = MultiAttributeClassifier(checkpoint_dir=str(folder), **PARAMS).fit(*data)
    assert_same_fit(resumed, reference, data[0])
    # epochs 1-2 come from the killed process: their durations were restored, not re-measured
    assert resumed.history_[:2, "dur"] == [row["dur"] for row in state["history"]]


def test_keyboard_interrupt_keeps_the_best_weights_so_far(data, monkeypatch):
    snapshots = {}
    original = _training.HeadAccuracy.on_epoch_end

    def spy(self, net, **kwargs):
        original(self, net, **kwargs)
        snapshots[len(net.history)] = {k: v.clone() for k, v in net.module_.state_dict().items()}

    monkeypatch.setattr(_training.HeadAccuracy, "on_epoch_end", spy)
    interrupt_at(monkeypatch, epoch=4)
    params = dict(PARAMS, max_epochs=6, lr=0.05)
    with pytest.warns(
        UserWarning,
        match=r"interrupted \(KeyboardInterrupt\) after 3 of max_epochs=6 "
        r"epochs; the estimator keeps the weights of epoch (\d)",
    ) as rec:
        clf = MultiAttributeClassifier(**params).fit(*data)
    message = next(str(w.message) for w in rec if "interrupted" in str(w.message))
    best = int(re.search(r"weights of epoch (\d)", message).group(1))

    # fitted, with every fitted attribute, and the incomplete 4th epoch out of the history
    check_is_fitted(clf)
    for name in (
        "attributes_",
        "classes_",
        "age_binner_",
        "device_",
        "weights_",
        "stage_names_",
        "n_frozen_stages_",
        "used_feature_cache_",
        "image_size_",
    ):
        assert hasattr(clf, name), name
    assert len(clf.history_) == 3 and all("dur" in row for row in clf.history_)
    losses = clf.history_[:, "valid_loss"]
    assert losses[best - 1] == min(losses)
    state = clf.net_.module_.state_dict()
    for key, value in state.items():
        assert torch.equal(value, snapshots[best][key]), key
    if best != 3:  # the weights are not simply those of the last epoch
        assert any(not torch.equal(state[k], snapshots[3][k]) for k in state)
    pred = clf.predict(data[0][:5])
    assert pred.shape == (5, 3) and all(v is not None for v in pred.ravel())


def test_interrupted_fit_resumes_in_process_with_augmentation_and_one_cycle(
    data, monkeypatch, tmp_path
):
    params = dict(
        PARAMS,
        lr_schedule="onecycle",
        augment=FaceAugmenter(),
        max_epochs=4,
        patience=None,
        num_workers=0,
    )
    expected = MultiAttributeClassifier(**params).fit(*data)
    interrupt_at(monkeypatch, epoch=3)
    with pytest.warns(UserWarning, match="Fit again with checkpoint_dir=.* to resume"):
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*data)
    monkeypatch.undo()
    resumed = MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*data)
    assert_same_fit(resumed, expected, data[0])


def test_heads_on_cached_views_resume_exactly_with_the_fused_optimizer(data, monkeypatch, tmp_path):
    # heads only, from two cached views per image, AdamW (torch's fused kernel) and dropout:
    # the optimizer state, the view drawn per image and epoch and the dropout masks all resume
    from gar_sklearn.augmentation import RandomFlip

    params = dict(
        PARAMS,
        freeze="backbone",
        augment=RandomFlip(p=0.5),
        cache_views=2,
        optimizer="adamw",
        head_hidden_units=8,
        dropout=0.3,
        max_epochs=4,
        patience=None,
    )
    expected = MultiAttributeClassifier(**params).fit(*data)
    assert expected.used_feature_cache_
    interrupt_at(monkeypatch, epoch=3)
    with pytest.warns(UserWarning, match="Fit again with checkpoint_dir=.* to resume"):
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*data)
    monkeypatch.undo()
    resumed = MultiAttributeClassifier(checkpoint_dir=tmp_path, **params).fit(*data)
    assert_same_fit(resumed, expected, data[0])


def test_finished_checkpoint_is_restored_without_training(data, reference, tmp_path, monkeypatch):
    first = MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    assert_same_fit(first, reference, data[0])
    assert read_file(tmp_path / "last.pt", "checkpoint")["finished"]
    interrupt_at(monkeypatch, epoch=1, exc=AssertionError)  # any training step would fail
    again = MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    assert_same_fit(again, reference, data[0])


def test_best_checkpoint_is_a_model_file_of_the_best_epoch(data, reference, tmp_path):
    MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    best = gar_sklearn.load(tmp_path / "best.pt")
    losses = reference.history_[:, "valid_loss"]
    assert len(best.history_) == int(np.argmin(losses)) + 1
    # early stopping restored the best weights at the end: the same network
    for p, q in zip(best.predict_proba(data[0]), reference.predict_proba(data[0])):
        np.testing.assert_array_equal(p, q)


def test_checkpoint_of_another_fit_is_refused(data, tmp_path):
    X, y = data
    MultiAttributeClassifier(checkpoint_dir=tmp_path, **dict(PARAMS, max_epochs=1)).fit(X, y)
    other_params = MultiAttributeClassifier(
        checkpoint_dir=tmp_path, **dict(PARAMS, max_epochs=1, lr=0.02)
    )
    with pytest.raises(
        ValueError, match=r"holds a checkpoint of another fit.*lr=0\.01 there, 0\.02 here"
    ):
        other_params.fit(X, y)
    other_data = MultiAttributeClassifier(checkpoint_dir=tmp_path, **dict(PARAMS, max_epochs=1))
    X2 = X.copy()
    X2[0, 0, 0, 0] ^= 1
    with pytest.raises(
        ValueError, match="another fit, which is not resumed: the images or labels differ"
    ):
        other_data.fit(X2, y)
    with pytest.raises(ValueError, match="the images or labels differ"):
        other_data.fit(X, y.assign(race=y.race[::-1].to_numpy()))
    # settings that leave the training unchanged do not count
    MultiAttributeClassifier(
        checkpoint_dir=tmp_path,
        **dict(PARAMS, max_epochs=1, verbose=0, num_workers=0, image_cache=False),
    ).fit(X, y)


def test_damaged_checkpoint_is_reported(data, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(
        ValueError, match=r"last.pt' cannot be used to resume: .*corrupted or truncated.*Delete it"
    ):
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **dict(PARAMS, max_epochs=1)).fit(*data)


def test_checkpoint_dir_must_be_a_path(data):
    with pytest.raises(
        ValueError, match=r"'checkpoint_dir' parameter must be None or a folder path. Got 3 instead"
    ):
        MultiAttributeClassifier(checkpoint_dir=3, **PARAMS).fit(*data)
