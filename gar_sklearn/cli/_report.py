"""``gar-sklearn report``: predictions joined with true labels, reported per group."""

import os

from ._console import count, note
from ._errors import CommandError
from ._files import Inputs
from ._reporting import make_report, report_json, write_json, write_plots
from ._tables import path_column, read_table, resolved_paths

__all__ = ["NO_GROUP", "age_group_of", "match_paths", "run", "true_ages_like"]

NO_GROUP = "(no predicted group)"


def match_paths(pred_paths, truth_paths):
    """For each prediction path, the position of its truth row, or -1.

    Absolute paths first; then file names that occur once among the distinct
    prediction paths and once among the truth paths.
    """
    import numpy as np

    truth_abs = {}
    for i, p in enumerate(truth_paths):
        truth_abs.setdefault(os.path.abspath(p), i)
    out = np.array([truth_abs.get(os.path.abspath(p), -1) for p in pred_paths])
    truth_names = {}
    for i, p in enumerate(truth_paths):
        truth_names.setdefault(os.path.basename(p), []).append(i)
    pred_names = {}
    for p in set(pred_paths):
        pred_names.setdefault(os.path.basename(p), set()).add(p)
    for k in np.flatnonzero(out < 0):
        name = os.path.basename(pred_paths[k])
        if len(truth_names.get(name, ())) == 1 and len(pred_names[name]) == 1:
            out[k] = truth_names[name][0]
    return out


def age_group_of(age, groups):
    """The label among ``groups`` whose range holds ``age`` (exact years), else :data:`NO_GROUP`."""
    from gar_sklearn.preprocessing import age_group_bounds

    for label in groups:
        try:
            low, high = age_group_bounds(label)
        except ValueError:
            continue
        if low <= age <= high:
            return label
    return NO_GROUP


def true_ages_like(true_ages, pred_ages, all_pred_ages):
    """The true age labels in the vocabulary of the predictions.

    Numeric true ages against predicted groups are put in the predicted group
    holding them (FairFace's nine groups when the predictions use them).
    """
    import numpy as np
    import pandas as pd

    true_num = pd.to_numeric(true_ages, errors="coerce")
    pred_num = pd.to_numeric(pred_ages, errors="coerce")
    if true_num.notna().all() and pred_num.notna().all():  # exact ages on both sides
        return true_num.round().astype(int).to_numpy(), pred_num.round().astype(int).to_numpy()
    if not true_num.notna().all():  # groups on both sides: compare as text
        return true_ages.astype(str).to_numpy(), pred_ages.astype(str).to_numpy()
    from gar_sklearn.preprocessing import FAIRFACE_AGE_GROUPS, AgeBinner

    vocabulary = list(dict.fromkeys(all_pred_ages.dropna().astype(str)))
    if set(vocabulary) <= set(FAIRFACE_AGE_GROUPS):
        truth = AgeBinner("fairface").fit([0]).transform(true_num.to_numpy())
    else:
        truth = np.asarray([age_group_of(a, vocabulary) for a in true_num.to_numpy()], dtype=object)
    return np.asarray(truth, dtype=object), pred_ages.astype(str).to_numpy()


def _check_columns(args, preds, truth):
    """The attributes compared and the grouping columns, checked against both files."""
    attributes = [c for c in preds.columns if f"{c}_proba" in preds.columns]
    if not attributes:
        raise CommandError(
            f"The predictions file {args.preds!r} has no prediction columns (an attribute column "
            f"with its '<attribute>_proba', as 'gar-sklearn predict' writes); it has "
            f"{list(preds.columns)}."
        )
    shared = [a for a in attributes if a in truth.columns]
    if not shared:
        raise CommandError(
            f"The truth file {args.truth!r} has none of the predicted attributes {attributes}; "
            f"it has the columns {list(truth.columns)}."
        )
    by_columns = sorted({c for g in args.by for c in ((g,) if isinstance(g, str) else g)})
    missing = [c for c in by_columns if c not in truth.columns]
    if missing:
        raise CommandError(
            f"--by names {missing}, which the truth file {args.truth!r} lacks; it has the "
            f"columns {list(truth.columns)}."
        )
    return shared, by_columns


