"""One set of defaults for the Python API and the command line, and the rule of freeze="auto"."""

import pandas as pd
import pytest
import torch

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn import _multi_attribute as multi_attribute
from gar_sklearn._defaults import DEFAULTS, auto_frozen_stages
from gar_sklearn.backbones import TinyConvNet, WeightsUnavailableError, build_backbone
from gar_sklearn.cli import _model
from gar_sklearn.cli._errors import cli_spelling
from gar_sklearn.cli._presets import DEFAULTS as CLI_DEFAULTS
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import FAIRFACE_AGE_GROUPS

TINY = dict(backbone="tiny", image_size=16, max_epochs=1, verbose=0, random_state=0)


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(40, image_size=16, gender_dependent=True, random_state=0)


def test_the_estimators_and_the_command_share_one_table():
    params = MultiAttributeClassifier().get_params()
    assert {k: params[k] for k in DEFAULTS} == DEFAULTS
    assert (params["backbone"], params["freeze"], params["age_bins"]) == (
        "resnet50",
        "auto",
        "fairface",
    )
    assert (params["max_epochs"], params["patience"], params["verbose"]) == (30, 5, 1)
    cli_names = {"max_epochs": "epochs"}
    for name, value in DEFAULTS.items():
        if name not in ("verbose", "age_bins"):  # -q/-v; --age-bins auto (below)
            assert CLI_DEFAULTS[cli_names.get(name, name)] == value, name
    # the command's "auto" keeps group labels, and bins numeric ages as the library does
    ages = pd.Series([3, 25, 71])
    assert _model.resolve_age_bins("auto", ages) == DEFAULTS["age_bins"]
    assert _model.resolve_age_bins("auto", pd.Series(["0-2", "20-29"])) is None
    # the fusion model's default parts are the estimator with its defaults
    gender, specialist, _ = GenderFusionClassifier()._parts()
    for part in (gender, specialist):
        assert {k: part.get_params()[k] for k in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(
    "n_stages, weights, device, expected",
    [
        (20, "DEFAULT", "cpu", 15),  # mobilenet_v2
        (6, "DEFAULT", "cpu", 4),  # resnets: stem, layer1-3 frozen
        (4, "weights.pth", "cpu", 3),  # a weights file is pretrained too
        (20, "DEFAULT", "cuda", 0),  # a GPU fine-tunes everything
        (20, "DEFAULT", "cuda:1", 0),
        (20, None, "cpu", 0),  # random weights: frozen features would learn nothing
        (1, "DEFAULT", "cpu", 0),  # a backbone without a stage split
    ],
)
def test_auto_freeze_rule(n_stages, weights, device, expected):
    assert auto_frozen_stages(n_stages, weights, device) == expected


def test_the_command_and_the_library_freeze_alike():
    for name, n_frozen in (("mobilenet_v2", 15), ("resnet18", 4)):
        backbone = build_backbone(name, weights=None)
        assert _model.resolve_freeze("auto", backbone, "DEFAULT") == n_frozen
        assert auto_frozen_stages(len(backbone.stage_names), "DEFAULT", "cpu") == n_frozen
        assert _model.resolve_freeze("auto", backbone, "DEFAULT", "cuda:0") is None


def test_freeze_auto_in_fit_follows_the_weights(faces, tmp_path):
    X, y = faces
    weights = tmp_path / "tiny.pth"
    torch.save(TinyConvNet().state_dict(), weights)  # "pretrained" tiny weights
    pretrained = MultiAttributeClassifier(weights=str(weights), device="cpu", **TINY).fit(X, y)
    assert pretrained.n_frozen_stages_ == 3 and pretrained.used_feature_cache_
    assert pretrained.stage_names_[:3] == ["block1", "block2", "block3"]
    scratch = MultiAttributeClassifier(weights=None, device="cpu", **TINY).fit(X, y)
    assert scratch.n_frozen_stages_ == 0 and not scratch.used_feature_cache_


def test_ages_default_to_fairface_groups_in_both_estimators(faces):
    X, y = faces
    clf = MultiAttributeClassifier(weights=None, **TINY).fit(X, y)
    assert clf.age_binner_ is not None
    assert set(clf.classes_[1]) <= set(FAIRFACE_AGE_GROUPS)
    assert set(clf.predict(X)[:, 1]) <= set(FAIRFACE_AGE_GROUPS)
    fusion = GenderFusionClassifier(
        strategy="separate",  # the write-up's design: a network per part
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), weights=None, **TINY),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), weights=None, **TINY),
        random_state=0,
    ).fit(X, y)
    assert list(fusion.classes_[1]) == list(clf.classes_[1])
    assert all(s.age_binner_ is not None for s in fusion.specialists_.values())


def test_unavailable_weights_say_what_to_do_in_python_and_cli_spelling(
    faces, tmp_path, monkeypatch
):
    def unavailable(name, weights):
        raise WeightsUnavailableError(
            "The pretrained weights could not be downloaded. Either put the file into the hub "
            "cache, or pass weights=<path to a state_dict file>, or weights=None."
        )

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "mobilenet_v2-b0353104.pth").write_bytes(b"")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(multi_attribute, "build_backbone", unavailable)
    X, y = faces
    with pytest.raises(WeightsUnavailableError) as info:
        MultiAttributeClassifier(**{**TINY, "backbone": "resnet50"}).fit(X, y)
    message = str(info.value)
    assert message.endswith(
        "Or choose a backbone whose weights are at hand: backbone='mobilenet_v2'."
    )
    assert "weights=None" in message
    spelled = cli_spelling(message)
    assert "--backbone mobilenet_v2" in spelled and "--weights none" in spelled
