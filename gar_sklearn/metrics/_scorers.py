"""Scorers for GridSearchCV: per-attribute accuracy, age MAE and per-group aggregates.

Every scorer is an instance of a module-level class, so it pickles (GridSearchCV
with ``n_jobs > 1`` sends scorers to worker processes), and is called as
``scorer(estimator, X, y)``. Scores follow scikit-learn's convention that greater
is better: losses (MAE) and differences between groups are negated.
"""

import pandas as pd
from sklearn.metrics import mean_absolute_error

from ._group_metrics import GroupMetrics, resolve_metric
from ._targets import (
    column,
    estimator_attributes,
    exact_ages,
    predicted_ages,
    predicted_frame,
    target_frame,
    true_targets,
)
from ._validation import DEFAULT_MIN_GROUP_SIZE, check_min_group_size

__all__ = [
    "combine_scorers",
    "default_scoring",
    "make_age_mae_scorer",
    "make_attribute_scorer",
    "make_group_scorer",
]

_AGGREGATES = ("worst", "difference", "ratio", "mean")


class _Predictions:
    """One estimator's predictions on one X, computed on first use and then shared."""

    def __init__(self, estimator, X):
        self.estimator = estimator
        self.X = X
        self.attributes = estimator_attributes(estimator)
        self._labels = None
        self._ages = None

    @property
    def labels(self):
        if self._labels is None:
            self._labels = predicted_frame(self.estimator, self.X, self.attributes)
        return self._labels

    @property
    def ages(self):
        if self._ages is None:
            self._ages = predicted_ages(self.estimator, self.X)
        return self._ages

    def check_attribute(self, attribute):
        if attribute not in self.attributes:
            raise ValueError(
                f"The scored attribute {attribute!r} is not predicted by "
                f"{type(self.estimator).__name__}; its attributes_ are {list(self.attributes)}."
            )


class _Scorer:
    def __call__(self, estimator, X, y):
        return self._score(_Predictions(estimator, X), y)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class AttributeScorer(_Scorer):
    """A metric of one predicted attribute; made by :func:`make_attribute_scorer`."""

    def __init__(self, attribute, metric):
        self.attribute = attribute
        self.metric = metric

    def _score(self, pred, y):
        pred.check_attribute(self.attribute)
        _, targets = true_targets(pred.estimator, y, pred.attributes)
        name, func, greater = resolve_metric(self.metric)
        try:
            value = float(
                func(targets[self.attribute].to_numpy(), pred.labels[self.attribute].to_numpy())
            )
        except ValueError as exc:
            raise ValueError(
                f"Scoring {name} of {self.attribute!r} failed (do y's {self.attribute!r} "
                f"values have the form the estimator predicts?): {exc}"
            ) from exc
        return value if greater else -value


class AgeMAEScorer(_Scorer):
    """Negative mean absolute age error in years; made by :func:`make_age_mae_scorer`."""

    def _score(self, pred, y):
        raw = target_frame(y, pred.attributes)
        ages = exact_ages(column([raw], "age", "age").to_numpy())
        return -float(mean_absolute_error(ages, pred.ages))


class GroupScorer(_Scorer):
    """A metric per group, aggregated to one score; made by :func:`make_group_scorer`."""

    def __init__(self, metric, attribute, sensitive, aggregate, min_group_size, greater_is_better):
        self.metric = metric
        self.attribute = attribute
        self.sensitive = sensitive
        self.aggregate = aggregate
        self.min_group_size = min_group_size
        self.greater_is_better = greater_is_better

    def _score(self, pred, y):
        raw, targets = true_targets(pred.estimator, y, pred.attributes)
        names = (self.sensitive,) if isinstance(self.sensitive, str) else self.sensitive
        # Transformed targets first, so that grouping by age uses the age groups.
        sensitive = pd.DataFrame(
            {s: column([targets, raw], s, "sensitive").to_numpy() for s in names}
        )
        name, func, greater = resolve_metric(self.metric)
        if self.greater_is_better is not None:
            greater = self.greater_is_better
        if name in ("mae", "mean_absolute_error") or func is mean_absolute_error:
            y_true = exact_ages(column([raw], "age", "age").to_numpy())
            y_pred = pred.ages
        else:
            pred.check_attribute(self.attribute)
            y_true = targets[self.attribute].to_numpy()
            y_pred = pred.labels[self.attribute].to_numpy()
        gm = GroupMetrics(
            func, y_true, y_pred, sensitive_features=sensitive, min_group_size=self.min_group_size
        )
        sign = 1.0 if greater else -1.0
        if self.aggregate == "worst":
            return sign * float(gm.worst(greater))
        if self.aggregate == "difference":
            return -float(gm.difference())
        if self.aggregate == "ratio":
            return float(gm.ratio())
        return sign * float(gm.by_group[~gm.small.to_numpy()].mean())


