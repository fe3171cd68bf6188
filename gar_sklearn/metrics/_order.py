"""The order in which labels and groups are listed: age groups by age, the rest sorted."""

import numpy as np
import pandas as pd

from ..preprocessing._age import age_group_midpoints

__all__ = []


def _age_keys(values):
    """Each value's age in years where every value reads as one, else None."""
    try:
        return age_group_midpoints(values)
    except (TypeError, ValueError):
        return None


def sorted_labels(values):
    """The distinct values, in the order tables, reports and plots list them.

    Values that all read as ages ("0-2", "3-9", "10-19", "more than 70", "70+",
    numbers) are ordered by age, so that "3-9" comes before "10-19"; other
    values are sorted; values that do not compare (mixed types) keep their
    order of first appearance.
    """
    unique = list(pd.unique(np.asarray(values, dtype=object).ravel()))
    ages = _age_keys(unique)
    if ages is not None and not np.isnan(ages).any():
        order = sorted(range(len(unique)), key=lambda i: (ages[i], str(unique[i])))
        return [unique[i] for i in order]
    try:
        return sorted(unique)
    except TypeError:
        return unique


def rank(values, order):
    """Position of each value in ``order`` (an output of :func:`sorted_labels`)."""
    return pd.Index(order, dtype=object).get_indexer(np.asarray(values, dtype=object))
