"""Mitigation inside fit on UTKFace: the baseline recipe against each mitigation, per race.

    python benchmarks/fairness_utkface.py --out benchmarks/results/fairness_utkface

On the group-aware split and with the training budget of
``accuracy_utkface.py`` (same options, same defaults), fits the library's
CPU recipe once as it is and once per mitigation, and reports for each:
overall accuracy per attribute (gender, race, FairFace's nine age groups)
with its change against the baseline, per-race accuracy per attribute with
95 % bootstrap intervals, the per-race gender gap (the best race's gender
accuracy minus the worst's, over races with at least ``--min-race-size``
test faces) with its interval and its change against the baseline (paired
bootstrap, resampling within each race; the best and worst races are those
of the whole test set), and the fit time.

The mitigations (``--recipes``) are parameters of MultiAttributeClassifier:

- ``reweight_race`` / ``reweight_race_gender``: ``balance="reweight"`` over
  race (or race x gender): each group carries the same weight in the loss;
- ``sample_race`` / ``sample_race_gender``: ``balance="sample"``: each
  epoch's samples drawn with every group equally likely;
- ``select_worst_race``: ``selection="worst_group_accuracy"`` over race
  (the epoch whose worst race, averaged over the heads, is best is kept);
- ``select_worst_race_gender``: selection on the worst race's gender
  accuracy (a callable ``selection``);
- ``reweight_select``: ``reweight_race`` and ``select_worst_race_gender``.

The recipe trains with ``patience=None``: selection then picks among all
epochs without stopping early.
"""

import argparse
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
from _intervals import gap_interval, mean_interval, paired_gain, resamples
from accuracy_utkface import add_recipe_arguments, build, evaluate

from gar_sklearn.metrics import bootstrap_by_group


def worst_race_gender_accuracy(y_true, y_pred, sensitive_features):
    """The lowest gender accuracy of a race of the validation split (a ``selection`` callable)."""
    correct = (y_true["gender"] == y_pred["gender"]).to_numpy()
    races = sensitive_features["race"].to_numpy()
    return float(min(correct[races == r].mean() for r in np.unique(races)))


RECIPES = {
    "baseline": {},
    "reweight_race": dict(group_by="race", balance="reweight"),
    "reweight_race_gender": dict(group_by=("race", "gender"), balance="reweight"),
    "sample_race": dict(group_by="race", balance="sample"),
    "sample_race_gender": dict(group_by=("race", "gender"), balance="sample"),
    "select_worst_race": dict(group_by="race", selection="worst_group_accuracy"),
    "select_worst_race_gender": dict(group_by="race", selection=worst_race_gender_accuracy),
    "reweight_select": dict(
        group_by="race", balance="reweight", selection=worst_race_gender_accuracy
    ),
}
ATTRIBUTES = ("gender", "race", "age")


def per_race(inputs, races, n_boot, min_size):
    """Each race's accuracy per attribute with its bootstrap interval."""
    y_true, y_pred, _, _ = inputs
    tables = {
        a: bootstrap_by_group(
            "accuracy",
            y_true[a],
            y_pred[a],
            sensitive_features=pd.Series(races, name="race"),
            n_boot=n_boot,
            random_state=0,
            min_group_size=min_size,
        )
        for a in ATTRIBUTES
    }
    rows = []
    for race in tables["gender"].index:
        row = {"race": race, "n": int(tables["gender"].loc[race, "n"])}
        for a in ATTRIBUTES:
            name = "age9" if a == "age" else a
            value, lower, upper = tables[a].loc[race, ["value", "lower", "upper"]]
            row.update({f"{name}_accuracy": value, f"{name}_lower": lower, f"{name}_upper": upper})
        rows.append(row)
    return rows


def run_recipe(name, args, data, baseline):
    """Fit one recipe and score it; ``baseline`` is the baseline's per-image correctness (or None)."""
    X_train, X_test, y_train, y_test = data
    clf = build(args).set_params(**RECIPES[name])
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    overall, _, inputs, per_image = evaluate(clf, X_test, y_test)
    races = y_test["race"].to_numpy()
    draws = resamples(len(races), args.n_boot, random_state=0, strata=races)
    row = {"recipe": name, "fit_s": round(fit_s, 1), "epochs_run": len(clf.history_)}
    for head in ("gender", "race", "age9"):
        correct = per_image[f"{head}_correct"]
        row[f"{head}_accuracy"] = overall[f"{head}_accuracy"]
        row[f"{head}_interval"] = mean_interval(correct, draws)
        if baseline is not None:
            row[f"{head}_change"] = paired_gain(baseline[head], correct, draws)
    row["gender_gap"] = gap_interval(
        per_image["gender_correct"],
        races,
        args.min_race_size,
        draws,
        baseline=None if baseline is None else baseline["gender"],
    )
    row["by_race"] = per_race(inputs, races, args.n_boot, args.min_race_size)
    row["per_image"] = per_image
    return row, {h: per_image[f"{h}_correct"] for h in ("gender", "race", "age9")}


