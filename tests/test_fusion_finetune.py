"""GenderFusionClassifier(strategy="finetune"): specialists started from the shared network."""

import numpy as np
import pytest
import torch

import gar_sklearn
from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn._fusion_finetune import WarmStartedClassifier, finetune_part, load_warm_start
from gar_sklearn._fusion_shared import GenderHeadsNetwork
from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
from gar_sklearn.datasets import make_synthetic_faces

PARTS = dict(backbone="tiny", weights=None, image_size=16, lr=1e-2, batch_size=32)
GENDERS = ("Male", "Female")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_finetune(epochs=1, **params):
    parts = {**PARTS, "max_epochs": epochs}
    return GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **parts),
        specialist=MultiAttributeClassifier(
            attributes=("age", "race"), age_bins="fairface", **parts
        ),
        strategy="finetune",
        **{"random_state": 0, **params},
    )


@pytest.fixture(scope="module")
def small():
    return make_synthetic_faces(80, image_size=16, gender_dependent=True, random_state=1)


def _network(n_classes, seed):
    torch.manual_seed(seed)
    return MultiHeadNetwork(build_backbone("tiny", weights=None), n_classes, n_frozen=1)


def test_warm_start_copies_the_backbone_and_each_head_class_by_class():
    source = _network([2, 4, 3], seed=0)
    module = _network([3, 2], seed=1)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    heads = [(1, ["a", "b", "c", "d"]), (2, ["x", "y", "z"])]
    classes = [np.array(["b", "d", "e"]), np.array(["z", "x"])]
    load_warm_start(module, source, heads, classes)
    mine, theirs = module.state_dict(), source.state_dict()
    for key in mine:
        if not key.startswith("heads."):
            assert torch.equal(mine[key], theirs[key]), key
    w0, b0 = module.heads[0][-1].weight, module.heads[0][-1].bias
    assert torch.equal(w0[:2], source.heads[1][-1].weight[[1, 3]])
    assert torch.equal(b0[:2], source.heads[1][-1].bias[[1, 3]])
    assert torch.equal(w0[2], before["heads.0.1.weight"][2])  # "e": no source row
    assert torch.equal(module.heads[1][-1].weight, source.heads[2][-1].weight[[2, 0]])


def test_finetune_part_scales_the_learning_rates_and_stops_early():
    specialist = MultiAttributeClassifier(
        attributes=("age", "race"),
        lr=0.02,
        backbone_lr=0.004,
        patience=None,
        **{k: v for k, v in PARTS.items() if k != "lr"},
    )
    network = type("Fitted", (), {})()
    network.attributes_ = ("gender", "age@Male", "age@Female", "race@Male", "race@Female")
    network.classes_ = [np.array([0, 1])] * 5
    network.net_ = type("Net", (), {"module_": "module"})()
    part = finetune_part(specialist, network, "Female", ("age", "race"), 0.1)
    assert type(part) is WarmStartedClassifier
    assert part.lr == pytest.approx(0.002) and part.backbone_lr == pytest.approx(0.0004)
    assert part.patience == 2 and specialist.patience is None and specialist.lr == 0.02
    assert part._warm_start == ("module", [(2, [0, 1]), (4, [0, 1])])
    twin = part.__sklearn_clone__()
    assert twin._warm_start is part._warm_start and twin.lr == part.lr


def test_specialists_start_from_the_shared_networks_heads(small):
    # heads only (the backbone frozen and cached) and a vanishing learning rate: after an
    # epoch each specialist still answers as its gender's heads of the shared network
    X, y = small
    clf = make_finetune(finetune_lr=1e-12).set_params(specialist__freeze="backbone")
    clf.fit(X, y)
    network = clf.gender_estimator_
    assert type(network) is GenderHeadsNetwork
    probas = dict(zip(network.attributes_, network.predict_proba(X)))
    for g in GENDERS:
        part = clf.specialists_[g]
        assert type(part) is WarmStartedClassifier and not hasattr(part, "_warm_start")
        for a, p, classes in zip(part.attributes_, part.predict_proba(X), part.classes_):
            head = f"{a}@{g}"
            head_classes = network.classes_[network.attributes_.index(head)].tolist()
            assert classes.tolist() == head_classes
            np.testing.assert_allclose(p, probas[head], atol=1e-6)


def test_each_specialist_fine_tunes_on_its_gender_without_copies(small):
    X, y = small
    clf = make_finetune(epochs=2).fit(X, y)
    assert clf.strategy_ == "finetune" and not hasattr(clf, "shared_estimator_")
    for g in GENDERS:
        n_g = int((y["gender"] == g).sum())
        part = clf.specialists_[g]
        assert clf.subset_sizes_[g] == n_g
        assert clf.train_sizes_[g] < n_g  # its own images less the validation ones, no copies
        assert part.lr == pytest.approx(PARTS["lr"] * 0.1) and part.age_bins is None
        assert 1 <= len(part.history_) <= 2
    # the gender comes from the shared network's gender head
    network = clf.gender_estimator_
    p_gender = network.predict_proba(X)[0]
    np.testing.assert_array_equal(network.classes_[0], clf.classes_[0])
    np.testing.assert_allclose(clf.predict_proba(X)[0], p_gender, atol=1e-7)


def test_a_dedicated_gender_network_can_route_the_finetuned_specialists(small):
    X, y = small
    clf = make_finetune(gender_from="gender_estimator").fit(X, y)
    assert type(clf.gender_estimator_) is MultiAttributeClassifier
    assert clf.gender_estimator_.attributes_ == ("gender",)
    np.testing.assert_allclose(
        clf.predict_proba(X)[0], clf.gender_estimator_.predict_proba(X)[0], atol=1e-7
    )


def test_save_and_load_give_identical_predictions(small, tmp_path):
    X, y = small
    model = make_finetune().fit(X, y)
    model.save(tmp_path / "finetune.gar")
    loaded = gar_sklearn.load(tmp_path / "finetune.gar")
    assert type(loaded.gender_estimator_) is GenderHeadsNetwork
    assert {type(s) for s in loaded.specialists_.values()} == {WarmStartedClassifier}
    for routing in ("hard", "soft"):
        model.routing = loaded.routing = routing
        for p, q in zip(model.predict_proba(X), loaded.predict_proba(X)):
            np.testing.assert_array_equal(p, q)


def test_bad_finetune_lr_fails_before_any_fit(small, monkeypatch):
    X, y = small

    def fit(self, X, y, validation_data=None):
        raise AssertionError("no part may be fitted")

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)
    with pytest.raises(
        ValueError, match="The 'finetune_lr' parameter must be a positive float. Got 0 instead."
    ):
        make_finetune(finetune_lr=0).fit(X, y)
    women = np.flatnonzero((y["gender"] == "Female").to_numpy())
    y_one = y.assign(gender="Male")
    y_one.loc[women[:1], "gender"] = "Female"
    with pytest.raises(ValueError, match="Too few images to hold out a validation split for the"):
        make_finetune().fit(X, y_one)
