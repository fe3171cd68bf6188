"""GenderFusionClassifier: learning, routing, probability oracles, classes, errors, API, growth."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
from gar_sklearn.augmentation import RandomLight
from gar_sklearn.datasets import make_synthetic_faces

PARTS = dict(backbone="tiny", weights=None, image_size=32, lr=1e-2, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny networks: a second intra-op thread only adds contention on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_fusion(epochs=1, image_size=32, age_bins="fairface", validation_fraction=0.1, **params):
    parts = {**PARTS, "image_size": image_size, "max_epochs": epochs}
    return GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **parts),
        specialist=MultiAttributeClassifier(
            attributes=("age", "race"),
            age_bins=age_bins,
            validation_fraction=validation_fraction,
            **parts,
        ),
        augment=RandomLight(p=1.0),  # no flips or crops: they would move the synthetic cues
        **{"random_state": 0, "strategy": "separate", **params},
    )


@pytest.fixture(scope="module")
def data():
    """Synthetic faces whose age and race cues mean different classes for women and men."""
    X, y = make_synthetic_faces(500, image_size=32, gender_dependent=True, random_state=0)
    return (
        X[:320],
        y.iloc[:320].reset_index(drop=True),
        X[320:],
        y.iloc[320:].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return make_fusion(epochs=15).fit(X, y)


@pytest.fixture(scope="module")
def small():
    X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=1)
    return X, y


def accuracy(clf, X, y):
    pred, truth = clf.predict(X), clf.transform_targets(y)
    return {
        a: float(np.mean(pred[:, k] == truth[a].to_numpy())) for k, a in enumerate(clf.attributes_)
    }


def force_gender(monkeypatch, clf, female_probability):
    """Make the fitted gender classifier answer P(Female) = female_probability for every image."""
    classes = clf.gender_estimator_.classes_[0].tolist()

    def predict_proba(X):
        p = np.zeros((len(X), 2), dtype=np.float32)
        p[:, classes.index("Female")] = female_probability
        p[:, classes.index("Male")] = 1 - female_probability
        return [p]

    monkeypatch.setattr(clf.gender_estimator_, "predict_proba", predict_proba)


def specialist_probas(clf, g, X):
    """A specialist's probabilities in the fusion model's classes (same classes here)."""
    part = clf.specialists_[g]
    for k in range(len(part.classes_)):
        np.testing.assert_array_equal(part.classes_[k], clf.classes_[1 + k])
    return part.predict_proba(X)


# ---------------------------------------------------------------- learning and routing
def test_learns_the_gender_dependent_task(fitted, data):
    _, _, X_test, y_test = data
    acc = accuracy(fitted, X_test, y_test)
    # chance: 0.5, 0.11 and 0.2
    assert acc["gender"] >= 0.95 and acc["age"] >= 0.8 and acc["race"] >= 0.9, acc
    assert fitted.score(X_test, y_test) == pytest.approx(np.mean(list(acc.values())))


def test_each_specialist_reads_the_cues_its_own_way(fitted, data):
    # the men's model applied to women reads the reversed cues: mostly wrong
    _, _, X_test, y_test = data
    women = (y_test["gender"] == "Female").to_numpy()
    truth = fitted.transform_targets(y_test)[women]
    for g, expected in (("Female", "high"), ("Male", "low")):
        part = fitted.specialists_[g]
        pred = part.predict(X_test[women])
        race_acc = np.mean(pred[:, 1] == truth["race"].to_numpy())
        assert (race_acc >= 0.9) if expected == "high" else (race_acc <= 0.5), (g, race_acc)


@pytest.mark.parametrize("female_probability", [0.0, 1.0])
def test_hard_routing_sends_a_wrongly_gendered_image_to_that_genders_specialist(
    fitted, data, monkeypatch, female_probability
):
    _, _, X_test, y_test = data
    force_gender(monkeypatch, fitted, female_probability)
    g = "Female" if female_probability == 1.0 else "Male"
    expected = specialist_probas(fitted, g, X_test)
    probas = fitted.predict_proba(X_test)
    for p, q in zip(probas[1:], expected):
        np.testing.assert_allclose(p, q, atol=1e-6)
    assert set(fitted.predict(X_test)[:, 0]) == {g}
    # those of the other gender are now read with the wrong cues
    other = (y_test["gender"] != g).to_numpy()
    race = fitted.predict(X_test)[other, 2]
    assert np.mean(race == y_test["race"].to_numpy()[other]) <= 0.5


def test_hard_routing_follows_the_gender_prediction_image_by_image(fitted, data, monkeypatch):
    _, _, X_test, _ = data
    true_route = fitted.gender_estimator_.predict(X_test)[:, 0]
    flipped = [p[:, ::-1].copy() for p in fitted.gender_estimator_.predict_proba(X_test)]
    monkeypatch.setattr(fitted.gender_estimator_, "predict_proba", lambda X: flipped)
    probas = fitted.predict_proba(X_test)
    female = specialist_probas(fitted, "Female", X_test)
    male = specialist_probas(fitted, "Male", X_test)
    to_female = true_route == "Male"  # every gender call is now the wrong one
    assert 0 < to_female.sum() < len(X_test)
    for p, f, m in zip(probas[1:], female, male):
        np.testing.assert_allclose(p, np.where(to_female[:, None], f, m), atol=1e-6)


@pytest.mark.parametrize("female_probability", [None, 0.25])
def test_soft_routing_is_the_gender_weighted_mixture(fitted, data, monkeypatch, female_probability):
    _, _, X_test, _ = data
    if female_probability is not None:
        force_gender(monkeypatch, fitted, female_probability)
    monkeypatch.setattr(fitted, "routing", "soft")
    p_gender = fitted.gender_estimator_.predict_proba(X_test)[0].astype(float)
    female_col = fitted.gender_estimator_.classes_[0].tolist().index("Female")
    w = p_gender[:, [female_col]]
    female = specialist_probas(fitted, "Female", X_test)
    male = specialist_probas(fitted, "Male", X_test)
    probas = fitted.predict_proba(X_test)
    np.testing.assert_array_equal(fitted.classes_[0], fitted.gender_estimator_.classes_[0])
    np.testing.assert_allclose(probas[0], p_gender)
    for p, f, m in zip(probas[1:], female, male):
        np.testing.assert_allclose(p, w * f + (1 - w) * m, atol=1e-6)


@pytest.mark.parametrize("routing", ["hard", "soft"])
def test_probability_oracles(fitted, data, monkeypatch, routing):
    _, _, X_test, _ = data
    monkeypatch.setattr(fitted, "routing", routing)
    probas = fitted.predict_proba(X_test)
    pred = fitted.predict(X_test)
    assert pred.shape == (len(X_test), 3)
    for k, (p, classes) in enumerate(zip(probas, fitted.classes_)):
        assert p.shape == (len(X_test), len(classes))
        assert np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(classes[p.argmax(axis=1)], pred[:, k])
    frame = fitted.predict_frame(X_test, proba=True)
    np.testing.assert_array_equal(frame[list(fitted.attributes_)].to_numpy(), pred)
    mids = fitted.age_binner_.midpoints_
    np.testing.assert_allclose(fitted.predict_age(X_test), probas[1] @ mids)
    np.testing.assert_allclose(frame["age_years"], probas[1] @ mids)


def test_unreadable_images_get_nan_probabilities_and_no_label(fitted, data, monkeypatch):
    _, _, X_test, _ = data
    for part in [fitted.gender_estimator_, *fitted.specialists_.values()]:
        monkeypatch.setattr(part, "on_error", "skip")
    X = [X_test[0], "/no/such/face.jpg", X_test[1]]
    with pytest.warns(UserWarning, match="face.jpg"):
        probas = fitted.predict_proba(X)
    assert all(np.isnan(p[1]).all() and not np.isnan(p[[0, 2]]).any() for p in probas)
    with pytest.warns(UserWarning):
        pred = fitted.predict(X)
    assert list(pred[1]) == [None, None, None]
    np.testing.assert_array_equal(pred[[0, 2]], fitted.predict(X_test[:2]))


# ---------------------------------------------------------------- classes
def test_classes_cover_labels_one_specialist_never_saw(monkeypatch):
    X, y = make_synthetic_faces(120, image_size=16, random_state=3)
    women = (y["gender"] == "Female").to_numpy()
    y.loc[women & (y["race"] == "Others").to_numpy(), "race"] = "White"  # "Others": men only
    y.loc[women, "age"] = np.minimum(y.loc[women, "age"], 85)
    y.loc[np.flatnonzero(women)[0], "age"] = 82  # the women's last group: "80+"
    y.loc[np.flatnonzero(~women)[0], "age"] = 95  # the men's: "80-89" and "90+"
    clf = make_fusion(image_size=16, age_bins=10).fit(X, y)

    female, male = clf.specialists_["Female"], clf.specialists_["Male"]
    assert "Others" not in female.classes_[1] and "Others" in male.classes_[1]
    assert female.classes_[0][-2:].tolist() == ["70-79", "80+"]
    assert clf.classes_[2].tolist() == sorted(set(y["race"]))
    assert clf.classes_[1][-2:].tolist() == ["80-89", "90+"]
    others = clf.classes_[2].tolist().index("Others")
    ninety, eighty = len(clf.classes_[1]) - 1, len(clf.classes_[1]) - 2

    force_gender(monkeypatch, clf, 1.0)
    probas = clf.predict_proba(X)
    f_age, f_race = female.predict_proba(X)
    assert np.all(probas[2][:, others] == 0) and np.all(probas[1][:, ninety] == 0)
    np.testing.assert_allclose(probas[1][:, eighty], f_age[:, -1], atol=1e-6)  # "80+" -> "80-89"
    np.testing.assert_allclose(probas[1][:, :eighty], f_age[:, :-1], atol=1e-6)
    np.testing.assert_allclose(np.delete(probas[2], others, axis=1), f_race, atol=1e-6)

    monkeypatch.setattr(clf, "routing", "soft")
    force_gender(monkeypatch, clf, 0.5)
    m_age, m_race = male.predict_proba(X)
    probas = clf.predict_proba(X)
    np.testing.assert_allclose(
        probas[2][:, others], 0.5 * m_race[:, male.classes_[1].tolist().index("Others")], atol=1e-6
    )
    np.testing.assert_allclose(probas[1][:, ninety], 0.5 * m_age[:, -1], atol=1e-6)
    for p in probas:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


# ---------------------------------------------------------------- errors
class _NotFitted(Exception):
    pass


@pytest.fixture
def no_fit(monkeypatch):
    """Make any part's fit fail loudly: the errors below must come before the first fit."""

    def fit(self, X, y, validation_data=None):
        raise _NotFitted

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)


