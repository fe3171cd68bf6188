"""What cached features buy on a CPU: time and accuracy of head-only and partial fine-tuning.

    python benchmarks/cache_utkface.py --out benchmarks/results/cache_utkface

On UTKFace at 224 px with MobileNetV2 (ImageNet weights from the hub cache),
on a group-aware held-out split:

1. head-only training (``freeze="backbone"``) for 10 epochs, against the time
   of one feature-extraction pass over the training images (target: at most
   1.3x);
2. a grid of 6 head configurations over the same backbone (learning rate x
   dropout), from a cold cache, against one fit of one of them (target: at
   most 1.5x): the candidates share one extraction;
2b. the same with learning rate x hidden units (none or 256 per head): the
   hidden-layer candidates do 3-4x the arithmetic of a linear head, so this
   grid is also set against the mean of one fit of each head shape;
3. partial fine-tuning (blocks 15-18 and the heads trained from cached block-14
   activations of each image and its mirror).

The extraction time is the time spent inside the feature cache's computation,
measured by wrapping it; everything else a fit does (loading, the split,
training, validation) counts on the fit's side.
"""

import argparse
import time

import numpy as np
from _common import (
    ensure_hub_weights,
    machine,
    markdown_table,
    peak_rss_mb,
    utkface_split,
    write_results,
)
from sklearn.model_selection import GridSearchCV

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._feature_cache import FeatureCache, feature_cache
from gar_sklearn.augmentation import RandomFlip
from gar_sklearn.datasets import group_train_test_split

EXTRACTION = {"seconds": 0.0, "images": 0}


def _count_extraction():
    compute = FeatureCache._compute

    def timed_compute(module, source, keys, indices, image_size, n_views, *args, **kwargs):
        start = time.perf_counter()
        out = compute(module, source, keys, indices, image_size, n_views, *args, **kwargs)
        EXTRACTION["seconds"] += time.perf_counter() - start
        EXTRACTION["images"] += len(indices) * n_views
        return out

    FeatureCache._compute = staticmethod(timed_compute)


def evaluate(clf, X, y):
    pred = clf.predict_frame(X, proba=True)
    truth = clf.transform_targets(y)
    out = {
        f"{a}_accuracy": float(np.mean(pred[a].to_numpy() == truth[a].to_numpy()))
        for a in clf.attributes_
    }
    out["age_mae"] = float(np.mean(np.abs(pred["age_years"].to_numpy() - y["age"].to_numpy())))
    return out


