"""Per-group classification reports, summary tables, and the one-call group report."""

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, mean_absolute_error

from ._parity import demographic_parity_difference, equalized_odds_difference
from ._targets import (
    column,
    estimator_attributes,
    exact_ages,
    predicted_ages,
    predicted_frame,
    target_frame,
    true_targets,
)
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    SmallGroupWarning,
    check_1d,
    check_lengths,
    check_min_group_size,
    group_label,
    sensitive_frame,
)

__all__ = [
    "GroupReport",
    "classification_report_by_group",
    "group_report",
    "summary_by_group",
]

_REPORT_COLUMNS = ["precision", "recall", "f1-score", "support"]


def _label_frames(y_true, y_pred):
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


def _classes(y_true, y_pred):
    values = pd.unique(np.concatenate([y_true.astype(object), y_pred.astype(object)]))
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def _summary(groups, y_true, y_pred, age_true, age_pred, min_group_size):
    columns = {}
    for attr in y_true.columns:
        yt, yp = y_true[attr].to_numpy(), y_pred[attr].to_numpy()
        columns[f"{attr}_accuracy"] = [accuracy_score(yt[p], yp[p]) for p in groups.positions]
    if age_true is not None:
        columns["age_mae"] = [
            mean_absolute_error(age_true[p], age_pred[p]) for p in groups.positions
        ]
    frame = pd.DataFrame(columns, index=groups.index)
    frame["n"] = groups.sizes
    frame["small"] = groups.small_mask(min_group_size)
    return frame


def _overall(y_true, y_pred, age_true, age_pred):
    values = {
        f"{a}_accuracy": accuracy_score(y_true[a].to_numpy(), y_pred[a].to_numpy())
        for a in y_true.columns
    }
    if age_true is not None:
        values["age_mae"] = mean_absolute_error(age_true, age_pred)
    values["n"] = len(y_true)
    return pd.Series(values, name="overall", dtype=object)


def _check_ages(age_true, age_pred, n):
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
    min_group_size : int, default=30
        Groups with fewer samples are marked in the ``small`` column.

    Returns
    -------
    pandas.DataFrame
        Indexed as :attr:`GroupMetrics.by_group`; columns ``<attribute>_accuracy``,
        ``age_mae`` (with ages), ``n``, ``small``.

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
    y_true, y_pred = _label_frames(y_true, y_pred)
    n = len(y_true)
    age_true, age_pred = _check_ages(age_true, age_pred, n)
    groups = Groups.from_features(sensitive_features, n)
    min_group_size = check_min_group_size(min_group_size)
    groups.warn_small(min_group_size)
    return _summary(groups, y_true, y_pred, age_true, age_pred, min_group_size)


def _report_rows(y_true, y_pred, classes, digits, zero_division):
    names = [str(c) for c in classes]
    kwargs = {"labels": classes, "target_names": names, "zero_division": zero_division}
    text = classification_report(y_true, y_pred, digits=digits, **kwargs)
    report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    rows = {}
    for key, value in report.items():
        if isinstance(value, dict):
            rows[key] = [value[c] for c in _REPORT_COLUMNS]
        else:  # "accuracy": a scalar, shown under f1-score as scikit-learn prints it
            rows[key] = [np.nan, np.nan, value, float(len(y_true))]
    return text, rows


def _lexsorted_index(tuples, names, labels):
    """A MultiIndex whose codes follow the rows' order, so ``.loc`` on it stays fast.

    Attributes keep their order, groups are sorted (as they come), and the last
    level lists the class labels before the summary rows.
    """
    columns = [np.asarray(c, dtype=object) for c in zip(*tuples)]
    levels, codes = [], []
    for i, values in enumerate(columns):
        if i == 0:
            c, level = pd.factorize(values)
        elif i == len(columns) - 1:
            level = pd.Index(labels, dtype=object)
            c = level.get_indexer(values)
        else:
            try:
                c, level = pd.factorize(values, sort=True)
            except TypeError:
                c, level = pd.factorize(values)
        levels.append(level)
        codes.append(c)
    return pd.MultiIndex(levels=levels, codes=codes, names=names)