def _women(y, n):
    """y with only the first n women kept as women."""
    keep = np.flatnonzero((y["gender"] == "Female").to_numpy())[n:]
    return y.assign(gender=np.where(np.isin(np.arange(len(y)), keep), "Male", y["gender"]))


@pytest.mark.parametrize(
    "change, params, match",
    [
        (
            lambda y: y.assign(gender="Male"),
            {},
            r"holds only 'Male'.*both genders \['Male', 'Female'\]",
        ),
        (
            lambda y: y.assign(gender=y["gender"].str[0]),
            {},
            r"holds the value\(s\) \['[MF]', '[MF]'\], outside the 'genders' parameter \['Male', 'Female'\]",
        ),
        (
            lambda y: y.assign(gender=y["gender"].replace("Female", "Woman")),
            {},
            r"value\(s\) \['Woman'\]",
        ),
        (
            lambda y: _women(y, 1),
            {},
            r"Too few images to hold out a validation split for the 'Female' specialist: 1 image",
        ),
        (
            lambda y: y.drop(columns="race"),
            {},
            r"y is missing the attribute column\(s\) \['race'\]",
        ),
        (
            lambda y: y,
            {"routing": "sideways"},
            r"The 'routing' parameter must be one of \['hard', 'soft'\]",
        ),
        (lambda y: y, {"genders": ("Male",)}, r"The 'genders' parameter must be a sequence of two"),
        (lambda y: y, {"genders": "MF"}, r"The 'genders' parameter must be a sequence of two"),
        (
            lambda y: y,
            {"grow_subsets": "yes"},
            r"The 'grow_subsets' parameter must be True or False",
        ),
        (lambda y: y, {"augment": "flip"}, r"The 'augment' parameter must be None or an augmenter"),
        (
            lambda y: y,
            {"specialist": MultiAttributeClassifier(attributes=("gender", "age"))},
            r"attributes other than the gender column 'gender'",
        ),
        (
            lambda y: y,
            {"gender_estimator": "resnet"},
            r"The 'gender_estimator' parameter must be None",
        ),
        (
            lambda y: y,
            {"gender_estimator": MultiAttributeClassifier(attributes=("age",))},
            r"The 'gender_estimator' parameter must predict the gender column 'gender'. Got attributes=\['age'\]",
        ),
    ],
)
def test_bad_targets_and_parameters_fail_before_any_fit(small, no_fit, change, params, match):
    X, y = small
    clf = make_fusion(image_size=16).set_params(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, change(y))


