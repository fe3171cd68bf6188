"""The command's model and training settings: defaults and named presets.

An option given on the command line wins over the preset, which wins over
the defaults. The options these settings fill are parsed with
``argparse.SUPPRESS`` as their default, so that an option left out is absent
from the parsed arguments and :func:`apply_preset` can tell it from one given.
"""

from .._defaults import DEFAULTS as _LIBRARY_DEFAULTS

__all__ = ["DEFAULTS", "PRESETS", "apply_preset", "setting_help"]

# The library's defaults (gar_sklearn/_defaults.py, those of MultiAttributeClassifier), under
# the command's names, and the settings only the command has: the model kind, --age-bins auto
# (the library's FairFace groups for numeric ages, the labels as they are for ages that are
# already groups, as FairFace's own) and --augment by name.
_OPTION_NAMES = {"max_epochs": "epochs"}
DEFAULTS = {
    "model": "multi",
    **{
        _OPTION_NAMES.get(name, name): value
        for name, value in _LIBRARY_DEFAULTS.items()
        if name != "verbose"  # -q / -v
    },
    "age_bins": "auto",
    "augment": "none",
}

# The recipe of benchmarks/accuracy_utkface.py with --weight-averaging ema (see
# docs/benchmarks.md): blocks 0-11 of MobileNetV2 frozen and cached for each image and its
# mirror, AdamW with a one-cycle schedule over 10 epochs, exact ages learnt as Gaussian
# label distributions, validation and prediction with a moving average of the weights
# (as accurate as the plain recipe, with the gender and race calibration errors cut by
# two thirds at no measurable cost: docs/cpu_training.md), and each test image averaged
# with its mirror.
PRESETS = {
    "default": {},
    "cpu-best": {
        "backbone": "mobilenet_v2",
        "weights": "DEFAULT",
        "image_size": 224,
        "freeze": 12,
        "augment": "flip",
        "cache_views": 2,
        "age_bins": 1,
        "age_sigma": 2.5,
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "dropout": 0.2,
        "label_smoothing": 0.0,
        "lr_schedule": "onecycle",
        "epochs": 10,
        "patience": None,
        "batch_size": 64,
        "test_time_flip": True,
        "weight_averaging": "ema",
    },
}


def _text(value):
    if value is None:
        return "none"
    if value is True or value is False:
        return "on" if value else "off"
    return str(value)


def setting_help(name, text):
    """``text`` followed by the setting's default and its value in each preset that changes it."""
    values = [f"default: {_text(DEFAULTS[name])}"]
    for preset, settings in PRESETS.items():
        if name in settings and settings[name] != DEFAULTS[name]:
            values.append(f"{preset}: {_text(settings[name])}")
    # argparse formats help with %: a literal percent sign must be doubled
    values = f"({'; '.join(values)})"
    return f"{text} {values}".replace("%", "%%") if text else values


def apply_preset(args):
    """Fill each setting left out on the command line from ``args.preset``, then the defaults.

    Examples
    --------
    >>> from argparse import Namespace
    >>> args = apply_preset(Namespace(preset="cpu-best", epochs=3))
    >>> args.epochs, args.optimizer, args.age_sigma, args.model
    (3, 'adamw', 2.5, 'multi')
    """
    settings = {**DEFAULTS, **PRESETS[args.preset]}
    for name, value in settings.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args
