"""MultiAttributeClassifier against GenderFusionClassifier (hard and soft routing) on UTKFace.

The write-up behind this library claims that classifying gender first and then
age and race with a gender-specific model beats one network predicting all
three. This script measures it on real faces, on a held-out split that keeps
byte-identical images on one side (:func:`gar_sklearn.datasets.group_train_test_split`,
stratified on gender x race).

Budget: every network gets the same recipe (backbone and weights, frozen
prefix, image size, optimiser, learning rate, epochs, early stopping, batch
size, per-epoch augmentation), and each fusion specialist trains on its
gender's images grown to as many rows as the end-to-end model trains on
(the write-up's approach). The fusion model therefore trains three networks to
the end-to-end model's one: the fit wall times show that difference. Soft and
hard routing share one fitted fusion model; only prediction differs. The
process-wide feature cache is emptied before each model so that each pays its
own feature extraction.

Reported, overall, per gender and per race (true labels): accuracy of gender,
of the nine FairFace age groups and of race, and the age MAE in years of the
expected age (``predict_age``) against the exact ages, with wall times; and
for each fusion variant its difference from the end-to-end model with a
paired bootstrap 95% interval.

The full run (the maintainer's; hours on a CPU, MobileNetV2 ImageNet weights
from ``../shared/weights``)::

    python benchmarks/fusion_vs_multi.py --data ../shared/data/utkface --out fusion_vs_multi

A smoke test on a small subset (a minute or two)::

    python benchmarks/fusion_vs_multi.py --n 400 --image-size 64 --epochs 2 --out /tmp/fusion_smoke
"""

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "utkface"
MOBILENET_V2_FILE = SHARED / "weights" / "mobilenet_v2-b0353104.pth"
METRICS = ("gender_accuracy", "age_accuracy", "race_accuracy", "age_mae")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="UTKFace folder (default: %(default)s)"
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="use a subset of this many images, stratified by gender x race (default: all)",
    )
    parser.add_argument(
        "--test-size", type=float, default=0.2, help="held-out fraction (default: %(default)s)"
    )
    parser.add_argument("--image-size", type=int, default=128, help="default: %(default)s")
    parser.add_argument(
        "--epochs", type=int, default=15, help="max epochs of every network (default: %(default)s)"
    )
    parser.add_argument(
        "--patience", type=int, default=3, help="early stopping patience (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="default: %(default)s")
    parser.add_argument("--lr", type=float, default=1e-3, help="default: %(default)s")
    parser.add_argument("--backbone", default="mobilenet_v2", help="default: %(default)s")
    parser.add_argument(
        "--weights",
        default="DEFAULT",
        help="'DEFAULT' (ImageNet), a torchvision weights name, a state_dict file, "
        "or 'none' for random initialisation (default: %(default)s)",
    )
    parser.add_argument(
        "--weights-file",
        default=str(MOBILENET_V2_FILE),
        help="MobileNetV2 ImageNet checkpoint copied into torch's hub cache when "
        "missing there, so 'DEFAULT' works offline (default: %(default)s)",
    )
    parser.add_argument(
        "--freeze",
        default="15",
        help="frozen backbone prefix, its activations cached: a number of stages "
        "or a stage name (default: %(default)s, MobileNetV2's features.0-14)",
    )
    parser.add_argument(
        "--cache-views",
        type=int,
        default=2,
        help="cached views per image: itself and augmented copies (default: %(default)s)",
    )
    parser.add_argument("--device", default="auto", help="default: %(default)s")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="paired bootstrap resamples for the differences (default: %(default)s)",
    )
    parser.add_argument("--random-state", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--out", default=None, help="write <out>.json and <out>.md (default: stdout only)"
    )
    parser.add_argument(
        "--verbose", type=int, default=0, help="1: a line per epoch (default: %(default)s)"
    )
    return parser.parse_args(argv)


def ensure_hub_weights(weights_file):
    """Copy the MobileNetV2 ImageNet checkpoint into torch's hub cache unless it is there."""
    import torch

    source = Path(weights_file)
    target = Path(torch.hub.get_dir()) / "checkpoints" / source.name
    if not target.exists() and source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target