def test_validation_data_without_one_gender(small, no_fit):
    X, y = small
    men = (y["gender"] == "Male").to_numpy()
    with pytest.raises(ValueError, match="validation_data holds no image with gender='Female'"):
        make_fusion(image_size=16).fit(X, y, validation_data=(X[men], y[men]))


def test_specialist_errors_name_the_gender(small):
    X, y = small
    clf = make_fusion(image_size=16).set_params(specialist__validation_fraction=1.5)
    with pytest.raises(
        ValueError, match=r"specialist for gender='Male' .*'validation_fraction' parameter"
    ):
        clf.fit(X, y)


def test_bad_routing_at_predict_and_predict_before_fit(fitted, data, monkeypatch):
    _, _, X_test, _ = data
    with pytest.raises(NotFittedError):
        make_fusion().predict(X_test)
    monkeypatch.setattr(fitted, "routing", "mixed")
    with pytest.raises(ValueError, match="The 'routing' parameter must be one of"):
        fitted.predict(X_test)


# ---------------------------------------------------------------- scikit-learn API
def test_init_stores_parameters_and_nested_parameters_reach_the_parts():
    gender, specialist, aug = (
        MultiAttributeClassifier(attributes=("gender",)),
        MultiAttributeClassifier(),
        object(),
    )
    clf = GenderFusionClassifier(
        gender_estimator=gender, specialist=specialist, genders=["m", "f"], augment=aug
    )
    assert clf.gender_estimator is gender and clf.specialist is specialist and clf.augment is aug
    assert clf.genders == ["m", "f"]
    params = clf.get_params()
    assert params["specialist__lr"] == 1e-3 and params["gender_estimator__backbone"] == "resnet50"
    clf.set_params(specialist__lr=0.5, gender_estimator__backbone="tiny", routing="soft")
    assert specialist.lr == 0.5 and gender.backbone == "tiny" and clf.routing == "soft"
    copy = clone(clf)
    assert copy.specialist is not specialist and copy.get_params()["specialist__lr"] == 0.5
    assert copy.get_params()["gender_estimator__backbone"] == "tiny"
    with pytest.raises(ValueError, match="Invalid parameter 'no_such'"):
        clf.set_params(specialist__no_such=1)


