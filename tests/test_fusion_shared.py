"""GenderFusionClassifier(strategy="shared"): one network, a gender head and per-gender heads."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV, KFold

import gar_sklearn
from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn._fusion_shared import (
    GenderHeadsNetwork,
    expand_targets,
    route_probas,
    shared_network,
)
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import AgeBinner

PARTS = dict(backbone="tiny", weights=None, image_size=16, lr=1e-2, batch_size=32)
GENDERS = ("Male", "Female")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_shared(epochs=1, gender_from="auto", age_bins="fairface", **params):
    parts = {**PARTS, "max_epochs": epochs}
    return GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **parts),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), age_bins=age_bins, **parts),
        strategy="shared",
        gender_from=gender_from,
        **{"random_state": 0, **params},
    )


@pytest.fixture(scope="module")
def data():
    X, y = make_synthetic_faces(360, image_size=16, gender_dependent=True, random_state=0)
    return X[:240], y[:240], X[240:], y[240:].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return make_shared(epochs=10).fit(X, y)


@pytest.fixture(scope="module")
def small():
    return make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=1)


def in_classes(p, head_classes, classes):
    """A head's probabilities as columns of ``classes`` (0 for a class it lacks)."""
    out = np.zeros((len(p), len(classes)))
    for j, c in enumerate(np.asarray(head_classes).tolist()):
        out[:, list(np.asarray(classes).tolist()).index(c)] = p[:, j]
    return out


def heads_by_hand(clf, X):
    """P(gender) from the network's gender head, and each gender's heads in clf's classes."""
    net = clf.shared_estimator_
    probas = dict(zip(net.attributes_, net.predict_proba(X)))
    classes = dict(zip(net.attributes_, net.classes_))
    p_gender = in_classes(probas["gender"], classes["gender"], clf.classes_[0])
    per_gender = {
        g: [
            in_classes(probas[f"{a}@{g}"], classes[f"{a}@{g}"], clf.classes_[1 + i])
            for i, a in enumerate(("age", "race"))
        ]
        for g in GENDERS
    }
    return p_gender, per_gender


# ---------------------------------------------------------------- targets and the network
def labels(column):
    return [None if pd.isna(v) else v for v in column.tolist()]


def test_expand_targets_puts_each_label_in_its_genders_column():
    y = pd.DataFrame(
        {"gender": ["Male", "Female", "Female"], "age": [25, 71, 4], "race": ["A", "B", "C"]}
    )
    binner = AgeBinner("fairface").fit(y["age"])
    expanded = expand_targets(y, "gender", ("age", "race"), GENDERS, binner)
    assert list(expanded.columns) == [
        "gender",
        "age@Male",
        "age@Female",
        "race@Male",
        "race@Female",
    ]
    assert labels(expanded["gender"]) == ["Male", "Female", "Female"]
    assert labels(expanded["age@Male"]) == ["20-29", None, None]
    assert labels(expanded["age@Female"]) == [None, "more than 70", "3-9"]
    assert labels(expanded["race@Male"]) == ["A", None, None]
    assert labels(expanded["race@Female"]) == [None, "B", "C"]
    exact = expand_targets(y, "gender", ("age",), GENDERS, None)
    assert labels(exact["age@Female"]) == [None, 71, 4]


def test_shared_network_takes_the_specialists_settings():
    specialist = MultiAttributeClassifier(
        attributes=("age", "race"), age_bins="fairface", lr=0.3, loss_weights={"age": 2.0}
    )
    shares = {"m": 0.6, "f": 0.4}
    net = shared_network(specialist, "sex", ("age", "race"), ("m", "f"), True, shares)
    assert type(net) is GenderHeadsNetwork and isinstance(net, MultiAttributeClassifier)
    assert net.attributes == ("sex", "age@m", "age@f", "race@m", "race@f")
    assert net.missing_labels == "ignore" and net.age_bins is None and net.lr == 0.3
    # each gender's heads weigh its share: the two heads of an attribute weigh one head's
    assert net.loss_weights == pytest.approx(
        {"age@m": 1.2, "age@f": 0.8, "race@m": 0.6, "race@f": 0.4}
    )
    assert specialist.attributes == ("age", "race") and specialist.missing_labels == "raise"


