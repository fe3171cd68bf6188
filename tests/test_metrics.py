"""Per-group metrics, disparities, multiclass parity and bootstrap intervals.

Hand-computed examples for each metric, fairlearn as an oracle in property tests,
and the edge cases: one-sample groups, classes absent from a group, empty input,
mismatched lengths, missing sensitive values.
"""

import subprocess
import sys
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from gar_sklearn.metrics import (
    GroupMetrics,
    SmallGroupWarning,
    TooFewGroupsWarning,
    accuracy_by_group,
    bootstrap_by_group,
    demographic_parity_difference,
    equalized_odds_difference,
    group_difference,
    group_ratio,
    group_sizes,
    mae_by_group,
    metric_by_group,
    worst_group_value,
)

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

# Eight samples, two groups: x gets 3/4 right, y 2/4, overall 5/8.
Y_TRUE = ["a", "a", "b", "b", "a", "b", "a", "b"]
Y_PRED = ["a", "b", "b", "b", "a", "a", "a", "a"]
GROUPS = ["x", "x", "x", "x", "y", "y", "y", "y"]


# --- hand-computed examples -----------------------------------------------------------


def test_accuracy_by_group_hand_computed():
    assert accuracy_by_group(Y_TRUE, Y_PRED, sensitive_features=GROUPS).to_dict() == {
        "x": 0.75,
        "y": 0.5,
    }


def test_group_metrics_overall_difference_ratio_worst_hand_computed():
    gm = GroupMetrics("accuracy", Y_TRUE, Y_PRED, sensitive_features=GROUPS, min_group_size=1)
    assert gm.overall == 0.625
    assert gm.sizes.to_dict() == {"x": 4, "y": 4}
    assert gm.difference() == 0.25
    assert gm.difference(method="to_overall") == 0.125  # |0.75 - 0.625| = |0.5 - 0.625|
    assert gm.ratio() == pytest.approx(0.5 / 0.75)
    assert gm.ratio(method="to_overall") == pytest.approx(0.5 / 0.625)  # < 0.625 / 0.75
    assert (gm.group_min(), gm.group_max()) == (0.5, 0.75)
    assert gm.worst() == 0.5 and gm.worst(greater_is_better=False) == 0.75
    assert gm.to_frame().columns.tolist() == ["accuracy", "n", "small"]


def test_functions_match_hand_computed_values():
    kwargs = {"sensitive_features": GROUPS, "min_group_size": 1}
    assert group_difference("accuracy", Y_TRUE, Y_PRED, **kwargs) == 0.25
    assert group_difference(accuracy_score, Y_TRUE, Y_PRED, method="to_overall", **kwargs) == 0.125
    assert group_ratio("accuracy", Y_TRUE, Y_PRED, **kwargs) == pytest.approx(2 / 3)
    assert group_ratio("accuracy", Y_TRUE, Y_PRED, method="to_overall", **kwargs) == pytest.approx(
        0.8
    )
    assert worst_group_value("accuracy", Y_TRUE, Y_PRED, **kwargs) == 0.5


def test_mae_by_group_and_worst_hand_computed():
    age_true, age_pred, groups = [20, 30, 40, 50], [22, 27, 40, 60], ["x", "x", "y", "y"]
    assert mae_by_group(age_true, age_pred, sensitive_features=groups).to_dict() == {
        "x": 2.5,
        "y": 5.0,
    }
    kwargs = {"sensitive_features": groups, "min_group_size": 1}
    # A loss: the worst group has the largest error, found without being told.
    assert worst_group_value("mae", age_true, age_pred, **kwargs) == 5.0
    assert worst_group_value(mean_absolute_error, age_true, age_pred, **kwargs) == 5.0
    assert worst_group_value("mae", age_true, age_pred, greater_is_better=True, **kwargs) == 2.5
    gm = GroupMetrics("mae", age_true, age_pred, **kwargs)
    assert gm.overall == 3.75 and gm.difference() == 2.5 and gm.ratio() == 0.5


