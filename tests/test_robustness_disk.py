"""Catalogue of faults, the disk: a full disk, no permission, missing folders and killed
writers lose no file and name the path and the cause.

A full disk is simulated by making the writes fail with ENOSPC (the file object's
write, fsync, or torch.save itself), never by filling the real disk.
"""

import builtins
import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import gar_sklearn
from gar_sklearn import MultiAttributeClassifier, _persistence
from gar_sklearn._persistence import read_file

from .conftest import REPO, TINY

PARAMS = dict(TINY, image_size=16, batch_size=16, max_epochs=4, patience=3)


@pytest.fixture(scope="module")
def data():
    from gar_sklearn.datasets import make_synthetic_faces

    return make_synthetic_faces(48, image_size=16, random_state=8)


@pytest.fixture(scope="module")
def model(data):
    return MultiAttributeClassifier(**dict(PARAMS, max_epochs=1)).fit(*data)


class FailingFile:
    """A binary file whose writes fail with ``code`` once ``limit`` bytes are written."""

    def __init__(self, file, code, limit):
        self.file, self.code, self.limit, self.written = file, code, limit, 0

    def write(self, data):
        self.written += len(data)
        if self.written > self.limit:
            raise OSError(self.code, os.strerror(self.code))
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def fail_writes(monkeypatch, code=errno.ENOSPC, limit=1000):
    """Make every file that gar_sklearn's persistence opens for writing fail after ``limit`` bytes."""

    def fake_open(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return FailingFile(file, code, limit) if "w" in mode else file

    monkeypatch.setattr(_persistence, "open", fake_open, raising=False)


def fail_fsync(monkeypatch, code=errno.ENOSPC):
    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_persistence.os, "fsync", fsync)


def fail_torch_save(monkeypatch, code=errno.ENOSPC):
    def save(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_persistence.torch, "save", save)


FAULTS = {
    "full disk while writing": (fail_writes, errno.ENOSPC, "No space left on device", "ENOSPC"),
    "full disk at fsync": (fail_fsync, errno.ENOSPC, "No space left on device", "ENOSPC"),
    "full disk in torch.save": (fail_torch_save, errno.ENOSPC, "No space left on device", "ENOSPC"),
    "quota exceeded": (fail_writes, errno.EDQUOT, "Disk quota exceeded", "EDQUOT"),
    "read-only file system": (fail_writes, errno.EROFS, "Read-only file system", "EROFS"),
    "input/output error": (fail_fsync, errno.EIO, "Input/output error", "EIO"),
}


@pytest.mark.parametrize("fault, code, reason, name", FAULTS.values(), ids=list(FAULTS))
def test_saving_over_a_model_names_the_cause_and_keeps_the_old_file(
    model, tmp_path, monkeypatch, fault, code, reason, name
):
    path = tmp_path / "model.pt"
    model.save(path)
    before = path.read_bytes()
    fault(monkeypatch, code)
    with pytest.raises(OSError) as info:
        model.save(path)
    assert info.value.errno == code
    assert str(info.value) == (
        f"[Errno {code}] Could not write {str(path)!r}: {reason} ({name}); "
        "the file already there is unchanged."
    )
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.pt"]
    monkeypatch.undo()
    gar_sklearn.load(path)  # still a good model file


def test_saving_a_new_file_on_a_full_disk_leaves_nothing(model, tmp_path, monkeypatch):
    fail_writes(monkeypatch)
    with pytest.raises(OSError, match=r"No space left on device \(ENOSPC\); nothing was written"):
        model.save(tmp_path / "new.pt")
    assert os.listdir(tmp_path) == []


def test_saving_without_permission_is_a_permission_error_naming_the_file(
    model, tmp_path, monkeypatch
):
    fail_writes(monkeypatch, errno.EACCES, limit=0)
    with pytest.raises(PermissionError, match=r"Could not write '.*m.pt': Permission denied"):
        model.save(tmp_path / "m.pt")
    assert os.listdir(tmp_path) == []