def test_age_sigma_spreads_every_age_head():
    net = GenderHeadsNetwork(age_sigma=5.0)
    attributes = ("gender", "age@Male", "age@Female", "race@Male")
    classes = [
        np.array(["F", "M"]),
        np.array(["20-29", "3-9"]),  # the network's label order: by string
        np.array(["20-29", "3-9", "30-39"]),
        np.array(["A", "B"]),
    ]
    targets = net._age_soft_targets(attributes, classes, None)
    assert sorted(targets) == [1, 2]
    ages = np.array([25.0, 6.5, 35.0])  # the groups' midpoints
    for k, n in ((1, 2), (2, 3)):
        logits = -((ages[:n, None] - ages[None, :n]) ** 2) / (2 * 5.0**2)
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(targets[k].numpy(), expected, rtol=1e-5)
    assert GenderHeadsNetwork()._age_soft_targets(attributes, classes, None) is None


# ---------------------------------------------------------------- learning and routing
def test_learns_the_gender_dependent_task(fitted, data):
    _, _, X_test, y_test = data
    pred, truth = fitted.predict(X_test), fitted.transform_targets(y_test)
    acc = [np.mean(pred[:, k] == truth[a].to_numpy()) for k, a in enumerate(fitted.attributes_)]
    assert acc[0] >= 0.95 and acc[1] >= 0.7 and acc[2] >= 0.85, acc  # chance: 0.5, 0.11, 0.2
    assert fitted.strategy_ == "shared" and fitted.gender_estimator_ is None
    assert fitted.attributes_ == ("gender", "age", "race")
    assert fitted.subset_sizes_ == {g: int(np.sum(data[1]["gender"] == g)) for g in GENDERS}


def test_each_genders_heads_read_the_cues_their_own_way(fitted, data):
    # the cues are reversed for women: the men's race head misreads women's faces
    _, _, X_test, y_test = data
    women = (y_test["gender"] == "Female").to_numpy()
    _, per_gender = heads_by_hand(fitted, X_test[women])
    truth = y_test["race"].to_numpy()[women]
    for g, good in (("Female", True), ("Male", False)):
        race = fitted.classes_[2][per_gender[g][1].argmax(axis=1)]
        accuracy = np.mean(race == truth)
        assert (accuracy >= 0.85) if good else (accuracy <= 0.5), (g, accuracy)


@pytest.mark.parametrize("routing", ["hard", "soft"])
def test_routing_combines_the_heads_of_each_gender(fitted, data, monkeypatch, routing):
    _, _, X_test, _ = data
    monkeypatch.setattr(fitted, "routing", routing)
    p_gender, per_gender = heads_by_hand(fitted, X_test)
    female = fitted.classes_[0].tolist().index("Female")
    w = p_gender[:, [female]]
    to_female = p_gender.argmax(axis=1) == female
    assert 0 < to_female.sum() < len(X_test)
    probas = fitted.predict_proba(X_test)
    np.testing.assert_allclose(probas[0], p_gender, atol=1e-7)
    for p, f, m in zip(probas[1:], per_gender["Female"], per_gender["Male"]):
        expected = np.where(to_female[:, None], f, m) if routing == "hard" else w * f + (1 - w) * m
        np.testing.assert_allclose(p, expected, atol=1e-6)
    # the outputs agree with one another
    pred = fitted.predict(X_test)
    for k, (p, classes) in enumerate(zip(probas, fitted.classes_)):
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(classes[p.argmax(axis=1)], pred[:, k])
    np.testing.assert_allclose(
        fitted.predict_age(X_test), probas[1] @ fitted.age_binner_.midpoints_
    )


@pytest.mark.parametrize("female_probability", [0.0, 0.25, 1.0])
def test_the_gender_head_decides_the_route(fitted, data, monkeypatch, female_probability):
    _, _, X_test, _ = data
    net = fitted.shared_estimator_
    real = net.predict_proba(X_test)
    female = net.classes_[0].tolist().index("Female")
    forced = np.zeros_like(real[0])
    forced[:, female], forced[:, 1 - female] = female_probability, 1 - female_probability
    monkeypatch.setattr(net, "predict_proba", lambda X: [forced] + real[1:])
    _, per_gender = heads_by_hand(fitted, X_test)
    for routing in ("hard", "soft"):
        monkeypatch.setattr(fitted, "routing", routing)
        probas = fitted.predict_proba(X_test)
        for p, f, m in zip(probas[1:], per_gender["Female"], per_gender["Male"]):
            if routing == "soft":
                expected = female_probability * f + (1 - female_probability) * m
            else:
                expected = f if female_probability > 0.5 else m
            np.testing.assert_allclose(p, expected, atol=1e-6)


