"""Per-group classification reports, summary tables and the one-call group report."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import classification_report

from gar_sklearn.metrics import (
    GroupReport,
    SmallGroupWarning,
    TooFewGroupsWarning,
    classification_report_by_group,
    demographic_parity_difference,
    equalized_odds_difference,
    group_report,
    summary_by_group,
)
from gar_sklearn.preprocessing import AgeBinner

ATTRS = ["gender", "age", "race"]

# Eight faces: race W (4), B (3), A (1). Exact ages, their FairFace groups, predictions.
Y = pd.DataFrame(
    {
        "gender": ["M", "F", "M", "F", "M", "F", "M", "F"],
        "age": [25, 35, 25, 35, 25, 35, 25, 35],
        "race": ["W", "W", "W", "W", "B", "B", "B", "A"],
    }
)
Y_TRUE = Y.assign(age=AgeBinner().fit_transform(Y["age"]))[ATTRS]
Y_PRED = pd.DataFrame(
    {
        "gender": ["M", "F", "M", "F", "F", "F", "M", "F"],  # wrong: 4
        "age": ["20-29", "30-39", "30-39", "30-39", "20-29", "30-39", "20-29", "20-29"],  # 2, 7
        "race": ["W", "W", "W", "W", "B", "B", "W", "A"],  # wrong: 6
    }
)
AGE_PRED = Y["age"].to_numpy() + np.array([0, 0, 0, 0, 2, 2, 2, 10])


class LookupEstimator:
    """The estimators' contract over stored predictions; X holds sample positions."""

    attributes_ = tuple(ATTRS)

    def predict(self, X):
        return Y_PRED.to_numpy(dtype=object)[np.asarray(X)]

    def predict_age(self, X):
        return AGE_PRED[np.asarray(X)].astype(float)

    def transform_targets(self, y):
        y = (
            pd.DataFrame(np.asarray(y, dtype=object), columns=ATTRS)
            if isinstance(y, np.ndarray)
            else y
        )
        return y.assign(age=AgeBinner().fit_transform(y["age"]))[ATTRS]


def test_summary_by_group_hand_computed():
    with pytest.warns(SmallGroupWarning, match=r"'A' \(n=1\)"):
        table = summary_by_group(
            Y_TRUE,
            Y_PRED,
            sensitive_features=Y["race"],
            age_true=Y["age"],
            age_pred=AGE_PRED,
            min_group_size=2,
        )
    assert table.columns.tolist() == [
        "gender_accuracy",
        "age_accuracy",
        "race_accuracy",
        "age_mae",
        "n",
        "small",
    ]
    assert table.index.tolist() == ["A", "B", "W"]
    expected = {
        "A": [1.0, 0.0, 1.0, 10.0, 1, True],
        "B": [2 / 3, 1.0, 2 / 3, 2.0, 3, False],
        "W": [1.0, 0.75, 1.0, 0.0, 4, False],
    }
    for group, row in expected.items():
        assert table.loc[group].tolist() == pytest.approx(row)


def test_classification_report_text_is_sklearns_per_group():
    with pytest.warns(SmallGroupWarning):
        text = classification_report_by_group(
            Y_TRUE, Y_PRED, sensitive_features=Y["race"], digits=3, min_group_size=2
        )
    for attr in ATTRS:
        classes = sorted(set(Y_TRUE[attr]) | set(Y_PRED[attr]))
        for race in ["A", "B", "W"]:
            mask = (Y["race"] == race).to_numpy()
            expected = classification_report(
                Y_TRUE[attr][mask],
                Y_PRED[attr][mask],
                labels=classes,
                digits=3,
                zero_division=np.nan,
            )
            flag = ", fewer than 2: flagged" if race == "A" else ""
            assert f"{attr} | race = {race} (n={mask.sum()}{flag})\n{expected}" in text


def test_classification_report_frame_is_sklearns_output_dict():
    frame = classification_report_by_group(
        Y_TRUE, Y_PRED, sensitive_features=Y["race"], min_group_size=1, as_frame=True
    )
    assert frame.index.names == ["attribute", "race", "label"]
    assert frame.columns.tolist() == ["precision", "recall", "f1-score", "support"]
    mask = (Y["race"] == "B").to_numpy()
    ref = classification_report(
        Y_TRUE["gender"][mask],
        Y_PRED["gender"][mask],
        labels=["F", "M"],
        output_dict=True,
        zero_division=np.nan,
    )
    got = frame.loc[("gender", "B")]
    for label in ["F", "M", "macro avg", "weighted avg"]:
        assert got.loc[label].tolist() == pytest.approx(
            [ref[label][k] for k in ["precision", "recall", "f1-score", "support"]]
        )
    assert got.loc["accuracy", "f1-score"] == pytest.approx(2 / 3)
    assert got.loc["accuracy", "support"] == 3