class CombinedScorer:
    """Several scorers from one ``predict`` call; made by :func:`combine_scorers`."""

    def __init__(self, scorers):
        self.scorers = scorers

    def __call__(self, estimator, X, y):
        pred = _Predictions(estimator, X)
        return {
            name: (
                scorer._score(pred, y) if isinstance(scorer, _Scorer) else scorer(estimator, X, y)
            )
            for name, scorer in self.scorers.items()
        }

    def __repr__(self):
        return f"CombinedScorer({self.scorers!r})"


def _check_name(value, param):
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"The '{param}' parameter must be a column name (str)"
            + (" or a tuple of them" if param == "sensitive" else "")
            + f". Got {value!r} instead."
        )
    return value


def make_attribute_scorer(attribute, metric="accuracy"):
    """A scorer for one predicted attribute, e.g. the accuracy of the gender head.

    The estimator's predictions for ``attribute`` are compared with
    ``estimator.transform_targets(y)[attribute]`` (the targets as it predicts
    them: age groups for exact ages) where it has that method, else with
    ``y[attribute]``.

    Parameters
    ----------
    attribute : str
        One of the estimator's ``attributes_``, e.g. ``"gender"``.
    metric : str or callable, default="accuracy"
        ``"accuracy"``, ``"balanced_accuracy"`` or a module-level function
        ``metric(y_true, y_pred)`` (a lambda would not pickle); a loss such as
        ``"mae"`` is negated.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``, picklable.

    Examples
    --------
    >>> from gar_sklearn.metrics import make_attribute_scorer
    >>> make_attribute_scorer("gender")
    AttributeScorer(attribute='gender', metric='accuracy')
    """
    resolve_metric(metric)
    return AttributeScorer(_check_name(attribute, "attribute"), metric)


def make_age_mae_scorer():
    """A scorer giving minus the mean absolute age error in years.

    Compares ``estimator.predict_age(X)`` (the expected age over the age head)
    with y's numeric ``"age"`` column (or the age column of a 2-D array, in
    ``attributes_`` order). Negated as scikit-learn's ``neg_mean_absolute_error``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``, picklable.

    Examples
    --------
    >>> from gar_sklearn.metrics import make_age_mae_scorer
    >>> make_age_mae_scorer()
    AgeMAEScorer()
    """
    return AgeMAEScorer()


