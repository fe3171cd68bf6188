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

Each library feature of issue 23 is an option, off by default, measured on
the same split:

    --weight-averaging ema|swa [--ema-decay D] [--averaging-start E]
    --views N --view-augment flip|face     (N cached views: the image and N - 1 copies)
    --calibrate                            (ECE before and after, per head and per race)
    --patience P --lr-schedule S --age-sigma S --freeze K --image-size S

Run the baseline once with ``--save-predictions`` (writes <out>.npz: each
test image's correctness, age error and confidence per head), then each
variant with ``--baseline <baseline out>.npz``: the table then gives each
metric's gain over the baseline with a 95 % paired bootstrap interval.
"""

import argparse
import contextlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import (
    ensure_hub_weights,
    load_saved_predictions,
    machine,
    markdown_table,
    peak_rss_mb,
    utkface_split,
    write_results,
)
from _intervals import ece_interval, mean_interval, paired_gain, resamples

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.augmentation import FaceAugmenter, RandomFlip
from gar_sklearn.metrics import GroupReport, expected_calibration_error
from gar_sklearn.preprocessing import AgeBinner, age_group_midpoints, aggregate_age_proba

TARGETS = {"gender_accuracy": 0.94, "race_accuracy": 0.84, "age9_accuracy": 0.65, "age_mae": 5.0}


VIEW_AUGMENTERS = {"flip": lambda: RandomFlip(p=1.0), "face": FaceAugmenter}
HEADS = ("gender", "race", "age9")


def build(args):
    return MultiAttributeClassifier(
        backbone="mobilenet_v2",
        weights=None if args.weights.lower() == "none" else args.weights,
        image_size=args.image_size,
        freeze=args.freeze,
        augment=VIEW_AUGMENTERS[args.view_augment](),
        cache_views=args.views,
        age_bins=1 if args.age_sigma else "fairface",
        age_sigma=args.age_sigma or None,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        lr_schedule=None if args.lr_schedule == "none" else args.lr_schedule,
        max_epochs=args.epochs,
        patience=args.patience,
        batch_size=64,
        weight_averaging=None if args.weight_averaging == "none" else args.weight_averaging,
        ema_decay=args.ema_decay,
        averaging_start=args.averaging_start,
        calibrate=args.calibrate,
        cache_dir=args.cache_dir,
        test_time_flip=not args.no_flip,
        random_state=args.seed,
        verbose=args.verbose,
    )


def read_out(clf, probas, y_test):
    """Labels, nine-group ages and expected ages from the heads' probabilities, and each
    test image's correctness, age error and top-class probability per head."""
    att = list(clf.attributes_)
    labels = {a: clf.classes_[k][probas[k].argmax(axis=1)] for k, a in enumerate(att)}
    p_age = probas[att.index("age")]
    ages = age_group_midpoints(clf.classes_[att.index("age")])
    age9_proba, groups = aggregate_age_proba(p_age, ages, "fairface")
    truth9 = AgeBinner("fairface").fit_transform(y_test["age"])
    pred9 = groups[age9_proba.argmax(axis=1)]
    age_expected = p_age @ ages
    true_age = y_test["age"].to_numpy(dtype=float)
    per_image = {
        "gender_correct": labels["gender"] == y_test["gender"].to_numpy(),
        "race_correct": labels["race"] == y_test["race"].to_numpy(),
        "age9_correct": pred9 == truth9,
        "age_error": np.abs(age_expected - true_age),
        "age_error_argmax": np.abs(ages[p_age.argmax(axis=1)] - true_age),
        "gender_confidence": probas[att.index("gender")].max(axis=1),
        "race_confidence": probas[att.index("race")].max(axis=1),
        "age9_confidence": age9_proba.max(axis=1),
    }
    y_pred = {"gender": labels["gender"], "age": pred9, "race": labels["race"]}
    y_true = {
        "gender": y_test["gender"].to_numpy(),
        "age": truth9,
        "race": y_test["race"].to_numpy(),
    }
    return per_image, (y_true, y_pred, true_age, age_expected), (age9_proba, groups)


def evaluate(clf, X_test, y_test):
    """Every figure from one pass of the test images through the network."""
    start = time.perf_counter()
    probas = clf.predict_proba(X_test)
    predict_s = time.perf_counter() - start
    att = list(clf.attributes_)
    per_image, inputs, (age9_proba, groups) = read_out(clf, probas, y_test)
    y_true, y_pred, true_age, age_expected = inputs
    overall = {
        "gender_accuracy": float(per_image["gender_correct"].mean()),
        "race_accuracy": float(per_image["race_correct"].mean()),
        "age9_accuracy": float(per_image["age9_correct"].mean()),
        "age_mae": float(per_image["age_error"].mean()),
        "age_mae_argmax": float(per_image["age_error_argmax"].mean()),
        "gender_ece": expected_calibration_error(
            y_test["gender"], probas[att.index("gender")], classes=clf.classes_[att.index("gender")]
        ),
        "race_ece": expected_calibration_error(
            y_test["race"], probas[att.index("race")], classes=clf.classes_[att.index("race")]
        ),
        "age9_ece": expected_calibration_error(y_true["age"], age9_proba, classes=groups),
        "predict_s": round(predict_s, 1),
        "predict_images_per_s": round(len(X_test) / predict_s, 1),
    }
    report = GroupReport.from_predictions(
        pd.DataFrame(y_true),
        pd.DataFrame(y_pred),
        age_true=y_test["age"],
        age_pred=age_expected,
        by=("race", "gender"),
        min_group_size=30,
    )
    return overall, report, inputs, per_image


@contextlib.contextmanager
def uncalibrated(clf):
    """``clf`` predicting with its heads' temperatures set aside."""
    temperatures = clf.temperatures_
    clf.temperatures_ = None
    try:
        yield clf
    finally:
        clf.temperatures_ = temperatures


def calibration(clf, X_test, y_test, per_image, draws):
    """ECE of each head before and after temperature scaling, overall and per race, with
    intervals (the change on the same resamples)."""
    with uncalibrated(clf):
        before, _, _ = read_out(clf, clf.predict_proba(X_test), y_test)
    races = y_test["race"].to_numpy()
    rows = []
    for race in [None, *np.unique(races)]:
        keep = np.ones(len(races), bool) if race is None else races == race
        sub = resamples(int(keep.sum()), len(draws), random_state=1)
        for head in HEADS:
            conf, correct = (per_image[f"{head}_{k}"][keep] for k in ("confidence", "correct"))
            base = (before[f"{head}_confidence"][keep], before[f"{head}_correct"][keep])
            after = ece_interval(conf, correct, sub, baseline=base)
            rows.append(
                {
                    "race": race or "all",
                    "head": head,
                    "ece_before": ece_interval(*base, sub)["value"],
                    "ece_after": after["value"],
                    "change": after["change"]["value"],
                    "change_lower": after["change"]["lower"],
                    "change_upper": after["change"]["upper"],
                    "n": int(keep.sum()),
                }
            )
    return {"temperatures": list(clf.temperatures_), "ece": rows}


def gains(per_image, baseline_file, test_paths, draws):
    """Each metric's change against a baseline run's saved predictions, with paired intervals."""
    saved = load_saved_predictions(baseline_file, test_paths)
    rows = []
    for key in ("gender_correct", "race_correct", "age9_correct", "age_error", "age_error_argmax"):
        gain = paired_gain(saved[key], per_image[key], draws)
        base = mean_interval(saved[key], draws)["value"]
        rows.append(
            {"metric": key, "baseline": base, "this_run": base + gain["value"], **_named(gain)}
        )
    for head in HEADS:
        ece = ece_interval(
            per_image[f"{head}_confidence"],
            per_image[f"{head}_correct"],
            draws,
            baseline=(saved[f"{head}_confidence"], saved[f"{head}_correct"]),
        )
        base = ece["value"] - ece["change"]["value"]
        rows.append(
            {
                "metric": f"{head}_ece",
                "baseline": base,
                "this_run": ece["value"],
                **_named(ece["change"]),
            }
        )
    return rows


def _named(gain):
    return {"gain": gain["value"], "gain_lower": gain["lower"], "gain_upper": gain["upper"]}


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


def add_recipe_arguments(parser):
    """The options that shape the recipe and its data (shared with fairness_utkface.py)."""
    parser.add_argument(
        "--data", default=None, help="UTKFace folder (default: ../shared/data/utkface)"
    )
    parser.add_argument("--n", type=int, default=None, help="random subset of this many images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--freeze", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--lr-schedule",
        default="onecycle",
        choices=["onecycle", "cosine", "plateau", "step", "none"],
    )
    parser.add_argument("--patience", type=int, default=None, help="early stopping (default: none)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument(
        "--age-sigma", type=float, default=2.5, help="0: nine age groups with one-hot targets"
    )
    parser.add_argument("--views", type=int, default=2, help="cached views per training image")
    parser.add_argument(
        "--view-augment",
        default="flip",
        choices=sorted(VIEW_AUGMENTERS),
        help="what makes views 1 ...: the mirror image, or FaceAugmenter (crop, flip, light)",
    )
    parser.add_argument("--weight-averaging", default="none", choices=["none", "ema", "swa"])
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--averaging-start", type=int, default=0)
    parser.add_argument("--calibrate", action="store_true", help="temperature scaling per head")
    parser.add_argument("--weights", default="DEFAULT")
    parser.add_argument(
        "--no-flip", action="store_true", help="predict without averaging with the mirror image"
    )
    parser.add_argument("--cache-dir", default=None, help="keep cached activations on disk here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--verbose", type=int, default=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    parser.add_argument(
        "--plots", default=None, help="write per-race accuracy and age-error plots here"
    )
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    parser.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write <out>.npz, a baseline for --baseline",
    )
    parser.add_argument("--baseline", default=None, help="a baseline run's <out>.npz: report gains")
    args = parser.parse_args(argv)

    ensure_hub_weights()
    kwargs = {"data": args.data} if args.data else {}
    X_train, X_test, y_train, y_test = utkface_split(n=args.n, **kwargs)
    clf = build(args)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    overall, report, inputs, per_image = evaluate(clf, X_test, y_test)
    if args.plots:
        plot(inputs, args.plots)
    draws = resamples(len(X_test), args.n_boot, random_state=0)
    results = summary(args, clf, overall, report, fit_s, (len(X_train), len(X_test)))
    sections = [_headline(args, clf, results), _metric_table(overall)]
    if args.calibrate:
        results["calibration"] = calibration(clf, X_test, y_test, per_image, draws)
        sections.append(_calibration_table(results["calibration"]))
    if args.baseline:
        results["gains"] = gains(per_image, args.baseline, X_test, draws)
        sections.append(
            "Gain over the baseline (95 % paired bootstrap interval):\n\n"
            + markdown_table(
                results["gains"],
                ["metric", "baseline", "this_run", "gain", "gain_lower", "gain_upper"],
            )
        )
    sections += [
        "Per race:\n\n" + report.summary("race").to_markdown(floatfmt=".3f"),
        "Per gender:\n\n" + report.summary("gender").to_markdown(floatfmt=".3f"),
    ]
    if args.save_predictions and args.out:
        np.savez(
            Path(args.out).with_suffix(".npz"),
            test_paths=np.asarray(X_test, dtype=str),
            **per_image,
        )
    write_results(args.out, results, "\n\n".join(sections))
    return results


def summary(args, clf, overall, report, fit_s, sizes):
    settings = {
        k: v
        for k, v in vars(args).items()
        if k not in ("out", "plots", "verbose", "data", "baseline", "save_predictions")
    }
    met = {k: (overall[k] <= v if k == "age_mae" else overall[k] >= v) for k, v in TARGETS.items()}
    history_keys = (
        "epoch",
        "train_loss",
        "valid_loss",
        "valid_acc_gender",
        "valid_acc_race",
        "dur",
    )
    return {
        "overall": overall,
        "fit_s": round(fit_s, 1),
        "epochs_run": len(clf.history_),
        "n_train": sizes[0],
        "n_test": sizes[1],
        "weights": clf.weights_,
        "settings": settings,
        "machine": machine(),
        "peak_rss_mb": round(peak_rss_mb()),
        "targets": TARGETS,
        "targets_met": met,
        "by_race": report.summary("race").reset_index().to_dict(orient="records"),
        "by_gender": report.summary("gender").reset_index().to_dict(orient="records"),
        "history": [{k: row.get(k) for k in history_keys} for row in clf.history_],
    }


def _headline(args, clf, results):
    return (
        f"UTKFace, {results['n_train']} training / {results['n_test']} test images (group-aware "
        f"split), weights {clf.weights_}, {args.image_size} px, frozen blocks 0-{args.freeze - 1}, "
        f"{args.views} cached views ({args.view_augment}), weight averaging "
        f"{args.weight_averaging}, {len(clf.history_)} epochs; training {results['fit_s'] / 60:.1f} "
        f"min on {results['machine']['threads']} torch threads, peak RSS "
        f"{results['peak_rss_mb']} MB; prediction {results['overall']['predict_images_per_s']} images/s."
    )


def _metric_table(overall):
    met = {k: (overall[k] <= v if k == "age_mae" else overall[k] >= v) for k, v in TARGETS.items()}
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
    return markdown_table(rows, ["metric", "value", "target", "met"])


def _calibration_table(calibration):
    temperatures = ", ".join(f"{t:.3f}" for t in calibration["temperatures"])
    columns = [
        "race",
        "head",
        "n",
        "ece_before",
        "ece_after",
        "change",
        "change_lower",
        "change_upper",
    ]
    return (
        f"Temperature scaling (temperatures per head: {temperatures}); expected calibration "
        "error before and after, with the change's 95 % paired bootstrap interval:\n\n"
        + markdown_table(calibration["ece"], columns)
    )


if __name__ == "__main__":
    main()