def test_class_absent_from_a_group_has_zero_support_and_undefined_recall():
    frame = classification_report_by_group(
        Y_TRUE, Y_PRED, sensitive_features=Y["race"], min_group_size=1, as_frame=True
    )
    # Group A has one woman: "M" is absent (never true, never predicted).
    absent = frame.loc[("gender", "A", "M")]
    assert absent["support"] == 0
    assert np.isnan(absent["recall"]) and np.isnan(absent["precision"])
    # The macro average leaves the undefined class out: F alone, all right.
    assert frame.loc[("gender", "A", "macro avg"), "recall"] == 1.0
    zero = classification_report_by_group(
        Y_TRUE,
        Y_PRED,
        sensitive_features=Y["race"],
        min_group_size=1,
        as_frame=True,
        zero_division=0.0,
    )
    assert zero.loc[("gender", "A", "M"), "recall"] == 0.0
    assert zero.loc[("gender", "A", "macro avg"), "recall"] == 0.5


def test_classification_report_intersectional_index():
    frame = classification_report_by_group(
        Y_TRUE["gender"],
        Y_PRED["gender"],
        sensitive_features=Y[["race", "gender"]],
        min_group_size=1,
        as_frame=True,
    )
    assert frame.index.names == ["attribute", "race", "gender", "label"]
    assert frame.loc[("gender", "B", "M", "accuracy"), "f1-score"] == 0.5


def _report(**kwargs):
    return GroupReport.from_predictions(
        Y_TRUE, Y_PRED, age_true=Y["age"], age_pred=AGE_PRED, min_group_size=2, **kwargs
    )


def test_group_report_from_predictions():
    with pytest.warns(SmallGroupWarning):
        report = _report(by=("race", "gender", ("race", "gender")))
    assert isinstance(report, GroupReport)
    assert report.attributes == tuple(ATTRS)
    assert report.overall.to_dict() == pytest.approx(
        {
            "gender_accuracy": 7 / 8,
            "age_accuracy": 6 / 8,
            "race_accuracy": 7 / 8,
            "age_mae": 2.0,
            "n": 8,
        }
    )
    assert list(report.summaries) == ["race", "gender", "race x gender"]
    with pytest.warns(SmallGroupWarning):
        pd.testing.assert_frame_equal(
            report.summary("race"),
            summary_by_group(
                Y_TRUE,
                Y_PRED,
                sensitive_features=Y["race"],
                age_true=Y["age"],
                age_pred=AGE_PRED,
                min_group_size=2,
            ),
        )
    assert report.summary("gender")["gender_accuracy"].to_dict() == {"F": 1.0, "M": 0.75}
    assert report.summary(("race", "gender")).index.names == ["race", "gender"]
    # Disparities leave out the flagged group A.
    d = report.disparities.loc["race"]
    assert d.loc["gender_accuracy", ["worst_group", "best_group"]].tolist() == ["B", "W"]
    assert d.loc["gender_accuracy", ["difference", "ratio"]].tolist() == pytest.approx(
        [1 / 3, 2 / 3]
    )
    assert d.loc["age_accuracy", ["worst_group", "worst", "difference"]].tolist() == [
        "W",
        0.75,
        0.25,
    ]
    assert d.loc["age_mae", ["worst_group", "worst", "best_group", "ratio"]].tolist() == [
        "B",
        2.0,
        "W",
        0.0,
    ]
    assert d.loc["age_mae", "n_flagged"] == 1
    with pytest.warns(SmallGroupWarning):
        assert report.parity.loc[("race", "age"), "demographic_parity_difference"] == (
            demographic_parity_difference(
                Y_TRUE["age"], Y_PRED["age"], sensitive_features=Y["race"], min_group_size=2
            )
        )
    with pytest.warns(SmallGroupWarning):
        assert report.parity.loc[("race", "gender"), "equalized_odds_difference"] == (
            equalized_odds_difference(
                Y_TRUE["gender"],
                Y_PRED["gender"],
                sensitive_features=Y["race"],
                zero_division=np.nan,
                min_group_size=2,
            )
        )


