"""Per-group tables: accuracy and age error per group, classification reports per group."""

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, mean_absolute_error

from ._fitted import exact_ages
from ._order import rank, sorted_labels
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    check_1d,
    check_lengths,
    check_min_group_size,
    check_sample_weight,
)

__all__ = ["classification_report_by_group", "summary_by_group"]

_REPORT_COLUMNS = ["precision", "recall", "f1-score", "support"]
_SUMMARY_ROWS = ("accuracy", "micro avg", "macro avg", "weighted avg")


def label_frames(y_true, y_pred):
    """``y_true`` and ``y_pred`` as DataFrames with the same attribute columns."""
    frames = []
    for values, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        if isinstance(values, pd.DataFrame):
            frames.append(values.reset_index(drop=True))
        elif isinstance(values, pd.Series):
            frames.append(
                values.reset_index(drop=True).to_frame(
                    "label" if values.name is None else str(values.name)
                )
            )
        else:
            arr = np.asarray(values, dtype=object)
            if arr.ndim == 1:
                frames.append(pd.DataFrame({"label": arr}))
            else:
                raise ValueError(
                    f"'{name}' must be 1-D or a DataFrame whose columns name the attributes; "
                    f"got an array of shape {arr.shape}."
                )
    y_true, y_pred = frames
    if y_true.shape[1] == 1 and y_pred.shape[1] == 1:
        y_pred.columns = y_true.columns
    if list(y_true.columns) != list(y_pred.columns):
        raise ValueError(
            "y_true and y_pred must have the same attribute columns; got "
            f"{list(y_true.columns)} and {list(y_pred.columns)}."
        )
    check_lengths(y_true=y_true, y_pred=y_pred)
    return y_true, y_pred


def _part(weight, positions):
    return None if weight is None else weight[positions]


def summary_table(groups, y_true, y_pred, age_true, age_pred, min_group_size, weight=None):
    """Accuracy per attribute, age MAE, n and the small flag, one row per group."""
    columns = {}
    for attr in y_true.columns:
        yt, yp = y_true[attr].to_numpy(), y_pred[attr].to_numpy()
        columns[f"{attr}_accuracy"] = [
            accuracy_score(yt[p], yp[p], sample_weight=_part(weight, p)) for p in groups.positions
        ]
    if age_true is not None:
        columns["age_mae"] = [
            mean_absolute_error(age_true[p], age_pred[p], sample_weight=_part(weight, p))
            for p in groups.positions
        ]
    frame = pd.DataFrame(columns, index=groups.index)
    frame["n"] = groups.sizes
    frame["small"] = groups.small_mask(min_group_size)
    return frame


def overall_row(y_true, y_pred, age_true, age_pred, weight=None):
    """The summary's columns on all samples, as a Series named "overall"."""
    values = {
        f"{a}_accuracy": accuracy_score(
            y_true[a].to_numpy(), y_pred[a].to_numpy(), sample_weight=weight
        )
        for a in y_true.columns
    }
    if age_true is not None:
        values["age_mae"] = mean_absolute_error(age_true, age_pred, sample_weight=weight)
    values["n"] = len(y_true)
    return pd.Series(values, name="overall", dtype=object)


def check_ages(age_true, age_pred, n):
    """Exact true ages and estimated ages as floats, both or neither."""
    if (age_true is None) != (age_pred is None):
        raise ValueError("Pass both 'age_true' and 'age_pred' to get the age MAE, or neither.")
    if age_true is None:
        return None, None
    age_true = exact_ages(check_1d(age_true, "age_true"), "age_true")
    age_pred = np.asarray(check_1d(age_pred, "age_pred"), dtype=float)
    check_lengths(y_true=range(n), age_true=age_true, age_pred=age_pred)
    return age_true, age_pred


