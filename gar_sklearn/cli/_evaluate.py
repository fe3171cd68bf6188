"""``gar-sklearn evaluate``: split group-aware, train, predict the held-out part, report per group.

Writes into ``--out``: ``split.csv`` (first, before training), ``model.pt``,
``predictions.csv``, ``report.txt``, ``report.json`` and ``plots/``.
"""

import importlib.util
import os
import time

from ._console import count, note
from ._errors import CommandError
from ._files import check_output, write_atomically
from ._predict import prediction_frame, rounded
from ._presets import DEFAULTS
from ._reporting import make_report, plot_names, report_json, write_json, write_plots
from ._train import fit_and_save, given_inputs, prepare

__all__ = ["OUTPUTS", "run"]

OUTPUTS = {
    "split.csv": "csv",
    "model.pt": "model",
    "predictions.csv": "csv",
    "report.txt": "text",
    "report.json": "json",
}
PLOTS = "plots"


def _groupings(args, columns):
    if args.by is not None:
        missing = sorted(
            {c for g in args.by for c in ((g,) if isinstance(g, str) else g)} - set(columns)
        )
        if missing:
            raise CommandError(
                f"--by names {missing}, which the labels lack; they have {list(columns)}."
            )
        return args.by
    default = [c for c in ("race", "gender") if c in columns]
    return default + ([("race", "gender")] if len(default) == 2 else [])


def _check_outputs(args, inputs, attributes, groupings, ages):
    """Every file evaluate will write, checked before any work."""
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandError(f"--out {args.out!r} is a file; evaluate writes a folder of results.")
    for name, kind in OUTPUTS.items():
        check_output(os.path.join(args.out, name), kind, inputs, args.force)
    if not args.no_plots:
        for name in plot_names(attributes, groupings, ages):
            check_output(os.path.join(args.out, PLOTS, name), "image", inputs, args.force)


def _split(args, paths, target):
    """``(train, test)`` positions, and the duplicate group of each image."""
    import numpy as np

    from gar_sklearn.datasets import find_duplicate_groups, group_train_test_split

    note(args, f"Looking for byte-identical images among {count(len(paths), 'image')}.")
    groups = find_duplicate_groups(paths)
    train, test = group_train_test_split(
        np.arange(len(paths)),
        test_size=args.test_size,
        random_state=args.random_state,
        groups=groups,
    )
    n_dup = len(paths) - len(np.unique(groups))
    note(
        args,
        f"Split: {len(train)} training and {len(test)} held-out images; {count(n_dup, 'duplicate')} "
        "of other images kept on the side of their original.",
    )
    return train, test, groups


def _write_split(path, paths, target, test, groups):
    import numpy as np

    frame = target.copy()
    frame.insert(0, "path", [os.path.abspath(p) for p in paths])
    side = np.full(len(paths), "train", dtype=object)
    side[test] = "test"
    frame["split"], frame["duplicate_group"] = side, groups
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def _numeric_ages(target):
    import pandas as pd

    return "age" in target and pd.to_numeric(target["age"], errors="coerce").notna().all()


def _held_out_report(args, preds, y_test, groupings):
    """The group report of the readable held-out images (ages compared in FairFace's groups
    when the labels hold years)."""
    from gar_sklearn.preprocessing import AgeBinner

    ok = (preds["status"] == "ok").to_numpy()
    if not ok.any():
        raise CommandError("None of the held-out images could be read; nothing to report.")
    y = y_test[ok].reset_index(drop=True)
    attributes = list(y.columns)
    y_pred = preds.loc[ok, attributes].reset_index(drop=True)
    y_true = y[attributes].copy()
    age_pred = None
    if _numeric_ages(y):
        y_true["age"] = AgeBinner("fairface").fit([0]).transform(y["age"].to_numpy(dtype=float))
        y_pred["age"] = preds.loc[ok, "age_group"].to_numpy()
        age_pred = preds.loc[ok, "age_years"].to_numpy(dtype=float)
    report = make_report(y, y_true, y_pred, age_pred, groupings, args.min_group_size)
    return report, int((~ok).sum())


def _settings(args):
    names = [*DEFAULTS, "preset", "device", "random_state", "test_size", "n", "data", "format"]
    return {name: getattr(args, name) for name in names}


def _write_results(args, report, inputs, extra):
    text = report.to_text(details=args.details)
    print(text, flush=True)

    def write_text(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")

    write_atomically(os.path.join(args.out, "report.txt"), write_text)
    write_json(
        os.path.join(args.out, "report.json"), report_json(report, **extra), inputs, args.force
    )
    if not args.no_plots:
        folder = os.path.join(args.out, PLOTS)
        written = write_plots(folder, report, extra["by"], inputs, args.force)
        note(args, f"Wrote {len(written)} plots to {folder}")


def _check_plotting(args):
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "evaluate draws its plots with matplotlib, which is not installed: "
            "pip install 'gar-sklearn[plot]' (or pip install matplotlib), or pass --no-plots."
        )


def run(args):
    _check_plotting(args)
    inputs = given_inputs(args)
    estimator, paths, target = prepare(args, inputs)
    groupings = _groupings(args, target.columns)
    ages = _numeric_ages(target)
    _check_outputs(args, inputs, list(target.columns), groupings, ages)
    train, test, groups = _split(args, paths, target)
    _write_split(os.path.join(args.out, "split.csv"), paths, target, test, groups)
    start = time.perf_counter()
    model = os.path.join(args.out, "model.pt")
    fit_and_save(
        args, estimator, paths[train], target.iloc[train].reset_index(drop=True), model, inputs
    )
    fit_s = time.perf_counter() - start
    note(args, f"Saved the model to {model}. Predicting {count(len(test), 'held-out image')}.")
    preds = rounded(
        prediction_frame(estimator, paths[test], age_groups="fairface" if ages else None)
    )
    preds["path"] = [os.path.abspath(p) for p in preds["path"]]
    write_atomically(
        os.path.join(args.out, "predictions.csv"), lambda tmp: preds.to_csv(tmp, index=False)
    )
    y_test = target.iloc[test].reset_index(drop=True)
    report, n_unreadable = _held_out_report(args, preds, y_test, groupings)
    if n_unreadable:
        note(args, f"{count(n_unreadable, 'held-out image')} could not be read and are left out.")
    extra = dict(
        n_train=len(train),
        n_test=len(test),
        n_unreadable_test=n_unreadable,
        fit_seconds=round(fit_s, 1),
        by=groupings,
        settings=_settings(args),
    )
    _write_results(args, report, inputs, extra)
    note(args, f"Wrote the model, the split, the predictions and the report to {args.out}")
