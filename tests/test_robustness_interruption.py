"""Catalogue of faults, interruption: Ctrl-C and errors in the middle of work stop it
cleanly, keep what the documentation says is kept, leave no worker process behind, and
are reported by the command with exit code 130.

Resuming a killed or interrupted MultiAttributeClassifier fit is covered in
tests/test_checkpoint.py; killed checkpoint writes in tests/test_robustness_disk.py.
"""

import gc
import multiprocessing
import os
import signal

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.exceptions import NotFittedError

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier, _training
from gar_sklearn.cli import main
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import ImageLoadError

from .conftest import TINY

# a part's own warning about its interrupted training comes before the fusion estimator's
pytestmark = pytest.mark.filterwarnings("ignore:Training was interrupted")

PART = dict(TINY, image_size=16, batch_size=8, max_epochs=3, patience=None, num_workers=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(48, image_size=16, gender_dependent=True, random_state=14)


def fusion(**part):
    return GenderFusionClassifier(
        MultiAttributeClassifier(attributes=("gender",), **dict(PART, **part)),
        MultiAttributeClassifier(
            attributes=("age", "race"), validation_fraction=0, **dict(PART, **part)
        ),
        random_state=0,
        strategy="separate",  # the write-up's design: a network per part
    )


def interrupt_part(monkeypatch, part, epoch=2, how="raise"):
    """Ctrl-C in the second batch of ``epoch`` of the ``part``-th network that trains
    (0: the gender classifier, 1 and 2: the specialists); records each network's epochs."""
    nets = {}
    original = _training.MultiHeadNet.train_step

    def train_step(self, batch, **kwargs):
        k = nets.setdefault(id(self), len(nets))
        if k == part and len(self.history) == epoch and len(self.history[-1]["batches"]) == 1:
            if how == "signal":  # a real SIGINT, turned into KeyboardInterrupt by Python
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise KeyboardInterrupt
        return original(self, batch, **kwargs)

    monkeypatch.setattr(_training.MultiHeadNet, "train_step", train_step)
    return nets


# ---------------------------------------------------------------- the fusion estimator (item 3)
def fusion_warning(record):
    """The one warning GenderFusionClassifier gave."""
    (message,) = [str(w.message) for w in record if "GenderFusionClassifier" in str(w.message)]
    return message


def unfitted_interruption(part, complete, not_trained):
    """The warning of an interrupted first fit, word for word."""
    return (
        "GenderFusionClassifier.fit was interrupted (KeyboardInterrupt) while training "
        f"{part}; complete: {complete}; not trained: {not_trained}. The estimator is "
        "left as it was (unfitted). Give the parts a checkpoint_dir to keep complete parts "
        "across fits."
    )


@pytest.mark.parametrize(
    "part, complete, not_trained",
    [
        (0, "none", "the 'Male' specialist, the 'Female' specialist"),
        (1, "the gender classifier", "the 'Female' specialist"),
        (2, "the gender classifier, the 'Male' specialist", "none"),
    ],
)
def test_ctrl_c_in_any_part_stops_the_whole_fusion_fit_and_names_the_complete_parts(
    data, monkeypatch, part, complete, not_trained
):
    nets = interrupt_part(monkeypatch, part)
    clf = fusion()
    with pytest.warns(UserWarning) as record, pytest.raises(KeyboardInterrupt):
        clf.fit(*data)
    names = ["the gender classifier", "the 'Male' specialist", "the 'Female' specialist"]
    assert fusion_warning(record) == unfitted_interruption(names[part], complete, not_trained)
    assert len(nets) == part + 1  # no part trained after the interrupted one
    with pytest.raises(NotFittedError):
        clf.predict(data[0][:2])


@pytest.mark.parametrize(
    "gender_from, part, complete",
    [("auto", 0, "none"), ("gender_estimator", 0, "none"), ("gender_estimator", 1, None)],
)
def test_ctrl_c_in_the_shared_strategy_stops_the_whole_fusion_fit(
    data, monkeypatch, gender_from, part, complete
):
    """strategy="shared": the shared network (and the gender classifier, when it routes)
    stop the fit on Ctrl-C as the separate parts do, instead of keeping an early stop."""
    nets = interrupt_part(monkeypatch, part)
    clf = fusion().set_params(strategy="shared", gender_from=gender_from)
    with pytest.warns(UserWarning) as record, pytest.raises(KeyboardInterrupt):
        clf.fit(*data)
    names = ["the shared network"]
    if gender_from == "gender_estimator":
        names.insert(0, "the gender classifier")
    complete = complete or names[0]
    not_trained = "the shared network" if (len(names), part) == (2, 0) else "none"
    assert fusion_warning(record) == unfitted_interruption(names[part], complete, not_trained)
    assert len(nets) == part + 1
    with pytest.raises(NotFittedError):
        clf.predict(data[0][:2])


def test_an_interrupted_refit_keeps_the_previous_fusion_model(data, monkeypatch):
    X, y = data
    clf = fusion().fit(X, y)
    before = clf.predict_proba(X)
    interrupt_part(monkeypatch, 1)
    with pytest.warns(UserWarning, match=r"left as it was \(its previous model\)"):
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y.assign(race="White"))
    for p, q in zip(clf.predict_proba(X), before):
        np.testing.assert_array_equal(p, q)