def test_any_sklearn_metric_and_several_metrics_at_once():
    f1 = partial(f1_score, average="macro")
    by = metric_by_group(f1, Y_TRUE, Y_PRED, sensitive_features=GROUPS)
    # x: a has P=1, R=1/2 (F1 2/3); b has P=2/3, R=1 (F1 4/5). y: a 2/3, b 0.
    assert by["x"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert by["y"] == pytest.approx((2 / 3 + 0) / 2)
    gm = GroupMetrics(
        {"acc": "accuracy", "f1": f1}, Y_TRUE, Y_PRED, sensitive_features=GROUPS, min_group_size=1
    )
    assert gm.by_group.columns.tolist() == ["acc", "f1"]
    assert gm.overall["acc"] == 0.625
    assert gm.difference().to_dict() == pytest.approx({"acc": 0.25, "f1": by["x"] - by["y"]})


def test_intersectional_groups_are_tuples_of_observed_combinations():
    sf = pd.DataFrame({"race": ["W", "W", "B", "B", "W"], "gender": ["M", "F", "M", "M", "M"]})
    sizes = group_sizes(sf)
    assert sizes.index.names == ["race", "gender"]
    # (B, F) never occurs: it is not a group.
    assert sizes.to_dict() == {("B", "M"): 2, ("W", "F"): 1, ("W", "M"): 2}
    gm = GroupMetrics(
        "accuracy", [1, 1, 0, 0, 1], [1, 0, 0, 1, 1], sensitive_features=sf, min_group_size=1
    )
    assert gm.by_group.to_dict() == {("B", "M"): 0.5, ("W", "F"): 0.0, ("W", "M"): 1.0}
    assert gm.labels == ["B, M", "W, F", "W, M"]


@pytest.mark.parametrize(
    "make",
    [
        lambda v: v,  # list
        lambda v: np.asarray(v),  # 1-D array
        lambda v: pd.Series(v, name="race", index=range(100, 108)),  # index ignored
        lambda v: pd.DataFrame({"race": v}),
        lambda v: {"race": v},
    ],
)
def test_sensitive_features_containers(make):
    by = accuracy_by_group(
        pd.Series(Y_TRUE, index=range(8, 0, -1)), Y_PRED, sensitive_features=make(GROUPS)
    )
    assert by.tolist() == [0.75, 0.5]


# --- small groups -------------------------------------------------------------------


def test_one_sample_group_is_flagged_and_left_out_of_aggregates():
    y_true, y_pred, groups = ["a", "b", "a"], ["a", "b", "b"], ["x", "x", "z"]
    with pytest.warns(SmallGroupWarning, match=r"1 of 2 groups .* 'z' \(n=1\)"):
        gm = GroupMetrics("accuracy", y_true, y_pred, sensitive_features=groups, min_group_size=2)
    # Its value is reported, not mixed in: z's single wrong answer gives 0.
    assert gm.by_group.to_dict() == {"x": 1.0, "z": 0.0}
    assert gm.small.to_dict() == {"x": False, "z": True}
    # One group left: nothing to compare. A difference of 0, a ratio of 1 or x as "worst
    # group" would claim a parity nobody measured (issue 19): NaN, with the reason.
    with pytest.warns(TooFewGroupsWarning, match=r"1 of 2 groups has at least .* 'x' \(n=2\)"):
        assert np.isnan(gm.difference())
    assert np.isnan(gm.worst()) and np.isnan(gm.ratio())
    assert gm.group_min() == gm.group_max() == 1.0  # fairlearn's extremes stay defined
    assert gm.overall == pytest.approx(2 / 3)  # overall still uses every sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # min_group_size=1 flags nothing
        gm1 = GroupMetrics("accuracy", y_true, y_pred, sensitive_features=groups, min_group_size=1)
    assert gm1.difference() == 1.0 and gm1.worst() == 0.0


def test_every_group_small_gives_nan_aggregates():
    with pytest.warns(SmallGroupWarning):
        gm = GroupMetrics("accuracy", Y_TRUE, Y_PRED, sensitive_features=GROUPS)
    assert gm.small.all()
    with pytest.warns(TooFewGroupsWarning, match="0 of 2 groups have at least"):
        assert np.isnan(gm.difference()) and np.isnan(gm.ratio()) and np.isnan(gm.worst())
    with pytest.warns(SmallGroupWarning), pytest.warns(TooFewGroupsWarning):
        assert np.isnan(demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=GROUPS))


