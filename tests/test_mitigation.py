"""Mitigation inside fit: sample weights, balanced groups, selection on the worst group."""

import sys

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.model_selection import KFold, cross_validate

import gar_sklearn
from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn._data import FeatureDataset
from gar_sklearn._training import TrainingSettings, make_net
from gar_sklearn._training._groups import SampleInfo, balanced_weights, group_labels
from gar_sklearn._training._selection import worst_group_accuracy
from gar_sklearn._training._weighting import SampleDataset
from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import REPO, requires_utkface

SMALL = dict(
    backbone="tiny", weights=None, image_size=16, lr=1e-2, age_bins="fairface", random_state=0
)


@pytest.fixture(scope="module")
def faces():
    X, y = make_synthetic_faces(120, image_size=16, random_state=0)
    return X, y


def tiny_net(n_classes=(2, 3), **kwargs):
    module = MultiHeadNetwork(build_backbone("tiny", weights=None), list(n_classes), n_frozen=0)
    return make_net(module, TrainingSettings(**kwargs), attributes=("a", "b"), device="cpu")


# ---------------------------------------------------------------- weighted loss
@pytest.mark.parametrize("head", ["plain", "smoothed", "soft"])
def test_weighted_loss_equals_the_loss_of_duplicated_rows(head):
    torch.manual_seed(0)
    net = tiny_net(label_smoothing=0.1 if head == "smoothed" else 0.0).initialize()
    if head == "soft":  # label distributions on the second head
        net.soft_targets = {1: torch.softmax(torch.randn(3, 3), dim=1)}
    logits = (torch.randn(4, 2), torch.randn(4, 3))
    y = torch.tensor([[0, 2], [1, 0], [1, 1], [0, 2]])
    counts = torch.tensor([2, 1, 3, 0])  # sample i counts as counts[i] copies
    weights = counts / counts.float().mean()  # scaled to a mean of 1, as fit scales them
    weighted = net.get_loss(logits, y, X={"sample_weight": weights})
    rows = torch.repeat_interleave(torch.arange(4), counts)
    duplicated = net.get_loss(tuple(lg[rows] for lg in logits), y[rows])
    torch.testing.assert_close(weighted, duplicated)


def full_batch(**params):
    # heads on frozen features, no dropout, one batch: training is a function of the rows' losses
    return MultiAttributeClassifier(
        **{**SMALL, "freeze": "backbone", "dropout": 0.0, "batch_size": 512, "max_epochs": 3},
        **params,
    )


def test_sample_weight_two_equals_duplicating_rows(faces):
    X, y = faces
    X_val, y_val = X[100:], y.iloc[100:].reset_index(drop=True)
    X, y = X[:100], y.iloc[:100].reset_index(drop=True)
    twice = np.arange(100) < 30
    weight = np.where(twice, 2.0, 1.0)
    val_weight = np.where(np.arange(20) < 5, 2.0, 1.0)
    weighted = full_batch().fit(
        X, y, validation_data=(X_val, y_val, val_weight), sample_weight=weight
    )
    rows, val_rows = np.r_[np.arange(100), np.arange(30)], np.r_[np.arange(20), np.arange(5)]
    copied = full_batch().fit(
        X[rows], y.iloc[rows], validation_data=(X_val[val_rows], y_val.iloc[val_rows])
    )
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(weighted.history_[:, key], copied.history_[:, key], rtol=1e-5)
    for p, q in zip(weighted.predict_proba(X_val), copied.predict_proba(X_val)):
        np.testing.assert_allclose(p, q, atol=1e-5)


def test_zero_weights_drop_rows_and_a_constant_weight_changes_nothing(faces):
    X, y = faces
    kept = np.arange(len(X)) % 3 != 0
    zeroed = full_batch(validation_fraction=0).fit(X, y, sample_weight=kept.astype(float))
    dropped = full_batch(validation_fraction=0).fit(X[kept], y[kept])
    np.testing.assert_allclose(
        zeroed.history_[:, "train_loss"], dropped.history_[:, "train_loss"], rtol=1e-5
    )
    plain = full_batch(validation_fraction=0).fit(X, y)
    scaled = full_batch(validation_fraction=0).fit(X, y, sample_weight=np.full(len(X), 7.0))
    np.testing.assert_allclose(
        plain.history_[:, "train_loss"], scaled.history_[:, "train_loss"], rtol=1e-5
    )


