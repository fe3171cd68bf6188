"""Plots: group bars with bootstrap intervals, confusion matrices, age error by age group."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from gar_sklearn.metrics import SmallGroupWarning, accuracy_by_group, bootstrap_by_group


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def bar_container(ax):
    from matplotlib.container import BarContainer

    return next(c for c in ax.containers if isinstance(c, BarContainer))


def assert_png(path):
    """A PNG file that decodes to a picture that is not blank."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert min(pixels.shape) > 100 and pixels.std() > 5


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    n = 300
    race = rng.choice(["White", "Black", "Asian"], n, p=[0.5, 0.4, 0.1])
    gender = rng.choice(["Male", "Female"], n)
    y_true = pd.DataFrame(
        {"gender": gender, "race": race, "age": rng.choice(["0-2", "3-9", "20-29"], n)}
    )
    y_pred = y_true.copy()
    for col, choices in [
        ("gender", ["Male", "Female"]),
        ("race", ["White", "Black", "Asian"]),
        ("age", ["0-2", "3-9", "20-29"]),
    ]:
        flip = rng.random(n) < np.where(race == "Black", 0.35, 0.15)
        y_pred.loc[flip, col] = rng.choice(choices, flip.sum())
    age_true = rng.uniform(0, 80, n)
    age_pred = age_true + rng.normal(3, 6, n)
    return y_true, y_pred, age_true, age_pred


def test_plotting_imports_and_explains_without_matplotlib():
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "sys.modules['matplotlib.pyplot'] = None\n"
        "import gar_sklearn.plotting as p\n"
        "try:\n"
        "    p.plot_age_error([20, 30], [21, 33])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "plot_age_error needs matplotlib" in result.stdout
    assert "pip install 'gar-sklearn[plot]'" in result.stdout


def test_group_bars_heights_and_intervals(plt, predictions, tmp_path):
    from gar_sklearn.plotting import plot_group_metric

    y_true, y_pred, _, _ = predictions
    kwargs = {
        "sensitive_features": y_true["race"],
        "n_boot": 300,
        "random_state": 0,
        "min_group_size": 50,
    }
    with pytest.warns(SmallGroupWarning, match="'Asian'"):
        ax = plot_group_metric(y_true["gender"], y_pred["gender"], **kwargs)
    expected = accuracy_by_group(
        y_true["gender"], y_pred["gender"], sensitive_features=y_true["race"]
    )
    with pytest.warns(SmallGroupWarning):
        ci = bootstrap_by_group("accuracy", y_true["gender"], y_pred["gender"], **kwargs)
    bars = bar_container(ax)
    assert [b.get_height() for b in bars] == pytest.approx(expected.tolist())
    segments = bars.errorbar.lines[2][0].get_segments()
    assert [s[0][1] for s in segments] == pytest.approx(ci["lower"].tolist())
    assert [s[1][1] for s in segments] == pytest.approx(ci["upper"].tolist())
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == expected.index.tolist()
    # Asian (42 faces) is below min_group_size: its bar is hatched.
    assert [b.get_hatch() for b in bars] == ["//", None, None]
    overall = (y_true["gender"] == y_pred["gender"]).mean()
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(overall)
    path = tmp_path / "group_accuracy.png"
    ax.figure.savefig(path)
    assert_png(path)


def test_group_bars_intersectional_on_a_given_axes(plt, predictions, tmp_path):
    from gar_sklearn.plotting import plot_group_metric

    y_true, y_pred, _, _ = predictions
    fig, ax = plt.subplots()
    sf = y_true[["race", "gender"]]
    out = plot_group_metric(
        y_true["age"],
        y_pred["age"],
        sensitive_features=sf,
        n_boot=100,
        random_state=0,
        min_group_size=1,
        ax=ax,
    )
    assert out is ax
    expected = accuracy_by_group(y_true["age"], y_pred["age"], sensitive_features=sf)
    assert [b.get_height() for b in bar_container(ax)] == pytest.approx(expected.tolist())
    assert ax.get_xticklabels()[0].get_text().startswith("Asian, Female\n(n=")
    fig.savefig(tmp_path / "intersectional.png")
    assert_png(tmp_path / "intersectional.png")