def test_class_absent_from_a_group():
    # Group y has no "b": its accuracy is still defined (2/2), its report row is not.
    by = accuracy_by_group(
        ["a", "b", "a", "a"], ["a", "a", "a", "a"], sensitive_features=["x", "x", "y", "y"]
    )
    assert by.to_dict() == {"x": 0.5, "y": 1.0}


# --- multiclass demographic parity and equalized odds --------------------------------

DP_PRED = ["a", "a", "b", "c", "a", "b", "b", "b"]


def test_demographic_parity_hand_computed():
    # Selection rates x: a .5, b .25, c .25; y: a .25, b .75, c 0.
    kwargs = {"sensitive_features": GROUPS, "min_group_size": 1}
    per_class = demographic_parity_difference(Y_TRUE, DP_PRED, class_agg=None, **kwargs)
    assert per_class.to_dict() == {"a": 0.25, "b": 0.5, "c": 0.25}
    assert demographic_parity_difference(Y_TRUE, DP_PRED, **kwargs) == 0.5
    assert demographic_parity_difference(
        Y_TRUE, DP_PRED, class_agg="mean", **kwargs
    ) == pytest.approx(1 / 3)
    # Overall rates a 3/8, b 4/8, c 1/8: every group is .125, .25, .125 away.
    to_overall = demographic_parity_difference(
        Y_TRUE, DP_PRED, method="to_overall", class_agg=None, **kwargs
    )
    assert to_overall.to_dict() == {"a": 0.125, "b": 0.25, "c": 0.125}
    assert demographic_parity_difference(Y_TRUE, DP_PRED, labels=["c"], **kwargs) == 0.25


EO_TRUE = ["a", "a", "b", "b", "a", "b", "b", "b"]
EO_PRED = ["a", "b", "b", "a", "a", "a", "b", "b"]


def test_equalized_odds_hand_computed():
    # Class a: TPR x 1/2, y 1; FPR x 1/2, y 1/3. Class b: TPR x 1/2, y 2/3; FPR x 1/2, y 0.
    kwargs = {"sensitive_features": GROUPS, "min_group_size": 1}
    per_class = equalized_odds_difference(EO_TRUE, EO_PRED, class_agg=None, **kwargs)
    assert per_class.to_dict() == pytest.approx({"a": 0.5, "b": 0.5})
    per_class_mean = equalized_odds_difference(
        EO_TRUE, EO_PRED, agg="mean", class_agg=None, **kwargs
    )
    assert per_class_mean.to_dict() == pytest.approx({"a": 1 / 3, "b": 1 / 3})
    assert equalized_odds_difference(EO_TRUE, EO_PRED, **kwargs) == 0.5
    assert equalized_odds_difference(
        EO_TRUE, EO_PRED, agg="mean", class_agg="mean", **kwargs
    ) == pytest.approx(1 / 3)


