"""Fine-tune MobileNetV2 on UTKFace and report accuracy on a group-aware held-out split.

    python examples/train_utkface.py ../shared/data/utkface

MobileNetV2's ImageNet weights are read from torch's hub cache (downloaded on
a connected machine; copied from ../shared/weights when present). The first
12 blocks are frozen and their activations cached for each image and its
mirror, so blocks 12-18 and the three heads train quickly on a CPU; on a GPU
pass ``--freeze 0`` to fine-tune the whole network. Age is learnt as exact
ages with Gaussian label distributions and read out in FairFace's nine
groups; predictions average each image with its mirror image.

Prints gender and race accuracy, accuracy over FairFace's nine age groups,
age MAE, and wall times. benchmarks/accuracy_utkface.py runs the same recipe
at 224 px with per-group tables.
"""

import argparse
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.augmentation import RandomFlip
from gar_sklearn.datasets import group_train_test_split, load_utkface
from gar_sklearn.preprocessing import AgeBinner

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "mobilenet_v2-b0353104.pth"
)


def put_weights_in_hub_cache(path=SHARED_WEIGHTS):
    """Make weights="DEFAULT" load offline: torchvision reads torch's hub cache."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if path.exists() and not (cache / path.name).exists():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, cache / path.name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of UTKFace images (or its parent holding images/)")
    parser.add_argument(
        "--n", type=int, default=None, help="use a random subset of this many images"
    )
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument(
        "--freeze", type=int, default=12, help="frozen MobileNetV2 blocks (0: fine-tune all)"
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--weights", default="DEFAULT", help='"DEFAULT", a torchvision name, a file, or "none"'
    )
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    put_weights_in_hub_cache()
    start = time.perf_counter()
    X, y = load_utkface(args.data, n_samples=args.n, random_state=args.seed, return_X_y=True)
    X_train, X_test, y_train, y_test = group_train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed
    )
    print(f"{len(X_train)} training and {len(X_test)} test images (duplicates kept on one side)")

    clf = MultiAttributeClassifier(
        backbone="mobilenet_v2",
        weights=None if args.weights.lower() == "none" else args.weights,
        image_size=args.image_size,
        freeze=args.freeze or None,
        augment=RandomFlip(p=1.0),  # the cached second view of each image is its mirror
        cache_views=2,
        age_bins=1,  # exact ages ...
        age_sigma=2.5,  # ... learnt as Gaussian label distributions
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="onecycle",
        max_epochs=args.epochs,
        patience=None,  # the one-cycle schedule sets the length
        batch_size=64,
        test_time_flip=True,
        random_state=args.seed,
        verbose=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="weights='DEFAULT'")
        clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start

    t = time.perf_counter()
    pred = clf.predict_frame(
        X_test, proba=True, age_groups="fairface"
    )  # one pass over the test images
    pred["age"], ages = pred["age_group"], pred["age_years"].to_numpy()
    predict_s = time.perf_counter() - t
    truth = y_test.assign(age=AgeBinner("fairface").fit_transform(y_test["age"]))
    print(
        f"\nweights: {clf.weights_}, image size {args.image_size}, frozen stages {clf.n_frozen_stages_}"
    )
    for attribute in ("gender", "race", "age"):
        acc = np.mean(pred[attribute].to_numpy() == truth[attribute].to_numpy())
        name = "age (nine groups)" if attribute == "age" else attribute
        print(f"{name:>18} accuracy: {acc:.3f}")
    print(f"{'age MAE':>18}: {np.mean(np.abs(ages - y_test['age'].to_numpy())):.2f} years")
    print(
        f"{'wall time':>18}: fit {fit_s:.0f} s (loading, features, {len(clf.history_)} epochs), "
        f"predict {predict_s:.0f} s for {len(X_test)} images"
    )
    return clf


if __name__ == "__main__":
    main()