def make_group_scorer(
    metric="accuracy",
    *,
    attribute="age",
    sensitive="race",
    aggregate="worst",
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    greater_is_better=None,
):
    """A scorer aggregating a per-group metric, grouped by y's own columns.

    The groups come from y's ``sensitive`` column(s) (read from
    ``estimator.transform_targets(y)`` when it has them, so ``sensitive="age"``
    groups by age group, else from y itself): no extra data needs to be passed
    through GridSearchCV. Groups below ``min_group_size`` are left out.

    Parameters
    ----------
    metric : str or callable, default="accuracy"
        ``"accuracy"``, ``"balanced_accuracy"`` (of the predicted
        ``attribute``), ``"mae"`` (of ``predict_age`` against y's exact ages;
        ``attribute`` is then ignored), or a module-level function.
    attribute : str, default="age"
        The predicted attribute scored.
    sensitive : str or tuple of str, default="race"
        The column(s) of y defining the groups; a tuple gives intersectional
        groups, e.g. ``("race", "gender")``.
    aggregate : {"worst", "difference", "ratio", "mean"}, default="worst"
        ``"worst"``: the worst group's value (lowest accuracy, highest MAE).
        ``"difference"``: largest minus smallest group value, negated.
        ``"ratio"``: smallest over largest group value (1 is parity).
        ``"mean"``: the unweighted mean over groups.
        Losses are negated for ``"worst"`` and ``"mean"``, so that greater is
        always better.
    min_group_size : int, default=30
        Smaller groups are left out; the score is NaN when no group is left.
    greater_is_better : bool, default=None
        Direction of a callable ``metric``; None infers it (False for MAE).

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``, picklable.

    Examples
    --------
    >>> from gar_sklearn.metrics import make_group_scorer
    >>> make_group_scorer("accuracy", attribute="gender", sensitive=("race", "age"))
    GroupScorer(metric='accuracy', attribute='gender', sensitive=('race', 'age'), \
aggregate='worst', min_group_size=30, greater_is_better=None)
    """
    resolve_metric(metric)
    _check_name(attribute, "attribute")
    if isinstance(sensitive, (tuple, list)) and sensitive:
        sensitive = tuple(_check_name(s, "sensitive") for s in sensitive)
    else:
        _check_name(sensitive, "sensitive")
    if aggregate not in _AGGREGATES:
        raise ValueError(
            f"The 'aggregate' parameter must be one of {list(_AGGREGATES)}. "
            f"Got {aggregate!r} instead."
        )
    check_min_group_size(min_group_size)
    if greater_is_better is not None and not isinstance(greater_is_better, bool):
        raise ValueError(
            "The 'greater_is_better' parameter must be None or a bool. "
            f"Got {greater_is_better!r} instead."
        )
    return GroupScorer(metric, attribute, sensitive, aggregate, min_group_size, greater_is_better)


def combine_scorers(scorers):
    """One scorer returning a dict of scores from a single ``predict`` per call.

    A dict of scorers makes GridSearchCV call each one, and each calls
    ``predict`` (a network's forward pass over the validation images). The
    combined scorer shares one ``predict`` and one ``predict_age`` between the
    scorers of this module. Pass it as ``scoring=`` with ``refit=`` naming one
    of its keys.

    Parameters
    ----------
    scorers : dict of str to callable

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> dict``, picklable.

    Examples
    --------
    >>> from gar_sklearn.metrics import combine_scorers, make_age_mae_scorer
    >>> combine_scorers({"neg_age_mae": make_age_mae_scorer()})
    CombinedScorer({'neg_age_mae': AgeMAEScorer()})
    """
    if not isinstance(scorers, dict) or not scorers:
        raise ValueError(
            "The 'scorers' parameter must be a non-empty dict of name to scorer. "
            f"Got {scorers!r} instead."
        )
    return CombinedScorer(dict(scorers))


def default_scoring(
    attributes=("gender", "age", "race"),
    *,
    sensitive="race",
    age_mae=True,
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
    combined=False,
):
    """The usual scores for ``GridSearchCV(scoring=default_scoring(), refit=...)``.

    Parameters
    ----------
    attributes : tuple of str, default=("gender", "age", "race")
        The estimator's attributes: one ``"<attribute>_accuracy"`` each.
    sensitive : str, default="race"
        Adds ``"worst_<sensitive>_<attribute>_accuracy"`` (the accuracy of the
        worst-off group) for each other attribute. None adds none.
    age_mae : bool, default=True
        Adds ``"neg_age_mae"`` when ``"age"`` is an attribute (needs exact ages in y).
    min_group_size : int, default=30
        For the worst-group scorers.
    combined : bool, default=False
        Return one :func:`combine_scorers` callable (one ``predict`` per
        evaluation) instead of the dict.

    Returns
    -------
    dict of str to callable, or callable

    Examples
    --------
    >>> from gar_sklearn.metrics import default_scoring
    >>> sorted(default_scoring())
    ['age_accuracy', 'gender_accuracy', 'neg_age_mae', 'race_accuracy', \
'worst_race_age_accuracy', 'worst_race_gender_accuracy']
    """
    scoring = {f"{a}_accuracy": make_attribute_scorer(a) for a in attributes}
    if age_mae and "age" in attributes:
        scoring["neg_age_mae"] = make_age_mae_scorer()
    if sensitive is not None:
        for a in attributes:
            if a != sensitive:
                scoring[f"worst_{sensitive}_{a}_accuracy"] = make_group_scorer(
                    "accuracy",
                    attribute=a,
                    sensitive=sensitive,
                    aggregate="worst",
                    min_group_size=min_group_size,
                )
    return combine_scorers(scoring) if combined else scoring