def test_equalized_odds_with_a_class_absent_from_a_group():
    # Group y has no true "a" (TPR of a undefined) and only true "b" (FPR of b undefined).
    y_true, y_pred = ["a", "a", "b", "b", "b", "b"], ["a", "b", "b", "b", "b", "a"]
    groups = ["x", "x", "x", "y", "y", "y"]
    kwargs = {"sensitive_features": groups, "min_group_size": 1, "class_agg": None}
    with pytest.warns(UndefinedMetricWarning) as record:
        warned = equalized_odds_difference(y_true, y_pred, **kwargs)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "false positive rate" in messages[0] and "class 'b' in 'y'" in messages[0]
    assert "true positive rate" in messages[1] and "class 'a' in 'y'" in messages[1]
    # As fairlearn: the undefined rate counts as 0, giving gaps of 1/2.
    zero = equalized_odds_difference(y_true, y_pred, zero_division=0.0, **kwargs)
    assert warned.to_dict() == zero.to_dict() == pytest.approx({"a": 0.5, "b": 0.5})
    for c in "ab":
        assert zero[c] == pytest.approx(
            fairlearn_metrics.equalized_odds_difference(
                np.equal(y_true, c).astype(int),
                np.equal(y_pred, c).astype(int),
                sensitive_features=groups,
            )
        )
    # Left out: a's TPR gap has one group only (0), its FPR gap is 1/3; b likewise.
    nan = equalized_odds_difference(y_true, y_pred, zero_division=np.nan, **kwargs)
    assert nan.to_dict() == pytest.approx({"a": 1 / 3, "b": 1 / 3})


def test_binary_labels_give_fairlearn_binary_metrics():
    y_true = ["F", "F", "M", "M", "F", "M"]
    y_pred = ["F", "M", "M", "M", "F", "F"]
    groups = ["x", "x", "x", "y", "y", "y"]
    binarised = (np.equal(y_true, "F").astype(int), np.equal(y_pred, "F").astype(int))
    assert demographic_parity_difference(
        y_true, y_pred, sensitive_features=groups, labels=["F"], min_group_size=1
    ) == pytest.approx(
        fairlearn_metrics.demographic_parity_difference(*binarised, sensitive_features=groups)
    )
    assert equalized_odds_difference(
        y_true, y_pred, sensitive_features=groups, labels=["F"], min_group_size=1
    ) == pytest.approx(
        fairlearn_metrics.equalized_odds_difference(*binarised, sensitive_features=groups)
    )


# --- fairlearn as oracle -------------------------------------------------------------


@st.composite
def labelled_groups(draw):
    n = draw(st.integers(1, 30))
    n_features = draw(st.integers(1, 2))
    labels = st.sampled_from(["a", "b", "c"])
    y_true = draw(st.lists(labels, min_size=n, max_size=n))
    y_pred = draw(st.lists(labels, min_size=n, max_size=n))
    sf = pd.DataFrame(
        {
            f"f{i}": draw(st.lists(st.sampled_from(["p", "q", "r"]), min_size=n, max_size=n))
            for i in range(n_features)
        }
    )
    if n_features == 1 and draw(st.booleans()):
        sf = sf["f0"]
    return np.array(y_true, dtype=object), np.array(y_pred, dtype=object), sf


def _same(a, b):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=1e-12, equal_nan=True
    )


@pytest.mark.filterwarnings("ignore::gar_sklearn.metrics.TooFewGroupsWarning")
@settings(max_examples=60, deadline=None)
@given(labelled_groups(), st.sampled_from(["between_groups", "to_overall"]))
def test_group_metrics_equal_fairlearn_metric_frame(data, method):
    y_true, y_pred, sf = data
    ours = GroupMetrics(accuracy_score, y_true, y_pred, sensitive_features=sf, min_group_size=0)
    theirs = fairlearn_metrics.MetricFrame(
        metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=sf
    )
    expected = theirs.by_group.dropna()  # fairlearn lists unobserved combinations as NaN
    assert ours.by_group.index.equals(expected.index)
    _same(ours.by_group, expected)
    _same(ours.overall, theirs.overall)
    _same(ours.difference(method), _compared(theirs.difference(method=method), ours))
    _same(ours.ratio(method), _compared(theirs.ratio(method=method), ours))
    _same(ours.group_min(), theirs.group_min())
    _same(ours.group_max(), theirs.group_max())


def _compared(value, gm):
    """fairlearn's disparity where there are two groups to compare; NaN (ours) otherwise."""
    return value if len(gm.sizes) >= 2 else np.nan