def test_saving_into_a_missing_folder_or_onto_a_folder(model, tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"Could not write '.*nowhere/m.pt': the folder '.*nowhere' does"
    ):
        model.save(tmp_path / "nowhere" / "m.pt")
    (tmp_path / "models").mkdir()
    with pytest.raises(IsADirectoryError, match=r"'.*models': it is a folder; name a file in it"):
        model.save(tmp_path / "models")
    assert os.listdir(tmp_path) == ["models"] and os.listdir(tmp_path / "models") == []


def test_two_threads_saving_to_one_path_leave_one_complete_file(model, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "m.pt"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: model.save(path), range(8)))
    assert os.listdir(tmp_path) == ["m.pt"]
    gar_sklearn.load(path)


# ---------------------------------------------------------------- checkpoints on a full disk
def history_without_time(clf):
    return [{k: v for k, v in row.items() if k != "dur"} for row in clf.history_]


@pytest.fixture(scope="module")
def reference(data):
    return MultiAttributeClassifier(**PARAMS).fit(*data)


def fail_checkpoints_from(monkeypatch, epoch, files=("last.pt", "best.pt"), until=None):
    """Fail the writes of ``files`` with ENOSPC from ``epoch`` on (until ``until``)."""
    from gar_sklearn import _multi_attribute
    from gar_sklearn._training import _checkpoint

    def failing(write, epoch_of):
        def wrapper(path, *args, **kwargs):
            n = epoch_of(*args, **kwargs)
            if path.name in files and epoch <= n and (until is None or n < until):
                raise _persistence.write_failure(
                    path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                )
            return write(path, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        _checkpoint,
        "write_checkpoint",
        failing(_checkpoint.write_checkpoint, lambda state: state["epoch"]),
    )
    monkeypatch.setattr(
        _multi_attribute,
        "write_model_snapshot",
        failing(
            _multi_attribute.write_model_snapshot,
            lambda template, network: len(network["history"]),
        ),
    )


def test_a_full_disk_during_fit_keeps_training_and_the_last_good_checkpoint(
    data, reference, tmp_path, monkeypatch
):
    fail_checkpoints_from(monkeypatch, epoch=3)
    with pytest.warns(UserWarning) as record:
        clf = MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    messages = [str(w.message) for w in record if "checkpoint" in str(w.message)]
    assert len(messages) == 1  # once, not every epoch
    assert messages[0].startswith(
        f"Could not write the checkpoint of epoch 3 to {str(tmp_path / 'last.pt')!r}: "
        "[Errno 28] Could not write"
    )
    assert "No space left on device (ENOSPC)" in messages[0]
    assert f"{str(tmp_path / 'last.pt')!r} holds epoch 2, the last written" in messages[0]
    assert history_without_time(clf) == history_without_time(reference)
    state = read_file(tmp_path / "last.pt", "checkpoint")
    assert state["epoch"] == 2 and not state["finished"]
    monkeypatch.undo()
    # the next fit resumes from epoch 2 and ends where the uninterrupted one did
    again = MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    assert history_without_time(again) == history_without_time(reference)
    assert read_file(tmp_path / "last.pt", "checkpoint")["finished"]


def test_a_failed_best_model_write_warns_and_training_goes_on(
    data, reference, tmp_path, monkeypatch
):
    fail_checkpoints_from(monkeypatch, epoch=1, files=("best.pt",))
    with pytest.warns(UserWarning) as record:
        clf = MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    (message,) = [str(w.message) for w in record if "checkpoint" in str(w.message)]
    assert re.match(r"Could not write the checkpoint of epoch 1 to '.*best.pt'.*ENOSPC", message)
    assert message.endswith(
        "until a write succeeds, " + repr(str(tmp_path / "best.pt")) + " is not updated."
    )
    assert history_without_time(clf) == history_without_time(reference)
    assert not (tmp_path / "best.pt").exists()
    assert read_file(tmp_path / "last.pt", "checkpoint")["finished"]