def test_route_probas_by_hand():
    p_gender = np.array([[0.9, 0.1], [0.3, 0.7], [np.nan, np.nan]])
    a = [np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])]
    b = [np.array([[0.0, 1.0], [0.1, 0.9], [0.6, 0.4]])]
    hard = route_probas(p_gender, {"a": a, "b": b}, ["a", "b"], "hard")[0]
    soft = route_probas(p_gender, {"a": a, "b": b}, ["a", "b"], "soft")[0]
    np.testing.assert_allclose(hard[:2], [[1.0, 0.0], [0.1, 0.9]])
    np.testing.assert_allclose(
        soft[:2], [[0.9, 0.1], [0.3 * 0.5 + 0.7 * 0.1, 0.3 * 0.5 + 0.7 * 0.9]]
    )
    assert np.isnan(hard[2]).all() and np.isnan(soft[2]).all()


def test_a_dedicated_gender_estimator_can_decide(small, monkeypatch):
    X, y = small
    clf = make_shared(gender_from="gender_estimator").fit(X, y)
    assert isinstance(clf.gender_estimator_, MultiAttributeClassifier)
    assert clf.gender_estimator_.attributes_ == ("gender",)
    assert clf.shared_estimator_.attributes_[0] == "gender"  # the network keeps its gender head
    p_gender = in_classes(
        clf.gender_estimator_.predict_proba(X)[0],
        clf.gender_estimator_.classes_[0],
        clf.classes_[0],
    )
    _, per_gender = heads_by_hand(clf, X)
    female = clf.classes_[0].tolist().index("Female")
    w = p_gender[:, [female]]
    for routing in ("hard", "soft"):
        monkeypatch.setattr(clf, "routing", routing)
        probas = clf.predict_proba(X)
        np.testing.assert_allclose(probas[0], p_gender, atol=1e-7)
        for p, f, m in zip(probas[1:], per_gender["Female"], per_gender["Male"]):
            hard = np.where(p_gender.argmax(axis=1)[:, None] == female, f, m)
            np.testing.assert_allclose(
                p, hard if routing == "hard" else w * f + (1 - w) * m, atol=1e-6
            )


def test_a_class_of_one_gender_only_gets_no_probability_from_the_other(small, monkeypatch):
    X, y = small
    y = y.copy()
    women = (y["gender"] == "Female").to_numpy()
    y.loc[women & (y["race"] == "Others").to_numpy(), "race"] = "White"
    y.loc[np.flatnonzero(~women)[:2], "race"] = "Others"
    clf = make_shared().fit(X, y)
    net = clf.shared_estimator_
    race = dict(zip(net.attributes_, net.classes_))
    assert "Others" in race["race@Male"] and "Others" not in race["race@Female"]
    others = clf.classes_[2].tolist().index("Others")
    monkeypatch.setattr(clf, "routing", "hard")
    p_gender = clf.predict_proba(X)[0]
    to_female = p_gender.argmax(axis=1) == clf.classes_[0].tolist().index("Female")
    race_p = clf.predict_proba(X)[2]
    assert np.all(race_p[to_female, others] == 0) and np.all(race_p[~to_female, others] > 0)


# ---------------------------------------------------------------- what the network is fitted on
@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    real_fit = MultiAttributeClassifier.fit

    def fit(self, X, y, validation_data=None):
        calls.append(dict(est=self, y=y, valid=validation_data, checkpoint_dir=self.checkpoint_dir))
        return real_fit(self, X, y, validation_data)

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)
    return calls


def test_validation_data_and_checkpoints_reach_the_network(small, fit_calls, tmp_path):
    X, y = small
    X_val, y_val = make_synthetic_faces(20, image_size=16, gender_dependent=True, random_state=9)
    clf = make_shared(gender_from="gender_estimator").set_params(
        specialist__checkpoint_dir=tmp_path
    )
    clf.fit(X, y, validation_data=(X_val, y_val))
    gender_call, net_call = fit_calls
    assert gender_call["est"].attributes == ("gender",) and len(gender_call["valid"][0]) == 20
    binned = AgeBinner("fairface").fit(y["age"]).transform(y_val["age"])
    expected = expand_targets(y_val.assign(age=binned), "gender", ("age", "race"), GENDERS, None)
    pd.testing.assert_frame_equal(net_call["valid"][1], expected)
    assert net_call["y"].shape == (len(X), 5) and net_call["checkpoint_dir"] == str(
        tmp_path / "shared_network"
    )
    assert (tmp_path / "shared_network" / "last.pt").exists()
    assert clf.specialist.checkpoint_dir == tmp_path  # the template is not touched