def _classification(groups, y_true, y_pred, digits, zero_division, min_group_size):
    texts, tuples, values = [], [], []
    small = groups.small_mask(min_group_size)
    by = ", ".join(groups.names)
    labels = []
    for attr in y_true.columns:
        yt, yp = y_true[attr].to_numpy(), y_pred[attr].to_numpy()
        classes = _classes(yt, yp)
        labels += [str(c) for c in classes if str(c) not in labels]
        for key, label, pos, is_small in zip(groups.index, groups.labels, groups.positions, small):
            text, rows = _report_rows(yt[pos], yp[pos], classes, digits, zero_division)
            flag = f", fewer than {min_group_size}: flagged" if is_small else ""
            texts.append(f"{attr} | {by} = {label} (n={len(pos)}{flag})\n{text}")
            key = key if isinstance(key, tuple) else (key,)
            tuples += [(attr, *key, row) for row in rows]
            values += list(rows.values())
    labels += [r for r in ("accuracy", "micro avg", "macro avg", "weighted avg") if r not in labels]
    index = _lexsorted_index(tuples, ["attribute", *groups.names, "label"], labels)
    frame = pd.DataFrame(values, index=index, columns=_REPORT_COLUMNS)
    frame["support"] = frame["support"].astype(int)
    return "\n".join(texts), frame