@pytest.mark.filterwarnings("ignore::gar_sklearn.metrics.TooFewGroupsWarning")
@settings(max_examples=40, deadline=None)
@given(labelled_groups(), st.sampled_from(["between_groups", "to_overall"]))
def test_mae_by_group_equals_fairlearn(data, method):
    _, _, sf = data
    n = len(sf)
    rng = np.random.default_rng(n)
    age_true, age_pred = rng.uniform(0, 90, n), rng.uniform(0, 90, n)
    ours = GroupMetrics("mae", age_true, age_pred, sensitive_features=sf, min_group_size=0)
    theirs = fairlearn_metrics.MetricFrame(
        metrics=mean_absolute_error, y_true=age_true, y_pred=age_pred, sensitive_features=sf
    )
    _same(ours.by_group, theirs.by_group.dropna())
    _same(ours.difference(method), _compared(theirs.difference(method=method), ours))
    _same(ours.ratio(method), _compared(theirs.ratio(method=method), ours))


@pytest.mark.filterwarnings("ignore::gar_sklearn.metrics.TooFewGroupsWarning")
@settings(max_examples=40, deadline=None)
@given(
    labelled_groups(),
    st.sampled_from(["between_groups", "to_overall"]),
    st.sampled_from(["worst_case", "mean"]),
)
def test_parity_equals_fairlearn_one_vs_rest(data, method, agg):
    y_true, y_pred, sf = data
    kwargs = {"sensitive_features": sf, "method": method, "min_group_size": 0}
    dp = demographic_parity_difference(y_true, y_pred, class_agg=None, **kwargs)
    eo = equalized_odds_difference(
        y_true, y_pred, agg=agg, zero_division=0.0, class_agg=None, **kwargs
    )
    classes = sorted(set(y_true) | set(y_pred))
    assert dp.index.tolist() == eo.index.tolist() == classes
    dp_fl, eo_fl = [], []
    several = len(group_sizes(sf)) >= 2  # else ours are NaN, fairlearn's 0
    for c in classes:
        yt, yp = (y_true == c).astype(int), (y_pred == c).astype(int)
        dp_fl.append(fairlearn_metrics.demographic_parity_difference(yt, yp, **kwargs_fl(kwargs)))
        eo_fl.append(
            fairlearn_metrics.equalized_odds_difference(yt, yp, agg=agg, **kwargs_fl(kwargs))
        )
    if not several:
        assert np.isnan(dp).all() and np.isnan(eo).all()
        assert max(dp_fl) == max(eo_fl) == 0
        return
    _same(dp, dp_fl)
    _same(eo, eo_fl)
    _same(demographic_parity_difference(y_true, y_pred, **kwargs), max(dp_fl))
    _same(demographic_parity_difference(y_true, y_pred, class_agg="mean", **kwargs), np.mean(dp_fl))
    _same(
        equalized_odds_difference(y_true, y_pred, agg=agg, zero_division=0.0, **kwargs), max(eo_fl)
    )
    _same(
        equalized_odds_difference(
            y_true, y_pred, agg=agg, zero_division=0.0, class_agg="mean", **kwargs
        ),
        np.mean(eo_fl),
    )


def kwargs_fl(kwargs):
    return {k: v for k, v in kwargs.items() if k != "min_group_size"}


# --- bootstrap -------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 200)
    y_pred = np.where(rng.random(200) < 0.8, y_true, 1 - y_true)
    groups = rng.choice(["x", "y", "z"], 200)
    kwargs = {"sensitive_features": groups, "n_boot": 300, "min_group_size": 1}
    a = bootstrap_by_group("accuracy", y_true, y_pred, random_state=3, **kwargs)
    b = bootstrap_by_group("accuracy", y_true, y_pred, random_state=3, **kwargs)
    c = bootstrap_by_group("accuracy", y_true, y_pred, random_state=4, **kwargs)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a[["lower", "upper"]], c[["lower", "upper"]])
    assert (
        a["value"].to_dict()
        == accuracy_by_group(y_true, y_pred, sensitive_features=groups).to_dict()
    )
    assert ((a["lower"] <= a["value"]) & (a["value"] <= a["upper"])).all()
    assert a.columns.tolist() == ["value", "lower", "upper", "n", "small"]