def test_confusion_matrices_per_attribute(plt, predictions, tmp_path):
    from gar_sklearn.plotting import plot_confusion_matrices, plot_confusion_matrix

    y_true, y_pred, _, _ = predictions
    age_order = ["0-2", "3-9", "20-29"]
    displays = plot_confusion_matrices(y_true, y_pred, labels={"age": age_order})
    assert list(displays) == ["gender", "race", "age"]
    for attr, disp in displays.items():
        labels = age_order if attr == "age" else sorted(set(y_true[attr]))
        np.testing.assert_allclose(
            disp.confusion_matrix,
            confusion_matrix(y_true[attr], y_pred[attr], labels=labels, normalize="true"),
        )
        assert disp.ax_.get_title() == attr
    assert [t.get_text() for t in displays["age"].ax_.get_xticklabels()] == age_order
    path = tmp_path / "confusion.png"
    displays["age"].figure_.savefig(path)
    assert_png(path)

    _fig, axes = plt.subplots(1, 2)
    counts = plot_confusion_matrix(y_true["gender"], y_pred["gender"], normalize=None, ax=axes[0])
    assert counts.ax_ is axes[0]
    np.testing.assert_array_equal(
        counts.confusion_matrix, confusion_matrix(y_true["gender"], y_pred["gender"])
    )
    with pytest.raises(ValueError, match=r"one Axes per attribute \(3\)\. Got 2 instead"):
        plot_confusion_matrices(y_true, y_pred, ax=axes)
    with pytest.raises(TypeError, match="use plot_confusion_matrix for one attribute"):
        plot_confusion_matrices(y_true["gender"], y_pred["gender"])


def test_age_error_by_true_age_group(plt, predictions, tmp_path):
    from gar_sklearn.plotting import plot_age_error

    _, _, age_true, age_pred = predictions
    ax = plot_age_error(age_true, age_pred)
    edges = [0, 3, 10, 20, 30, 40, 50, 60, 70, np.inf]
    group = pd.cut(age_true, edges, right=False)
    error = pd.Series(age_pred - age_true)
    mae = error.abs().groupby(group, observed=True).mean()
    bias = error.groupby(group, observed=True).mean()
    assert [b.get_height() for b in ax.patches] == pytest.approx(mae.tolist())
    signed = next(line for line in ax.lines if line.get_label().startswith("mean signed"))
    assert signed.get_ydata() == pytest.approx(bias.tolist())
    labels = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    assert labels == [
        "0-2",
        "3-9",
        "10-19",
        "20-29",
        "30-39",
        "40-49",
        "50-59",
        "60-69",
        "more than 70",
    ]
    path = tmp_path / "age_error.png"
    ax.figure.savefig(path)
    assert_png(path)

    _fig, ax2 = plt.subplots()
    assert plot_age_error([5, 7, 25, 31], [8, 6, 20, 31], bins=10, ax=ax2) is ax2
    assert [b.get_height() for b in ax2.patches] == pytest.approx([2.0, 5.0, 0.0])
    with pytest.raises(ValueError, match="exact ages in years"):
        plot_age_error(["20-29"], [25.0])


# --- issue 19: readable 9x9 matrices, age order, zero-width intervals, distinct legend ------


def _cell_texts_fit(disp):
    """Each cell label lies inside its cell with room to spare, and no two touch."""
    fig = disp.figure_
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in np.ravel(disp.text_)]
    to_px = disp.ax_.transData
    cell = abs(to_px.transform((1, 0))[0] - to_px.transform((0, 0))[0])
    widest = max(b.width for b in boxes)
    touching = sum(
        a.expanded(1.05, 1.05).overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]
    )
    return widest / cell, touching


