"""The per-group report: from a fitted estimator or from predictions, as text, frames or JSON."""

import math
import numbers
import warnings

import numpy as np
import pandas as pd

from ._fitted import (
    column,
    fitted_view,
    predicted_ages,
    predicted_frame,
    target_frame,
    true_targets,
)
from ._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from ._tables import (
    check_ages,
    classification_tables,
    label_frames,
    overall_row,
    summary_table,
)
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    Groups,
    SmallGroupWarning,
    TooFewGroupsWarning,
    check_lengths,
    check_min_group_size,
    check_sample_weight,
    group_label,
    sensitive_frame,
    too_few_message,
)

__all__ = ["GroupReport", "group_report"]

_PARITY = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
}


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


def _disparities(key, table):
    """Worst and best group of each metric and their gap, over unflagged groups."""
    eligible = table[~table["small"]]
    rows = []
    for metric in [c for c in table.columns if c not in ("n", "small")]:
        values = eligible[metric].astype(float).dropna()
        row = {
            "by": key,
            "metric": metric,
            "worst_group": None,
            "worst": np.nan,
            "best_group": None,
            "best": np.nan,
            "difference": np.nan,
            "ratio": np.nan,
        }
        if len(values) >= 2:  # one group compares nothing (NaN, not a reassuring 0)
            loss = metric == "age_mae"
            worst_g = values.idxmax() if loss else values.idxmin()
            best_g = values.idxmin() if loss else values.idxmax()
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = values.min() / values.max()
            row.update(
                worst_group=group_label(worst_g),
                worst=values[worst_g],
                best_group=group_label(best_g),
                best=values[best_g],
                difference=values.max() - values.min(),
                ratio=ratio,
            )
        row.update(n_groups=len(table), n_flagged=int(table["small"].sum()))
        rows.append(row)
    return rows


def _parity_rows(key, names, frame, y_true, y_pred, weight, min_group_size):
    """Multiclass parity of each attribute that is not one of the grouping's columns."""
    rows = []
    kwargs = {
        "sensitive_features": frame,
        "sample_weight": weight,
        "min_group_size": min_group_size,
    }
    with warnings.catch_warnings():
        # Already warned once for this grouping by the caller.
        warnings.simplefilter("ignore", SmallGroupWarning)
        warnings.simplefilter("ignore", TooFewGroupsWarning)
        for attr in y_true.columns:
            if attr in names:  # e.g. race predictions by race: parity is meaningless
                continue
            yt, yp = y_true[attr].to_numpy(), y_pred[attr].to_numpy()
            row = {"by": key, "attribute": attr}
            for name, func in _PARITY.items():
                odds = name.startswith("equalized")
                row[name] = func(yt, yp, **kwargs, **({"zero_division": np.nan} if odds else {}))
            rows.append(row)
    return rows


def _grouping(names, sources, where, n, parts, y_true, y_pred, ages, weight, options):
    """Add one grouping's tables, disparities, parity and notes to ``parts``."""
    key = _key(names)
    frame = sensitive_frame(
        pd.DataFrame({s: column(sources, s, "sensitive", where).to_numpy() for s in names})
    )
    groups = Groups.from_features(frame, n)
    size = options["min_group_size"]
    groups.warn_small(size, stacklevel=6)
    if not groups.warn_too_few(size, stacklevel=6):
        parts["notes"].append(f"By {key}: {too_few_message(groups, size)}")
    parts["sensitive"].update({s: frame[s] for s in names})
    table = summary_table(groups, y_true, y_pred, *ages, size, weight)
    parts["summaries"][key] = table
    parts["texts"][key], parts["reports"][key] = classification_tables(
        groups, y_true, y_pred, options["digits"], options["zero_division"], size, weight
    )
    parts["disparities"] += _disparities(key, table)
    parts["parity"] += _parity_rows(key, names, frame, y_true, y_pred, weight, size)