def _fmt(interval_):
    return f"{interval_['value']:.3f} [{interval_['lower']:.3f}, {interval_['upper']:.3f}]"


def markdown(rows, header):
    table = []
    for row in rows:
        line = {"recipe": row["recipe"], "fit min": round(row["fit_s"] / 60, 1)}
        for head in ("gender", "race", "age9"):
            line[head] = _fmt(row[f"{head}_interval"])
            if f"{head}_change" in row:
                line[f"{head} change"] = _fmt(row[f"{head}_change"])
        gap = row["gender_gap"]
        line["gender gap"] = f"{_fmt(gap)} ({gap['best']} - {gap['worst']})"
        if "change" in row["gender_gap"]:
            line["gap change"] = _fmt(row["gender_gap"]["change"])
        table.append(line)
    columns = list(dict.fromkeys(k for line in table for k in line))
    sections = [header, markdown_table(table, columns)]
    for row in rows:
        races = [
            {
                "race": r["race"],
                "n": r["n"],
                **{
                    f"{h} accuracy": (
                        f"{r[f'{h}_accuracy']:.3f} [{r[f'{h}_lower']:.3f}, {r[f'{h}_upper']:.3f}]"
                    )
                    for h in ("gender", "race", "age9")
                },
            }
            for r in row["by_race"]
        ]
        sections.append(
            f"{row['recipe']}, accuracy per race [95 % bootstrap interval]:\n\n"
            + markdown_table(
                races, ["race", "n", "gender accuracy", "race accuracy", "age9 accuracy"]
            )
        )
    return "\n\n".join(sections)


def saved_baseline(path, X_test):
    """Each head's per-image correctness from a baseline saved with --save-predictions."""
    saved = load_saved_predictions(path, X_test)
    return {h: saved[f"{h}_correct"] for h in ("gender", "race", "age9")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--min-race-size", type=int, default=100, help="races in the gender gap")
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    parser.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write <out>.npz: the baseline's per-image results, a --baseline for "
        "accuracy_utkface.py",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="a baseline run's <out>.npz (--save-predictions; same recipe options): the "
        "changes are taken against it instead of fitting the baseline again",
    )
    args = parser.parse_args(argv)

    ensure_hub_weights()
    kwargs = {"data": args.data} if args.data else {}
    data = utkface_split(n=args.n, **kwargs)
    names = ["baseline"] + [r for r in args.recipes if r != "baseline"]
    rows, baseline = [], None
    if args.baseline:
        baseline = saved_baseline(args.baseline, data[1])
        names.remove("baseline")
    for name in names:
        row, correct = run_recipe(name, args, data, baseline)
        baseline = correct if baseline is None else baseline
        per_image = row.pop("per_image")
        if name == "baseline" and args.save_predictions and args.out:
            X_test = data[1]
            np.savez(
                Path(args.out).with_suffix(".npz"),
                test_paths=np.asarray(X_test, dtype=str),
                **per_image,
            )
        rows.append(row)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "verbose", "data")}
    results = {
        "rows": rows,
        "n_train": len(data[0]),
        "n_test": len(data[1]),
        "settings": settings,
        "machine": machine(),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    header = (
        f"UTKFace, {len(data[0])} training / {len(data[1])} test images (group-aware split), "
        f"{args.image_size} px, frozen blocks 0-{args.freeze - 1}, {args.epochs} epochs, "
        f"{results['machine']['threads']} torch threads. Accuracy [95 % bootstrap interval]; "
        "changes against the baseline on the same resamples; gender gap = best race's gender "
        f"accuracy minus the worst's, races with at least {args.min_race_size} test faces."
    )
    write_results(args.out, results, markdown(rows, header))
    return results


if __name__ == "__main__":
    main()
