"""Scorers for GridSearchCV, against a fake estimator implementing the library's contract."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, KFold

from gar_sklearn.metrics import (
    SmallGroupWarning,
    accuracy_by_group,
    combine_scorers,
    default_scoring,
    make_age_mae_scorer,
    make_attribute_scorer,
    make_group_scorer,
)
from gar_sklearn.preprocessing import AgeBinner

GENDERS = np.array(["Male", "Female"], dtype=object)
RACES = np.array(["White", "Black", "Asian"], dtype=object)


class _FakeBase(BaseEstimator):
    """The estimators' contract, with predictions read off X.

    X columns: gender code, exact age, race code, u in [0, 1). Gender and race
    are always right; the age group is wrong for Black faces with u < corrupt;
    the estimated age is exact except ``age_bias`` years too old for Asian faces.
    """

    def __init__(self, corrupt=0.0, age_bias=0.0):
        self.corrupt = corrupt
        self.age_bias = age_bias

    def fit(self, X, y):
        self.attributes_ = ("gender", "age", "race")
        self.binner_ = AgeBinner().fit(np.asarray(X)[:, 1])
        self.classes_ = [np.sort(GENDERS), self.binner_.classes_, np.sort(RACES)]
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        race = RACES[X[:, 2].astype(int)]
        age = self.binner_.transform(X[:, 1])
        wrong = (race == "Black") & (X[:, 3] < self.corrupt)
        age[wrong] = np.where(age[wrong] == "0-2", "3-9", "0-2")
        return np.column_stack([GENDERS[X[:, 0].astype(int)], age, race]).astype(object)

    def _transform_targets(self, y):
        if not isinstance(y, pd.DataFrame):
            y = pd.DataFrame(np.asarray(y, dtype=object), columns=list(self.attributes_))
        out = y[list(self.attributes_)].copy()
        out["age"] = self.binner_.transform(y["age"].astype(float))
        return out

    def _predict_age(self, X):
        X = np.asarray(X, dtype=float)
        return X[:, 1] + self.age_bias * (RACES[X[:, 2].astype(int)] == "Asian")


class FakeGAR(_FakeBase):
    transform_targets = _FakeBase._transform_targets
    predict_age = _FakeBase._predict_age


class FakeNoTransform(_FakeBase):
    """Trained on age groups: y already holds them, there is no transform_targets."""

    predict_age = _FakeBase._predict_age


class FakeNoAge(_FakeBase):
    transform_targets = _FakeBase._transform_targets


class CountingFake(FakeGAR):
    def predict(self, X):
        self.n_predict_ = getattr(self, "n_predict_", 0) + 1
        return super().predict(X)


def make_data(n_per_race=40):
    """Per race: alternating genders, ages 20-59, u = (i + 0.5) / n."""
    rows = []
    for r in range(len(RACES)):
        for i in range(n_per_race):
            rows.append((i % 2, 20 + i * 40 // n_per_race, r, (i + 0.5) / n_per_race))
    X = np.array(rows, dtype=float)
    y = pd.DataFrame(
        {
            "gender": GENDERS[X[:, 0].astype(int)],
            "age": X[:, 1].astype(int),
            "race": RACES[X[:, 2].astype(int)],
            "file": [f"{i}.jpg" for i in range(len(X))],  # extra columns are ignored
        }
    )
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_data()


def test_default_scores_hand_computed(data):
    X, y = data
    est = FakeGAR(corrupt=0.5, age_bias=6.0).fit(X, y)
    scores = {name: s(est, X, y) for name, s in default_scoring(min_group_size=5).items()}
    # Black: 20 of 40 age groups wrong; Asian: ages 6 years too old.
    assert scores == pytest.approx(
        {
            "gender_accuracy": 1.0,
            "age_accuracy": 100 / 120,
            "race_accuracy": 1.0,
            "neg_age_mae": -2.0,
            "worst_race_gender_accuracy": 1.0,
            "worst_race_age_accuracy": 0.5,
        }
    )


@pytest.mark.parametrize(
    "aggregate, accuracy, mae",
    [
        ("worst", 0.5, -6.0),
        ("difference", -0.5, -6.0),
        ("ratio", 0.5, 0.0),
        ("mean", 2.5 / 3, -2.0),
    ],
)
def test_group_scorer_aggregates(data, aggregate, accuracy, mae):
    X, y = data
    est = FakeGAR(corrupt=0.5, age_bias=6.0).fit(X, y)
    acc = make_group_scorer("accuracy", attribute="age", sensitive="race", aggregate=aggregate)
    err = make_group_scorer("mae", sensitive="race", aggregate=aggregate)
    assert acc(est, X, y) == pytest.approx(accuracy)
    assert err(est, X, y) == pytest.approx(mae)


def test_group_scorer_intersectional_and_by_age_group(data):
    X, y = data
    est = FakeGAR(corrupt=0.5).fit(X, y)
    scorer = make_group_scorer(attribute="age", sensitive=("race", "gender"), min_group_size=5)
    assert scorer(est, X, y) == pytest.approx(0.5)  # Black men and Black women: 10 of 20
    # Grouping by "age" uses the age groups from transform_targets (10 per race and group),
    # not exact ages (groups of 1-2 that would all be flagged, giving NaN).
    by_age = make_group_scorer(attribute="gender", sensitive="age", min_group_size=5)
    assert by_age(est, X, y) == 1.0


def test_small_groups_are_left_out_of_the_score(data):
    X, y = data
    est = FakeGAR(corrupt=0.5).fit(X, y)
    y_small = y.copy()
    y_small.loc[y_small.index[-3:], "race"] = "Indian"  # 3 relabelled Asian faces
    scorer = make_group_scorer("accuracy", attribute="race", sensitive="race", min_group_size=5)
    with pytest.warns(SmallGroupWarning, match=r"'Indian' \(n=3\)"):
        # Indian (accuracy 0: predicted Asian) is left out; the rest are all right.
        assert scorer(est, X, y_small) == 1.0


def test_y_as_array_in_attribute_order(data):
    X, y = data
    est = FakeGAR(corrupt=0.5, age_bias=6.0).fit(X, y)
    y_arr = y[["gender", "age", "race"]].to_numpy()
    for name, scorer in default_scoring(min_group_size=5).items():
        assert scorer(est, X, y_arr) == pytest.approx(scorer(est, X, y)), name


def test_estimator_without_transform_targets_compares_y_as_is(data):
    X, y = data
    est = FakeNoTransform(corrupt=0.5).fit(X, y)
    assert not hasattr(est, "transform_targets")
    y_groups = y.assign(age=AgeBinner().fit_transform(y["age"]))
    assert make_attribute_scorer("age")(est, X, y_groups) == pytest.approx(100 / 120)
    with pytest.raises(ValueError, match="Scoring accuracy of 'age' failed .* Mix of label"):
        make_attribute_scorer("age")(est, X, y)  # exact ages against age groups
    with pytest.raises(ValueError, match="exact ages in years .* such as '20-29'"):
        make_age_mae_scorer()(est, X, y_groups)


def test_scorer_errors_are_clear(data):
    X, y = data
    est = FakeGAR().fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"sensitive column 'ethnicity' is not in y; y has "
        r"columns \['age', 'file', 'gender', 'race'\]",
    ):
        make_group_scorer(sensitive="ethnicity")(est, X, y)
    with pytest.raises(ValueError, match="'hair' is not predicted by FakeGAR"):
        make_attribute_scorer("hair")(est, X, y)
    with pytest.raises(TypeError, match="has no 'attributes_'"):
        make_attribute_scorer("age")(FakeGAR(), X, y)
    with pytest.raises(TypeError, match="needs estimator.predict_age"):
        make_age_mae_scorer()(FakeNoAge().fit(X, y), X, y)
    with pytest.raises(ValueError, match="'aggregate' parameter must be one of"):
        make_group_scorer(aggregate="max")
    with pytest.raises(ValueError, match="'metric' parameter must be a callable or one of"):
        make_attribute_scorer("gender", metric="f1")
    with pytest.raises(ValueError, match="'sensitive' parameter must be a column name"):
        make_group_scorer(sensitive=3)


def test_scorers_pickle(data):
    X, y = data
    est = FakeGAR(corrupt=0.25, age_bias=3.0).fit(X, y)
    scoring = default_scoring(min_group_size=5)
    scoring["ratio"] = make_group_scorer(
        "mae", sensitive=("race", "gender"), aggregate="ratio", min_group_size=5
    )
    for name, scorer in scoring.items():
        clone = pickle.loads(pickle.dumps(scorer))
        assert clone(est, X, y) == scorer(est, X, y), name
    combined = pickle.loads(pickle.dumps(combine_scorers(scoring)))
    assert combined(est, X, y) == {name: s(est, X, y) for name, s in scoring.items()}


def test_combined_scorer_predicts_once(data):
    X, y = data
    est = CountingFake(corrupt=0.5).fit(X, y)
    scores = default_scoring(min_group_size=5, combined=True)(est, X, y)
    assert est.n_predict_ == 1
    assert scores["worst_race_age_accuracy"] == 0.5
    for scorer in default_scoring(min_group_size=5).values():
        scorer(est, X, y)
    assert est.n_predict_ == 1 + 5  # a plain dict: every scorer but the MAE one predicts


def _expected_worst_race_age(X, y, corrupt, cv):
    """Worst-race age accuracy per test fold, recomputed with accuracy_by_group."""
    out = []
    for train, test in cv.split(X):
        est = FakeGAR(corrupt=corrupt).fit(X[train], y.iloc[train])
        y_test = y.iloc[test]
        by = accuracy_by_group(
            est.transform_targets(y_test)["age"],
            est.predict(X[test])[:, 1],
            sensitive_features=y_test["race"],
        )
        out.append(by.min())
    return np.mean(out)


@pytest.mark.parametrize("combined", [False, True])
def test_grid_search_refits_on_worst_group_accuracy(data, combined):
    X, y = data
    cv = KFold(3, shuffle=True, random_state=0)
    grid = [0.5, 0.0, 0.25]
    search = GridSearchCV(
        FakeGAR(),
        {"corrupt": grid},
        cv=cv,
        scoring=default_scoring(min_group_size=5, combined=combined),
        refit="worst_race_age_accuracy",
    ).fit(X, y)
    assert search.best_params_ == {"corrupt": 0.0}
    expected = [_expected_worst_race_age(X, y, c, cv) for c in grid]
    np.testing.assert_allclose(
        search.cv_results_["mean_test_worst_race_age_accuracy"], expected, rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(search.cv_results_["mean_test_neg_age_mae"], 0.0)
    assert search.best_estimator_.corrupt == 0.0


def test_grid_search_in_parallel_gives_the_same_results(data):
    X, y = data
    kwargs = {
        "param_grid": {"corrupt": [0.5, 0.0]},
        "cv": KFold(2, shuffle=True, random_state=1),
        "scoring": default_scoring(min_group_size=5),
        "refit": "worst_race_age_accuracy",
    }
    serial = GridSearchCV(FakeGAR(), n_jobs=1, **kwargs).fit(X, y)
    parallel = GridSearchCV(FakeGAR(), n_jobs=2, **kwargs).fit(X, y)
    for name in default_scoring():
        key = f"mean_test_{name}"
        np.testing.assert_array_equal(parallel.cv_results_[key], serial.cv_results_[key])


# --- issue 19: sample_weight, parity scorers, no reassuring score from one group ------------


def test_scorers_with_sample_weight_equal_the_weighted_metrics(data):
    from sklearn.metrics import accuracy_score, mean_absolute_error

    X, y = data
    est = FakeGAR(corrupt=0.5, age_bias=6.0).fit(X, y)
    weight = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    targets, pred = est.transform_targets(y), est.predict(X)
    assert make_attribute_scorer("age")(est, X, y, sample_weight=weight) == pytest.approx(
        accuracy_score(targets["age"], pred[:, 1], sample_weight=weight)
    )
    assert make_age_mae_scorer()(est, X, y, sample_weight=weight) == pytest.approx(
        -mean_absolute_error(y["age"], est.predict_age(X), sample_weight=weight)
    )
    by_race = accuracy_by_group(
        targets["age"], pred[:, 1], sensitive_features=y["race"], sample_weight=weight
    )
    worst = make_group_scorer(attribute="age", sensitive="race", min_group_size=5)
    assert worst(est, X, y, sample_weight=weight) == pytest.approx(by_race.min())
    scoring = default_scoring(min_group_size=5)
    combined = combine_scorers(scoring)(est, X, y, sample_weight=weight)
    assert combined == {n: s(est, X, y, sample_weight=weight) for n, s in scoring.items()}


def test_parity_scorers(data):
    from gar_sklearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_ratio,
        make_parity_scorer,
    )

    X, y = data
    est = FakeGAR(corrupt=0.5).fit(X, y)
    targets, pred = est.transform_targets(y), est.predict(X)
    kwargs = {"sensitive_features": y["race"], "min_group_size": 5}
    dp = make_parity_scorer(attribute="age", min_group_size=5)
    assert dp(est, X, y) == -demographic_parity_difference(targets["age"], pred[:, 1], **kwargs)
    assert dp(est, X, y) < 0  # Black faces get other age groups: a gap
    ratio = make_parity_scorer(attribute="age", aggregate="ratio", min_group_size=5)
    assert ratio(est, X, y) == demographic_parity_ratio(targets["age"], pred[:, 1], **kwargs)
    eo = make_parity_scorer("equalized_odds", attribute="age", aggregate="ratio", min_group_size=5)
    assert eo(est, X, y) == equalized_odds_ratio(
        targets["age"], pred[:, 1], zero_division=np.nan, **kwargs
    )
    fair = FakeGAR(corrupt=0.0).fit(X, y)
    assert ratio(fair, X, y) == 1.0 and dp(fair, X, y) == 0.0
    assert pickle.loads(pickle.dumps(eo))(est, X, y) == eo(est, X, y)
    with pytest.raises(ValueError, match=r"'metric' parameter must be one of \['demographic"):
        make_parity_scorer("parity")
    with pytest.raises(ValueError, match="'aggregate' parameter must be one of"):
        make_parity_scorer(aggregate="worst")


def test_group_scores_are_nan_with_one_group_left(data):
    from gar_sklearn.metrics import TooFewGroupsWarning, make_parity_scorer

    X, y = data
    est = FakeGAR(corrupt=0.5).fit(X, y)
    # 40 faces per race: with min_group_size=41 no race is left; with y all "White", one is.
    for y_case, size in ((y, 41), (y.assign(race="White"), 5)):
        for aggregate in ("worst", "difference", "ratio"):
            scorer = make_group_scorer(attribute="age", aggregate=aggregate, min_group_size=size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SmallGroupWarning)
                with pytest.warns(TooFewGroupsWarning):
                    assert np.isnan(scorer(est, X, y_case))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert np.isnan(
                make_parity_scorer(attribute="age", min_group_size=size)(est, X, y_case)
            )


class WeightedFake(FakeGAR):
    def fit(self, X, y, sample_weight=None):
        self.fit_weight_ = sample_weight
        return super().fit(X, y)


def test_grid_search_passes_the_test_folds_weights_to_the_scorers(data):
    from sklearn.model_selection import cross_validate

    X, y = data
    weight = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    cv = KFold(2, shuffle=True, random_state=0)
    worst = make_group_scorer(attribute="age", sensitive="race", min_group_size=5)
    search = GridSearchCV(
        WeightedFake(),
        {"corrupt": [0.5, 0.25]},
        cv=cv,
        scoring={"worst": worst, "acc": make_attribute_scorer("age")},
        refit="worst",
    ).fit(X, y, sample_weight=weight)
    expected = []
    for train, test in cv.split(X):
        est = WeightedFake(corrupt=0.5).fit(X[train], y.iloc[train])
        expected.append(worst(est, X[test], y.iloc[test], sample_weight=weight[test]))
    assert search.cv_results_["split0_test_worst"][0] == pytest.approx(expected[0])
    assert search.cv_results_["split1_test_worst"][0] == pytest.approx(expected[1])
    assert search.best_params_ == {"corrupt": 0.25}
    # With metadata routing, a scorer asks for the weights.
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_validate(
            WeightedFake(corrupt=0.5).set_fit_request(sample_weight=False),
            X,
            y,
            cv=cv,
            scoring=make_group_scorer(attribute="age", min_group_size=5).set_score_request(
                sample_weight=True
            ),
            params={"sample_weight": weight},
        )
    np.testing.assert_allclose(scores["test_score"], expected, rtol=0, atol=1e-12)
