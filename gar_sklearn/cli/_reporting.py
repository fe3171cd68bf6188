"""The per-group report shared by ``report`` and ``evaluate``: computed, as JSON, as plots."""

import json
import math
import os

from ._files import check_output, write_atomically

__all__ = ["make_report", "plot_names", "report_json", "write_json", "write_plots"]

_N_BOOT = 500


def make_report(y, y_true, y_pred, age_pred, by, min_group_size):
    """The library's group report of predictions (the one place the command computes it).

    ``y`` holds the sensitive columns (and exact ages), ``y_true`` and
    ``y_pred`` the labels compared, ``age_pred`` the estimated ages or None.
    """
    from gar_sklearn.metrics import GroupReport

    others = [c for c in y.columns if c not in y_true.columns]  # grouping columns not predicted
    return GroupReport.from_predictions(
        y_true,
        y_pred,
        sensitive_features=y[others] if others else None,
        age_true=None if age_pred is None else y["age"],
        age_pred=age_pred,
        by=by,
        min_group_size=min_group_size,
    )


def _plain(value):
    """A JSON value: numpy scalars as Python numbers, NaN as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame):
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def report_json(report, **extra):
    """The report's tables as a JSON-ready dict (plus ``extra`` entries first)."""
    by_group = report.to_frame().reset_index()
    return {
        **extra,
        "attributes": list(report.attributes),
        "min_group_size": int(report.min_group_size),
        "overall": {k: _plain(v) for k, v in report.overall.items()},
        "by_group": {
            key: _records(rows.drop(columns="by"))
            for key, rows in by_group.groupby("by", sort=False)
        },
        "disparities": _records(report.disparities.reset_index()),
        "parity": _records(report.parity.reset_index()),
    }


def write_json(path, data, inputs, force):
    check_output(path, "json", inputs, force, option="--json")

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")

    write_atomically(path, write)


def plot_names(attributes, groupings, ages):
    """The file names :func:`write_plots` writes, for the attributes, groupings and whether
    exact ages are known."""
    names = ["confusion_matrices.png"]
    for grouping in groupings:
        joined = "_x_".join((grouping,) if isinstance(grouping, str) else grouping)
        names += [f"accuracy_{attr}_by_{joined}.png" for attr in attributes]
    return names + (["age_error.png"] if ages else [])


def _saver(folder, inputs, force, written):
    import matplotlib.pyplot as plt

    def save(fig, name):
        path = os.path.join(folder, name)
        check_output(path, "image", inputs, force, option="plot")
        write_atomically(
            path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        )
        plt.close(fig)
        written.append(path)

    return save


def write_plots(folder, report, groupings, inputs, force):
    """PNG plots of ``report`` in ``folder``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    from gar_sklearn.plotting import plot_age_error, plot_confusion_matrices, plot_group_metric

    y_true, y_pred = report.y_true, report.y_pred
    written = []
    save = _saver(folder, inputs, force, written)
    displays = plot_confusion_matrices(y_true, y_pred)  # age groups in age order
    save(next(iter(displays.values())).figure_, "confusion_matrices.png")
    for grouping in groupings:
        names = (grouping,) if isinstance(grouping, str) else tuple(grouping)
        for attr in y_true.columns:
            ax = plot_group_metric(
                y_true[attr].to_numpy(),
                y_pred[attr].to_numpy(),
                sensitive_features=report.sensitive[list(names)],
                n_boot=_N_BOOT,
                random_state=0,
                min_group_size=report.min_group_size,
            )
            ax.set_title(f"{attr} accuracy by {' x '.join(names)}")
            save(ax.figure, f"accuracy_{attr}_by_{'_x_'.join(names)}.png")
    if report.age_true is not None:
        save(plot_age_error(report.age_true, report.age_pred).figure, "age_error.png")
    return written