# ---------------------------------------------------------------- groups and balance
def test_balanced_weights_give_every_group_the_same_total():
    groups = np.array([0, 0, 0, 1, 2, 2])
    weights = np.array([1.0, 1.0, 2.0, 1.0, 0.5, 0.5])
    out = balanced_weights(groups, weights)
    # W = 6, G = 3: each group's total becomes 2
    np.testing.assert_allclose(out, [0.5, 0.5, 1.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(np.bincount(groups, weights=out), [2.0, 2.0, 2.0])


def test_group_labels_read_columns_outside_the_attributes_and_bin_ages():
    from gar_sklearn.preprocessing import AgeBinner

    y = pd.DataFrame({"gender": ["M", "F", "M"], "age": [5, 25, 27], "race": ["A", "A", "B"]})
    binner = AgeBinner("fairface").fit(y["age"])
    codes, table = group_labels([y, y.iloc[[2]]], ("age", "race"), ("gender", "age"), binner)
    assert table.to_dict("list") == {"age": ["20-29", "20-29", "3-9"], "race": ["A", "B", "A"]}
    assert codes[0].tolist() == [2, 0, 1] and codes[1].tolist() == [1]


def test_reweighting_is_training_with_the_balanced_weights(faces):
    X, y = faces
    races = np.unique(y["race"], return_inverse=True)[1]
    reweighted = full_batch(validation_fraction=0, group_by="race", balance="reweight").fit(X, y)
    weighted = full_batch(validation_fraction=0).fit(X, y, sample_weight=balanced_weights(races))
    plain = full_batch(validation_fraction=0).fit(X, y)
    np.testing.assert_allclose(
        reweighted.history_[:, "train_loss"], weighted.history_[:, "train_loss"], rtol=1e-6
    )
    assert not np.allclose(reweighted.history_[:, "train_loss"], plain.history_[:, "train_loss"])


def drawn_groups(groups, seed, epochs, batch_size=10):
    """The group of every sample the training loader of a balanced-sampling net draws, per epoch."""
    n = len(groups)
    chance = SampleInfo(group=groups).sampling_weight()
    dataset = SampleDataset(
        FeatureDataset(torch.zeros(n, 1, 4), np.zeros((n, 2), dtype=int)), group=groups
    )
    module = MultiHeadNetwork(build_backbone("tiny", weights=None), [2, 3], n_frozen=0)
    net = make_net(
        module,
        TrainingSettings(batch_size=batch_size),
        attributes=("a", "b"),
        device="cpu",
        train_ds=dataset,
        seed=seed,
        sampling_weight=chance,
    ).initialize()
    loader = net.get_iterator(dataset, training=True)
    draws = []
    for _ in range(epochs):
        net.history.new_epoch()
        draws.append(torch.cat([X["group"] for X, _ in loader]).numpy())
    return np.array(draws)


def test_balanced_sampler_draws_groups_equally_seeded_per_epoch():
    groups = np.repeat([0, 1, 2], [80, 15, 5])
    draws = drawn_groups(groups, seed=3, epochs=200)
    shares = np.bincount(draws.ravel(), minlength=3) / draws.size
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.02)  # 20,000 draws: 6 standard errors
    assert not np.array_equal(draws[0], draws[1])  # a new draw every epoch
    np.testing.assert_array_equal(draws[:5], drawn_groups(groups, seed=3, epochs=5))
    assert not np.array_equal(draws[:5], drawn_groups(groups, seed=4, epochs=5))


def test_balanced_sampling_fit_is_reproducible(faces):
    X, y = faces
    params = dict(SMALL, max_epochs=2, group_by=("race", "gender"), balance="sample")
    a = MultiAttributeClassifier(**params).fit(X, y)
    b = MultiAttributeClassifier(**params).fit(X, y)
    plain = MultiAttributeClassifier(**dict(params, balance=None)).fit(X, y)
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]
    assert a.history_[:, "train_loss"] != plain.history_[:, "train_loss"]


