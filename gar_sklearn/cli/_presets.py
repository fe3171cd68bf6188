"""The command's model and training settings: defaults and named presets.

An option given on the command line wins over the preset, which wins over
the defaults. The options these settings fill are parsed with
``argparse.SUPPRESS`` as their default, so that an option left out is absent
from the parsed arguments and :func:`apply_preset` can tell it from one given.
"""

__all__ = ["DEFAULTS", "PRESETS", "apply_preset", "setting_help"]

# Chosen to train on a CPU in minutes: a pretrained MobileNetV2 whose first stages are frozen
# and computed once per image, FairFace's nine age groups, at most 10 epochs.
DEFAULTS = {
    "model": "multi",
    "backbone": "mobilenet_v2",
    "weights": "DEFAULT",
    "image_size": 224,
    "freeze": "auto",
    "age_bins": "auto",
    "age_sigma": None,
    "augment": "none",
    "cache_views": 2,
    "test_time_flip": False,
    "epochs": 10,
    "patience": 5,
    "batch_size": 32,
    "lr": 1e-3,
    "lr_schedule": "plateau",
    "optimizer": "adam",
    "weight_decay": 0.0,
    "dropout": 0.2,
    "label_smoothing": 0.0,
    "validation_fraction": 0.1,
}

# The recipe of benchmarks/accuracy_utkface.py (see docs/benchmarks.md): blocks 0-11 of
# MobileNetV2 frozen and cached for each image and its mirror, AdamW with a one-cycle
# schedule over 10 epochs, exact ages learnt as Gaussian label distributions, and each
# test image averaged with its mirror.
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
