"""``gar-sklearn train``: fit a model on a labelled data set and save it."""

import os

from ._console import note
from ._data import load_labelled
from ._files import Inputs, check_output
from ._model import build_estimator, check_backbone, fit_summary, parts
from ._plugins import load_entry_points, load_plugins
from ._presets import apply_preset

__all__ = ["fit_and_save", "given_inputs", "prepare", "run"]


def given_inputs(args):
    """The files named on the command line (--data, a --weights file), settings filled in."""
    apply_preset(args)
    inputs = Inputs().add(args.data, "the data file (--data)")
    if isinstance(args.weights, str) and args.weights != "DEFAULT":
        inputs.add(args.weights, "the weights file (--weights)")
    return inputs


def prepare(args, inputs):
    """Plugins, backbone and data: everything checked before training starts.

    Returns ``(estimator, paths, labels)``; the images read are added to ``inputs``.
    """
    load_entry_points()
    load_plugins(args.plugin)
    # names, weights and files are checked before any image is read
    backbone = check_backbone(args)
    paths, target = load_labelled(args, inputs)
    return build_estimator(args, target, backbone), paths, target


def fit_and_save(args, estimator, paths, target, out, inputs):
    """Fit ``estimator`` (printing its progress) and save it to ``out``."""
    note(
        args,
        f"Training {type(estimator).__name__} ({args.backbone}, {', '.join(target.columns)}) "
        f"on {len(paths)} images.",
    )
    estimator.fit(paths, target)
    check_output(out, "model", inputs, args.force)  # again: a file may have appeared meanwhile
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    estimator.save(out)
    if args.verbosity:
        for name, part in parts(estimator):
            print(fit_summary(name, part), flush=True)
    return estimator


def run(args):
    inputs = given_inputs(args)
    check_output(args.out, "model", inputs, args.force)
    estimator, paths, target = prepare(args, inputs)
    check_output(args.out, "model", inputs, args.force)
    fit_and_save(args, estimator, paths, target, args.out, inputs)
    if args.verbosity:
        print(f"Saved the model to {args.out}")
