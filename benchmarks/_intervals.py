"""Bootstrap intervals the benchmarks share: paired gains, per-race gaps, calibration errors.

Every interval is a 95 % percentile bootstrap over the test images. Two
recipes scored on the same test images are compared on the same resamples
(a paired bootstrap): the interval of a gain is that of the difference, not
of two separate intervals.
"""

import numpy as np

ALPHA = 0.05


def resamples(n, n_boot, random_state=0, strata=None):
    """``n_boot`` bootstrap draws of ``n`` positions (rows), within each stratum when given."""
    rng = np.random.default_rng(random_state)
    if strata is None:
        return rng.integers(0, n, size=(n_boot, n))
    strata = np.asarray(strata)
    draws = np.empty((n_boot, n), dtype=np.intp)
    start = 0
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        draws[:, start : start + len(members)] = rng.choice(members, size=(n_boot, len(members)))
        start += len(members)
    return draws


def interval(value, boots):
    boots = np.asarray(boots, dtype=float)
    lower, upper = np.nanquantile(boots, [ALPHA / 2, 1 - ALPHA / 2])
    return {"value": float(value), "lower": float(lower), "upper": float(upper)}


def mean_interval(values, draws):
    values = np.asarray(values, dtype=float)
    return interval(values.mean(), values[draws].mean(axis=1))


def paired_gain(baseline, other, draws):
    """``mean(other) - mean(baseline)`` of per-image values (correctness, errors), with its interval."""
    diff = np.asarray(other, dtype=float) - np.asarray(baseline, dtype=float)
    return mean_interval(diff, draws)


def race_accuracies(correct, races, min_size):
    """``{race: accuracy}`` over the races with at least ``min_size`` images."""
    correct, races = np.asarray(correct, dtype=float), np.asarray(races)
    names, counts = np.unique(races, return_counts=True)
    return {r: correct[races == r].mean() for r, n in zip(names, counts) if n >= min_size}


def extreme_races(correct, races, min_size):
    """``(best race, worst race)`` by accuracy, over races with at least ``min_size`` images."""
    accuracy = race_accuracies(correct, races, min_size)
    if len(accuracy) < 2:
        return None
    return max(accuracy, key=accuracy.get), min(accuracy, key=accuracy.get)


def _gap(correct, races, pair, draws):
    """The accuracy of race ``pair[0]`` minus that of ``pair[1]``, and on each draw."""
    correct, races = np.asarray(correct, dtype=float), np.asarray(races)
    best, worst = (races == pair[0]).astype(float), (races == pair[1]).astype(float)
    value = correct @ best / best.sum() - correct @ worst / worst.sum()
    on_draws = (correct[draws] * best[draws]).sum(1) / best[draws].sum(1) - (
        correct[draws] * worst[draws]
    ).sum(1) / worst[draws].sum(1)
    return value, on_draws


def gap_interval(correct, races, min_size, draws, baseline=None):
    """The race gap of ``correct`` (the best race's accuracy minus the worst's, over races with
    at least ``min_size`` images) with its interval, and with ``baseline`` (the baseline's
    correctness) the change of the gap on the same draws.

    The best and worst races are those of the whole test set; the interval is
    that of the difference of their accuracies (``draws`` resample within each
    race). Taking the best and worst anew on each resample would bias the
    gap upwards: the largest of noisy accuracies is too large.
    """
    pair = extreme_races(correct, races, min_size)
    if pair is None:
        return {"value": np.nan, "lower": np.nan, "upper": np.nan, "best": None, "worst": None}
    value, boots = _gap(correct, races, pair, draws)
    out = {**interval(value, boots), "best": str(pair[0]), "worst": str(pair[1])}
    if baseline is not None:
        base_pair = extreme_races(baseline, races, min_size)
        base_value, base_boots = _gap(baseline, races, base_pair, draws)
        out["change"] = interval(value - base_value, boots - base_boots)
    return out


def ece_from_confidence(confidence, correct, n_bins=15):
    """Expected calibration error from each image's top-class probability and correctness,
    binned as :func:`gar_sklearn.metrics.expected_calibration_error` bins them."""
    confidence = np.asarray(confidence, dtype=float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    hits = np.bincount(bins, weights=np.asarray(correct, dtype=float), minlength=n_bins)
    confidences = np.bincount(bins, weights=confidence, minlength=n_bins)
    return float(np.abs(hits - confidences).sum() / len(confidence))


def ece_interval(confidence, correct, draws, baseline=None):
    """ECE with its interval and, given ``baseline = (confidence, correct)``, its paired change."""
    confidence, correct = np.asarray(confidence), np.asarray(correct)
    boots = [ece_from_confidence(confidence[d], correct[d]) for d in draws]
    out = interval(ece_from_confidence(confidence, correct), boots)
    if baseline is not None:
        b_conf, b_correct = (np.asarray(a) for a in baseline)
        base = [ece_from_confidence(b_conf[d], b_correct[d]) for d in draws]
        out["change"] = interval(
            out["value"] - ece_from_confidence(b_conf, b_correct), np.subtract(boots, base)
        )
    return out