def recipe(args):
    """The training settings shared by every network."""
    from gar_sklearn.augmentation import FaceAugmenter

    weights = None if str(args.weights).lower() == "none" else args.weights
    freeze = int(args.freeze) if str(args.freeze).isdigit() else args.freeze
    return dict(
        backbone=args.backbone,
        weights=weights,
        image_size=args.image_size,
        freeze=freeze,
        age_bins="fairface",
        augment=FaceAugmenter(),
        cache_views=args.cache_views,
        lr=args.lr,
        max_epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.random_state,
        verbose=args.verbose,
    )


def scores(frame):
    """The metrics on the rows of ``frame`` (true and predicted columns)."""
    return {
        "n": len(frame),
        "gender_accuracy": float(np.mean(frame["gender_true"] == frame["gender_pred"])),
        "age_accuracy": float(np.mean(frame["age_group_true"] == frame["age_group_pred"])),
        "race_accuracy": float(np.mean(frame["race_true"] == frame["race_pred"])),
        "age_mae": float(np.mean(np.abs(frame["age_true"] - frame["age_years"]))),
    }


def evaluate(clf, X, y):
    """Predictions next to the truth, one row per test image, and the predict wall time."""
    start = time.perf_counter()
    pred = clf.predict_frame(X, proba=True)
    seconds = time.perf_counter() - start
    truth = clf.transform_targets(y)
    frame = pd.DataFrame(
        {
            "gender_true": truth["gender"].to_numpy(),
            "gender_pred": pred["gender"].to_numpy(),
            "age_group_true": truth["age"].to_numpy(),
            "age_group_pred": pred["age"].to_numpy(),
            "race_true": truth["race"].to_numpy(),
            "race_pred": pred["race"].to_numpy(),
            "age_true": y["age"].to_numpy(dtype=float),
            "age_years": pred["age_years"].to_numpy(dtype=float),
        }
    )
    return frame, seconds


def report(frame):
    return {
        "overall": scores(frame),
        "by_gender": {str(g): scores(part) for g, part in frame.groupby("gender_true", sort=True)},
        "by_race": {str(r): scores(part) for r, part in frame.groupby("race_true", sort=True)},
    }


def per_image(frame):
    """Per-image values whose means are the metrics: hits, and absolute age errors."""
    return {
        "gender_accuracy": (frame["gender_true"] == frame["gender_pred"]).to_numpy(float),
        "age_accuracy": (frame["age_group_true"] == frame["age_group_pred"]).to_numpy(float),
        "race_accuracy": (frame["race_true"] == frame["race_pred"]).to_numpy(float),
        "age_mae": np.abs(frame["age_true"] - frame["age_years"]).to_numpy(float),
    }


def paired_differences(frame, baseline, n_resamples, random_state):
    """``frame``'s metrics minus ``baseline``'s on the same images, with a bootstrap 95% interval."""
    a, b = per_image(frame), per_image(baseline)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, len(frame), size=(n_resamples, len(frame))) if n_resamples else None
    out = {}
    for metric in METRICS:
        diff = a[metric] - b[metric]
        entry = {"difference": float(diff.mean())}
        if idx is not None:
            boot = diff[idx].mean(axis=1)
            entry["ci95"] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
        out[metric] = entry
    return out


def _table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(metric, value):
    return f"{value:.2f}" if metric == "age_mae" else f"{value:.3f}"


