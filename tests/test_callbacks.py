"""The ``callbacks`` parameter: the user's skorch callbacks (loggers such as TensorBoard)."""

import numpy as np
import pytest
from sklearn.base import clone
from skorch.callbacks import Callback

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn.datasets import make_synthetic_faces

TINY = dict(backbone="tiny", weights=None, image_size=16, max_epochs=2, verbose=0, random_state=0)


class EpochRecorder(Callback):
    """Record the train loss of each epoch it sees."""

    def __init__(self, label="run"):
        self.label = label

    def initialize(self):
        self.losses_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.losses_.append(net.history[-1, "train_loss"])


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(40, image_size=16, gender_dependent=True, random_state=0)


def test_callbacks_run_on_fresh_copies_each_fit(faces):
    X, y = faces
    mine = EpochRecorder(label="mine")
    clf = MultiAttributeClassifier(callbacks=[("recorder", mine)], **TINY).fit(X, y)
    assert clf.callbacks[0][1] is mine and not hasattr(mine, "losses_")  # left as given
    used = dict(clf.net_.callbacks_)["recorder"]
    assert used is not mine and used.label == "mine"
    np.testing.assert_allclose(used.losses_, clf.history_[:, "train_loss"])
    clf.fit(X, y)  # a refit starts from a new copy
    assert len(dict(clf.net_.callbacks_)["recorder"].losses_) == 2
    unnamed = MultiAttributeClassifier(callbacks=[EpochRecorder()], **TINY).fit(X, y)
    assert len(dict(unnamed.net_.callbacks_)["EpochRecorder"].losses_) == 2
    a_class = MultiAttributeClassifier(callbacks=[EpochRecorder], **TINY).fit(X, y)
    assert len(dict(a_class.net_.callbacks_)["EpochRecorder"].losses_) == 2  # skorch makes one


def test_callbacks_reach_the_fusion_parts(faces):
    X, y = faces
    fusion = GenderFusionClassifier(
        strategy="separate",  # the write-up's design: a network per part
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **TINY),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), **TINY),
        random_state=0,
    ).set_params(specialist__callbacks=[("recorder", EpochRecorder())])
    fusion.fit(X, y)
    for part in fusion.specialists_.values():
        losses = dict(part.net_.callbacks_)["recorder"].losses_
        np.testing.assert_allclose(losses, part.history_[:, "train_loss"])
    assert "recorder" not in dict(fusion.gender_estimator_.net_.callbacks_)


@pytest.mark.parametrize(
    "callbacks", ["tensorboard", [("a", "b")], [object()], [("n", EpochRecorder(), 3)]]
)
def test_invalid_callbacks_are_refused(faces, callbacks):
    X, y = faces
    with pytest.raises(
        ValueError,
        match=r"The 'callbacks' parameter must be None or a list of skorch callbacks or of "
        r"\(name, callback\) pairs. Got",
    ):
        MultiAttributeClassifier(callbacks=callbacks, **TINY).fit(X, y)


def test_tensorboard_logs_each_epoch(faces, tmp_path):
    """What the TensorBoard example of docs/estimators.md logs (tests/test_docs.py runs the
    example itself where tensorboard is installed)."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from skorch.callbacks import TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    X, y = faces
    writer = SummaryWriter(tmp_path / "runs")
    clf = MultiAttributeClassifier(callbacks=[("tensorboard", TensorBoard(writer))], **TINY)
    twin = clone(clf)  # the writer cannot be copied: the clone shares it
    assert twin.callbacks[0][1] is not clf.callbacks[0][1]
    assert twin.callbacks[0][1].writer is writer
    clf.fit(X, y)
    writer.flush()
    events = EventAccumulator(str(tmp_path / "runs"))
    events.Reload()
    logged = [e.value for e in events.Scalars("Loss/train_loss")]
    np.testing.assert_allclose(logged, clf.history_[:, "train_loss"], rtol=1e-6)
    assert "Loss/valid_acc_gender" in events.Tags()["scalars"]
