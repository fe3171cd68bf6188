"""The metrics on a real fitted MultiAttributeClassifier: the contract they rely on holds.

Uses the session-wide ``fitted`` fixture of tests/conftest.py (a tiny backbone on
synthetic faces), shared with the estimator's own tests.
"""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from gar_sklearn.metrics import default_scoring, group_report


def test_group_report_on_a_fitted_multi_attribute_classifier(synthetic, fitted):
    """The real estimator meets the contract the report relies on."""
    _, _, X_test, y_test = synthetic
    report = group_report(fitted, X_test, y_test, min_group_size=5)
    pred = fitted.predict(X_test)
    targets = fitted.transform_targets(y_test)
    for k, attr in enumerate(fitted.attributes_):
        assert report.overall[f"{attr}_accuracy"] == accuracy_score(targets[attr], pred[:, k])
    assert report.overall["age_mae"] == pytest.approx(
        np.abs(fitted.predict_age(X_test) - y_test["age"].to_numpy()).mean()
    )
    assert report.summary("race")["n"].sum() == len(y_test)


def test_default_scoring_on_a_fitted_multi_attribute_classifier(synthetic, fitted):
    _, _, X_test, y_test = synthetic
    scoring = default_scoring(min_group_size=5)
    scores = {name: scorer(fitted, X_test, y_test) for name, scorer in scoring.items()}
    assert scores == default_scoring(min_group_size=5, combined=True)(fitted, X_test, y_test)
    pred = fitted.predict(X_test)
    targets = fitted.transform_targets(y_test)
    age = fitted.attributes_.index("age")
    assert scores["age_accuracy"] == accuracy_score(targets["age"], pred[:, age])
    assert scores["neg_age_mae"] == pytest.approx(
        -np.abs(fitted.predict_age(X_test) - y_test["age"].to_numpy()).mean()
    )
    per_race = []
    for race in y_test["race"].unique():
        mask = (y_test["race"] == race).to_numpy()
        if mask.sum() >= 5:
            per_race.append(accuracy_score(targets["age"].to_numpy()[mask], pred[mask, age]))
    assert scores["worst_race_age_accuracy"] == pytest.approx(min(per_race))