def classification_report_by_group(
    y_true,
    y_pred,
    *,
    sensitive_features,
    digits=2,
    zero_division=np.nan,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    as_frame=False,
):
    """scikit-learn's classification report for each group and each attribute.

    Every group's report lists every class of the attribute (those seen in
    ``y_true`` or ``y_pred`` over all samples), so that reports line up: a
    class absent from a group has support 0 and undefined recall.

    Parameters
    ----------
    y_true, y_pred : DataFrame or array-like of shape (n_samples,)
        One column per attribute, or one attribute.
    sensitive_features : array-like, Series, DataFrame or dict
        See :class:`GroupMetrics` (several columns: intersectional groups).
        For separate reports per race and per gender, call once for each, or
        use :func:`group_report`.
    digits : int, default=2
        Digits in the text report.
    zero_division : float or "warn", default=np.nan
        Passed to scikit-learn: the value of an undefined precision, recall or
        F1 (a class never predicted, or absent, in a group). NaN shows "nan" and
        leaves it out of the macro average.
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
    y_true, y_pred = _label_frames(y_true, y_pred)
    groups = Groups.from_features(sensitive_features, len(y_true))
    min_group_size = check_min_group_size(min_group_size)
    groups.warn_small(min_group_size)
    text, frame = _classification(groups, y_true, y_pred, digits, zero_division, min_group_size)
    return frame if as_frame else text


def _groupings(by):
    """``by`` as a list of tuples of column names: one tuple per grouping."""
    if isinstance(by, str):
        by = (by,)
    out = []
    for item in by:
        names = (
            (item,)
            if isinstance(item, str)
            else (tuple(item) if isinstance(item, (tuple, list)) else None)
        )
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(
                "The 'by' parameter must hold column names or tuples of column names, e.g. "
                f"('race', 'gender') or [('race', 'gender')]. Got {by!r} instead."
            )
        out.append(names)
    if not out:
        raise ValueError("The 'by' parameter must name at least one column.")
    return out


def _key(names):
    return " x ".join(names)


class GroupReport:
    """Everything :func:`group_report` computed; print it or take its tables.

    Attributes
    ----------
    attributes : tuple of str
        The predicted attributes.
    overall : pandas.Series
        Accuracy per attribute, ``age_mae`` (when ages are available) and ``n``
        on all samples.
    summaries : dict of str to pandas.DataFrame
        For each grouping (keys ``"race"``, ``"gender"``, ``"race x gender"``):
        the :func:`summary_by_group` table.
    classification_reports : dict of str to pandas.DataFrame
        For each grouping: the :func:`classification_report_by_group` frame.
    classification_texts : dict of str to str
        The same as text.
    disparities : pandas.DataFrame
        Indexed by (by, metric): for each grouping and metric, over the
        unflagged groups, the worst and best group and value, their
        ``difference`` and ``ratio``, the number of groups and of flagged groups.
    parity : pandas.DataFrame
        Indexed by (by, attribute), for each attribute not among the grouping's
        columns (race predictions grouped by race have no parity to speak of):
        the multiclass demographic parity and equalized odds differences
        (worst class; undefined rates left out, i.e.
        ``zero_division=np.nan``).
    y_true, y_pred : pandas.DataFrame
        The labels compared, one column per attribute.
    age_true, age_pred : ndarray or None
    sensitive : pandas.DataFrame
        The sensitive columns used.
    min_group_size : int
    """

    def __init__(
        self,
        *,
        attributes,
        overall,
        summaries,
        classification_reports,
        classification_texts,
        disparities,
        parity,
        y_true,
        y_pred,
        age_true,
        age_pred,
        sensitive,
        min_group_size,
    ):
        self.attributes = attributes
        self.overall = overall
        self.summaries = summaries
        self.classification_reports = classification_reports
        self.classification_texts = classification_texts
        self.disparities = disparities
        self.parity = parity
        self.y_true = y_true
        self.y_pred = y_pred
        self.age_true = age_true
        self.age_pred = age_pred
        self.sensitive = sensitive
        self.min_group_size = min_group_size

    def _lookup(self, table, by):
        if by is None:
            return None
        key = by if isinstance(by, str) else _key(tuple(by))
        if key not in table:
            raise ValueError(
                f"The 'by' parameter must be one of {list(table)}. Got {by!r} instead."
            )
        return table[key]

    def summary(self, by=None):
        """The summary table of one grouping, or of all (``by=None``, as :meth:`to_frame`)."""
        found = self._lookup(self.summaries, by)
        return self.to_frame() if found is None else found

    def classification_report(self, by=None, attribute=None):
        """The per-group classification report frame of one grouping (default: the first).

        Parameters
        ----------
        by : str or tuple of str, default=None
        attribute : str, default=None
            Only this attribute's rows.
        """
        found = self._lookup(self.classification_reports, by)
        frame = next(iter(self.classification_reports.values())) if found is None else found
        if attribute is not None:
            if attribute not in self.attributes:
                raise ValueError(
                    f"The 'attribute' parameter must be one of "
                    f"{list(self.attributes)}. Got {attribute!r} instead."
                )
            frame = frame.xs(attribute, level="attribute", drop_level=False)
        return frame

    def to_frame(self):
        """All summary tables stacked, indexed by (by, group) with groups as text."""
        frames = []
        for key, table in self.summaries.items():
            t = table.copy()
            t.index = pd.MultiIndex.from_tuples(
                [(key, group_label(k)) for k in table.index], names=["by", "group"]
            )
            frames.append(t)
        return pd.concat(frames)

    def to_text(self, details=False, digits=3):
        """The report as text.

        Parameters
        ----------
        details : bool, default=False
            Also include every per-group classification report.
        digits : int, default=3
        """
        fmt = f"{{:.{digits}f}}".format
        ages = "; age MAE in years from exact ages." if self.age_true is not None else "."
        lines = [
            (
                f"Group report: {int(self.overall['n'])} samples; attributes "
                f"{', '.join(self.attributes)}{ages}"
            ),
            (
                f"Groups with fewer than {self.min_group_size} samples are marked * and left "
                "out of the disparities."
            ),
            "",
            "Overall",
            self.overall.to_frame().T.to_string(index=False, float_format=fmt),
        ]
        for key, table in self.summaries.items():
            shown = table.drop(columns="small")
            shown.index = [
                group_label(k) + ("*" if s else "") for k, s in zip(table.index, table["small"])
            ]
            lines += ["", f"By {key}", shown.to_string(float_format=fmt)]
        lines += [
            "",
            "Disparities (unflagged groups; difference = largest - smallest)",
            self.disparities.to_string(float_format=fmt),
        ]
        lines += [
            "",
            "Parity (one class vs the rest, worst class; undefined rates left out)",
            self.parity.to_string(float_format=fmt),
        ]
        if details:
            for key, text in self.classification_texts.items():
                lines += ["", f"Classification reports by {key}", "", text]
        return "\n".join(lines)

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return (
            f"GroupReport(n={int(self.overall['n'])}, attributes={self.attributes}, "
            f"by={list(self.summaries)})"
        )


def _disparities(key, table):
    eligible = table[~table["small"]]
    rows = []
    for metric in [c for c in table.columns if c not in ("n", "small")]:
        values = eligible[metric].astype(float)
        loss = metric == "age_mae"
        if values.empty:
            worst_g = best_g = None
            worst = best = np.nan
        else:
            worst_g = values.idxmax() if loss else values.idxmin()
            best_g = values.idxmin() if loss else values.idxmax()
            worst, best = values[worst_g], values[best_g]
            worst_g, best_g = group_label(worst_g), group_label(best_g)
        rows.append(
            {
                "by": key,
                "metric": metric,
                "worst_group": worst_g,
                "worst": worst,
                "best_group": best_g,
                "best": best,
                "difference": values.max() - values.min(),
                "ratio": values.min() / values.max(),
                "n_groups": len(table),
                "n_flagged": int(table["small"].sum()),
            }
        )
    return rows


def group_report(
    estimator=None,
    X=None,
    y=None,
    *,
    y_pred=None,
    y_true=None,
    age_pred=None,
    by=("race", "gender"),
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    digits=2,
    zero_division=np.nan,
):
    """The whole per-group report in one call, from a fitted estimator or predictions.

    With an estimator: ``y_pred = estimator.predict(X)`` (columns
    ``estimator.attributes_``), the true labels are
    ``estimator.transform_targets(y)`` when it has that method (exact ages
    become its age groups), else y's columns; the ages come from
    ``estimator.predict_age(X)`` when it has that method and y's ``"age"``
    column holds exact ages. Without one: pass ``y_pred`` (and ``age_pred``).

    Parameters
    ----------
    estimator : fitted estimator, default=None
        See above; nothing is imported, the estimator is duck-typed.
    X : array-like, default=None
        Images for ``estimator``.
    y : DataFrame or 2-D array, default=None
        The targets: columns gender, age, race (a 2-D array in the attributes'
        order). The sensitive columns are read from it.
    y_pred : DataFrame or 2-D array, default=None
        Predictions, one column per attribute (a 2-D array takes y's column
        names), when no estimator is given.
    y_true : DataFrame, default=None
        The true labels in the form of ``y_pred`` (e.g. age groups) where y
        holds something else (e.g. exact ages); default: y's columns.
    age_pred : array-like of float, default=None
        Estimated ages in years; with exact ages in y, adds the age MAE.
    by : str, or sequence of str or tuples of str, default=("race", "gender")
        The groupings: each entry a column of y (or of ``y_true``) or a tuple of
        columns for intersectional groups, e.g. ``("race", ("race", "gender"))``.
    min_group_size : int, default=30
        Smaller groups are flagged (``*``) and left out of the disparities.
    digits : int, default=2
        Digits of the text classification reports.
    zero_division : float or "warn", default=np.nan
        For the classification reports (see :func:`classification_report_by_group`).

    Returns
    -------
    GroupReport

    See Also
    --------
    summary_by_group, classification_report_by_group : Its tables, one at a time.
    gar_sklearn.plotting.plot_group_metric : The per-group accuracies as bars with intervals.

    Examples
    --------
    >>> import pandas as pd
    >>> from gar_sklearn.metrics import group_report
    >>> y = pd.DataFrame({"gender": ["M", "F", "F", "M"], "race": ["A", "A", "B", "B"]})
    >>> pred = pd.DataFrame({"gender": ["M", "M", "F", "M"], "race": ["A", "B", "B", "B"]})
    >>> report = group_report(y=y, y_pred=pred, by="race", min_group_size=1)
    >>> report.summary("race")["gender_accuracy"].to_dict()
    {'A': 0.5, 'B': 1.0}
    >>> report.disparities.loc[("race", "gender_accuracy"), ["worst_group", "difference"]].to_dict()
    {'worst_group': 'A', 'difference': 0.5}
    """
    raw = None
    if estimator is not None:
        if X is None or y is None:
            raise ValueError("group_report with an estimator needs X and y.")
        attributes = estimator_attributes(estimator)
        pred_frame = predicted_frame(estimator, X, attributes)
        if y_true is None:
            raw, true_frame = true_targets(estimator, y, attributes)
        else:
            raw, true_frame = target_frame(y, attributes), target_frame(y_true, attributes)
        if age_pred is None and "age" in attributes and hasattr(estimator, "predict_age"):
            age_col = raw["age"] if "age" in raw.columns else None
            if age_col is not None and pd.to_numeric(age_col, errors="coerce").notna().all():
                age_pred = predicted_ages(estimator, X)
    else:
        if y_pred is None:
            raise ValueError("group_report needs a fitted 'estimator' (with X and y) or 'y_pred'.")
        if y is None and y_true is None:
            raise ValueError("group_report needs y (or y_true) to compare the predictions with.")
        names = list(y.columns) if isinstance(y, pd.DataFrame) else None
        if isinstance(y_pred, pd.DataFrame):
            pred_frame = y_pred.reset_index(drop=True)
        else:
            pred_frame = target_frame(y_pred, names, name="y_pred")
        attributes = tuple(pred_frame.columns)
        raw = None if y is None else target_frame(y, attributes)
        true_frame = target_frame(y_true, attributes, name="y_true") if y_true is not None else raw
        missing = [a for a in attributes if a not in true_frame.columns]
        if missing:
            raise ValueError(
                f"y has no column for the predicted attribute(s) {missing}; it "
                f"has {list(true_frame.columns)}."
            )
        true_frame = true_frame[list(attributes)]
    n = check_lengths(y_true=true_frame, y_pred=pred_frame)
    age_true = None
    if age_pred is not None:
        age_true = exact_ages(column([raw], "age", "age").to_numpy())
        age_pred = np.asarray(check_1d(age_pred, "age_pred"), dtype=float)
        check_lengths(y_true=true_frame, age_pred=age_pred)
    min_group_size = check_min_group_size(min_group_size)

    summaries, reports, texts, parity_rows, disparity_rows = {}, {}, {}, [], []
    sensitive_cols = {}
    for names in _groupings(by):
        key = _key(names)
        frame = sensitive_frame(
            pd.DataFrame({s: column([true_frame, raw], s, "sensitive").to_numpy() for s in names})
        )
        for s in names:
            sensitive_cols[s] = frame[s]
        groups = Groups.from_features(frame, n)
        groups.warn_small(min_group_size)
        summaries[key] = _summary(
            groups, true_frame, pred_frame, age_true, age_pred, min_group_size
        )
        texts[key], reports[key] = _classification(
            groups, true_frame, pred_frame, digits, zero_division, min_group_size
        )
        disparity_rows += _disparities(key, summaries[key])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallGroupWarning)  # already warned above
            for attr in attributes:
                if attr in names:  # e.g. race predictions by race: parity is meaningless
                    continue
                kwargs = {"sensitive_features": frame, "min_group_size": min_group_size}
                yt, yp = true_frame[attr].to_numpy(), pred_frame[attr].to_numpy()
                parity_rows.append(
                    {
                        "by": key,
                        "attribute": attr,
                        "demographic_parity_difference": demographic_parity_difference(
                            yt, yp, **kwargs
                        ),
                        "equalized_odds_difference": equalized_odds_difference(
                            yt, yp, zero_division=np.nan, **kwargs
                        ),
                    }
                )
    return GroupReport(
        attributes=attributes,
        overall=_overall(true_frame, pred_frame, age_true, age_pred),
        summaries=summaries,
        classification_reports=reports,
        classification_texts=texts,
        disparities=pd.DataFrame(disparity_rows).set_index(["by", "metric"]),
        parity=pd.DataFrame(
            parity_rows,
            columns=[
                "by",
                "attribute",
                "demographic_parity_difference",
                "equalized_odds_difference",
            ],
        ).set_index(["by", "attribute"]),
        y_true=true_frame,
        y_pred=pred_frame,
        age_true=age_true,
        age_pred=age_pred,
        sensitive=pd.DataFrame(sensitive_cols),
        min_group_size=min_group_size,
    )
