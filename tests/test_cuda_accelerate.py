"""Training through accelerate (skorch's AccelerateMixin), on accelerate's CPU backend:
one process trains exactly as without it; two processes (torch.distributed.run, gloo)
share each epoch's batches and end with the same weights and history."""

import json
import pickle
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from gar_sklearn import MultiAttributeClassifier, config_context
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import REPO

accelerate = pytest.importorskip("accelerate")

PARAMS = dict(
    backbone="tiny",
    weights=None,
    image_size=16,
    batch_size=8,
    lr=1e-2,
    max_epochs=3,
    random_state=0,
    age_bins="fairface",
)


@pytest.fixture(scope="module")
def accelerator():
    threads = torch.get_num_threads()
    acc = accelerate.Accelerator(cpu=True)
    torch.set_num_threads(threads)
    return acc


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(48, image_size=16, random_state=0)


def test_one_process_trains_as_without_accelerate(accelerator, data):
    from gar_sklearn._training._accelerate import AcceleratedMultiHeadNet

    plain = MultiAttributeClassifier(**PARAMS).fit(*data)
    with config_context(accelerator=accelerator):
        accelerated = MultiAttributeClassifier(**PARAMS).fit(*data)
    assert isinstance(accelerated.net_, AcceleratedMultiHeadNet)
    assert accelerated.device_ == "cpu" and accelerated.net_.device == "cpu"
    assert accelerated.history_[:, "valid_loss"] == plain.history_[:, "valid_loss"]
    for p, q in zip(plain.predict_proba(data[0]), accelerated.predict_proba(data[0])):
        np.testing.assert_array_equal(p, q)
    copy = pickle.loads(pickle.dumps(accelerated))  # the accelerator stays behind
    assert copy.net_.accelerator is None
    np.testing.assert_array_equal(copy.predict(data[0]), accelerated.predict(data[0]))


def test_a_loaded_model_predicts_without_the_accelerator(accelerator, data, tmp_path):
    import gar_sklearn

    with config_context(accelerator=accelerator):
        clf = MultiAttributeClassifier(**{**PARAMS, "max_epochs": 1}).fit(*data)
        clf.save(tmp_path / "model.pt")
        loaded = gar_sklearn.load(tmp_path / "model.pt")
    assert type(loaded.net_).__name__ == "MultiHeadNet"
    np.testing.assert_array_equal(loaded.predict(data[0]), clf.predict(data[0]))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"precision": "bf16"}, r"mixed precision is the accelerator's.*Got precision='bf16'"),
        ({"checkpoint_dir": "ckpt"}, "'checkpoint_dir' is not supported when training through"),
        ({"freeze": 1, "unfreeze_after": 1}, "'unfreeze_after' is not supported"),
        ({"device": "cuda"}, r"device='cuda' was requested, but the configured accelerator runs"),
    ],
)
def test_what_an_accelerator_refuses(accelerator, data, params, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with config_context(accelerator=accelerator), pytest.raises(ValueError, match=match):
        MultiAttributeClassifier(**{**PARAMS, **params}).fit(*data)


SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    torch.set_num_threads(1)
    from accelerate import Accelerator
    from gar_sklearn import MultiAttributeClassifier, config_context
    from gar_sklearn._training._accelerate import AcceleratedMultiHeadNet
    from gar_sklearn.datasets import make_synthetic_faces

    seen = dict()
    original = AcceleratedMultiHeadNet.train_step

    def train_step(self, batch, **kwargs):  # note the images each process trains on
        images = batch[0]["images"].cpu()
        digests = [hashlib.sha1(im.numpy().tobytes()).hexdigest() for im in images]
        seen.setdefault(len(self.history), []).extend(digests)
        return original(self, batch, **kwargs)

    AcceleratedMultiHeadNet.train_step = train_step
    X, y = make_synthetic_faces(48, image_size=16, random_state=0)
    accelerator = Accelerator(cpu=True)
    with config_context(accelerator=accelerator):
        clf = MultiAttributeClassifier(**{params!r}).fit(X, y)
    weights = b"".join(v.numpy().tobytes() for v in clf.net_.module_.state_dict().values())
    out = dict(
        processes=accelerator.num_processes,
        weights=hashlib.sha1(weights).hexdigest(),
        seen=seen,
        valid_loss=clf.history_[:, "valid_loss"],
        proba=clf.predict_proba(X[:4])[0].tolist(),
    )
    path = os.path.join(sys.argv[1], f"rank{{accelerator.process_index}}.json")
    with open(path, "w") as f:
        json.dump(out, f)
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_share_the_batches_and_agree(data, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(params=PARAMS))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()), str(script), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["processes"] for r in ranks] == [2, 2]
    # one model: the same weights, the same (averaged) losses, the same predictions
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["valid_loss"] == ranks[1]["valid_loss"]
    assert ranks[0]["proba"] == ranks[1]["proba"]
    # each epoch, the processes split the training images between them
    n_train = 48 - 5  # validation_fraction=0.1 holds out ceil(4.8) images
    for epoch in ("1", "2", "3"):
        a, b = (r["seen"][epoch] for r in ranks)
        assert len(a) == len(b) == 24  # 3 batches of 8 each; the last ones padded to full size
        assert len(set(a) | set(b)) == n_train