def test_group_report_text_and_frames():
    with pytest.warns(SmallGroupWarning):
        report = _report()
    text = str(report)
    assert text == report.to_text()
    for part in [
        "Group report: 8 samples",
        "Overall",
        "By race",
        "By gender",
        "Disparities",
        "Parity",
        "fewer than 2 samples are marked *",
    ]:
        assert part in text
    race_table = text.split("By race\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in race_table[1:]] == ["A*", "B", "W"]
    assert "classification" not in text.lower()
    details = report.to_text(details=True)
    assert "gender | race = B (n=3)" in details
    frame = report.to_frame()
    assert frame.index.names == ["by", "group"]
    assert frame.loc[("gender", "M"), "n"] == 4
    gender_rows = report.classification_report("race", attribute="gender")
    assert set(gender_rows.index.get_level_values("attribute")) == {"gender"}
    with pytest.raises(ValueError, match=r"'by' parameter must be one of \['race', 'gender'\]"):
        report.summary("age")


def test_group_report_from_an_estimator_equals_from_predictions():
    X = np.arange(8)
    with pytest.warns(SmallGroupWarning):
        from_est = group_report(LookupEstimator(), X, Y, min_group_size=2)
    with pytest.warns(SmallGroupWarning):
        from_pred = _report()
    pd.testing.assert_series_equal(from_est.overall, from_pred.overall)
    for key in from_pred.summaries:
        pd.testing.assert_frame_equal(from_est.summaries[key], from_pred.summaries[key])
        pd.testing.assert_frame_equal(
            from_est.classification_reports[key], from_pred.classification_reports[key]
        )
    pd.testing.assert_frame_equal(from_est.disparities, from_pred.disparities)
    # y as a 2-D array in attributes_ order gives the same report.
    with pytest.warns(SmallGroupWarning):
        from_array = group_report(LookupEstimator(), X, Y[ATTRS].to_numpy(), min_group_size=2)
    pd.testing.assert_series_equal(from_array.overall, from_est.overall)


def test_group_report_without_exact_ages_has_no_mae():
    report = GroupReport.from_predictions(Y_TRUE, Y_PRED, by="gender", min_group_size=1)
    assert "age_mae" not in report.overall
    assert report.summary("gender").columns.tolist() == [
        "gender_accuracy",
        "age_accuracy",
        "race_accuracy",
        "n",
        "small",
    ]
    with pytest.raises(ValueError, match="exact ages in years .* such as '20-29'"):
        GroupReport.from_predictions(Y_TRUE, Y_PRED, age_pred=AGE_PRED, by="gender")


def test_group_report_errors():
    with pytest.raises(ValueError, match="needs a fitted 'estimator' .* or 'y_pred'"):
        group_report(None, None, Y)
    with pytest.raises(ValueError, match="with an estimator needs X and y"):
        group_report(LookupEstimator(), None, Y)
    with pytest.raises(ValueError, match="sensitive column 'ethnicity' is not in y"):
        GroupReport.from_predictions(Y_TRUE, Y_PRED, by="ethnicity")
    with pytest.raises(ValueError, match=r"no column for the predicted attribute\(s\) \['hair'\]"):
        GroupReport.from_predictions(Y, Y_PRED.rename(columns={"race": "hair"}))
    with pytest.raises(ValueError, match="'by' parameter must hold column names"):
        GroupReport.from_predictions(Y_TRUE, Y_PRED, by=[3])
    with pytest.raises(ValueError, match="y_true has 8, y_pred has 7"):
        GroupReport.from_predictions(Y_TRUE, Y_PRED.iloc[:7])
    with pytest.raises(ValueError, match="missing value"):
        GroupReport.from_predictions(Y_TRUE.assign(race=[None] + list(Y["race"][1:])), Y_PRED)


def test_report_when_every_attribute_is_also_a_grouping():
    # gender predictions grouped by gender: parity is meaningless, the table stays empty
    y = pd.DataFrame({"gender": ["Male", "Female"] * 20})
    report = GroupReport.from_predictions(
        y, pd.DataFrame({"gender": ["Male"] * 40}), by=("gender",), min_group_size=0
    )
    assert report.parity.empty and list(report.parity.index.names) == ["by", "attribute"]
    assert report.summary("gender")["gender_accuracy"].to_dict() == {"Female": 0.0, "Male": 1.0}


# --- issue 19: no reassuring numbers from one group; age order; weights; JSON ---------------


def _one_eligible_race():
    """150 faces, only White reaching 30: three races at 0 % gender accuracy."""
    races = ["White"] * 120 + ["Black"] * 10 + ["Asian"] * 10 + ["Indian"] * 10
    gender = ["Male", "Female"] * 75
    wrong = {"Male": "Female", "Female": "Male"}
    pred = [g if r == "White" else wrong[g] for g, r in zip(gender, races)]
    y = pd.DataFrame({"gender": gender, "race": races})
    return y, pd.DataFrame({"gender": pred})


def test_report_with_one_eligible_group_has_nan_disparities_and_says_why():
    y, pred = _one_eligible_race()
    with pytest.warns(SmallGroupWarning), pytest.warns(TooFewGroupsWarning, match="'White'"):
        report = GroupReport.from_predictions(y, pred, by="race")
    row = report.disparities.loc[("race", "gender_accuracy")]
    assert row["worst_group"] is None and row["best_group"] is None
    assert np.isnan(row[["worst", "best", "difference", "ratio"]].astype(float)).all()
    assert report.parity.isna().all().all()  # the parity of gender by race: NaN too
    text = report.to_text()
    assert "0.000" not in text.split("Disparities")[1].split("Parity")[0]
    assert "By race: Differences, ratios and the worst or best group need at least two" in text
    assert report.notes == [line for line in text.splitlines() if line.startswith("By race:")]
    assert report.to_dict()["by"]["race"]["disparities"][0]["difference"] is None


def test_report_orders_age_groups_by_age_everywhere():
    ages = ["0-2", "3-9", "10-19", "20-29", "more than 70"]
    y = pd.DataFrame({"age": ages * 4, "gender": ["F", "M"] * 10})
    pred = y.assign(age=ages[1:] + ages[:1] + ages * 3)
    report = GroupReport.from_predictions(y, pred, by=("age", ("gender", "age")), min_group_size=1)
    assert report.summary("age").index.tolist() == ages
    assert report.summary(("gender", "age")).index.get_level_values("age").tolist() == ages * 2
    frame = report.classification_report("age", attribute="age")
    assert frame.loc[("age", "0-2")].index.tolist()[: len(ages)] == ages
    details = report.to_text(details=True)
    by_age = details.split("Classification reports by age")[1]
    starts = [by_age.index(f"age = {a} (n=") for a in ages]
    assert starts == sorted(starts)
    # In each text report, the class rows are in age order too.
    rows = [line.split()[0] for line in by_age.splitlines() if line.strip()[:1].isdigit()]
    assert rows[:4] == ["0-2", "3-9", "10-19", "20-29"]  # not "0-2", "10-19", "20-29", "3-9"
    first = by_age.split("age | age = 3-9")[0]
    assert first.index("       20-29") < first.index("more than 70")
    json_groups = report.to_dict()["by"]["age"]["groups"]
    assert [g["age"] for g in json_groups] == ages
    report_rows = report.to_dict()["by"]["age"]["classification_report"]
    labels = [r["label"] for r in report_rows if r["attribute"] == "age" and r["age"] == "0-2"]
    assert labels[: len(ages)] == ages


def test_report_with_sample_weight_equals_weighted_metric_frames():
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, mean_absolute_error

    weight = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0])
    with pytest.warns(SmallGroupWarning):
        report = _report(by="race", sample_weight=weight)
    for attr in ATTRS:
        frame = fl.MetricFrame(
            metrics=accuracy_score,
            y_true=Y_TRUE[attr],
            y_pred=Y_PRED[attr],
            sensitive_features=Y["race"],
            sample_params={"sample_weight": weight},
        )
        assert report.summary("race")[f"{attr}_accuracy"].tolist() == pytest.approx(
            frame.by_group.tolist(), abs=1e-12
        )
        assert report.overall[f"{attr}_accuracy"] == pytest.approx(frame.overall, abs=1e-12)
    assert report.overall["age_mae"] == pytest.approx(
        mean_absolute_error(Y["age"], AGE_PRED, sample_weight=weight)
    )
    with pytest.warns(SmallGroupWarning):
        expected = demographic_parity_difference(
            Y_TRUE["age"],
            Y_PRED["age"],
            sensitive_features=Y["race"],
            min_group_size=2,
            sample_weight=weight,
        )
    assert report.parity.loc[("race", "age"), "demographic_parity_difference"] == expected
    assert "weighted by sample_weight" in report.to_text()
    mask = (Y["race"] == "W").to_numpy()
    ref = classification_report(
        Y_TRUE["gender"][mask],
        Y_PRED["gender"][mask],
        labels=["F", "M"],
        output_dict=True,
        zero_division=np.nan,
        sample_weight=weight[mask],
    )
    got = report.classification_report("race", attribute="gender").loc[("gender", "W", "M")]
    assert got.tolist() == pytest.approx(
        [ref["M"][k] for k in ["precision", "recall", "f1-score", "support"]]
    )


def test_from_predictions_with_sensitive_features_apart():
    groups = pd.Series(["p", "p", "q", "q", "p", "q", "p", "q"], name="site")
    report = GroupReport.from_predictions(
        Y_TRUE, Y_PRED, sensitive_features=groups, min_group_size=1
    )
    assert list(report.summaries) == ["site"]  # by defaults to the sensitive columns
    mask = (groups == "p").to_numpy()
    assert report.summary("site").loc["p", "gender_accuracy"] == (
        (Y_TRUE["gender"][mask] == Y_PRED["gender"][mask]).mean()
    )