def summary_by_group(
    y_true,
    y_pred,
    *,
    sensitive_features,
    age_true=None,
    age_pred=None,
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """A table with one row per group: accuracy per attribute, age MAE, size, flag.

    Parameters
    ----------
    y_true, y_pred : DataFrame or array-like of shape (n_samples,)
        True and predicted labels; DataFrames with one column per attribute
        (e.g. gender, age, race) give one accuracy column each.
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics`.
    age_true, age_pred : array-like of float, default=None
        Exact and estimated ages in years; adds an ``age_mae`` column.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples in the accuracies and the MAE.
    min_group_size : int, default=30
        Groups with fewer samples are marked in the ``small`` column.

    Returns
    -------
    pandas.DataFrame
        Indexed as :attr:`GroupMetrics.by_group` (age groups in age order);
        columns ``<attribute>_accuracy``, ``age_mae`` (with ages), ``n``, ``small``.

    Examples
    --------
    >>> import pandas as pd
    >>> from gar_sklearn.metrics import summary_by_group
    >>> y = pd.DataFrame({"gender": ["M", "F", "F", "M"], "race": ["A", "A", "B", "B"]})
    >>> pred = pd.DataFrame({"gender": ["M", "M", "F", "M"], "race": ["A", "B", "B", "B"]})
    >>> table = summary_by_group(y, pred, sensitive_features=y["race"],
    ...                          age_true=[20, 30, 40, 50], age_pred=[22, 30, 35, 50],
    ...                          min_group_size=1)
    >>> table  # doctest: +NORMALIZE_WHITESPACE
          gender_accuracy  race_accuracy  age_mae  n  small
    race
    A                 0.5            0.5      1.0  2  False
    B                 1.0            1.0      2.5  2  False
    """
    y_true, y_pred = label_frames(y_true, y_pred)
    n = len(y_true)
    age_true, age_pred = check_ages(age_true, age_pred, n)
    groups = Groups.from_features(sensitive_features, n)
    weight = check_sample_weight(sample_weight, n)
    min_group_size = check_min_group_size(min_group_size)
    groups.warn_small(min_group_size)
    return summary_table(groups, y_true, y_pred, age_true, age_pred, min_group_size, weight)


def _report_rows(y_true, y_pred, classes, digits, zero_division, weight):
    names = [str(c) for c in classes]
    kwargs = {
        "labels": classes,
        "target_names": names,
        "zero_division": zero_division,
        "sample_weight": weight,
    }
    text = classification_report(y_true, y_pred, digits=digits, **kwargs)
    report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    rows = {}
    for key, value in report.items():
        if isinstance(value, dict):
            rows[key] = [value[c] for c in _REPORT_COLUMNS]
        else:  # "accuracy": a scalar, shown under f1-score as scikit-learn prints it
            support = float(len(y_true) if weight is None else weight.sum())
            rows[key] = [np.nan, np.nan, value, support]
    return text, rows


def _ordered_index(tuples, groups, labels):
    """A MultiIndex (attribute, group levels..., label) whose levels list values in order.

    Attributes keep their order, group values follow :class:`Groups` (age
    groups by age), and the last level lists the class labels before the
    summary rows; codes follow the rows, so ``.loc`` on it stays fast.
    """
    columns = [np.asarray(c, dtype=object) for c in zip(*tuples)]
    attribute_codes, attribute_level = pd.factorize(columns[0])
    levels, codes = [attribute_level], [attribute_codes]
    for values in columns[1:-1]:
        order = sorted_labels(values)
        levels.append(pd.Index(order, dtype=object))
        codes.append(rank(values, order))
    label_level = pd.Index(labels, dtype=object)
    levels.append(label_level)
    codes.append(label_level.get_indexer(columns[-1]))
    return pd.MultiIndex(levels=levels, codes=codes, names=["attribute", *groups.names, "label"])


def classification_tables(groups, y_true, y_pred, digits, zero_division, min_group_size, weight):
    """The per-group classification reports as one text and one frame."""
    texts, tuples, values = [], [], []
    small = groups.small_mask(min_group_size)
    by = ", ".join(groups.names)
    labels = []
    for attr in y_true.columns:
        yt, yp = y_true[attr].to_numpy(), y_pred[attr].to_numpy()
        classes = sorted_labels(np.concatenate([yt.astype(object), yp.astype(object)]))
        labels += [str(c) for c in classes if str(c) not in labels]
        for key, label, pos, is_small in zip(groups.index, groups.labels, groups.positions, small):
            text, rows = _report_rows(
                yt[pos], yp[pos], classes, digits, zero_division, _part(weight, pos)
            )
            flag = f", fewer than {min_group_size}: flagged" if is_small else ""
            texts.append(f"{attr} | {by} = {label} (n={len(pos)}{flag})\n{text}")
            key = key if isinstance(key, tuple) else (key,)
            tuples += [(attr, *key, row) for row in rows]
            values += list(rows.values())
    labels += [r for r in _SUMMARY_ROWS if r not in labels]
    frame = pd.DataFrame(
        values, index=_ordered_index(tuples, groups, labels), columns=_REPORT_COLUMNS
    )
    if weight is None:
        frame["support"] = frame["support"].astype(int)
    return "\n".join(texts), frame


def classification_report_by_group(
    y_true,
    y_pred,
    *,
    sensitive_features,
    digits=2,
    zero_division=np.nan,
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    as_frame=False,
):
    """scikit-learn's classification report for each group and each attribute.

    Every group's report lists every class of the attribute (those seen in
    ``y_true`` or ``y_pred`` over all samples, age groups in age order), so
    that reports line up: a class absent from a group has support 0 and
    undefined recall.

    Parameters
    ----------
    y_true, y_pred : DataFrame or array-like of shape (n_samples,)
        One column per attribute, or one attribute.
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics` (several columns: intersectional groups).
        For separate reports per race and per gender, call once for each, or
        use :class:`GroupReport`.
    digits : int, default=2
        Digits in the text report.
    zero_division : float or "warn", default=np.nan
        Passed to scikit-learn: the value of an undefined precision, recall or
        F1 (a class never predicted, or absent, in a group). NaN shows "nan" and
        leaves it out of the macro average.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to scikit-learn's report; supports are then sums of weights.
    min_group_size : int, default=30
        Reports of smaller groups are marked "flagged" in the text.
    as_frame : bool, default=False
        Return a DataFrame instead of text.

    Returns
    -------
    str or pandas.DataFrame
        The text holds one scikit-learn report per (attribute, group). The
        frame is indexed by (attribute, sensitive feature(s)..., label), where
        label is a class (as str), ``"accuracy"`` (its value under
        ``f1-score``, as scikit-learn prints it), ``"macro avg"`` or
        ``"weighted avg"``; columns precision, recall, f1-score, support.

    Examples
    --------
    >>> from gar_sklearn.metrics import classification_report_by_group
    >>> frame = classification_report_by_group(
    ...     ["F", "F", "M", "M"], ["F", "M", "M", "M"], sensitive_features=["a", "a", "b", "b"],
    ...     min_group_size=1, as_frame=True)
    >>> frame.loc[("label", "a", "F")].to_dict()
    {'precision': 1.0, 'recall': 0.5, 'f1-score': 0.6666666666666666, 'support': 2.0}
    """
    y_true, y_pred = label_frames(y_true, y_pred)
    groups = Groups.from_features(sensitive_features, len(y_true))
    weight = check_sample_weight(sample_weight, len(y_true))
    min_group_size = check_min_group_size(min_group_size)
    groups.warn_small(min_group_size)
    text, frame = classification_tables(
        groups, y_true, y_pred, digits, zero_division, min_group_size, weight
    )
    return frame if as_frame else text
