"""scikit-learn's estimator checks.

The estimators take images, not the 2-D numeric arrays scikit-learn's checks
generate, so the checks run on a pipeline whose first step lays each row out
as a tiny image; for GenderFusionClassifier, whose y holds a gender column and
the specialist's attributes, the last step is a thin wrapper that makes them
from the checks' 1-D labels. The API checks that need no data also run on the
bare estimators. Both estimators pass every check but the two listed in
EXPECTED_FAILURES, with the reason.
"""

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import validate_data

from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier


class RowsToImages(TransformerMixin, BaseEstimator):
    """Squash each feature into 0-255 and write the features into an 8x8 RGB image.

    It validates the numeric input as scikit-learn's checks expect (finite,
    dense, 2-D), so that those checks exercise the classifier behind it.
    """

    def fit(self, X, y=None):
        validate_data(self, X)
        return self

    def transform(self, X):
        X = validate_data(self, X, reset=False)
        if X.shape[1] > 192:
            raise ValueError("at most 192 features fit an 8x8x3 image")
        pixels = np.zeros((len(X), 192))
        pixels[:, : X.shape[1]] = 255 / (1 + np.exp(-X))
        return pixels.round().astype(np.uint8).reshape(len(X), 8, 8, 3)


def image_pipeline():
    return make_pipeline(
        RowsToImages(),
        MultiAttributeClassifier(
            backbone="tiny",
            weights=None,
            attributes=("label",),
            image_size=8,
            max_epochs=3,
            lr=0.05,
            validation_fraction=0,
            random_state=0,
        ),
    )


PIPELINE_FITS_STEPS_IN_PLACE = (
    "a Pipeline fits the estimator objects held in its 'steps' parameter, so that parameter changes "
    "by design; test_fit_changes_no_parameter_of_the_bare_estimator checks the estimator itself"
)
EXPECTED_FAILURES = {
    "check_estimators_overwrite_params": PIPELINE_FITS_STEPS_IN_PLACE,
    "check_dont_overwrite_parameters": PIPELINE_FITS_STEPS_IN_PLACE,
}


@parametrize_with_checks([image_pipeline()], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible_through_an_image_pipeline(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
    ],
)
@pytest.mark.parametrize("estimator", [MultiAttributeClassifier, GenderFusionClassifier])
def test_api_checks_on_the_bare_estimator(check, estimator):
    check(estimator.__name__, estimator())


def _bare_estimators():
    from gar_sklearn.augmentation import FaceAugmenter

    part = dict(backbone="tiny", weights=None, image_size=16, max_epochs=1, verbose=0)
    return [
        MultiAttributeClassifier(augment=FaceAugmenter(), random_state=0, **part),
        GenderFusionClassifier(
            gender_estimator=MultiAttributeClassifier(attributes=("gender",), **part),
            specialist=MultiAttributeClassifier(
                attributes=("age", "race"), augment=FaceAugmenter(), **part
            ),
            random_state=0,
        ),
    ]


@pytest.mark.parametrize("est", _bare_estimators(), ids=lambda est: type(est).__name__)
def test_fit_changes_no_parameter_of_the_bare_estimator(est):
    from gar_sklearn.datasets import make_synthetic_faces

    X, y = make_synthetic_faces(40, image_size=16, random_state=0)
    params = joblib.hash(est.get_params(deep=True))
    public = {k for k in vars(est) if not k.startswith("_")}
    est.fit(X, y)
    assert joblib.hash(est.get_params(deep=True)) == params
    added = {k for k in vars(est) if not k.startswith("_")} - public
    assert added and all(k.endswith("_") for k in added), added


# ---------------------------------------------------------------- GenderFusionClassifier
class FusionOnOneLabel(BaseEstimator):
    """GenderFusionClassifier on the 1-D labels scikit-learn's checks generate.

    The fusion model needs y with a gender column of two values and the
    specialist's attributes; a scikit-learn pipeline cannot transform y, so
    this thin wrapper does: the gender is whether the label is above the
    smallest label (0 or 1), the specialist's one attribute the label
    itself. fit, predict and predict_proba are the fusion model's, in the
    forms the checks compare sample by sample: predict's labels (an object
    array, as the columns of a label table may mix types) as the numbers
    they are, and predict_proba's list of one array per attribute as one
    array, the attributes' columns side by side.
    """

    def __init__(self, fusion=None):
        self.fusion = fusion

    def _frame(self, y):
        import pandas as pd

        y = np.asarray(y).ravel()
        return pd.DataFrame({"gender": (y > y.min()).astype(int), "label": y})

    def fit(self, X, y):
        self.fusion_ = clone(self.fusion).fit(X, self._frame(y))
        return self

    def predict(self, X):
        return self.fusion_.predict(X).astype(float)

    def predict_proba(self, X):
        return np.hstack(self.fusion_.predict_proba(X))


def fusion_pipeline(strategy):
    part = dict(
        backbone="tiny",
        weights=None,
        image_size=8,
        max_epochs=3,
        lr=0.05,
        validation_fraction=0,
        verbose=0,
    )
    return make_pipeline(
        RowsToImages(),
        FusionOnOneLabel(
            GenderFusionClassifier(
                gender_estimator=MultiAttributeClassifier(attributes=("gender",), **part),
                specialist=MultiAttributeClassifier(attributes=("label",), **part),
                genders=(0, 1),
                random_state=0,
                strategy=strategy,
            )
        ),
    )


# The shared network's probabilities for a row differ by about 2e-7 between a batch of
# 100 rows and a smaller one: float32 rounding of the batched matrix products, which the
# check compares at an absolute tolerance of 1e-7. Hard routing picks whole rows of them.
SHARED_FAILURES = {
    **EXPECTED_FAILURES,
    "check_methods_subset_invariance": "float32 rounding of batched matrix products (2e-7)",
}


def _fusion_failures(est):
    shared = est[-1].fusion.strategy == "shared"
    return SHARED_FAILURES if shared else EXPECTED_FAILURES


@parametrize_with_checks(
    [fusion_pipeline("separate"), fusion_pipeline("shared")],
    expected_failed_checks=_fusion_failures,
)
def test_fusion_sklearn_compatible_through_an_image_pipeline(estimator, check):
    check(estimator)
