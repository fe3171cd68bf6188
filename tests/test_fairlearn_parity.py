"""fairlearn as the oracle: weighted group metrics, differences, ratios and multiclass parity.

Hypothesis draws labels, predictions, one or two sensitive features and sample
weights, including one-sample groups and classes absent from a group. Wherever
fairlearn defines a quantity our numbers agree to 1e-12; the documented
differences are checked too: with fewer than two groups a difference or ratio
is NaN (fairlearn: 0 and 1), and the equalized odds ratio leaves a 0/0 rate
ratio out rather than letting the order of TPR and FPR decide.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, mean_absolute_error, recall_score

from gar_sklearn.metrics import (
    GroupMetrics,
    TooFewGroupsWarning,
    accuracy_by_group,
    bootstrap_by_group,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    group_difference,
    group_ratio,
)

fl = pytest.importorskip("fairlearn.metrics")

METHODS = st.sampled_from(["between_groups", "to_overall"])


@st.composite
def weighted_groups(draw):
    """Labels a/b/c, one or two sensitive features, and weights (or None)."""
    n = draw(st.integers(1, 30))
    labels = st.sampled_from(["a", "b", "c"])
    y_true = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object)
    y_pred = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object)
    values = st.lists(st.sampled_from(["p", "q", "r"]), min_size=n, max_size=n)
    sf = pd.DataFrame({f"f{i}": draw(values) for i in range(draw(st.integers(1, 2)))})
    if sf.shape[1] == 1 and draw(st.booleans()):
        sf = sf["f0"]
    weights = st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)
    weight = np.array(draw(weights)) if draw(st.booleans()) else None
    return y_true, y_pred, sf, weight


# A one-sample group, and classes absent from a group ("c" never true in q, never in p).
EDGE = (
    np.array(["a", "b", "a", "b", "c"], dtype=object),
    np.array(["a", "a", "b", "b", "c"], dtype=object),
    pd.Series(["p", "p", "q", "q", "r"], name="race"),
    np.array([1.0, 2.0, 0.5, 3.0, 1.5]),
)


def _same(ours, theirs):
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float),
        np.asarray(theirs, dtype=float),
        rtol=0,
        atol=1e-12,
        equal_nan=True,
    )


def _n_groups(sf):
    return len(pd.DataFrame(sf).drop_duplicates())


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


@settings(max_examples=30, deadline=None)
@given(weighted_groups(), METHODS)
@example(EDGE, "between_groups")
@example(EDGE, "to_overall")
def test_weighted_metric_frame(data, method):
    y_true, y_pred, sf, weight = data
    rng = np.random.default_rng(len(y_true))
    age_true, age_pred = rng.uniform(0, 90, len(y_true)), rng.uniform(0, 90, len(y_true))
    metrics = {"acc": accuracy_score, "mae": mean_absolute_error}
    ours = _quiet(
        GroupMetrics,
        {"acc": "accuracy"},
        y_true,
        y_pred,
        sensitive_features=sf,
        min_group_size=0,
        sample_weight=weight,
    )
    ours_mae = _quiet(
        GroupMetrics,
        "mae",
        age_true,
        age_pred,
        sensitive_features=sf,
        min_group_size=0,
        sample_weight=weight,
    )
    params = {"sample_weight": weight}
    theirs = fl.MetricFrame(
        metrics=metrics["acc"],
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sf,
        sample_params=params,
    )
    theirs_mae = fl.MetricFrame(
        metrics=metrics["mae"],
        y_true=age_true,
        y_pred=age_pred,
        sensitive_features=sf,
        sample_params=params,
    )
    several = _n_groups(sf) >= 2
    for gm, mf, col in ((ours, theirs, "acc"), (ours_mae, theirs_mae, None)):
        by_group = gm.by_group if col is None else gm.by_group[col]
        _same(by_group, mf.by_group.dropna())
        assert by_group.index.equals(mf.by_group.dropna().index)
        _same(gm.overall if col is None else gm.overall[col], mf.overall)
        _same(_one(gm.group_min(), col), mf.group_min())
        _same(_one(gm.group_max(), col), mf.group_max())
        difference = _quiet(gm.difference, method)
        ratio = _quiet(gm.ratio, method)
        if several:
            _same(_one(difference, col), mf.difference(method=method))
            _same(_one(ratio, col), mf.ratio(method=method))
        else:  # one group: nothing compared (fairlearn reports 0 and 1)
            assert np.isnan(_one(difference, col)) and np.isnan(_one(ratio, col))
            assert mf.difference(method=method) == 0
            assert mf.ratio(method=method) == 1 or np.isnan(mf.ratio(method=method))  # 0/0
    kwargs = {"sensitive_features": sf, "sample_weight": weight}
    _same(accuracy_by_group(y_true, y_pred, **kwargs), theirs.by_group.dropna())
    if several:
        _same(
            group_difference("accuracy", y_true, y_pred, method=method, min_group_size=0, **kwargs),
            theirs.difference(method=method),
        )
        _same(
            group_ratio("accuracy", y_true, y_pred, method=method, min_group_size=0, **kwargs),
            theirs.ratio(method=method),
        )


def _one(value, col):
    return value if col is None else value[col]


def _binarised(y_true, y_pred, c):
    return (y_true == c).astype(int), (y_pred == c).astype(int)


@settings(max_examples=30, deadline=None)
@given(weighted_groups(), METHODS)
@example(EDGE, "between_groups")
@example(EDGE, "to_overall")
def test_demographic_parity_difference_and_ratio(data, method):
    y_true, y_pred, sf, weight = data
    kwargs = {"sensitive_features": sf, "method": method, "sample_weight": weight}
    ours = {
        "difference": _quiet(
            demographic_parity_difference,
            y_true,
            y_pred,
            class_agg=None,
            min_group_size=0,
            **kwargs,
        ),
        "ratio": _quiet(
            demographic_parity_ratio, y_true, y_pred, class_agg=None, min_group_size=0, **kwargs
        ),
    }
    classes = sorted(set(y_true) | set(y_pred))
    theirs = {
        "difference": [
            fl.demographic_parity_difference(*_binarised(y_true, y_pred, c), **kwargs)
            for c in classes
        ],
        "ratio": [
            _quiet(fl.demographic_parity_ratio, *_binarised(y_true, y_pred, c), **kwargs)
            for c in classes
        ],
    }
    if _n_groups(sf) < 2:
        assert np.isnan(ours["difference"]).all() and np.isnan(ours["ratio"]).all()
        assert np.allclose(theirs["difference"], 0)
        return
    for how, worst in (("difference", np.nanmax), ("ratio", np.nanmin)):
        assert ours[how].index.tolist() == classes
        _same(ours[how], theirs[how])
        func = demographic_parity_difference if how == "difference" else demographic_parity_ratio
        expected = np.nan if np.isnan(theirs[how]).all() else worst(theirs[how])
        _same(_quiet(func, y_true, y_pred, min_group_size=0, **kwargs), expected)
        mean = np.nan if np.isnan(theirs[how]).all() else np.nanmean(theirs[how])
        _same(_quiet(func, y_true, y_pred, class_agg="mean", min_group_size=0, **kwargs), mean)


def _rate_ratios(yt, yp, sf, method, weight):
    """fairlearn's TPR and FPR ratios of binary labels (the parts of its equalized odds ratio)."""
    frame = fl.MetricFrame(
        metrics={"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate},
        y_true=yt,
        y_pred=yp,
        sensitive_features=sf,
        sample_params={"tpr": {"sample_weight": weight}, "fpr": {"sample_weight": weight}},
    )
    return _quiet(frame.ratio, method=method)


@settings(max_examples=30, deadline=None)
@given(weighted_groups(), METHODS, st.sampled_from(["worst_case", "mean"]))
@example(EDGE, "between_groups", "worst_case")
@example(EDGE, "to_overall", "mean")
def test_equalized_odds_difference_and_ratio(data, method, agg):
    y_true, y_pred, sf, weight = data
    kwargs = {"sensitive_features": sf, "method": method, "sample_weight": weight, "agg": agg}
    common = {"class_agg": None, "zero_division": 0.0, "min_group_size": 0, **kwargs}
    difference = _quiet(equalized_odds_difference, y_true, y_pred, **common)
    ratio = _quiet(equalized_odds_ratio, y_true, y_pred, **common)
    classes = sorted(set(y_true) | set(y_pred))
    if _n_groups(sf) < 2:
        assert np.isnan(difference).all() and np.isnan(ratio).all()
        return
    expected_ratio = []
    for c, ours_d, ours_r in zip(classes, difference, ratio):
        yt, yp = _binarised(y_true, y_pred, c)
        _same(ours_d, _quiet(fl.equalized_odds_difference, yt, yp, **kwargs))
        parts = _rate_ratios(yt, yp, sf, method, weight)
        if not parts.isna().any():  # fairlearn's own aggregate is defined: equal
            _same(ours_r, fl.equalized_odds_ratio(yt, yp, **kwargs))
        # Where one rate ratio is 0/0, ours leaves it out (fairlearn's min() depends on order).
        expected_ratio.append(parts.min() if agg == "worst_case" else parts.mean())
    _same(ratio, expected_ratio)


def test_equalized_odds_ratio_hand_computed_with_a_zero_over_zero():
    # Class "a": TPR x 1/2, y 1 (ratio 1/2); FPR 0 in both groups (0/0: left out).
    y_true = ["a", "a", "b", "a", "a", "b"]
    y_pred = ["a", "b", "b", "a", "a", "b"]
    groups = ["x", "x", "x", "y", "y", "y"]
    kwargs = {"sensitive_features": groups, "min_group_size": 1, "class_agg": None}
    assert equalized_odds_ratio(y_true, y_pred, **kwargs).to_dict() == {"a": 0.5, "b": 0.0}
    assert equalized_odds_ratio(y_true, y_pred, agg="mean", **kwargs).to_dict() == {
        "a": 0.5,
        "b": 0.5,
    }
    # fairlearn: TPR ratio first, FPR ratio (NaN) second, so min() keeps 1/2 here too.
    yt, yp = _binarised(np.array(y_true), np.array(y_pred), "a")
    assert fl.equalized_odds_ratio(yt, yp, sensitive_features=groups) == 0.5
    # Nothing predicted in any group: 0/0, NaN as fairlearn.
    assert np.isnan(
        demographic_parity_ratio(
            y_true, y_pred, labels=["z"], sensitive_features=groups, min_group_size=1
        )
    )


@settings(max_examples=30, deadline=None)
@given(weighted_groups())
def test_small_group_exclusion_is_fairlearn_on_the_larger_groups(data):
    """With min_group_size=k, a between-groups disparity is fairlearn's on groups of k or more."""
    y_true, y_pred, sf, weight = data
    k = 4
    frame = pd.DataFrame(sf)
    size = frame.groupby(list(frame.columns))[frame.columns[0]].transform("size").to_numpy()
    keep = size >= k
    kwargs = {"sensitive_features": sf, "sample_weight": weight, "min_group_size": k}
    ours = _quiet(group_difference, "accuracy", y_true, y_pred, **kwargs)
    ours_dp = _quiet(demographic_parity_difference, y_true, y_pred, class_agg=None, **kwargs)
    if _n_groups(frame[keep]) < 2:
        assert np.isnan(ours) and np.isnan(ours_dp).all()
        return
    sub = {"sensitive_features": frame[keep]}
    sub["sample_params"] = {"sample_weight": None if weight is None else weight[keep]}
    theirs = fl.MetricFrame(metrics=accuracy_score, y_true=y_true[keep], y_pred=y_pred[keep], **sub)
    _same(ours, theirs.difference())
    w = None if weight is None else weight[keep]
    for c, value in ours_dp.items():
        yt, yp = _binarised(y_true[keep], y_pred[keep], c)
        _same(
            value,
            fl.demographic_parity_difference(
                yt, yp, sensitive_features=frame[keep], sample_weight=w
            ),
        )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_weights_as_repeated_samples():
    """Integer weights give the numbers of the data with each sample repeated."""
    rng = np.random.default_rng(3)
    y_true = rng.choice(list("abc"), 40).astype(object)
    y_pred = np.where(rng.random(40) < 0.6, y_true, "a").astype(object)
    sf = rng.choice(["p", "q", "r"], 40)
    weight = rng.integers(1, 4, 40)
    rep = np.repeat(np.arange(40), weight)
    for func in (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    ):
        weighted = func(
            y_true,
            y_pred,
            sensitive_features=sf,
            sample_weight=weight,
            min_group_size=0,
            class_agg=None,
        )
        repeated = func(
            y_true[rep], y_pred[rep], sensitive_features=sf[rep], min_group_size=0, class_agg=None
        )
        _same(weighted, repeated)
    gm = GroupMetrics(
        "accuracy", y_true, y_pred, sensitive_features=sf, sample_weight=weight, min_group_size=0
    )
    _same(gm.by_group, accuracy_by_group(y_true[rep], y_pred[rep], sensitive_features=sf[rep]))


def test_bootstrap_with_weights_fast_path_equals_the_metric():
    rng = np.random.default_rng(1)
    y_true = rng.choice(list("ab"), 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, "a")
    groups = rng.choice(["x", "y"], 60)
    weight = rng.uniform(0.5, 2.0, 60)
    kwargs = {"sensitive_features": groups, "n_boot": 100, "random_state": 0, "min_group_size": 1}
    fast = bootstrap_by_group("accuracy", y_true, y_pred, sample_weight=weight, **kwargs)
    slow = bootstrap_by_group(
        lambda t, p, sample_weight=None: accuracy_score(t, p, sample_weight=sample_weight),
        y_true,
        y_pred,
        sample_weight=weight,
        **kwargs,
    )
    _same(fast[["value", "lower", "upper"]], slow[["value", "lower", "upper"]])
    _same(
        fast["value"],
        accuracy_by_group(y_true, y_pred, sensitive_features=groups, sample_weight=weight),
    )


def test_sample_weight_is_checked():
    with pytest.raises(ValueError, match="y_true has 3, sample_weight has 2"):
        accuracy_by_group(
            [1, 0, 1], [1, 1, 1], sensitive_features=list("xyx"), sample_weight=[1, 2]
        )
    with pytest.raises(ValueError, match=r"'sample_weight' parameter must hold finite, non-neg"):
        demographic_parity_difference(
            [1, 0], [1, 1], sensitive_features=list("xy"), sample_weight=[1, -1]
        )


def test_recall_with_weights_as_any_sklearn_metric():
    """A scikit-learn metric receives each group's weights, as in fairlearn's MetricFrame."""
    y_true, y_pred = [1, 1, 0, 1, 1, 0], [1, 0, 0, 1, 1, 1]
    groups, weight = ["x", "x", "x", "y", "y", "y"], [1, 3, 1, 1, 1, 1]
    gm = GroupMetrics(
        recall_score,
        y_true,
        y_pred,
        sensitive_features=groups,
        min_group_size=1,
        sample_weight=weight,
    )
    assert gm.by_group.to_dict() == {"x": 0.25, "y": 1.0}
    with pytest.warns(TooFewGroupsWarning, match="single group"):
        one = GroupMetrics(
            recall_score, y_true, y_pred, sensitive_features=["x"] * 6, min_group_size=0
        )
        assert np.isnan(one.difference())
