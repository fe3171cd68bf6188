"""Argument types: each turns the text of an option into the value the library takes."""

import argparse

__all__ = [
    "age_bins",
    "fraction",
    "freeze",
    "groupings",
    "non_negative",
    "non_negative_int",
    "optional_positive_float",
    "optional_positive_int",
    "positive_float",
    "positive_int",
    "test_size",
    "weight_averaging",
    "weights",
]


def _error(allowed, text):
    return argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}")


def _integer(text, minimum, allowed):
    try:
        value = int(text)
    except ValueError:
        raise _error(allowed, text) from None
    if value < minimum:
        raise _error(allowed, text)
    return value


def positive_int(text):
    return _integer(text, 1, "a positive integer")


def non_negative_int(text):
    return _integer(text, 0, "an integer >= 0")


def _number(text, allowed, ok):
    try:
        value = float(text)
    except ValueError:
        raise _error(allowed, text) from None
    if not ok(value):
        raise _error(allowed, text)
    return value


def non_negative(text):
    return _number(text, "a number >= 0", lambda v: v >= 0)


def positive_float(text):
    return _number(text, "a number > 0", lambda v: v > 0)


def fraction(text):
    """A number in [0, 1)."""
    return _number(text, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _optional(parse, allowed):
    def parse_optional(text):
        if text.lower() == "none":
            return None
        try:
            return parse(text)
        except argparse.ArgumentTypeError:
            raise _error(f"none or {allowed}", text) from None

    return parse_optional


optional_positive_int = _optional(positive_int, "a positive integer")
optional_positive_float = _optional(positive_float, "a number > 0")


def test_size(text):
    """A fraction in (0, 1) of the images, or their number (an integer >= 1)."""
    allowed = "a fraction in (0, 1) or a number of images >= 1"
    if text.strip().isdigit():
        value = int(text)
        if value < 1:
            raise _error(allowed, text)
        return value
    return _number(text, allowed, lambda v: 0 < v < 1)


def weights(text):
    return None if text.lower() == "none" else text


def freeze(text):
    """'auto', 'none', 'backbone', a number of stages or a stage name."""
    low = text.lower()
    if low in ("auto", "backbone"):
        return low
    if low == "none":
        return None
    if text.lstrip("-").isdigit():
        value = int(text)
        if value < 0:
            raise _error("auto, none, backbone, a stage count >= 0 or a stage name", text)
        return value
    return text  # a stage name, checked against the backbone in fit


def weight_averaging(text):
    """'none', 'ema' or 'swa'."""
    low = text.lower()
    if low not in ("none", "ema", "swa"):
        raise _error("none, ema or swa", text)
    return None if low == "none" else low


def age_bins(text):
    low = text.lower()
    if low in ("auto", "fairface"):
        return low
    if low == "none":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise _error("auto, fairface, none or a positive interval in years", text) from None


def groupings(text):
    """``race,gender,race+gender`` -> ``["race", "gender", ("race", "gender")]``."""
    out = []
    for item in text.split(","):
        names = [n.strip() for n in item.split("+")]
        if not item.strip() or not all(names):
            raise _error(
                "column names separated by commas, '+' joining columns for intersectional "
                "groups (e.g. race,gender,race+gender)",
                text,
            )
        out.append(names[0] if len(names) == 1 else tuple(names))
    return out
