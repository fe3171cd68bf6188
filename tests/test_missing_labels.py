"""Missing labels (``missing_labels="ignore"``): codes, classes, the masked loss, accuracy, score."""

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.history import History
from torch import nn

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._targets import (
    MISSING,
    encode_targets,
    fit_encoders,
    transform_frame,
    validate_targets,
)
from gar_sklearn._training import HeadAccuracy, MultiHeadNet
from gar_sklearn._training._net import MISSING_LABEL
from gar_sklearn.datasets import make_synthetic_faces

TINY = dict(backbone="tiny", weights=None, image_size=16, lr=1e-2, random_state=0)


# ---------------------------------------------------------------- targets
def test_missing_code_is_torchs_ignore_index():
    assert MISSING == MISSING_LABEL == nn.CrossEntropyLoss().ignore_index == -100


@pytest.fixture
def y_missing():
    return pd.DataFrame(
        {
            "gender": ["Male", "Female", "Male", "Female", "Male"],
            "age": [25, np.nan, 3, 71, None],
            "race": ["White", None, "Asian", np.nan, "Indian"],
        }
    )


def test_validate_targets_raises_or_keeps_missing_labels(y_missing):
    attributes = ("gender", "age", "race")
    with pytest.raises(ValueError, match=r"2 missing label\(s\) in column 'age'.*missing_labels="):
        validate_targets(y_missing, attributes)
    frame, _ = validate_targets(y_missing, attributes, missing_labels="ignore")
    assert frame["age"].isna().tolist() == [False, True, False, False, True]


def test_classes_come_from_labelled_rows_and_missing_labels_encode_as_missing(y_missing):
    attributes = ("gender", "age", "race")
    classes, binner = fit_encoders(y_missing, attributes, "fairface")
    assert classes[2].tolist() == ["Asian", "Indian", "White"]
    assert binner.classes_.tolist()[0] == "0-2"  # binned on the three known ages
    codes = encode_targets(y_missing, attributes, classes, binner)
    ages = binner.classes_.tolist()
    expected = [
        [1, ages.index("20-29"), 2],
        [0, MISSING, MISSING],
        [1, ages.index("3-9"), 0],
        [0, ages.index("more than 70"), MISSING],
        [1, MISSING, 1],
    ]
    np.testing.assert_array_equal(codes, expected)
    binned = transform_frame(y_missing, attributes, binner)
    assert binned["age"].isna().tolist() == [False, True, False, False, True]
    assert binned["age"].dropna().tolist() == ["20-29", "3-9", "more than 70"]
    # exact ages as classes: integer labels although the column holds NaN
    classes, _ = fit_encoders(y_missing, ("age",), None)
    assert classes[0].tolist() == [3, 25, 71] and classes[0].dtype.kind == "i"
    np.testing.assert_array_equal(
        encode_targets(y_missing, ("age",), classes)[:, 0], [1, MISSING, 0, 2, MISSING]
    )


def test_an_attribute_without_any_label_is_an_error(y_missing):
    y = y_missing.assign(race=None)
    with pytest.raises(ValueError, match=r"y\['race'\] holds no label at all"):
        fit_encoders(y, ("gender", "race"))


# ---------------------------------------------------------------- the loss
class _Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # the optimizer needs one

    def forward(self, x):
        return x


def _net(**kwargs):
    return MultiHeadNet(_Heads, criterion=nn.CrossEntropyLoss, device="cpu", **kwargs).initialize()