def _rows_compared(preds, pred_paths, match, shared):
    """The prediction rows to compare, and the notes on those left out."""
    import numpy as np
    import pandas as pd

    predicted = preds[shared].notna().all(axis=1).to_numpy()
    unmatched = match < 0
    several = np.zeros(len(preds), bool)
    if "face_index" in preds.columns:  # one truth row per image: several faces are ambiguous
        faces = pd.Series(predicted, index=pred_paths).groupby(level=0).sum()
        several = np.isin(pred_paths, faces.index[faces > 1])
    rows = ~unmatched & predicted & ~several
    if not rows.any():
        raise CommandError("No matched image has a prediction to compare.")
    if len(set(match[rows])) < rows.sum():
        raise CommandError(
            "Several prediction rows match the same truth row; give each image once."
        )
    left_out = [  # distinct images, each counted under the first reason it meets
        (unmatched, "not in the truth file"),
        (~unmatched & ~predicted, "without a prediction (unreadable or no face)"),
        (~unmatched & predicted & several, "with several faces"),
    ]
    notes = [f"{int(rows.sum())} of {count(len(set(pred_paths)), 'predicted image')} compared"]
    for mask, why in left_out:
        n = len({p for p, m in zip(pred_paths, mask) if m})
        if n:
            notes.append(f"{count(n, 'image')} {why} left out")
    return rows, notes


def _comparison(args, preds, truth):
    """``(y, y_true, y_pred, age_pred, notes)`` of the matched, predicted images."""
    import pandas as pd

    shared, by_columns = _check_columns(args, preds, truth)
    pred_col = path_column(preds, args.preds, "predictions")
    truth_col = path_column(truth, args.truth, "truth")
    pred_paths = preds[pred_col].astype(str).str.strip().tolist()
    match = match_paths(pred_paths, resolved_paths(truth, truth_col, args.truth))
    if (match < 0).all():
        raise CommandError(
            f"No prediction matched a row of the truth file {args.truth!r} by path (absolute, or "
            "by file name where unique). Check the 'path' columns of both files."
        )
    rows, notes = _rows_compared(preds, pred_paths, match, shared)
    y = truth.iloc[match[rows]].reset_index(drop=True)
    y_pred = preds.loc[rows, shared].reset_index(drop=True)
    y_true = y[shared].copy()
    age_pred = None
    if "age" in shared:
        y_true["age"], y_pred["age"] = true_ages_like(y["age"], y_pred["age"], preds["age"])
        exact = pd.to_numeric(y["age"], errors="coerce").notna().all()
        if exact and "age_years" in preds.columns:
            age_pred = preds.loc[rows, "age_years"].to_numpy(dtype=float)
    return y[shared + [c for c in by_columns if c not in shared]], y_true, y_pred, age_pred, notes


def run(args):
    if args.plots and os.path.exists(args.plots) and not os.path.isdir(args.plots):
        raise CommandError(f"--plots {args.plots!r} is a file; give the folder to write into.")
    inputs = Inputs().add(args.preds, "the predictions file").add(args.truth, "the truth file")
    preds = read_table(args.preds, "predictions")
    truth = read_table(args.truth, "truth")
    y, y_true, y_pred, age_pred, notes = _comparison(args, preds, truth)
    report = make_report(y, y_true, y_pred, age_pred, args.by, args.min_group_size)
    note(args, "; ".join(notes) + ".")
    print(report.to_text(details=args.details))
    if args.json:
        write_json(args.json, report_json(report), inputs, args.force)
        note(args, f"Wrote the report to {args.json}")
    if args.plots:
        written = write_plots(args.plots, report, args.by, inputs, args.force)
        note(args, f"Wrote {len(written)} plots to {args.plots}")