def test_nested_parameters_of_default_parts_create_them():
    clf = GenderFusionClassifier(gender_column="sex")
    assert clf.specialist is None and clf.gender_estimator is None
    clf.set_params(specialist__lr=0.5, gender_estimator__backbone="tiny")
    assert isinstance(clf.specialist, MultiAttributeClassifier)
    assert clf.specialist.attributes == ("age", "race") and clf.specialist.lr == 0.5
    assert clf.gender_estimator.attributes == ("sex",) and clf.gender_estimator.backbone == "tiny"
    assert clone(clf).get_params()["specialist__lr"] == 0.5
    other = GenderFusionClassifier().set_params(gender_column="sex", gender_estimator__lr=0.1)
    assert other.gender_estimator.attributes == ("sex",)


def test_default_parts_are_the_librarys_classifiers_on_one_backbone(small, monkeypatch):
    X, y = small
    seen = []
    real_fit = MultiAttributeClassifier.fit

    def fit(self, X, y, validation_data=None):
        seen.append(self.get_params())
        if len(seen) == 2:
            raise _NotFitted
        # the default network is too big for a unit test: fit a tiny one in its place
        self.set_params(backbone="tiny", weights=None, image_size=16, max_epochs=1)
        return real_fit(self, X, y, validation_data)

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)
    clf = GenderFusionClassifier(random_state=0, strategy="separate")
    with pytest.raises(_NotFitted):
        clf.fit(X, y)
    (gender, specialist) = seen
    assert gender["attributes"] == ("gender",) and specialist["attributes"] == ("age", "race")
    assert gender["backbone"] == specialist["backbone"] == MultiAttributeClassifier().backbone
    assert gender["random_state"] is not None and specialist["random_state"] is not None
    assert clf.gender_estimator is None and clf.specialist is None  # fit leaves params alone


