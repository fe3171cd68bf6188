"""matplotlib is an optional extra: imported only when a plot is drawn."""

import importlib


def pyplot(caller):
    """``matplotlib.pyplot``, or an ImportError saying how to install it."""
    try:
        return importlib.import_module("matplotlib.pyplot")
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, an optional dependency: "
            "pip install 'gar-sklearn[plot]' (or pip install matplotlib)."
        ) from exc


def new_axes(caller, ax, figsize):
    plt = pyplot(caller)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax
