"""The library's best CPU recipe on UTKFace: accuracy, per-group tables, calibration, time.

    python benchmarks/accuracy_utkface.py --out benchmarks/results/accuracy_utkface --plots docs/images

Trains MultiAttributeClassifier (MobileNetV2, ImageNet weights from torch's
hub cache) on a group-aware 80/20 split of ../shared/data/utkface, then
writes a JSON and a Markdown table: gender and race accuracy, accuracy over
FairFace's nine age groups, age MAE (expected value over the age head and
the argmax class), per-race and per-gender tables, expected calibration
error, the settings and the training time.

The recipe: blocks 0-11 of MobileNetV2 frozen and their activations cached
for each image and its mirror (computed once); blocks 12-18 and three heads
trained with AdamW and a one-cycle schedule; age learnt as exact ages with
Gaussian label distributions (``age_sigma``), read out as the expected age
and as FairFace's nine groups by summing the distribution; at test time each
image's probabilities are averaged with its mirror image's.
"""

import argparse
import time

import numpy as np
import pandas as pd
from _common import (
    ensure_hub_weights,
    machine,
    markdown_table,
    peak_rss_mb,
    utkface_split,
    write_results,
)

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.augmentation import RandomFlip
from gar_sklearn.metrics import GroupReport, expected_calibration_error
from gar_sklearn.preprocessing import AgeBinner, age_group_midpoints, aggregate_age_proba

TARGETS = {"gender_accuracy": 0.94, "race_accuracy": 0.84, "age9_accuracy": 0.65, "age_mae": 5.0}


def build(args):
    return MultiAttributeClassifier(
        backbone="mobilenet_v2",
        weights=None if args.weights.lower() == "none" else args.weights,
        image_size=args.image_size,
        freeze=args.freeze,
        augment=RandomFlip(p=1.0),
        cache_views=2,
        age_bins=1 if args.age_sigma else "fairface",
        age_sigma=args.age_sigma or None,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        lr_schedule="onecycle",
        max_epochs=args.epochs,
        patience=None,
        batch_size=64,
        cache_dir=args.cache_dir,
        test_time_flip=not args.no_flip,
        random_state=args.seed,
        verbose=args.verbose,
    )


def evaluate(clf, X_test, y_test):
    """Every figure from one pass of the test images through the network."""
    start = time.perf_counter()
    probas = clf.predict_proba(X_test)
    predict_s = time.perf_counter() - start
    att = list(clf.attributes_)
    labels = {a: clf.classes_[k][probas[k].argmax(axis=1)] for k, a in enumerate(att)}
    p_age = probas[att.index("age")]
    ages = age_group_midpoints(clf.classes_[att.index("age")])
    age9_proba, groups = aggregate_age_proba(p_age, ages, "fairface")
    truth9 = AgeBinner("fairface").fit_transform(y_test["age"])
    pred9 = groups[age9_proba.argmax(axis=1)]
    age_expected = p_age @ ages
    age_argmax = ages[p_age.argmax(axis=1)]
    true_age = y_test["age"].to_numpy(dtype=float)

    overall = {
        "gender_accuracy": float(np.mean(labels["gender"] == y_test["gender"].to_numpy())),
        "race_accuracy": float(np.mean(labels["race"] == y_test["race"].to_numpy())),
        "age9_accuracy": float(np.mean(pred9 == truth9)),
        "age_mae": float(np.mean(np.abs(age_expected - true_age))),
        "age_mae_argmax": float(np.mean(np.abs(age_argmax - true_age))),
        "gender_ece": expected_calibration_error(
            y_test["gender"], probas[att.index("gender")], classes=clf.classes_[att.index("gender")]
        ),
        "race_ece": expected_calibration_error(
            y_test["race"], probas[att.index("race")], classes=clf.classes_[att.index("race")]
        ),
        "age9_ece": expected_calibration_error(truth9, age9_proba, classes=groups),
        "predict_s": round(predict_s, 1),
        "predict_images_per_s": round(len(X_test) / predict_s, 1),
    }
    y_pred = {"gender": labels["gender"], "age": pred9, "race": labels["race"]}
    y_true = {
        "gender": y_test["gender"].to_numpy(),
        "age": truth9,
        "race": y_test["race"].to_numpy(),
    }
    report = GroupReport.from_predictions(
        pd.DataFrame(y_true),
        pd.DataFrame(y_pred),
        age_true=y_test["age"],
        age_pred=age_expected,
        by=("race", "gender"),
        min_group_size=30,
    )
    return overall, report, (y_true, y_pred, true_age, age_expected)


def plot(report_inputs, folder):
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    from gar_sklearn.plotting import plot_age_error, plot_group_metric

    y_true, y_pred, true_age, age_pred = report_inputs
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for attribute in ("gender", "race", "age"):
        ax = plot_group_metric(
            y_true[attribute],
            y_pred[attribute],
            sensitive_features=y_true["race"],
            n_boot=500,
            random_state=0,
        )
        name = "nine-group age" if attribute == "age" else attribute
        ax.set_title(f"UTKFace test set: {name} accuracy by race (95% bootstrap CI)")
        ax.figure.savefig(
            folder / f"utkface_{attribute}_accuracy_by_race.png", dpi=110, bbox_inches="tight"
        )
    ax = plot_age_error(true_age, age_pred, bins="fairface")
    ax.set_title("UTKFace test set: age error by true age group")
    ax.figure.savefig(folder / "utkface_age_error.png", dpi=110, bbox_inches="tight")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="UTKFace folder (default: ../shared/data/utkface)"
    )
    parser.add_argument("--n", type=int, default=None, help="random subset of this many images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--freeze", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument(
        "--age-sigma", type=float, default=2.5, help="0: nine age groups with one-hot targets"
    )
    parser.add_argument("--weights", default="DEFAULT")
    parser.add_argument(
        "--no-flip", action="store_true", help="predict without averaging with the mirror image"
    )
    parser.add_argument("--cache-dir", default=None, help="keep cached activations on disk here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--plots", default=None, help="write per-race accuracy and age-error plots here"
    )
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    ensure_hub_weights()
    kwargs = {"data": args.data} if args.data else {}
    X_train, X_test, y_train, y_test = utkface_split(n=args.n, **kwargs)
    clf = build(args)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    overall, report, inputs = evaluate(clf, X_test, y_test)
    if args.plots:
        plot(inputs, args.plots)

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "plots", "verbose", "data")}
    results = {
        "overall": overall,
        "fit_s": round(fit_s, 1),
        "epochs_run": len(clf.history_),
        "n_train": len(X_train),
        "n_test": len(X_test),
        "weights": clf.weights_,
        "settings": settings,
        "machine": machine(),
        "peak_rss_mb": round(peak_rss_mb()),
        "targets": TARGETS,
        "by_race": report.summary("race").reset_index().to_dict(orient="records"),
        "by_gender": report.summary("gender").reset_index().to_dict(orient="records"),
        "history": [
            {
                k: row.get(k)
                for k in (
                    "epoch",
                    "train_loss",
                    "valid_loss",
                    "valid_acc_gender",
                    "valid_acc_race",
                    "dur",
                )
            }
            for row in clf.history_
        ],
    }
    met = {k: (overall[k] <= v if k == "age_mae" else overall[k] >= v) for k, v in TARGETS.items()}
    results["targets_met"] = met
    rows = [
        {"metric": k, "value": overall[k], "target": TARGETS.get(k), "met": met.get(k)}
        for k in (
            "gender_accuracy",
            "race_accuracy",
            "age9_accuracy",
            "age_mae",
            "age_mae_argmax",
            "gender_ece",
            "race_ece",
            "age9_ece",
        )
    ]
    markdown = "\n\n".join(
        [
            f"UTKFace, {len(X_train)} training / {len(X_test)} test images (group-aware split), weights "
            f"{clf.weights_}, {args.image_size} px, frozen blocks 0-{args.freeze - 1}, {len(clf.history_)} epochs; "
            f"training {fit_s / 60:.1f} min on {results['machine']['threads']} torch threads, peak RSS "
            f"{results['peak_rss_mb']} MB; prediction {overall['predict_images_per_s']} images/s.",
            markdown_table(rows, ["metric", "value", "target", "met"]),
            "Per race:\n\n" + report.summary("race").to_markdown(floatfmt=".3f"),
            "Per gender:\n\n" + report.summary("gender").to_markdown(floatfmt=".3f"),
        ]
    )
    write_results(args.out, results, markdown)
    return results


if __name__ == "__main__":
    main()