def _masked_cross_entropy(logits, y, smoothing=0.0, target_rows=None):
    """Mean over labelled rows of -sum_c q_c log p_c, q one-hot (smoothed) or given."""
    logits = logits.detach().numpy().astype(float)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    losses = []
    for i, c in enumerate(y.tolist()):
        if c == MISSING:
            continue
        if target_rows is not None:
            q = target_rows[c]
        else:
            q = np.full(log_p.shape[1], smoothing / log_p.shape[1])
            q[c] += 1 - smoothing
        losses.append(-(q * log_p[i]).sum())
    return float(np.mean(losses)) if losses else 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_loss_averages_each_head_over_its_labelled_rows(smoothing):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(6, 2, generator=gen), torch.randn(6, 4, generator=gen))
    y = torch.tensor([[0, 3], [1, MISSING], [1, 0], [0, MISSING], [1, 2], [0, MISSING]])
    net = _net(loss_weights=[1.0, 2.5], criterion__label_smoothing=smoothing)
    loss = net.get_loss(logits, y)
    expected = _masked_cross_entropy(logits[0], y[:, 0], smoothing)
    expected += 2.5 * _masked_cross_entropy(logits[1], y[:, 1], smoothing)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_soft_age_targets_skip_rows_without_an_age():
    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(5, 3, generator=gen),)
    targets = torch.softmax(torch.randn(3, 3, generator=gen), dim=1)
    y = torch.tensor([[2], [MISSING], [0], [MISSING], [1]])
    loss = _net(soft_targets={0: targets}).get_loss(logits, y)
    expected = _masked_cross_entropy(logits[0], y[:, 0], target_rows=targets.numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("soft", [False, True])
def test_a_head_without_labels_in_the_batch_adds_nothing_and_gets_no_gradient(soft):
    logits = tuple(torch.randn(4, 3, requires_grad=True) for _ in range(2))
    y = torch.tensor([[0, MISSING], [2, MISSING], [1, MISSING], [MISSING, MISSING]])
    soft_targets = {1: torch.eye(3), 0: torch.eye(3)} if soft else None
    loss = _net(soft_targets=soft_targets).get_loss(logits, y)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_masked_cross_entropy(logits[0], y[:, 0]), rel=1e-6)
    loss.backward()
    assert torch.equal(logits[1].grad, torch.zeros(4, 3))
    assert torch.equal(logits[0].grad[3], torch.zeros(3))  # the row without a label
    assert (logits[0].grad[:3] != 0).all()


def test_loss_without_missing_labels_is_the_criterions_mean():
    gen = torch.Generator().manual_seed(2)
    logits = (torch.randn(8, 5, generator=gen),)
    y = torch.randint(0, 5, (8, 1), generator=gen)
    expected = nn.functional.cross_entropy(logits[0], y[:, 0])
    assert torch.equal(_net().get_loss(logits, y), expected)


# ---------------------------------------------------------------- validation accuracy
def test_head_accuracy_counts_labelled_rows_only():
    callback = HeadAccuracy(("gender", "race", "age"))
    net = type("Net", (), {"history": History()})()
    net.history.new_epoch()
    callback.on_epoch_begin(net)
    batches = [
        ([[0, 2], [1, 0]], [[3, 1, 0], [0, 9, 1]], [[0, 1, 1], [1, MISSING, 0]]),
        ([[5, 1]], [[0, 0, 7]], [[1, MISSING, MISSING]]),
    ]
    for gender_logits, race_logits, y in batches:
        y = torch.tensor(y)
        y_pred = (
            torch.tensor(gender_logits, dtype=torch.float),
            torch.tensor(race_logits, dtype=torch.float),
            torch.zeros(len(y), 2),  # age: always class 0
        )
        callback.on_batch_end(net, batch=(None, y), training=False, y_pred=y_pred)
    callback.on_epoch_end(net)
    row = net.history[-1]
    # gender: predictions 1, 0 | 0 against 0, 1 | 1; race: 0, 1 against 1, - | -
    # age: 0, 0 against 1, 0 | -
    assert row["valid_acc_gender"] == 0.0
    assert row["valid_acc_race"] == 0.0
    assert row["valid_acc_age"] == 0.5
    assert row["valid_acc"] == pytest.approx(0.5 / 3)


def test_head_accuracy_leaves_out_a_head_without_validation_labels():
    callback = HeadAccuracy(("gender", "race"))
    net = type("Net", (), {"history": History()})()
    net.history.new_epoch()
    callback.on_epoch_begin(net)
    y = torch.tensor([[0, MISSING], [1, MISSING]])
    y_pred = (torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 3))
    callback.on_batch_end(net, batch=(None, y), training=False, y_pred=y_pred)
    callback.on_epoch_end(net)
    assert "valid_acc_race" not in net.history[-1]
    assert net.history[-1, "valid_acc"] == net.history[-1, "valid_acc_gender"] == 1.0