def fit_timed(clf, X, y):
    feature_cache.clear()
    EXTRACTION.update(seconds=0.0, images=0)
    start = time.perf_counter()
    clf.fit(X, y)
    total = time.perf_counter() - start
    return {
        "fit_s": round(total, 1),
        "extraction_s": round(EXTRACTION["seconds"], 1),
        "extracted_views": EXTRACTION["images"],
        "epochs": len(clf.history_),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="UTKFace folder (default: ../shared/data/utkface)"
    )
    parser.add_argument("--n", type=int, default=None, help="random subset of this many images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--weights", default="DEFAULT", help='"DEFAULT", a torchvision name, a file or "none"'
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["heads", "grid", "grid_hidden", "partial"],
        choices=["heads", "grid", "grid_hidden", "partial"],
    )
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    args = parser.parse_args(argv)

    ensure_hub_weights()
    _count_extraction()
    kwargs = {"data": args.data} if args.data else {}
    X_train, X_test, y_train, y_test = utkface_split(n=args.n, **kwargs)
    base = dict(
        backbone="mobilenet_v2",
        weights=None if args.weights.lower() == "none" else args.weights,
        image_size=args.image_size,
        age_bins="fairface",
        max_epochs=args.epochs,
        patience=None,
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="cosine",
        batch_size=64,
        random_state=0,
    )
    rows, results = (
        [],
        {
            "machine": machine(),
            "n_train": len(X_train),
            "n_test": len(X_test),
            "image_size": args.image_size,
            "epochs": args.epochs,
        },
    )

    if "heads" in args.modes:
        clf = MultiAttributeClassifier(freeze="backbone", lr=3e-3, **base)
        timing = fit_timed(clf, X_train, y_train)
        timing["fit_over_extraction"] = round(timing["fit_s"] / timing["extraction_s"], 3)
        rows.append({"mode": "heads only", **timing, **evaluate(clf, X_test, y_test)})

    # one held-out fold, so the 6 candidates cost 6 fits on the same images
    _, _, tr, va = group_train_test_split(
        X_train, np.arange(len(X_train)), test_size=0.2, random_state=0
    )

    def timed_grid(grid_params):
        grid = GridSearchCV(
            MultiAttributeClassifier(freeze="backbone", **base),
            grid_params,
            cv=[(tr, va)],
            refit=False,
        )
        feature_cache.clear()
        EXTRACTION.update(seconds=0.0, images=0)
        start = time.perf_counter()
        grid.fit(X_train, y_train)
        return grid, {
            "fit_s": round(time.perf_counter() - start, 1),
            "extraction_s": round(EXTRACTION["seconds"], 1),
            "extracted_views": EXTRACTION["images"],
            "best": str(grid.cv_results_["params"][grid.best_index_]),
        }

    if "grid" in args.modes:
        # six configurations of linear heads, each as costly as the reference fit (lr=3e-3, dropout=0.2)
        single = fit_timed(
            MultiAttributeClassifier(freeze="backbone", lr=3e-3, **base),
            X_train[tr],
            y_train.iloc[tr],
        )
        _, timing = timed_grid({"lr": [1e-3, 3e-3, 1e-2], "dropout": [0.2, 0.5]})
        rows.append(
            {
                "mode": "grid of 6 head configurations (lr x dropout)",
                **timing,
                "grid_over_one_fit": round(timing["fit_s"] / single["fit_s"], 3),
                "one_fit_s": single["fit_s"],
            }
        )

    if "grid_hidden" in args.modes:
        # half the candidates with a 256-unit hidden layer per head: 3-4x the heads' arithmetic of a linear
        # head, so the grid is also set against the mean of one fit of each head shape
        singles = [
            fit_timed(
                MultiAttributeClassifier(freeze="backbone", lr=3e-3, head_hidden_units=h, **base),
                X_train[tr],
                y_train.iloc[tr],
            )["fit_s"]
            for h in (None, 256)
        ]
        _, timing = timed_grid({"lr": [1e-3, 3e-3, 1e-2], "head_hidden_units": [None, 256]})
        rows.append(
            {
                "mode": "grid of 6 head configurations (lr x hidden units)",
                **timing,
                "grid_over_one_fit": round(timing["fit_s"] / singles[0], 3),
                "one_fit_s": singles[0],
                "one_fit_hidden_s": singles[1],
                "grid_over_mean_fit": round(timing["fit_s"] / np.mean(singles), 3),
            }
        )

    if "partial" in args.modes:
        clf = MultiAttributeClassifier(
            freeze=15, augment=RandomFlip(p=1.0), cache_views=2, lr=1e-3, **base
        )
        timing = fit_timed(clf, X_train, y_train)
        rows.append(
            {
                "mode": "partial (blocks 15-18 + heads, image + mirror cached)",
                **timing,
                **evaluate(clf, X_test, y_test),
            }
        )

    results["rows"] = rows
    results["peak_rss_mb"] = round(peak_rss_mb())
    columns = [
        "mode",
        "fit_s",
        "extraction_s",
        "extracted_views",
        "fit_over_extraction",
        "grid_over_one_fit",
        "grid_over_mean_fit",
        "gender_accuracy",
        "race_accuracy",
        "age_accuracy",
        "age_mae",
    ]
    markdown = (
        f"UTKFace, {len(X_train)} training / {len(X_test)} test images (group-aware split), "
        f"MobileNetV2 at {args.image_size} px, {args.epochs} epochs, {results['machine']['threads']} "
        f"torch threads, peak RSS {results['peak_rss_mb']} MB\n\n" + markdown_table(rows, columns)
    )
    write_results(args.out, results, markdown)
    return results


if __name__ == "__main__":
    main()