def test_checkpoints_written_again_once_space_is_back(data, reference, tmp_path, monkeypatch):
    fail_checkpoints_from(monkeypatch, epoch=1, until=3)  # epochs 1 and 2 fail
    with pytest.warns(UserWarning, match="there is no checkpoint to resume from yet"):
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    state = read_file(tmp_path / "last.pt", "checkpoint")
    assert state["finished"] and state["epoch"] == len(reference.history_)


def test_checkpoint_dir_that_is_a_file_or_unwritable_fails_before_training(
    data, tmp_path, monkeypatch
):
    from gar_sklearn import _training

    epochs = []
    original = _training.MultiHeadNet.train_step
    monkeypatch.setattr(
        _training.MultiHeadNet,
        "train_step",
        lambda self, *a, **k: epochs.append(1) or original(self, *a, **k),
    )
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        ValueError, match=r"'checkpoint_dir' parameter must be a folder .*which is a file"
    ):
        MultiAttributeClassifier(checkpoint_dir=tmp_path / "file", **PARAMS).fit(*data)

    def makedirs(path, exist_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    from gar_sklearn._training import _checkpoint

    monkeypatch.setattr(_checkpoint.os, "makedirs", makedirs)
    with pytest.raises(PermissionError, match=r"Permission denied: '.*ckpt'"):
        MultiAttributeClassifier(checkpoint_dir=tmp_path / "ckpt", **PARAMS).fit(*data)
    assert epochs == []


# ---------------------------------------------------------------- temporaries of killed writers
def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    from gar_sklearn._persistence import remove_stale_temporaries

    target = tmp_path / "last.pt"
    dead = tmp_path / f".last.pt.{dead_pid()}.tmp"
    dead_new_style = tmp_path / f".last.pt.{dead_pid()}.3.tmp"
    live = tmp_path / f".last.pt.{os.getppid()}.tmp"  # our parent runs
    mine = tmp_path / f".last.pt.{os.getpid()}.0.tmp"
    others = [tmp_path / ".best.pt.1.tmp", tmp_path / ".last.pt.x.tmp", tmp_path / "a.tmp"]
    for path in [dead, dead_new_style, live, mine, *others]:
        path.write_bytes(b"partial")
    assert sorted(remove_stale_temporaries(target)) == sorted([dead, dead_new_style])
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [live, mine, *others])


KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    import torch
    from gar_sklearn import MultiAttributeClassifier
    from gar_sklearn import _persistence
    from gar_sklearn.datasets import make_synthetic_faces

    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if obj.get("kind") == "checkpoint":
            f.write(b"PK partial checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the write
        return real_save(obj, f, *args, **kwargs)

    _persistence.torch.save = save
    X, y = make_synthetic_faces(48, image_size=16, random_state=8)
    MultiAttributeClassifier(checkpoint_dir=sys.argv[1], **{params!r}).fit(X, y)
""")


def test_a_writer_killed_mid_write_leaves_a_temporary_that_the_next_fit_removes(data, tmp_path):
    script = KILLED_WRITE.replace("{params!r}", repr(PARAMS))
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    stale = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(stale) == 1 and not (tmp_path / "last.pt").exists()
    seen = []
    original = _persistence.write_file

    def spy(path, *args):
        seen.append(sorted(p for p in os.listdir(tmp_path) if p.endswith(".tmp")))
        return original(path, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_persistence, "write_file", spy)
        MultiAttributeClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    assert seen[0] == []  # removed when the fit started, before its first write
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_predictions_of_a_model_saved_after_a_failed_save_are_unchanged(
    model, data, tmp_path, monkeypatch
):
    path = tmp_path / "m.pt"
    model.save(path)
    fail_writes(monkeypatch)
    with pytest.raises(OSError), warnings.catch_warnings():
        model.save(path)
    monkeypatch.undo()
    loaded = gar_sklearn.load(path)
    for p, q in zip(model.predict_proba(data[0]), loaded.predict_proba(data[0])):
        np.testing.assert_array_equal(p, q)
    assert torch.equal(
        loaded.net_.module_.heads[0][-1].weight, model.net_.module_.heads[0][-1].weight
    )