def test_cached_feature_path(small):
    X, y = small
    clf = make_shared(epochs=2).set_params(specialist__freeze=2)
    clf.fit(X, y)
    assert clf.shared_estimator_.used_feature_cache_
    probas = clf.predict_proba(X)
    for p in probas:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    p_gender, per_gender = heads_by_hand(clf, X)
    female = clf.classes_[0].tolist().index("Female")
    to_female = p_gender.argmax(axis=1) == female
    for p, f, m in zip(probas[1:], per_gender["Female"], per_gender["Male"]):
        np.testing.assert_allclose(p, np.where(to_female[:, None], f, m), atol=1e-6)


def test_unreadable_images_get_nan_and_no_label(fitted, data, monkeypatch):
    _, _, X_test, _ = data
    monkeypatch.setattr(fitted.shared_estimator_, "on_error", "skip")
    X = [X_test[0], "/no/such/face.jpg", X_test[1]]
    with pytest.warns(UserWarning, match="face.jpg"):
        probas = fitted.predict_proba(X)
    assert all(np.isnan(p[1]).all() and not np.isnan(p[[0, 2]]).any() for p in probas)
    with pytest.warns(UserWarning):
        assert list(fitted.predict(X)[1]) == [None, None, None]


# ---------------------------------------------------------------- scikit-learn API, persistence
@pytest.mark.parametrize("gender_from", ["auto", "gender_estimator"])
def test_save_load_and_pickle_give_identical_predictions(small, tmp_path, gender_from):
    X, y = small
    model = make_shared(gender_from=gender_from, routing="soft").fit(X, y)
    model.save(tmp_path / "shared.gar")
    loaded = gar_sklearn.load(tmp_path / "shared.gar")
    assert type(loaded.shared_estimator_) is GenderHeadsNetwork
    assert loaded.strategy_ == "shared" and loaded.gender_from == gender_from
    for copy in (loaded, pickle.loads(pickle.dumps(model))):
        for routing in ("hard", "soft"):
            model.routing = copy.routing = routing
            for p, q in zip(model.predict_proba(X), copy.predict_proba(X)):
                np.testing.assert_array_equal(p, q)
    network = gar_sklearn.load(tmp_path / "shared.gar").shared_estimator_
    for p, q in zip(network.predict_proba(X), model.shared_estimator_.predict_proba(X)):
        np.testing.assert_array_equal(p, q)


def test_clone_and_a_grid_over_the_strategy(small):
    X, y = small
    clf = make_shared()
    copy = clone(clf)
    assert copy.strategy == "shared" and copy.gender_from == "auto"
    grid = GridSearchCV(
        clf.set_params(strategy="separate"),
        {"strategy": ["separate", "shared", "finetune"], "routing": ["hard", "soft"]},
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert sorted(grid.cv_results_["param_strategy"]) == sorted(
        ["separate", "shared", "finetune"] * 2
    )
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    best = grid.best_estimator_
    assert best.strategy_ == best.strategy
    assert hasattr(best, "shared_estimator_") == (best.strategy == "shared")


def test_refitting_with_another_strategy_drops_the_other_parts(small):
    X, y = small
    clf = make_shared().fit(X, y)
    assert not hasattr(clf, "specialists_")
    clf.set_params(strategy="separate").fit(X, y)
    assert clf.strategy_ == "separate" and set(clf.specialists_) == set(GENDERS)
    assert not hasattr(clf, "shared_estimator_")
    clf.predict_proba(X[:3])
    clf.set_params(strategy="shared").fit(X, y)
    assert not hasattr(clf, "specialists_") and not hasattr(clf, "train_sizes_")


class _NotAMultiAttributeClassifier(BaseEstimator):
    def __init__(self, attributes=("age", "race")):
        self.attributes = attributes

    def fit(self, X, y, validation_data=None):
        return self

    def predict_proba(self, X):
        return []


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"strategy": "separate", "gender_from": "shared_network"},
            r"The 'gender_from' parameter must be 'auto' or 'gender_estimator' with "
            r"strategy='separate'",
        ),
        ({"strategy": "joint"}, r"The 'strategy' parameter must be one of"),
        ({"gender_from": "head"}, r"The 'gender_from' parameter must be one of"),
        (
            {"specialist": _NotAMultiAttributeClassifier()},
            r"The 'specialist' parameter must be a MultiAttributeClassifier when strategy is "
            r"'shared' or 'finetune'",
        ),
    ],
)
def test_bad_parameters_fail_before_any_fit(small, monkeypatch, params, match):
    X, y = small

    def fit(self, X, y, validation_data=None):
        raise AssertionError("no part may be fitted")

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)
    with pytest.raises(ValueError, match=match):
        make_shared().set_params(**params).fit(X, y)