# ---------------------------------------------------------------- selection
def test_worst_group_accuracy_known_answer():
    y_true = np.array([[0, 0], [1, 1], [1, 0], [0, 1], [1, 1]])
    y_pred = np.array([[0, 0], [1, 0], [1, 0], [1, 1], [0, 0]])
    # group 0 (rows 0, 1): (1 + 0.5) / 2 = 0.75; group 1 (rows 2-4): (1 + 0.5 + 0) / 3 = 0.5
    assert worst_group_accuracy(y_true, y_pred, np.array([0, 0, 1, 1, 1])) == 0.5


def hand_worst_group_accuracy(clf, X_val, y_val, column):
    pred, truth = clf.predict(X_val), clf.transform_targets(y_val)
    correct = (pred == truth[list(clf.attributes_)].to_numpy()).mean(axis=1)
    groups = y_val[column].to_numpy()
    return min(correct[groups == g].mean() for g in np.unique(groups))


def test_selection_keeps_the_epoch_of_the_best_worst_group_accuracy():
    X, y = make_synthetic_faces(160, image_size=16, random_state=0)
    train, val = (X[:120], y[:120]), (X[120:], y.iloc[120:].reset_index(drop=True))
    # random_state=3: a run whose best epoch is neither the first nor the last
    params = dict(
        SMALL,
        random_state=3,
        lr=0.05,
        batch_size=16,
        lr_schedule=None,
        patience=None,
        group_by="gender",
    )
    with gar_sklearn.config_context(fold_batch_norm=False):  # predict as validation computes
        per_epoch = [
            hand_worst_group_accuracy(
                MultiAttributeClassifier(**params, max_epochs=k).fit(*train, val), *val, "gender"
            )
            for k in range(1, 7)
        ]
        best = int(np.argmax(per_epoch))  # the first of equal scores, as early stopping keeps it
        assert 0 < best < 5  # the test means something only if neither end is the best
        kept = MultiAttributeClassifier(
            **params, max_epochs=6, selection="worst_group_accuracy"
        ).fit(*train, val)
        expected = MultiAttributeClassifier(**params, max_epochs=best + 1).fit(*train, val)
    np.testing.assert_allclose(kept.history_[:, "valid_worst_group_acc"], per_epoch)
    flags = [v > max(per_epoch[:k], default=-1) for k, v in enumerate(per_epoch)]
    assert kept.history_[:, "valid_worst_group_acc_best"] == flags
    for p, q in zip(kept.predict_proba(val[0]), expected.predict_proba(val[0])):
        np.testing.assert_array_equal(p, q)


def test_callable_selection_gets_labels_and_groups(faces):
    X, y = faces
    calls = []

    def gender_of_group(y_true, y_pred, sensitive_features):
        calls.append((y_true, y_pred, sensitive_features))
        return float(np.mean(y_true["gender"] == y_pred["gender"]))

    val = (X[90:], y.iloc[90:].reset_index(drop=True))
    clf = MultiAttributeClassifier(
        **SMALL, max_epochs=2, group_by=("race", "gender"), selection=gender_of_group
    ).fit(X[:90], y[:90], val)
    y_true, _, groups = calls[-1]
    pd.testing.assert_frame_equal(
        y_true, clf.transform_targets(val[1])[list(clf.attributes_)], check_dtype=False
    )
    pd.testing.assert_frame_equal(groups, val[1][["race", "gender"]], check_dtype=False)
    assert clf.history_[:, "valid_selection"] == [
        float(np.mean(t["gender"] == p["gender"])) for t, p, _ in calls
    ]


def test_a_sensitive_column_need_not_be_an_attribute(faces):
    X, y = faces
    seen = []

    def worst_race(y_true, y_pred, sensitive_features):
        seen.append(sensitive_features)
        correct = (y_true["gender"] == y_pred["gender"]).to_numpy()
        races = sensitive_features["race"].to_numpy()
        return min(correct[races == r].mean() for r in np.unique(races))

    val = (X[90:], y.iloc[90:].reset_index(drop=True))
    clf = MultiAttributeClassifier(
        **SMALL,
        attributes=("gender",),
        max_epochs=2,
        group_by="race",
        balance="reweight",
        selection=worst_race,
    ).fit(X[:90], y[:90], val)
    assert clf.attributes_ == ("gender",) and len(seen) == 2
    pd.testing.assert_frame_equal(seen[-1], val[1][["race"]])
    scores = clf.history_[:, "valid_selection"]
    assert len(scores) == 2 and all(0 <= v <= 1 for v in scores)


