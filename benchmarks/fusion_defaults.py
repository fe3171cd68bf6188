"""GenderFusionClassifier with the defaults (only the backbone changed) on 2,000 UTKFace faces.

What a user's first ``GenderFusionClassifier().fit(X, y)`` costs on this CPU and what it
prints (``docs/estimators.md``). MobileNetV2 replaces the default ResNet50, whose
ImageNet weights are not at hand offline; its weights come from torch's hub cache::

    python benchmarks/fusion_defaults.py > fit.log 2>&1
"""

import time

from _common import DEFAULT_DATA, ensure_hub_weights

from gar_sklearn import GenderFusionClassifier
from gar_sklearn.datasets import load_utkface

if __name__ == "__main__":
    ensure_hub_weights()
    X, y = load_utkface(DEFAULT_DATA, n_samples=2000, random_state=0, return_X_y=True)
    clf = GenderFusionClassifier().set_params(
        gender_estimator__backbone="mobilenet_v2", specialist__backbone="mobilenet_v2"
    )
    start = time.perf_counter()
    clf.fit(X, y)
    print(f"fit: {time.perf_counter() - start:.0f} s")
