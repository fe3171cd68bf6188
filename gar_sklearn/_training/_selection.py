"""Scoring each epoch on groups of the validation set, to select the epoch that is kept.

:class:`GroupScore` reads the validation predictions skorch already computes
for the validation loss (as :class:`~gar_sklearn._training.HeadAccuracy`
does) and the group of each validation sample, which the batches carry
(:class:`~gar_sklearn._training._weighting.SampleDataset`), and records a
score per epoch in the history. Early stopping can then watch it instead of
the validation loss.
"""

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import Callback

__all__ = ["SELECTIONS", "GroupScore", "selection_key", "worst_group_accuracy"]

SELECTIONS = ("loss", "worst_group_accuracy")


def worst_group_accuracy(y_true, y_pred, groups):
    """The lowest accuracy of a group, a group's accuracy being the mean of its
    accuracies on each attribute.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes)
        Encoded labels.
    groups : ndarray of int of shape (n_samples,)

    Examples
    --------
    >>> y_true = np.array([[0, 1], [1, 1], [0, 0], [1, 0]])
    >>> y_pred = np.array([[0, 1], [0, 1], [0, 0], [1, 0]])
    >>> worst_group_accuracy(y_true, y_pred, np.array([0, 0, 1, 1]))
    0.75
    """
    correct = (np.asarray(y_true) == np.asarray(y_pred)).mean(axis=1)
    groups = np.asarray(groups)
    totals = np.bincount(groups, weights=correct)
    counts = np.bincount(groups)
    present = counts > 0
    return float(np.min(totals[present] / counts[present]))


def selection_key(selection):
    """The history key the ``selection`` parameter watches (higher is better), None for "loss"."""
    if selection == "loss":
        return None
    return "valid_worst_group_acc" if selection == "worst_group_accuracy" else "valid_selection"


class GroupScore(Callback):
    """Record a score of each epoch's validation predictions, and whether it is the best yet.

    Parameters
    ----------
    key : str
        The history key: the score goes to ``key``, and ``key + "_best"`` is
        True on an epoch whose score beats every earlier one.
    score : "worst_group_accuracy" or callable
        ``"worst_group_accuracy"``: :func:`worst_group_accuracy`. A callable
        is called as ``score(y_true, y_pred, sensitive_features)`` with the
        validation labels and predictions as DataFrames (one column per
        attribute, the estimator's class labels) and the groups' values as a
        DataFrame (one column per ``group_by`` column; None without groups),
        and returns a float, higher being better.
    attributes : tuple of str
    classes : list of ndarray
        Each attribute's class labels, to decode predictions for a callable.
    table : DataFrame or None
        The values of each group (row ``g`` for group code ``g``).
    """

    def __init__(self, key, score, attributes, classes, table=None):
        self.key = key
        self.score = score
        self.attributes = attributes
        self.classes = classes
        self.table = table

    def initialize(self):
        self.best_score_ = -np.inf
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = []

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        X, y = batch[0], batch[1]
        group = X.get("group") if isinstance(X, dict) else None
        pred = torch.stack([logits.argmax(1) for logits in y_pred], dim=1).cpu()
        self.batches_.append((torch.as_tensor(y).cpu(), pred, group))

    def _value(self, y_true, y_pred, group):
        if self.score == "worst_group_accuracy":
            return worst_group_accuracy(y_true, y_pred, group)
        frames = [
            pd.DataFrame({a: self.classes[k][codes[:, k]] for k, a in enumerate(self.attributes)})
            for codes in (y_true, y_pred)
        ]
        groups = None
        if group is not None and self.table is not None:
            groups = self.table.iloc[group].reset_index(drop=True)
        return float(self.score(frames[0], frames[1], groups))

    def on_epoch_end(self, net, **kwargs):
        if not self.batches_:
            return
        y_true = torch.cat([b[0] for b in self.batches_]).numpy()
        y_pred = torch.cat([b[1] for b in self.batches_]).numpy()
        has_groups = all(b[2] is not None for b in self.batches_)
        group = torch.cat([b[2] for b in self.batches_]).numpy() if has_groups else None
        self.batches_ = []
        value = self._value(y_true, y_pred, group)
        is_best = bool(value > self.best_score_)
        if is_best:
            self.best_score_ = value
        net.history.record(self.key, value)
        net.history.record(f"{self.key}_best", is_best)
