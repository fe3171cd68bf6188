"""Scorers for GridSearchCV: per-attribute accuracy, age MAE, per-group aggregates, parity.

Every scorer is an instance of a module-level class, so it pickles (GridSearchCV
with ``n_jobs > 1`` sends scorers to worker processes), and is called as
``scorer(estimator, X, y, sample_weight=None)``; the estimator may be a Pipeline
ending in an estimator of this library. Scores follow scikit-learn's convention
that greater is better: losses (MAE) and differences between groups are negated.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error
from sklearn.utils.metadata_routing import MetadataRequest

from ._fitted import (
    column,
    exact_ages,
    fitted_view,
    predicted_ages,
    predicted_frame,
    target_frame,
    true_targets,
)
from ._group_metrics import GroupMetrics, resolve_metric
from ._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from ._validation import (
    DEFAULT_MIN_GROUP_SIZE,
    check_method,
    check_min_group_size,
    check_sample_weight,
)

__all__ = [
    "combine_scorers",
    "default_scoring",
    "make_age_mae_scorer",
    "make_attribute_scorer",
    "make_group_scorer",
    "make_parity_scorer",
]

_AGGREGATES = ("worst", "difference", "ratio", "mean")
_PARITY = {
    ("demographic_parity", "difference"): demographic_parity_difference,
    ("demographic_parity", "ratio"): demographic_parity_ratio,
    ("equalized_odds", "difference"): equalized_odds_difference,
    ("equalized_odds", "ratio"): equalized_odds_ratio,
}


class _Predictions:
    """One estimator's predictions on one X, computed on first use and then shared."""

    def __init__(self, estimator, X):
        self.estimator = fitted_view(estimator)
        self.X = X
        self.attributes = self.estimator.attributes
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
                f"{type(self.estimator.final).__name__}; its attributes_ are "
                f"{list(self.attributes)}."
            )


class _Routed:
    """Accepts ``sample_weight`` as scikit-learn's scorers do, with or without routing.

    Without metadata routing, GridSearchCV passes the test fold's
    ``sample_weight`` (given to its ``fit``) to scorers that accept it; with
    routing enabled, ``set_score_request(sample_weight=True)`` asks for it.
    """

    def _accept_sample_weight(self):
        return True  # read by scikit-learn's multimetric scoring without routing

    def set_score_request(self, **kwargs):
        """Request metadata (``sample_weight=True``) for ``score`` under metadata routing."""
        request = MetadataRequest(owner=self)
        for param, alias in kwargs.items():
            request.score.add_request(param=param, alias=alias)
        self._metadata_request = request
        return self

    def get_metadata_routing(self):
        """The metadata requested for ``score`` (none unless :meth:`set_score_request` set it)."""
        return getattr(self, "_metadata_request", MetadataRequest(owner=self))


class _Scorer(_Routed):
    def __call__(self, estimator, X, y, sample_weight=None):
        pred = _Predictions(estimator, X)
        return self._score(pred, y, check_sample_weight(sample_weight, _n_samples(y)))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _n_samples(y):
    return len(y) if hasattr(y, "__len__") else np.asarray(y).shape[0]


class AttributeScorer(_Scorer):
    """A metric of one predicted attribute; made by :func:`make_attribute_scorer`."""

    def __init__(self, attribute, metric):
        self.attribute = attribute
        self.metric = metric

    def _score(self, pred, y, weight):
        pred.check_attribute(self.attribute)
        _, targets = true_targets(pred.estimator, y, pred.attributes)
        name, func, greater = resolve_metric(self.metric)
        kwargs = {} if weight is None else {"sample_weight": weight}
        try:
            value = float(
                func(
                    targets[self.attribute].to_numpy(),
                    pred.labels[self.attribute].to_numpy(),
                    **kwargs,
                )
            )
        except ValueError as exc:
            raise ValueError(
                f"Scoring {name} of {self.attribute!r} failed (do y's {self.attribute!r} "
                f"values have the form the estimator predicts?): {exc}"
            ) from exc
        return value if greater else -value


class AgeMAEScorer(_Scorer):
    """Negative mean absolute age error in years; made by :func:`make_age_mae_scorer`."""

    def _score(self, pred, y, weight):
        raw = target_frame(y, pred.attributes)
        ages = exact_ages(column([raw], "age", "age").to_numpy())
        return -float(mean_absolute_error(ages, pred.ages, sample_weight=weight))


class GroupScorer(_Scorer):
    """A metric per group, aggregated to one score; made by :func:`make_group_scorer`."""

    def __init__(self, metric, attribute, sensitive, aggregate, min_group_size, greater_is_better):
        self.metric = metric
        self.attribute = attribute
        self.sensitive = sensitive
        self.aggregate = aggregate
        self.min_group_size = min_group_size
        self.greater_is_better = greater_is_better

    def _score(self, pred, y, weight):
        raw, targets = true_targets(pred.estimator, y, pred.attributes)
        sensitive = _sensitive(self.sensitive, targets, raw)
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
            func,
            y_true,
            y_pred,
            sensitive_features=sensitive,
            min_group_size=self.min_group_size,
            sample_weight=weight,
        )
        sign = 1.0 if greater else -1.0
        if self.aggregate == "worst":
            return sign * float(gm.worst(greater))
        if self.aggregate == "difference":
            return -float(gm.difference())
        if self.aggregate == "ratio":
            return float(gm.ratio())
        return sign * float(gm.by_group[~gm.small.to_numpy()].mean())


