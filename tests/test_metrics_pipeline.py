"""Scorers, reports and displays through a Pipeline ending in an estimator, and GridSearchCV.

The Pipeline's first step mirrors the images (a stateless FunctionTransformer):
what the final estimator sees differs from X, so reading predictions or ages
past the Pipeline's transforms would give other numbers.
"""

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.metrics import (
    GroupReport,
    SmallGroupWarning,
    accuracy_by_group,
    combine_scorers,
    default_scoring,
    group_report,
    make_group_scorer,
    make_parity_scorer,
)

mirror = partial(np.flip, axis=2)


@pytest.fixture(scope="module")
def faces():
    X, y = make_synthetic_faces(120, image_size=16, random_state=0)
    return X, y


def _pipeline():
    from gar_sklearn import MultiAttributeClassifier

    clf = MultiAttributeClassifier(
        backbone="tiny",
        weights=None,
        image_size=16,
        age_bins="fairface",
        max_epochs=2,
        lr=1e-2,
        random_state=0,
    )
    return Pipeline([("mirror", FunctionTransformer(mirror)), ("clf", clf)])


@pytest.fixture(scope="module")
def pipe(faces):
    X, y = faces
    return _pipeline().fit(X, y)


def test_report_through_a_pipeline_reads_the_final_step_past_the_transforms(faces, pipe):
    X, y = faces
    clf = pipe[-1]
    report = GroupReport.from_estimator(pipe, X, y, min_group_size=5)
    direct = group_report(clf, mirror(X), y, min_group_size=5)  # what the pipeline does
    for key in direct.summaries:
        pd.testing.assert_frame_equal(report.summaries[key], direct.summaries[key])
    np.testing.assert_array_equal(report.age_pred, clf.predict_age(mirror(X)))
    assert not np.allclose(report.age_pred, clf.predict_age(X))  # the mirror matters
    targets = clf.transform_targets(y)
    pred = pipe.predict(X)
    for k, attr in enumerate(clf.attributes_):
        assert report.overall[f"{attr}_accuracy"] == accuracy_score(targets[attr], pred[:, k])


def test_scorers_through_a_pipeline(faces, pipe):
    X, y = faces
    clf = pipe[-1]
    scoring = default_scoring(min_group_size=5)
    scoring["parity"] = make_parity_scorer(attribute="gender", min_group_size=5)
    through = {name: s(pipe, X, y) for name, s in scoring.items()}
    direct = {name: s(clf, mirror(X), y) for name, s in scoring.items()}
    assert through == direct
    assert combine_scorers(scoring)(pipe, X, y) == through


def test_displays_from_a_pipeline(faces, pipe):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gar_sklearn.plotting import AgeErrorDisplay, ConfusionMatricesDisplay, GroupMetricDisplay

    X, y = faces
    clf = pipe[-1]
    targets, pred = clf.transform_targets(y), pipe.predict(X)
    bars = GroupMetricDisplay.from_estimator(
        pipe, X, y, attribute="race", n_boot=50, random_state=0, min_group_size=5
    )
    expected = accuracy_by_group(targets["race"], pred[:, 2], sensitive_features=y["race"])
    assert [b.get_height() for b in bars.bars_] == pytest.approx(expected.tolist())
    matrices = ConfusionMatricesDisplay.from_estimator(pipe, X, y)
    assert list(matrices.displays) == list(clf.attributes_)
    ages = AgeErrorDisplay.from_estimator(pipe, X, y)
    error = clf.predict_age(mirror(X)) - y["age"].to_numpy()
    assert ages.overall_mae == pytest.approx(np.abs(error).mean())
    plt.close("all")


def test_grid_search_over_a_pipeline_with_group_scorers(faces):
    X, y = faces
    scoring = {
        "worst_race_gender": make_group_scorer(
            attribute="gender", sensitive="race", min_group_size=5
        ),
        "gender_parity": make_parity_scorer(
            attribute="gender", aggregate="ratio", min_group_size=5
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)  # folds of 60 faces
        search = GridSearchCV(
            _pipeline(),
            {"clf__lr": [1e-2, 1e-4]},
            scoring=scoring,
            refit="worst_race_gender",
            cv=KFold(2, shuffle=True, random_state=0),
        ).fit(X, y)
    means = search.cv_results_["mean_test_worst_race_gender"]
    assert search.best_index_ == int(np.argmax(means))
    assert np.isfinite(search.cv_results_["mean_test_gender_parity"]).all()
    # A fitted search is read through its best estimator.
    best = search.best_estimator_
    for scorer in scoring.values():
        assert scorer(search, X, y) == scorer(best, X, y)
    pd.testing.assert_series_equal(
        group_report(search, X, y, min_group_size=5).overall,
        group_report(best, X, y, min_group_size=5).overall,
    )


def test_a_pipeline_ending_elsewhere_names_its_final_step(faces):
    from sklearn.dummy import DummyClassifier

    X, y = faces
    flat = X.reshape(len(X), -1)
    pipe = Pipeline([("id", FunctionTransformer()), ("dummy", DummyClassifier())])
    pipe.fit(flat, y["gender"])
    with pytest.raises(TypeError, match=r"DummyClassifier \(the final step of Pipeline\) has no"):
        group_report(pipe, flat, y)