def test_fitting_again_after_ctrl_c_resumes_from_the_parts_checkpoints(data, monkeypatch, tmp_path):
    X, y = data
    reference = fusion().fit(X, y).predict_proba(X)
    nets = interrupt_part(monkeypatch, 2)
    with pytest.warns(UserWarning, match="restores the complete parts without training"):
        with pytest.raises(KeyboardInterrupt):
            fusion(checkpoint_dir=tmp_path).fit(X, y)
    monkeypatch.undo()
    nets = interrupt_part(monkeypatch, part=99)  # counts the networks that train
    resumed = fusion(checkpoint_dir=tmp_path).fit(X, y)
    assert len(nets) == 1  # the complete parts were restored without a training step
    for p, q in zip(resumed.predict_proba(X), reference):
        np.testing.assert_array_equal(p, q)


def test_ctrl_c_outside_training_stops_the_fusion_fit_too(data, monkeypatch):
    from gar_sklearn.augmentation import AugmentingOverSampler

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(AugmentingOverSampler, "fit_resample", interrupted)
    with pytest.warns(
        UserWarning, match=r"while training the 'Male' specialist; complete: the gender"
    ):
        with pytest.raises(KeyboardInterrupt):
            fusion().fit(*data)


def test_ctrl_c_in_a_multi_attribute_fit_before_training_leaves_it_as_it_was(data, monkeypatch):
    from gar_sklearn._training import _datasets

    X, y = data
    clf = MultiAttributeClassifier(**PART).fit(X, y)
    before = clf.predict_proba(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_datasets, "feature_datasets", interrupted)
    monkeypatch.setattr("gar_sklearn._multi_attribute.feature_datasets", interrupted)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(freeze=2).fit(X, y)  # interrupted while caching features
    for p, q in zip(clf.predict_proba(X), before):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def labelled_files(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("cli")
    X, y = data
    names = []
    for i, image in enumerate(X):
        names.append(f"{i}.png")
        Image.fromarray(image).save(root / names[-1])
    pd.DataFrame({"path": names, **{c: y[c] for c in y.columns}}).to_csv(
        root / "labels.csv", index=False
    )
    return root


CLI_TRAIN = [
    "--format",
    "csv",
    "--backbone",
    "tiny",
    "--weights",
    "none",
    "--image-size",
    "16",
    "--epochs",
    "3",
]


def test_the_command_reports_an_interrupted_fusion_fit_with_exit_code_130(
    labelled_files, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "fusion.pt"
    out.write_bytes(b"an older model")
    interrupt_part(monkeypatch, 0, how="signal")  # the default strategy's one network
    code = main(
        [
            "train",
            "--data",
            str(labelled_files / "labels.csv"),
            "--model",
            "fusion",
            "--out",
            str(out),
            "--force",
            *CLI_TRAIN,
        ]
    )
    err = capsys.readouterr().err
    assert code == 130
    assert "warning: GenderFusionClassifier.fit was interrupted (KeyboardInterrupt) while " in err
    assert "while training the shared network; complete: none; not trained: none" in err
    assert err.rstrip().endswith("error: interrupted")
    assert out.read_bytes() == b"an older model"  # nothing saved over it


def test_the_command_saves_an_interrupted_single_network_fit(
    labelled_files, tmp_path, monkeypatch, capsys
):
    # documented: one network keeps its best weights so far and is saved
    out = tmp_path / "multi.pt"
    interrupt_part(monkeypatch, 0, how="signal")
    code = main(
        ["train", "--data", str(labelled_files / "labels.csv"), "--out", str(out), *CLI_TRAIN]
    )
    err = capsys.readouterr().err
    assert code == 0 and out.exists()
    assert "warning: Training was interrupted (KeyboardInterrupt) after 1 of --epochs 3" in err


# ---------------------------------------------------------------- worker processes (item 8)
@pytest.fixture(scope="module")
def files_with_a_corrupt_one(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("corrupt")
    X, y = data
    paths = []
    for i, image in enumerate(X):
        paths.append(str(root / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    bad = root / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG body" * 20)
    paths.insert(20, str(bad))
    labels = pd.concat([y.iloc[:20], y.iloc[:1], y.iloc[20:]]).reset_index(drop=True)
    return paths, labels


def stderr_of_a_fork_collecting_garbage(tmp_path, keep):
    """What a process forked now prints to stderr when it collects its garbage (``keep``
    holds the error the parent still has)."""
    log = tmp_path / "child_stderr.txt"
    pid = os.fork()
    if pid == 0:  # the child: drop the inherited error, collect, exit without clean-up
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        keep.clear()
        gc.collect()
        os._exit(0)
    os.waitpid(pid, 0)
    return log.read_text()


def assert_workers_gone_after(call, tmp_path):
    others = set(multiprocessing.active_children())  # e.g. joblib's workers of other tests
    keep = []
    with pytest.raises((ImageLoadError, KeyboardInterrupt)) as info:
        call()
    keep.append(info)  # the error and its traceback stay alive, as in a notebook
    assert set(multiprocessing.active_children()) - others == set()
    assert "can only test a child process" not in stderr_of_a_fork_collecting_garbage(
        tmp_path, keep
    )


def test_predict_stops_its_workers_when_an_image_is_corrupt(
    files_with_a_corrupt_one, data, tmp_path
):
    paths, _ = files_with_a_corrupt_one
    clf = MultiAttributeClassifier(**dict(PART, max_epochs=1, num_workers=2)).fit(*data)
    assert_workers_gone_after(lambda: clf.predict(paths), tmp_path)


def test_feature_extraction_stops_its_workers_when_an_image_is_corrupt(
    files_with_a_corrupt_one, tmp_path
):
    paths, labels = files_with_a_corrupt_one
    clf = MultiAttributeClassifier(**dict(PART, freeze=2, num_workers=2))
    assert_workers_gone_after(lambda: clf.fit(paths, labels), tmp_path)


def test_training_stops_its_workers_when_an_image_is_corrupt(files_with_a_corrupt_one, tmp_path):
    paths, labels = files_with_a_corrupt_one
    clf = MultiAttributeClassifier(**dict(PART, num_workers=2, image_cache=False))
    assert_workers_gone_after(lambda: clf.fit(paths, labels), tmp_path)


def test_ctrl_c_while_predicting_stops_the_workers(
    files_with_a_corrupt_one, data, tmp_path, monkeypatch
):
    paths, _ = files_with_a_corrupt_one
    clf = MultiAttributeClassifier(**dict(PART, max_epochs=1, num_workers=2)).fit(*data)
    calls = []
    original = MultiAttributeClassifier._batch_probas

    def batch_probas(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(MultiAttributeClassifier, "_batch_probas", batch_probas)
    assert_workers_gone_after(lambda: clf.predict(paths[:20]), tmp_path)