def test_nine_age_groups_in_age_order_with_readable_cells(plt):
    from gar_sklearn.plotting import plot_confusion_matrices, plot_confusion_matrix
    from gar_sklearn.preprocessing import FAIRFACE_AGE_GROUPS

    rng = np.random.default_rng(0)
    n = 600
    age = rng.choice(FAIRFACE_AGE_GROUPS, n)
    guess = np.where(rng.random(n) < 0.5, age, rng.choice(FAIRFACE_AGE_GROUPS, n))
    y_true = pd.DataFrame({"gender": rng.choice(["F", "M"], n), "age": age})
    displays = plot_confusion_matrices(y_true, y_true.assign(age=guess))  # no labels given
    disp = displays["age"]
    # Age order, not text order ("10-19" before "3-9").
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == list(FAIRFACE_AGE_GROUPS)
    np.testing.assert_allclose(
        disp.confusion_matrix,
        confusion_matrix(age, guess, labels=list(FAIRFACE_AGE_GROUPS), normalize="true"),
    )
    ratio, touching = _cell_texts_fit(disp)
    assert ratio < 0.75 and touching == 0
    # On a small axes given by the user, the labels shrink to fit.
    _fig, ax = plt.subplots(figsize=(3, 3))
    small = plot_confusion_matrix(age, guess, ax=ax)
    ratio, touching = _cell_texts_fit(small)
    assert ratio < 0.75 and touching == 0
    assert small.text_[0, 0].get_fontsize() < 10


def _legend_looks(ax):
    """(face colour, alpha, hatch, marker) of each legend entry."""
    looks = []
    for handle in ax.get_legend().legend_handles:
        if hasattr(handle, "get_hatch"):
            looks.append((tuple(handle.get_facecolor()), handle.get_alpha(), handle.get_hatch()))
        else:
            looks.append((handle.get_color(), handle.get_linestyle(), handle.get_marker()))
    return looks


def test_every_group_small_gives_one_swatch_and_zero_width_intervals_are_marked(plt):
    from gar_sklearn.plotting import GroupMetricDisplay

    # Two groups of two: every resample of "b" (both right) gives 1, of "a" (one of two) varies.
    y_true, y_pred = [1, 1, 0, 0], [1, 0, 0, 0]
    groups = ["a", "a", "b", "b"]
    with pytest.warns(SmallGroupWarning):
        disp = GroupMetricDisplay.from_predictions(
            y_true, y_pred, sensitive_features=groups, n_boot=200, random_state=0
        )
    assert disp.intervals["small"].all()
    assert disp.zero_width_.tolist() == [False, True]
    markers = [line for line in disp.ax_.lines if line.get_marker() == "x"]
    assert len(markers) == 1 and markers[0].get_xydata().tolist() == [[1.0, 1.0]]
    looks = _legend_looks(disp.ax_)
    assert len(looks) == len(set(looks))  # no two identical swatches
    texts = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert texts[0] == "accuracy (95% bootstrap CI), fewer than 30 samples"
    assert "interval of zero width" in texts[-1]
    assert disp.ax_.lines[-1].get_ydata()[0] == 0.75  # the overall line stays last

    # With groups on both sides of min_group_size: two distinct swatches, no marker.
    rng = np.random.default_rng(1)
    yt = rng.integers(0, 2, 80)
    yp = np.where(rng.random(80) < 0.7, yt, 1 - yt)
    with pytest.warns(SmallGroupWarning):
        disp = GroupMetricDisplay.from_predictions(
            yt, yp, sensitive_features=np.r_[["x"] * 60, ["y"] * 20], n_boot=100, random_state=0
        )
    looks = _legend_looks(disp.ax_)
    assert len(looks) == len(set(looks)) == 3
    assert not disp.zero_width_.any()


def test_group_bars_with_sample_weight(plt):
    from gar_sklearn.plotting import plot_group_metric

    y_true, y_pred, groups = [1, 1, 0, 0], [1, 0, 0, 0], ["a", "a", "b", "b"]
    ax = plot_group_metric(
        y_true,
        y_pred,
        sensitive_features=groups,
        sample_weight=[3, 1, 1, 1],
        n_boot=50,
        random_state=0,
        min_group_size=1,
    )
    assert [b.get_height() for b in bar_container(ax)] == [0.75, 1.0]
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(5 / 6)
