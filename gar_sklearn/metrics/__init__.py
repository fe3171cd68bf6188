"""Fairness and per-group metrics, reports and scorers: numpy, pandas and scikit-learn only.

Every function takes ``(y_true, y_pred, *, sensitive_features, ...)`` in the style
of fairlearn and works on any predictions; the scorers read a fitted estimator's
predictions and y's own race/gender columns for ``GridSearchCV``.
"""

from ._bootstrap import bootstrap_by_group
from ._calibration import expected_calibration_error
from ._group_metrics import (
    GroupMetrics,
    accuracy_by_group,
    group_difference,
    group_ratio,
    group_sizes,
    mae_by_group,
    metric_by_group,
    worst_group_value,
)
from ._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from ._reports import GroupReport, group_report
from ._scorers import (
    combine_scorers,
    default_scoring,
    make_age_mae_scorer,
    make_attribute_scorer,
    make_group_scorer,
    make_parity_scorer,
)
from ._tables import classification_report_by_group, summary_by_group
from ._validation import SmallGroupWarning, TooFewGroupsWarning

__all__ = [
    "GroupMetrics",
    "GroupReport",
    "SmallGroupWarning",
    "TooFewGroupsWarning",
    "accuracy_by_group",
    "bootstrap_by_group",
    "classification_report_by_group",
    "combine_scorers",
    "default_scoring",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "expected_calibration_error",
    "group_difference",
    "group_ratio",
    "group_report",
    "group_sizes",
    "mae_by_group",
    "make_age_mae_scorer",
    "make_attribute_scorer",
    "make_group_scorer",
    "make_parity_scorer",
    "metric_by_group",
    "summary_by_group",
    "worst_group_value",
]