def _sensitive(sensitive, targets, raw):
    """The group columns, transformed targets first (so that "age" means the age groups)."""
    names = (sensitive,) if isinstance(sensitive, str) else sensitive
    return pd.DataFrame({s: column([targets, raw], s, "sensitive").to_numpy() for s in names})


class ParityScorer(_Scorer):
    """A multiclass parity difference (negated) or ratio; made by :func:`make_parity_scorer`."""

    def __init__(self, metric, attribute, sensitive, aggregate, method, min_group_size):
        self.metric = metric
        self.attribute = attribute
        self.sensitive = sensitive
        self.aggregate = aggregate
        self.method = method
        self.min_group_size = min_group_size

    def _score(self, pred, y, weight):
        pred.check_attribute(self.attribute)
        raw, targets = true_targets(pred.estimator, y, pred.attributes)
        func = _PARITY[(self.metric, self.aggregate)]
        kwargs = {"zero_division": np.nan} if self.metric == "equalized_odds" else {}
        value = func(
            targets[self.attribute].to_numpy(),
            pred.labels[self.attribute].to_numpy(),
            sensitive_features=_sensitive(self.sensitive, targets, raw),
            method=self.method,
            sample_weight=weight,
            min_group_size=self.min_group_size,
            **kwargs,
        )
        return -float(value) if self.aggregate == "difference" else float(value)


class CombinedScorer(_Routed):
    """Several scorers from one ``predict`` call; made by :func:`combine_scorers`."""

    def __init__(self, scorers):
        self.scorers = scorers

    def __call__(self, estimator, X, y, sample_weight=None):
        pred = _Predictions(estimator, X)
        weight = check_sample_weight(sample_weight, _n_samples(y))
        kwargs = {} if weight is None else {"sample_weight": weight}
        return {
            name: (
                scorer._score(pred, y, weight)
                if isinstance(scorer, _Scorer)
                else scorer(estimator, X, y, **kwargs)
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
        ``scorer(estimator, X, y, sample_weight=None) -> float``, picklable;
        ``estimator`` may be a Pipeline ending in an estimator of this library.

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
        ``scorer(estimator, X, y, sample_weight=None) -> float``, picklable;
        ``estimator`` may be a Pipeline ending in an estimator of this library.

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
        Smaller groups are left out. ``"worst"``, ``"difference"`` and
        ``"ratio"`` compare groups: they are NaN when fewer than two are left
        (``"mean"`` when none is).
    greater_is_better : bool, default=None
        Direction of a callable ``metric``; None infers it (False for MAE).

    Returns
    -------
    callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``, picklable;
        ``estimator`` may be a Pipeline ending in an estimator of this library.

    Examples
    --------
    >>> from gar_sklearn.metrics import make_group_scorer
    >>> make_group_scorer("accuracy", attribute="gender", sensitive=("race", "age"))
    GroupScorer(metric='accuracy', attribute='gender', sensitive=('race', 'age'), \
aggregate='worst', min_group_size=30, greater_is_better=None)
    """
    resolve_metric(metric)
    _check_name(attribute, "attribute")
    sensitive = _check_sensitive(sensitive)
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


def _check_sensitive(sensitive):
    if isinstance(sensitive, (tuple, list)) and sensitive:
        return tuple(_check_name(s, "sensitive") for s in sensitive)
    return _check_name(sensitive, "sensitive")


def make_parity_scorer(
    metric="demographic_parity",
    *,
    attribute="gender",
    sensitive="race",
    aggregate="difference",
    method="between_groups",
    min_group_size=DEFAULT_MIN_GROUP_SIZE,
):
    """A scorer giving the multiclass parity of one predicted attribute across y's groups.

    The worst class's :func:`demographic_parity_difference` (or ratio) or
    :func:`equalized_odds_difference` (or ratio) of the predicted
    ``attribute``, grouped by y's ``sensitive`` column(s) as
    :func:`make_group_scorer` groups them. Undefined rates (a class absent
    from a group) are left out (``zero_division=np.nan``). Differences are
    negated, so that greater is better: 0 is parity, as is a ratio of 1.

    Parameters
    ----------
    metric : {"demographic_parity", "equalized_odds"}, default="demographic_parity"
    attribute : str, default="gender"
        The predicted attribute.
    sensitive : str or tuple of str, default="race"
        The column(s) of y defining the groups.
    aggregate : {"difference", "ratio"}, default="difference"
    method : {"between_groups", "to_overall"}, default="between_groups"
    min_group_size : int, default=30
        Smaller groups are left out; the score is NaN when fewer than two
        groups are left.

    Returns
    -------
    callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``, picklable.

    Examples
    --------
    >>> from gar_sklearn.metrics import make_parity_scorer
    >>> make_parity_scorer("equalized_odds", aggregate="ratio")
    ParityScorer(metric='equalized_odds', attribute='gender', sensitive='race', \
aggregate='ratio', method='between_groups', min_group_size=30)
    """
    metrics = sorted({m for m, _ in _PARITY})
    if metric not in metrics:
        raise ValueError(
            f"The 'metric' parameter must be one of {metrics}. Got {metric!r} instead."
        )
    if aggregate not in ("difference", "ratio"):
        raise ValueError(
            "The 'aggregate' parameter must be one of ['difference', 'ratio']. "
            f"Got {aggregate!r} instead."
        )
    check_method(method)
    check_min_group_size(min_group_size)
    return ParityScorer(
        metric,
        _check_name(attribute, "attribute"),
        _check_sensitive(sensitive),
        aggregate,
        method,
        min_group_size,
    )


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
        ``scorer(estimator, X, y, sample_weight=None) -> dict``, picklable.

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