@pytest.mark.parametrize(
    "params, fit_kwargs, match",
    [
        (dict(balance="reweight"), {}, "balance='reweight' need groups: set the 'group_by'"),
        (dict(selection="worst_group_accuracy"), {}, "need groups"),
        (
            dict(group_by="race", selection="worst_group_accuracy", validation_fraction=0),
            {},
            "need a validation split",
        ),
        (dict(group_by="hair"), {}, r"names the column\(s\) \['hair'\], which y does not have"),
        (dict(group_by=["race", "race"]), {}, "The 'group_by' parameter must be"),
        (dict(balance="yes"), {}, "The 'balance' parameter must be"),
        (dict(selection="accuracy"), {}, "The 'selection' parameter must be"),
        ({}, dict(sample_weight=np.ones(3)), r"must have shape \(120,\)"),
        ({}, dict(sample_weight=-np.ones(120)), "non-negative"),
        ({}, dict(sample_weight=np.zeros(120)), "positive sum"),
    ],
)
def test_errors_name_the_parameter(faces, params, fit_kwargs, match):
    X, y = faces
    with pytest.raises(ValueError, match=match):
        MultiAttributeClassifier(**SMALL, max_epochs=1, **params).fit(X, y, **fit_kwargs)


def test_checkpoint_of_other_weights_is_refused(faces, tmp_path):
    X, y = faces
    params = dict(SMALL, max_epochs=1, checkpoint_dir=tmp_path)
    MultiAttributeClassifier(**params).fit(X, y, sample_weight=np.ones(len(X)))
    with pytest.raises(ValueError, match="checkpoint"):
        MultiAttributeClassifier(**params).fit(X, y, sample_weight=np.arange(len(X)) + 1.0)


# ---------------------------------------------------------------- scikit-learn and fusion
def test_sample_weight_is_routed_by_scikit_learn(faces, monkeypatch):
    X, y = faces
    seen = []
    check = MultiAttributeClassifier._check_fit_data

    def spy(self, X, y, validation_data, sample_weight=None):
        seen.append(None if sample_weight is None else np.asarray(sample_weight))
        return check(self, X, y, validation_data, sample_weight)

    monkeypatch.setattr(MultiAttributeClassifier, "_check_fit_data", spy)
    weight = np.arange(len(X)) + 1.0
    with sklearn.config_context(enable_metadata_routing=True):
        est = MultiAttributeClassifier(**SMALL, max_epochs=1).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        cross_validate(est, X, y, params={"sample_weight": weight}, cv=KFold(2))
    assert [w.tolist() for w in seen] == [weight[60:].tolist(), weight[:60].tolist()]


def test_fusion_passes_sample_weights_and_nested_mitigation_to_its_parts(monkeypatch):
    X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=1)
    calls = []
    fit = MultiAttributeClassifier.fit

    def spy(self, X, y, validation_data=None, sample_weight=None):
        calls.append((self.attributes, y.copy(), sample_weight, validation_data))
        return fit(self, X, y, validation_data, sample_weight)

    monkeypatch.setattr(MultiAttributeClassifier, "fit", spy)
    tiny = dict(backbone="tiny", weights=None, image_size=16, max_epochs=1)
    clf = GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **tiny),
        specialist=MultiAttributeClassifier(
            attributes=("age", "race"), age_bins="fairface", **tiny
        ),
        random_state=0,
        strategy="separate",
    ).set_params(specialist__group_by="race", specialist__balance="reweight")
    weight = np.arange(len(X)) + 1.0  # image i weighs i + 1: each row's weight names its image
    clf.fit(X, y, sample_weight=weight)
    gender_call, *specialist_calls = calls
    np.testing.assert_array_equal(gender_call[2], weight)
    columns = ["gender", "age", "race"]
    for attributes, y_fit, w, (_, y_val, w_val) in specialist_calls:
        assert attributes == ("age", "race") and y_fit["gender"].nunique() == 1
        assert len(w) == len(y_fit) > len(w_val) > 0
        # each row's weight is its original image's: that image's labels are the row's
        for labels, weights in ((y_fit, w), (y_val, w_val)):
            originals = y.iloc[(np.asarray(weights) - 1).astype(int)].reset_index(drop=True)
            pd.testing.assert_frame_equal(
                originals[columns], labels[columns].reset_index(drop=True)
            )
    assert all(s.balance == "reweight" for s in clf.specialists_.values())