def test_grid_search_reaches_into_the_specialist(small):
    X, y = small
    grid = GridSearchCV(
        make_fusion(image_size=16),
        {"specialist__lr": [1e-2, 1e-3]},
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert sorted(grid.cv_results_["param_specialist__lr"]) == [1e-3, 1e-2]
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    best = grid.best_estimator_
    assert {part.lr for part in best.specialists_.values()} == {best.specialist.lr}


def test_pickle_round_trip_gives_identical_predictions(fitted, data, monkeypatch):
    _, _, X_test, _ = data
    copy = pickle.loads(pickle.dumps(fitted))
    for routing in ("hard", "soft"):
        monkeypatch.setattr(fitted, "routing", routing)
        copy.routing = routing
        for p, q in zip(fitted.predict_proba(X_test), copy.predict_proba(X_test)):
            np.testing.assert_array_equal(p, q)


def test_random_state_makes_fits_reproducible(small):
    X, y = small
    a = make_fusion(image_size=16, random_state=5).fit(X, y)
    b = make_fusion(image_size=16, random_state=5).fit(X, y)
    c = make_fusion(image_size=16, random_state=6).fit(X, y)
    for p, q in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    assert not all(np.array_equal(p, q) for p, q in zip(a.predict_proba(X), c.predict_proba(X)))
    seeds = [a.gender_estimator_.random_state] + [s.random_state for s in a.specialists_.values()]
    assert None not in seeds and len(set(seeds)) == 3
    assert a.specialist.random_state is None  # the template is not touched


# ---------------------------------------------------------------- growth
@pytest.fixture
def fit_calls(monkeypatch):
    """Record what each part is fitted on."""
    calls = []
    real_fit = MultiAttributeClassifier.fit

    def fit(self, X, y, validation_data=None):
        calls.append(
            dict(
                attributes=self.attributes,
                X=X,
                y=y.reset_index(drop=True),
                valid=validation_data,
                checkpoint_dir=self.get_params().get("checkpoint_dir"),
            )
        )
        return real_fit(self, X, y, validation_data)

    monkeypatch.setattr(MultiAttributeClassifier, "fit", fit)
    return calls


def _keys(images):
    from gar_sklearn.preprocessing._images import as_image_source

    return as_image_source(images).cache_keys()


@pytest.mark.parametrize("grow", [True, False])
@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
def test_specialists_train_on_grown_subsets_of_their_gender(
    small, fit_calls, grow, validation_fraction
):
    X, y = small
    n = len(X)
    clf = make_fusion(
        image_size=16, grow_subsets=grow, validation_fraction=validation_fraction
    ).fit(X, y)
    gender_call, *specialist_calls = fit_calls
    assert gender_call["attributes"] == ("gender",) and len(gender_call["X"]) == n
    n_valid_all = round(n * validation_fraction) if validation_fraction else 0
    for g, call in zip(clf.genders_, specialist_calls):
        subset = (y["gender"] == g).to_numpy()
        n_g = int(subset.sum())
        # rows of a class missing from the rest go back to training: at most the planned number
        n_valid = len(call["valid"][0]) if validation_fraction else 0
        assert 1 <= n_valid <= round(n_g * validation_fraction) if validation_fraction else True
        expected = n - n_valid_all if grow else n_g - n_valid
        assert len(call["X"]) == len(call["y"]) == expected == clf.train_sizes_[g]
        assert clf.subset_sizes_[g] == n_g
        assert set(call["y"]["gender"]) == {g}
        assert set(clf.specialists_[g].classes_[1]) == set(y["race"][subset])  # every class trained
        train_keys = _keys(call["X"])
        originals = {k.split("|aug:")[0] for k in train_keys}
        assert originals <= set(np.asarray(_keys(X))[subset])
        assert len(originals) == n_g - n_valid
        if grow:
            assert sum("|aug:" in k for k in train_keys) == expected - len(originals)
        if validation_fraction:
            X_val, y_val = call["valid"]
            assert len(X_val) == n_valid and set(y_val["gender"]) == {g}
            assert not originals & set(_keys(X_val))  # no copy of a validation image in training
        else:
            assert call["valid"] is None


def test_specialist_without_a_possible_validation_split_trains_without_one(small, fit_calls):
    X, y = small
    y = _women(y, 3)
    women = np.flatnonzero((y["gender"] == "Female").to_numpy())
    y.loc[women, "race"] = ["White", "Black", "Asian"]  # each woman the only one of her race
    clf = make_fusion(image_size=16, validation_fraction=0.3)
    with pytest.warns(UserWarning, match="'Female' specialist trains without a validation split"):
        clf.fit(X, y)
    female_call = fit_calls[1 + clf.genders_.index("Female")]
    assert female_call["valid"] is None and clf.specialists_["Female"].validation_fraction == 0.0
    assert set(clf.specialists_["Female"].classes_[1]) == {"White", "Black", "Asian"}
    assert fit_calls[1 + clf.genders_.index("Male")]["valid"] is not None


def test_validation_data_is_split_by_gender(small, fit_calls):
    X, y = small
    X_val, y_val = make_synthetic_faces(20, image_size=16, gender_dependent=True, random_state=9)
    clf = make_fusion(image_size=16).fit(X, y, validation_data=(X_val, y_val))
    gender_call, *specialist_calls = fit_calls
    assert len(gender_call["valid"][0]) == 20
    for g, call in zip(clf.genders_, specialist_calls):
        assert len(call["X"]) == len(X)  # nothing held out of X
        v_X, v_y = call["valid"]
        mask = (y_val["gender"] == g).to_numpy()
        np.testing.assert_array_equal(v_X, X_val[mask])
        assert len(v_y) == mask.sum() and set(v_y["gender"]) == {g}


@pytest.mark.skipif(
    "checkpoint_dir" not in MultiAttributeClassifier().get_params(),
    reason="MultiAttributeClassifier has no checkpoint_dir parameter",
)
def test_specialists_get_their_own_checkpoint_folders(small, fit_calls, tmp_path):
    X, y = small
    clf = make_fusion(image_size=16).set_params(
        gender_estimator__checkpoint_dir=tmp_path / "gender", specialist__checkpoint_dir=tmp_path
    )
    clf.fit(X, y)
    folders = [call["checkpoint_dir"] for call in fit_calls]
    assert folders == [
        tmp_path / "gender",
        str(tmp_path / "specialist_gender=Male"),
        str(tmp_path / "specialist_gender=Female"),
    ]
    assert clf.specialist.checkpoint_dir == tmp_path  # the template is not touched