def test_bootstrap_fast_path_equals_calling_the_metric_on_each_resample():
    rng = np.random.default_rng(1)
    y_true = rng.choice(list("abc"), 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, "a")
    groups = rng.choice(["x", "y"], 60)
    kwargs = {"sensitive_features": groups, "n_boot": 100, "random_state": 0, "min_group_size": 1}
    fast = bootstrap_by_group(accuracy_score, y_true, y_pred, **kwargs)
    slow = bootstrap_by_group(lambda t, p: accuracy_score(t, p), y_true, y_pred, **kwargs)
    _same(fast[["value", "lower", "upper"]], slow[["value", "lower", "upper"]])
    ages_t, ages_p = rng.uniform(0, 80, 60), rng.uniform(0, 80, 60)
    _same(
        bootstrap_by_group("mae", ages_t, ages_p, **kwargs)[["lower", "upper"]],
        bootstrap_by_group(lambda t, p: mean_absolute_error(t, p), ages_t, ages_p, **kwargs)[
            ["lower", "upper"]
        ],
    )


def test_bootstrap_interval_agrees_with_scipy_and_the_binomial_width():
    stats = pytest.importorskip("scipy.stats")
    correct = np.r_[np.ones(280), np.zeros(120)]  # 400 samples, accuracy 0.7
    y_true = np.ones(400, dtype=int)
    ci = bootstrap_by_group(
        "accuracy",
        y_true,
        correct.astype(int),
        sensitive_features=np.zeros(400),
        n_boot=4000,
        confidence_level=0.9,
        random_state=0,
    ).iloc[0]
    ref = stats.bootstrap(
        (correct,),
        np.mean,
        n_resamples=4000,
        method="percentile",
        confidence_level=0.9,
        random_state=1,
    ).confidence_interval
    assert ci["lower"] == pytest.approx(ref.low, abs=0.006)
    assert ci["upper"] == pytest.approx(ref.high, abs=0.006)
    half_width = 1.6449 * np.sqrt(0.7 * 0.3 / 400)  # normal approximation
    assert ci["upper"] - ci["lower"] == pytest.approx(2 * half_width, rel=0.08)


def test_bootstrap_one_sample_group_has_zero_width():
    with pytest.warns(SmallGroupWarning):
        ci = bootstrap_by_group(
            "accuracy",
            [1, 1, 0],
            [1, 0, 1],
            sensitive_features=["x", "x", "z"],
            n_boot=50,
            random_state=0,
            min_group_size=2,
        )
    assert ci.loc["z", ["value", "lower", "upper"]].tolist() == [0.0, 0.0, 0.0]
    assert ci["small"].to_dict() == {"x": False, "z": True}


# --- errors ------------------------------------------------------------------------------


def test_empty_input_raises():
    with pytest.raises(ValueError, match="y_true is empty"):
        accuracy_by_group([], [], sensitive_features=[])
    with pytest.raises(ValueError, match="sensitive_features is empty"):
        group_sizes([])


@pytest.mark.parametrize(
    "func",
    [
        lambda yt, yp, sf: GroupMetrics("accuracy", yt, yp, sensitive_features=sf),
        lambda yt, yp, sf: demographic_parity_difference(yt, yp, sensitive_features=sf),
        lambda yt, yp, sf: equalized_odds_difference(yt, yp, sensitive_features=sf),
        lambda yt, yp, sf: bootstrap_by_group("accuracy", yt, yp, sensitive_features=sf),
    ],
)
def test_mismatched_lengths_name_each_length(func):
    with pytest.raises(ValueError, match="y_true has 3, y_pred has 2"):
        func([1, 0, 1], [1, 0], ["x", "y", "x"])
    with pytest.raises(ValueError, match="y_true has 3, sensitive_features has 4"):
        func([1, 0, 1], [1, 0, 1], ["x", "y", "x", "y"])


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
def test_missing_sensitive_value_raises(missing):
    sf = pd.DataFrame({"race": ["W", missing, "B"], "gender": ["M", "F", "F"]})
    with pytest.raises(ValueError, match=r"sensitive feature 'race' has 1 missing .*\[1\]"):
        accuracy_by_group([1, 0, 1], [1, 1, 1], sensitive_features=sf)
    with pytest.raises(ValueError, match="missing value"):
        demographic_parity_difference([1, 0, 1], [1, 1, 1], sensitive_features=["W", missing, "B"])