def test_shared_fusion_network_reads_the_group_column_it_balances(monkeypatch):
    """strategy="shared": the network's y has each attribute split per gender, and
    the specialist's group_by column alongside, unsplit, for balancing only."""
    X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=1)
    calls = []
    fit = MultiAttributeClassifier.fit

    def spy(self, X, y, validation_data=None, sample_weight=None):
        calls.append((self.attributes, y.copy(), sample_weight))
        return fit(self, X, y, validation_data, sample_weight)

    monkeypatch.setattr(MultiAttributeClassifier, "fit", spy)
    tiny = dict(backbone="tiny", weights=None, image_size=16, max_epochs=1)
    clf = GenderFusionClassifier(
        specialist=MultiAttributeClassifier(attributes=("race",), validation_fraction=0, **tiny),
        strategy="shared",
        random_state=0,
    ).set_params(specialist__group_by="race", specialist__balance="reweight")
    weight = np.arange(len(X)) + 1.0
    clf.fit(X, y, sample_weight=weight)
    [(attributes, y_fit, w)] = calls
    assert attributes == ("gender", "race@Male", "race@Female")
    np.testing.assert_array_equal(w, weight)
    assert y_fit["race"].tolist() == y["race"].tolist()  # every face's race, whatever its gender
    men = y["gender"].to_numpy() == "Male"
    assert y_fit["race@Male"][men].tolist() == y["race"][men].tolist()
    assert y_fit["race@Male"][~men].isna().all()
    assert clf.shared_estimator_.group_by == "race" and clf.predict(X[:3]).shape == (3, 2)


# ---------------------------------------------------------------- benchmark
@pytest.mark.realdata
@requires_utkface
def test_fairness_benchmark_smoke(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    try:
        import fairness_utkface

        results = fairness_utkface.main(
            [
                *("--n", "160", "--image-size", "32", "--epochs", "1", "--weights", "none"),
                *("--n-boot", "50", "--min-race-size", "5", "--verbose", "0"),
                *("--recipes", "sample_race_gender", "select_worst_race_gender"),
                *("--out", str(tmp_path / "fair"), "--save-predictions"),
            ]
        )
        # a saved baseline stands in for its fit: the same changes, the baseline not refitted
        again = fairness_utkface.main(
            [
                *("--n", "160", "--image-size", "32", "--epochs", "1", "--weights", "none"),
                *("--n-boot", "50", "--min-race-size", "5", "--verbose", "0"),
                *("--recipes", "select_worst_race_gender"),
                *("--baseline", str(tmp_path / "fair.npz")),
            ]
        )
    finally:
        for name in ("_common", "_intervals", "accuracy_utkface", "fairness_utkface"):
            sys.modules.pop(name, None)
    rows = results["rows"]
    assert [row["recipe"] for row in rows] == [
        "baseline",
        "sample_race_gender",
        "select_worst_race_gender",
    ]
    for row in rows:
        gap = row["gender_gap"]
        by_race = {r["race"]: r for r in row["by_race"]}
        best, worst = by_race[gap["best"]], by_race[gap["worst"]]
        assert gap["value"] == pytest.approx(best["gender_accuracy"] - worst["gender_accuracy"])
        assert gap["lower"] <= gap["value"] <= gap["upper"]
        assert row["fit_s"] > 0 and row["gender_accuracy"] == row["gender_interval"]["value"]
        for r in row["by_race"]:
            assert r["gender_lower"] <= r["gender_accuracy"] <= r["gender_upper"]
    assert "change" in rows[1]["gender_gap"] and "gender_change" in rows[1]
    assert "| recipe |" in (tmp_path / "fair.md").read_text()
    [row] = again["rows"]
    assert row["recipe"] == "select_worst_race_gender"
    for key in ("gender_change", "race_change", "age9_change"):
        assert row[key] == rows[2][key]
    assert row["gender_gap"]["change"] == rows[2]["gender_gap"]["change"]