def _json_value(value):
    """A JSON-ready scalar: Python numbers and strings, None for NaN."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return None if math.isnan(value) else float(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _records(frame):
    """The rows of ``frame`` (index reset) as JSON-ready dicts, in order."""
    flat = frame.reset_index()
    return [{str(k): _json_value(v) for k, v in row.items()} for row in flat.to_dict("records")]


class GroupReport:
    """Accuracy, age error, classification reports, disparities and parity per group.

    Build it with :meth:`from_estimator` (a fitted estimator of this library,
    a Pipeline ending in one, or a fitted GridSearchCV over one) or
    :meth:`from_predictions` (stored labels and predictions), as
    scikit-learn's displays are built; print it, or take its tables.

    Groups with fewer than ``min_group_size`` samples keep their rows
    (flagged ``*`` in the text, ``small`` in the tables) but are left out of
    the disparities and the parity metrics; where fewer than two groups are
    left, those are NaN and :attr:`notes` says why.

    Attributes
    ----------
    attributes : tuple of str
        The predicted attributes.
    overall : pandas.Series
        Accuracy per attribute, ``age_mae`` (when ages are available) and ``n``
        on all samples.
    summaries : dict of str to pandas.DataFrame
        For each grouping (keys ``"race"``, ``"gender"``, ``"race x gender"``):
        the :func:`summary_by_group` table, groups in order (age groups by age).
    classification_reports : dict of str to pandas.DataFrame
        For each grouping: the :func:`classification_report_by_group` frame.
    classification_texts : dict of str to str
        The same as text.
    disparities : pandas.DataFrame
        Indexed by (by, metric): for each grouping and metric, over the
        unflagged groups, the worst and best group and value, their
        ``difference`` and ``ratio`` (None and NaN with fewer than two such
        groups), the number of groups and of flagged groups.
    parity : pandas.DataFrame
        Indexed by (by, attribute), for each attribute not among the grouping's
        columns (race predictions grouped by race have no parity to speak of):
        the multiclass demographic parity and equalized odds differences and
        ratios (worst class; undefined rates left out, i.e.
        ``zero_division=np.nan``).
    notes : list of str
        Why some disparities are NaN (groupings with fewer than two groups to compare).
    y_true, y_pred : pandas.DataFrame
        The labels compared, one column per attribute.
    age_true, age_pred : ndarray or None
    sensitive : pandas.DataFrame
        The sensitive columns used.
    sample_weight : ndarray or None
    min_group_size : int

    See Also
    --------
    group_report : The same as :meth:`from_estimator`.
    gar_sklearn.plotting.GroupMetricDisplay : The per-group values as bars with intervals.
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
        sample_weight=None,
        notes=(),
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
        self.sample_weight = sample_weight
        self.notes = list(notes)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        by=("race", "gender"),
        sample_weight=None,
        min_group_size=DEFAULT_MIN_GROUP_SIZE,
        digits=2,
        zero_division=np.nan,
    ):
        """The report of a fitted estimator on ``(X, y)``.

        ``y_pred = estimator.predict(X)`` (columns: the final estimator's
        ``attributes_``); the true labels are the final estimator's
        ``transform_targets(y)`` when it has that method (exact ages become
        its age groups), else y's columns; when y's ``"age"`` holds exact ages,
        the age error in years comes from ``predict_age(X)`` (through the
        Pipeline's transforms). The groups are read from y (age groups from
        the transformed targets).

        Parameters
        ----------
        estimator : fitted estimator, Pipeline or fitted search
            An estimator of this library, a Pipeline ending in one, or a fitted
            GridSearchCV (``refit=True``) over either; duck-typed, nothing is imported.
        X : array-like
            Images for ``estimator``.
        y : DataFrame or 2-D array
            The targets: columns gender, age, race (a 2-D array in the
            attributes' order), and any sensitive column named in ``by``.
        by : str, or sequence of str or tuples of str, default=("race", "gender")
            The groupings: each entry a column of y or a tuple of columns for
            intersectional groups, e.g. ``("race", ("race", "gender"))``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in every accuracy, error, report and
            parity metric (as fairlearn's ``sample_params``); group sizes
            still count samples.
        min_group_size : int, default=30
            Smaller groups are flagged (``*``) and left out of the disparities.
        digits : int, default=2
            Digits of the text classification reports.
        zero_division : float or "warn", default=np.nan
            For the classification reports (see :func:`classification_report_by_group`).

        Returns
        -------
        GroupReport
        """
        if estimator is None:
            raise ValueError(
                "group_report needs a fitted 'estimator' (with X and y); for stored "
                "labels (y_true) or 'y_pred' predictions, use "
                "GroupReport.from_predictions(y_true, y_pred, ...)."
            )
        if X is None or y is None:
            raise ValueError("group_report with an estimator needs X and y.")
        view = fitted_view(estimator)
        attributes = view.attributes
        pred = predicted_frame(view, X, attributes)
        raw, true = true_targets(view, y, attributes)
        age_true = age_pred = None
        if "age" in attributes and view.has_predict_age and "age" in raw.columns:
            if pd.to_numeric(raw["age"], errors="coerce").notna().all():
                age_true, age_pred = raw["age"].to_numpy(), predicted_ages(view, X)
        options = {
            "min_group_size": min_group_size,
            "digits": digits,
            "zero_division": zero_division,
        }
        return cls._build(
            true, pred, ([true, raw], "y"), (age_true, age_pred), by, sample_weight, options
        )

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_pred,
        *,
        sensitive_features=None,
        age_true=None,
        age_pred=None,
        by=None,
        sample_weight=None,
        min_group_size=DEFAULT_MIN_GROUP_SIZE,
        digits=2,
        zero_division=np.nan,
    ):
        """The report of stored labels and predictions.

        Parameters
        ----------
        y_true : DataFrame
            The true labels in the form of the predictions (e.g. age groups),
            one column per attribute; it may hold the sensitive columns too.
        y_pred : DataFrame or 2-D array
            Predictions, one column per attribute (a 2-D array takes y_true's
            column names); every column of ``y_pred`` is reported.
        sensitive_features : DataFrame, Series or dict, default=None
            The group columns, looked up before y_true's: one group label per
            sample and column.
        age_true, age_pred : array-like of float, default=None
            Exact and estimated ages in years, for the age MAE. With
            ``age_pred`` alone, y_true's ``"age"`` column is taken as the
            exact ages (it must hold numbers).
        by : str, or sequence of str or tuples of str, default=None
            The groupings (see :meth:`from_estimator`); default: each column
            of ``sensitive_features``, or ``("race", "gender")`` without it.
        sample_weight, min_group_size, digits, zero_division
            See :meth:`from_estimator`.

        Returns
        -------
        GroupReport

        Examples
        --------
        >>> import pandas as pd
        >>> from gar_sklearn.metrics import GroupReport
        >>> y = pd.DataFrame({"gender": ["M", "F", "F", "M"], "race": ["A", "A", "B", "B"]})
        >>> pred = pd.DataFrame({"gender": ["M", "M", "F", "M"], "race": ["A", "B", "B", "B"]})
        >>> report = GroupReport.from_predictions(y, pred, by="race", min_group_size=1)
        >>> report.summary("race")["gender_accuracy"].to_dict()
        {'A': 0.5, 'B': 1.0}
        >>> report.disparities.loc[("race", "gender_accuracy"), ["worst_group", "difference"]].to_dict()
        {'worst_group': 'A', 'difference': 0.5}
        """
        true, pred = _prediction_frames(y_true, y_pred)
        sensitive = None if sensitive_features is None else sensitive_frame(sensitive_features)
        if by is None:
            by = tuple(sensitive.columns) if sensitive is not None else ("race", "gender")
        if age_pred is not None and age_true is None:
            age_true = column([true], "age", "age", "y_true").to_numpy()
        options = {
            "min_group_size": min_group_size,
            "digits": digits,
            "zero_division": zero_division,
        }
        where = "y_true" if sensitive is None else "sensitive_features or y_true"
        sources = ([sensitive, true], where)
        attributes = list(pred.columns)
        return cls._build(
            true[attributes], pred, sources, (age_true, age_pred), by, sample_weight, options
        )

    @classmethod
    def _build(cls, y_true, y_pred, sources, ages, by, sample_weight, options):
        n = check_lengths(y_true=y_true, y_pred=y_pred)
        ages = check_ages(*ages, n)
        weight = check_sample_weight(sample_weight, n)
        options["min_group_size"] = check_min_group_size(options["min_group_size"])
        parts = {
            "summaries": {},
            "reports": {},
            "texts": {},
            "disparities": [],
            "parity": [],
            "notes": [],
            "sensitive": {},
        }
        for names in _groupings(by):
            _grouping(names, *sources, n, parts, y_true, y_pred, ages, weight, options)
        parity_columns = ["by", "attribute", *_PARITY]
        return cls(
            attributes=tuple(y_pred.columns),
            overall=overall_row(y_true, y_pred, *ages, weight),
            summaries=parts["summaries"],
            classification_reports=parts["reports"],
            classification_texts=parts["texts"],
            disparities=pd.DataFrame(parts["disparities"]).set_index(["by", "metric"]),
            parity=pd.DataFrame(parts["parity"], columns=parity_columns).set_index(
                ["by", "attribute"]
            ),
            y_true=y_true,
            y_pred=y_pred,
            age_true=ages[0],
            age_pred=ages[1],
            sensitive=pd.DataFrame(parts["sensitive"]),
            min_group_size=options["min_group_size"],
            sample_weight=weight,
            notes=parts["notes"],
        )

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

    def to_dict(self):
        """The report as JSON-ready lists and dicts, groups and classes in order.

        NaN becomes None; groups are text (``"White, Male"``).

        Returns
        -------
        dict
            Keys ``n``, ``attributes``, ``min_group_size``, ``weighted``,
            ``overall``, ``notes`` and ``by``: for each grouping, its
            ``groups`` (rows of the summary table), ``disparities``, ``parity``
            and ``classification_report`` (rows of those frames).

        Examples
        --------
        >>> import json
        >>> import pandas as pd
        >>> from gar_sklearn.metrics import GroupReport
        >>> y = pd.DataFrame({"age": ["3-9", "10-19", "0-2", "3-9"], "race": ["A", "B", "A", "B"]})
        >>> report = GroupReport.from_predictions(y, y, by="age", min_group_size=1)
        >>> [row["age"] for row in report.to_dict()["by"]["age"]["groups"]]
        ['0-2', '3-9', '10-19']
        >>> text = json.dumps(report.to_dict())
        """
        by = {}
        for key, table in self.summaries.items():
            groups = table.copy()
            groups.index = pd.Index([group_label(k) for k in table.index], name="group")
            groups.insert(0, key, groups.index)
            by[key] = {
                "groups": _records(groups.reset_index(drop=True).set_index(key)),
                "disparities": _records(self.disparities.xs(key, level="by")),
                "parity": _records(self.parity.xs(key, level="by"))
                if key in self.parity.index.get_level_values("by")
                else [],
                "classification_report": _records(self.classification_reports[key]),
            }
        return {
            "n": int(self.overall["n"]),
            "attributes": list(self.attributes),
            "min_group_size": self.min_group_size,
            "weighted": self.sample_weight is not None,
            "overall": {k: _json_value(v) for k, v in self.overall.items()},
            "notes": list(self.notes),
            "by": by,
        }

    def to_text(self, details=False, digits=3):
        """The report as text.

        Parameters
        ----------
        details : bool, default=False
            Also include every per-group classification report.
        digits : int, default=3
        """
        fmt = f"{{:.{digits}f}}".format
        ages = "; age MAE in years from exact ages" if self.age_true is not None else ""
        weighted = "; weighted by sample_weight" if self.sample_weight is not None else ""
        lines = [
            (
                f"Group report: {int(self.overall['n'])} samples; attributes "
                f"{', '.join(self.attributes)}{ages}{weighted}."
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
            *self.notes,
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


def _prediction_frames(y_true, y_pred):
    """``y_true`` as a frame and ``y_pred`` as a frame of attributes that y_true has."""
    if not isinstance(y_true, pd.DataFrame):
        return label_frames(y_true, y_pred)  # one attribute
    true = y_true.reset_index(drop=True)
    if isinstance(y_pred, pd.DataFrame):
        pred = y_pred.reset_index(drop=True)
    else:
        pred = target_frame(y_pred, list(true.columns), name="y_pred")
    missing = [a for a in pred.columns if a not in true.columns]
    if missing:
        raise ValueError(
            f"y_true has no column for the predicted attribute(s) {missing}; it "
            f"has {list(true.columns)}."
        )
    return true, pred


def group_report(
    estimator,
    X,
    y,
    *,
    by=("race", "gender"),
    sample_weight=None,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    digits=2,
    zero_division=np.nan,
):
    """The per-group report of a fitted estimator: :meth:`GroupReport.from_estimator`.

    For stored labels and predictions, use :meth:`GroupReport.from_predictions`.

    Parameters
    ----------
    estimator : fitted estimator, Pipeline or fitted search
        An estimator of this library, a Pipeline ending in one, or a fitted
        GridSearchCV over either.
    X : array-like
        Images for ``estimator``.
    y : DataFrame or 2-D array
        The targets, with the sensitive columns.
    by, sample_weight, min_group_size, digits, zero_division
        See :meth:`GroupReport.from_estimator`.

    Returns
    -------
    GroupReport

    See Also
    --------
    summary_by_group, classification_report_by_group : Its tables, one at a time.
    gar_sklearn.plotting.GroupMetricDisplay : The per-group accuracies as bars with intervals.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from gar_sklearn.metrics import group_report
    >>> class Stored:  # the estimators' contract over stored predictions
    ...     attributes_ = ("gender",)
    ...     def predict(self, X):
    ...         return np.array([["M"], ["M"], ["F"], ["M"]], dtype=object)[X]
    >>> y = pd.DataFrame({"gender": ["M", "F", "F", "M"], "race": ["A", "A", "B", "B"]})
    >>> report = group_report(Stored(), np.arange(4), y, by="race", min_group_size=1)
    >>> report.summary("race")["gender_accuracy"].to_dict()
    {'A': 0.5, 'B': 1.0}
    """
    return GroupReport.from_estimator(
        estimator,
        X,
        y,
        by=by,
        sample_weight=sample_weight,
        min_group_size=min_group_size,
        digits=digits,
        zero_division=zero_division,
    )