# ---------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def faces():
    X, y = make_synthetic_faces(240, image_size=16, random_state=0)
    y = y.astype(object)
    rng = np.random.default_rng(0)
    y.loc[rng.random(len(y)) < 0.5, "race"] = None
    y.loc[rng.random(len(y)) < 0.3, "age"] = None
    return X, y


def test_missing_labels_raise_by_default(faces):
    X, y = faces
    with pytest.raises(ValueError, match="missing label.*missing_labels='ignore'"):
        MultiAttributeClassifier(max_epochs=1, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="The 'missing_labels' parameter must be"):
        MultiAttributeClassifier(missing_labels="drop", **TINY).fit(X, y)


def test_validation_figures_are_those_of_the_labelled_rows(faces):
    X, y = faces
    X_train, y_train, X_val, y_val = X[:180], y[:180], X[180:], y[180:].reset_index(drop=True)
    clf = MultiAttributeClassifier(
        age_bins="fairface",
        missing_labels="ignore",
        max_epochs=2,
        patience=None,  # the final weights are the last epoch's
        batch_size=len(X_val),  # one validation batch: the loss is the batch's
        **TINY,
    ).fit(X_train, y_train, validation_data=(X_val, y_val))
    assert "Others" in clf.classes_[2]
    probas = clf.predict_proba(X_val)
    truth = clf.transform_targets(y_val)
    row = clf.history_[-1]
    loss = 0.0
    for k, a in enumerate(clf.attributes_):
        labelled = truth[a].notna().to_numpy()
        lookup = {c: i for i, c in enumerate(clf.classes_[k].tolist())}
        codes = np.asarray([lookup[v] for v in truth[a][labelled].tolist()])
        p = probas[k][labelled]
        loss += -np.mean(np.log(p[np.arange(len(codes)), codes]))
        accuracy = np.mean(p.argmax(axis=1) == codes)
        assert row[f"valid_acc_{a}"] == pytest.approx(accuracy)
    assert row["valid_loss"] == pytest.approx(loss, rel=1e-4)


def test_learns_each_attribute_from_its_labelled_rows_and_scores_them(faces):
    X, y = faces
    X_train, y_train, X_test, y_test = X[:180], y[:180], X[180:], y[180:].reset_index(drop=True)
    clf = MultiAttributeClassifier(
        age_bins="fairface", missing_labels="ignore", max_epochs=12, **TINY
    ).fit(X_train, y_train)
    pred = clf.predict(X_test)
    truth = clf.transform_targets(y_test)
    accs = []
    for k, a in enumerate(clf.attributes_):
        labelled = truth[a].notna().to_numpy()
        assert 0 < labelled.sum() < len(y_test) or a == "gender"
        accs.append(np.mean(pred[labelled, k] == truth[a][labelled].to_numpy()))
    assert accs[2] >= 0.8, accs  # race, from half of the faces (chance: 0.2)
    assert clf.score(X_test, y_test) == pytest.approx(np.mean(accs))
    weights = np.linspace(1, 2, len(y_test))
    weighted = [
        np.average(
            pred[truth[a].notna().to_numpy(), k] == truth[a].dropna().to_numpy(),
            weights=weights[truth[a].notna().to_numpy()],
        )
        for k, a in enumerate(clf.attributes_)
    ]
    assert clf.score(X_test, y_test, sample_weight=weights) == pytest.approx(np.mean(weighted))


def test_without_missing_labels_ignore_changes_nothing(faces):
    X, _ = faces
    _, y = make_synthetic_faces(240, image_size=16, random_state=0)
    a = MultiAttributeClassifier(max_epochs=2, age_bins="fairface", **TINY).fit(X, y)
    b = MultiAttributeClassifier(
        max_epochs=2, age_bins="fairface", missing_labels="ignore", **TINY
    ).fit(X, y)
    for p, q in zip(a.predict_proba(X[:20]), b.predict_proba(X[:20])):
        np.testing.assert_array_equal(p, q)
