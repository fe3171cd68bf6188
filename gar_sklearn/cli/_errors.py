"""Errors the command reports, and library messages rewritten in the command's spelling."""

import re

__all__ = ["CommandError", "cli_spelling", "describe"]

# The Python parameters that the command exposes, and the option a user types for each.
PARAMETER_OPTIONS = {
    "backbone": "--backbone",
    "weights": "--weights",
    "image_size": "--image-size",
    "freeze": "--freeze",
    "age_bins": "--age-bins",
    "age_sigma": "--age-sigma",
    "augment": "--augment",
    "cache_views": "--cache-views",
    "test_time_flip": "--test-time-flip",
    "max_epochs": "--epochs",
    "patience": "--patience",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "lr_schedule": "--lr-schedule",
    "optimizer": "--optimizer",
    "weight_decay": "--weight-decay",
    "dropout": "--dropout",
    "label_smoothing": "--label-smoothing",
    "validation_fraction": "--validation-fraction",
    "weight_averaging": "--weight-averaging",
    "ema_decay": "--ema-decay",
    "averaging_start": "--averaging-start",
    "calibrate": "--calibrate",
    "cache_dir": "--cache-dir",
    "device": "--device",
    "random_state": "--random-state",
    "min_group_size": "--min-group-size",
    "by": "--by",
    "test_size": "--test-size",
    "margin": "--margin",
    "max_faces": "--max-faces",
    "split": "--split",
    "padding": "--padding",
}
# Named only as "the 'x' parameter": elsewhere these words mean something else
# (n_samples=5 in "at least 2 training images ...; got n_samples=1" is not --n).
_PARAMETER_ONLY = {"n_samples": "--n", "source": "--imdb-source"}
# What the command does for the user, where the library names its own switch.
_PHRASES = {
    " (on_error='skip')": "",
    ' (on_error="skip")': "",
    "on_error='skip'": "skipping unreadable images",
    'on_error="skip"': "skipping unreadable images",
}

_VALUE = r"(?:'[^']*'|\"[^\"]*\"|<[^>]*>|[\w.+-]+)"
# not inside a path or a longer name: a/max_epochs/b, x.lr, --lr
_EDGE_BEFORE = r"(?<![\w/\\.'\"-])"
_EDGE_AFTER = r"(?![\w/\\'\"-])"


class CommandError(Exception):
    """A runtime problem reported as ``error: <message>`` with exit code 1."""


def _option_value(value):
    """A Python value as typed on the command line: None -> none, 'x' -> x."""
    if value == "None":
        return "none"
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner if inner and not re.search(r"\s", inner) else value
    return value


def _assignment(match):
    option, value = PARAMETER_OPTIONS[match["name"]], match["value"]
    if value == "True":
        return option
    if value == "False":
        return f"no {option}"
    return f"{option} {_option_value(value)}"


def cli_spelling(text):
    """``text`` with the library's Python spellings replaced by the options a user types.

    ``weights=None`` becomes ``--weights none``, ``the 'age_bins' parameter``
    ``--age-bins``, ``min_group_size`` ``--min-group-size``; when a parameter
    was rewritten, ``None`` becomes ``none`` as the options spell it.

    Examples
    --------
    >>> cli_spelling("use weights=None or weights=<path to a state_dict file>.")
    'use --weights none or --weights <path to a state_dict file>.'
    >>> cli_spelling("The 'min_group_size' parameter must be None or an int. Got -1 instead.")
    '--min-group-size must be none or an int. Got -1 instead.'
    >>> cli_spelling("Skipped 1 unreadable images (on_error='skip'): 'a/x_y.png'.")
    "Skipped 1 unreadable images: 'a/x_y.png'."
    """
    for phrase, replacement in _PHRASES.items():
        text = text.replace(phrase, replacement)
    names = {**PARAMETER_OPTIONS, **_PARAMETER_ONLY}
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    new = re.sub(
        rf"(?:\b[Tt]he )?'({alternatives})' parameter",
        lambda m: names[m[1]],
        text,
    )
    own = "|".join(sorted(map(re.escape, PARAMETER_OPTIONS), key=len, reverse=True))
    new = re.sub(rf"{_EDGE_BEFORE}(?P<name>{own})=(?P<value>{_VALUE})", _assignment, new)
    # names with an underscore are never plain words: bare or quoted, they mean the parameter
    underscored = "|".join(re.escape(n) for n in PARAMETER_OPTIONS if "_" in n)
    new = re.sub(rf"'({underscored})'", lambda m: PARAMETER_OPTIONS[m[1]], new)
    new = re.sub(
        rf"{_EDGE_BEFORE}({underscored}){_EDGE_AFTER}", lambda m: PARAMETER_OPTIONS[m[1]], new
    )
    if new != text:
        new = re.sub(r"\bNone\b", "none", new)
    return new


def describe(exc):
    """The ``error:`` line of an exception: its message for the expected kinds, with its type
    (and a hint to ``--debug``) otherwise. Library messages are put in the command's spelling."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, CommandError):
        return text
    text = cli_spelling(text)
    # the library's own exception classes (e.g. WeightsUnavailableError) speak to users too
    if isinstance(exc, (ValueError, OSError, ImportError)) or (
        type(exc).__module__.startswith("gar_sklearn.")
    ):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