def markdown(results):
    data, models, config = results["data"], results["models"], results["config"]
    names = list(models)
    heads = [
        "model",
        "gender acc",
        "age acc (9 groups)",
        "race acc",
        "age MAE (years)",
        "fit s",
        "predict s",
    ]
    parts = [
        (
            f"## MultiAttributeClassifier vs GenderFusionClassifier on UTKFace\n\n"
            f"{data['n_train']} training and {data['n_test']} held-out images (group-aware split, "
            f"duplicates kept together), {config['image_size']} px, backbone {config['backbone']} "
            f"(weights {config['weights_loaded']}, freeze {config['freeze']}), at most "
            f"{config['epochs']} epochs per network.\n"
        ),
        "### Overall\n",
        _table(
            [
                [n]
                + [_fmt(m, models[n]["overall"][m]) for m in METRICS]
                + [f"{models[n]['fit_seconds']:.0f}", f"{models[n]['predict_seconds']:.1f}"]
                for n in names
            ],
            heads,
        ),
    ]
    for by, title in (("by_gender", "gender"), ("by_race", "race")):
        rows = []
        for n in names:
            for group, s in models[n][by].items():
                rows.append([n, group, s["n"]] + [_fmt(m, s[m]) for m in METRICS])
        parts += [
            f"\n### Per {title} (true labels)\n",
            _table(rows, ["model", title, "n", "gender acc", "age acc", "race acc", "age MAE"]),
        ]
    rows = []
    for n, diffs in results["differences"].items():
        cells = []
        for m in METRICS:
            d = diffs[m]
            ci = f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if "ci95" in d else ""
            cells.append(f"{d['difference']:+.3f}{ci}")
        rows.append([f"{n} - MultiAttributeClassifier"] + cells)
    parts += [
        "\n### Differences from the end-to-end model (paired bootstrap 95% interval)\n",
        _table(rows, ["", "gender acc", "age acc", "race acc", "age MAE"]),
        "\nPositive accuracy differences and negative MAE differences favour the fusion model.\n",
    ]
    return "\n".join(parts)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
    from gar_sklearn._feature_cache import feature_cache
    from gar_sklearn.augmentation import FaceAugmenter
    from gar_sklearn.datasets import group_train_test_split, load_utkface

    if args.threads:
        torch.set_num_threads(args.threads)
    # every network resolves the weights: say once that DEFAULT fell back to the cached V1
    warnings.filterwarnings("once", message="weights='DEFAULT'")
    if str(args.weights).lower() != "none" and args.backbone == "mobilenet_v2":
        ensure_hub_weights(args.weights_file)
    bunch = load_utkface(args.data, n_samples=args.n, random_state=args.random_state)
    X, y = bunch.data, bunch.target
    X_train, X_test, y_train, y_test = group_train_test_split(
        X,
        y,
        test_size=args.test_size,
        random_state=args.random_state,
        stratify=y[["gender", "race"]],
    )
    y_train, y_test = y_train.reset_index(drop=True), y_test.reset_index(drop=True)
    settings = recipe(args)

    multi = MultiAttributeClassifier(attributes=("gender", "age", "race"), **settings)
    fusion = GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **settings),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), **settings),
        augment=FaceAugmenter(),
        routing="hard",
        random_state=args.random_state,
    )
    models, frames = {}, {}
    for name, clf in (("MultiAttributeClassifier", multi), ("GenderFusion", fusion)):
        feature_cache.clear()  # each model pays its own feature extraction
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        routings = ("hard", "soft") if name == "GenderFusion" else (None,)
        for routing in routings:
            label = name if routing is None else f"{name} ({routing})"
            if routing is not None:
                clf.set_params(routing=routing)
            frames[label], predict_seconds = evaluate(clf, X_test, y_test)
            models[label] = {
                "fit_seconds": fit_seconds,
                "predict_seconds": predict_seconds,
                **report(frames[label]),
            }
            print(f"{label}: fit {fit_seconds:.0f} s, {models[label]['overall']}", file=sys.stderr)
            if routing is not None:
                models[label]["train_sizes"] = {str(g): int(v) for g, v in clf.train_sizes_.items()}

    baseline = frames["MultiAttributeClassifier"]
    results = {
        "config": {
            **vars(args),
            "weights": str(settings["weights"]),
            "weights_loaded": str(multi.weights_),
            "freeze": settings["freeze"],
            "age_bins": "fairface",
            "growth_copies": "FaceAugmenter()",
        },
        "data": {
            "path": str(args.data),
            "n_images": len(X),
            "n_train": len(X_train),
            "n_test": len(X_test),
        },
        "models": models,
        "differences": {
            label: paired_differences(frames[label], baseline, args.bootstrap, args.random_state)
            for label in ("GenderFusion (hard)", "GenderFusion (soft)")
        },
    }
    text = markdown(results)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2))
        out.with_suffix(".md").write_text(text)
    return results


if __name__ == "__main__":
    main()