def test_invalid_parameters_raise():
    kwargs = {"sensitive_features": GROUPS}
    with pytest.raises(ValueError, match="'metric' parameter must be a callable or one of"):
        metric_by_group("acc", Y_TRUE, Y_PRED, **kwargs)
    with pytest.raises(ValueError, match=r"'method' parameter .* Got 'overall'"):
        GroupMetrics("accuracy", Y_TRUE, Y_PRED, min_group_size=1, **kwargs).difference("overall")
    with pytest.raises(ValueError, match="'min_group_size' parameter must be a non-negative"):
        group_difference("accuracy", Y_TRUE, Y_PRED, min_group_size=-1, **kwargs)
    with pytest.raises(ValueError, match="'class_agg' parameter must be one of"):
        demographic_parity_difference(Y_TRUE, Y_PRED, class_agg="max", **kwargs)
    with pytest.raises(ValueError, match="'agg' parameter must be one of"):
        equalized_odds_difference(Y_TRUE, Y_PRED, agg="max", **kwargs)
    with pytest.raises(ValueError, match="'zero_division' parameter must be"):
        equalized_odds_difference(Y_TRUE, Y_PRED, zero_division=0.5, **kwargs)
    with pytest.raises(ValueError, match="'n_boot' parameter must be a positive int"):
        bootstrap_by_group("accuracy", Y_TRUE, Y_PRED, n_boot=0, **kwargs)
    with pytest.raises(ValueError, match="'confidence_level' parameter must be a float"):
        bootstrap_by_group("accuracy", Y_TRUE, Y_PRED, confidence_level=95, **kwargs)
    with pytest.raises(ValueError, match="must be one-dimensional"):
        accuracy_by_group(np.zeros((8, 2)), Y_PRED, **kwargs)
    with pytest.raises(ValueError, match="'sensitive_features' parameter is required"):
        accuracy_by_group(Y_TRUE, Y_PRED, sensitive_features=None)


def test_metric_failing_on_a_group_names_the_group():
    def needs_two_classes(y_true, y_pred):
        if len(set(y_true)) < 2:
            raise ValueError("only one class")
        return 1.0

    with pytest.raises(ValueError, match=r"failed on group 'y' \(2 samples\): only one class"):
        metric_by_group(
            needs_two_classes, [0, 1, 1, 1], [0, 1, 1, 1], sensitive_features=["x", "x", "y", "y"]
        )


def test_metrics_package_imports_no_torch():
    code = (
        "import sys, gar_sklearn.metrics, gar_sklearn.plotting; "
        "bad = [m for m in ('torch', 'torchvision', 'skorch', 'matplotlib') "
        "if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_expected_calibration_error_by_hand():
    from gar_sklearn.metrics import expected_calibration_error

    # two bins: [0, .5) holds nothing; [.5, 1] holds confidences .9 .8 .7 .6 (mean .75), 2 of 4 right
    proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    assert expected_calibration_error(
        ["a", "b", "b", "a"], proba, classes=["a", "b"], n_bins=2
    ) == pytest.approx(0.25)
    # ten bins: each row alone in its bin; |1-.9|, |0-.8|, |1-.7|, |0-.6| averaged
    assert expected_calibration_error(
        ["a", "b", "b", "a"], proba, classes=["a", "b"], n_bins=10
    ) == pytest.approx((0.1 + 0.8 + 0.3 + 0.6) / 4)
    assert expected_calibration_error(["a"], [[1.0, 0.0]], classes=["a", "b"]) == 0.0
    with pytest.raises(ValueError, match=r"proba must have shape \(n_samples, 3\)"):
        expected_calibration_error(["a"], [[1.0, 0.0]], classes=["a", "b", "c"])
