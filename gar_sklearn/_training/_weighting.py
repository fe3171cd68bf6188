"""Sample weights and group labels through torch: batches that carry them, the weighted loss,
the balanced sampler.

A batch's inputs are a dict (``{"images": ...}`` or ``{"features": ...}``);
:class:`SampleDataset` adds ``"sample_weight"`` and ``"group"`` to it, the
way skorch's FAQ passes sample weights, and the net strips them
(:func:`module_inputs`) before the module sees the batch.
"""

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, WeightedRandomSampler

from .._data import CollatedBatch

__all__ = [
    "EXTRA_KEYS",
    "SampleDataset",
    "balanced_sampler",
    "batch_sample_weight",
    "module_inputs",
    "weighted_head_loss",
]

EXTRA_KEYS = ("sample_weight", "group")


def module_inputs(x):
    """The batch inputs ``x`` without the keys only the loss and callbacks read."""
    if isinstance(x, Mapping) and any(k in x for k in EXTRA_KEYS):
        return {k: v for k, v in x.items() if k not in EXTRA_KEYS}
    return x


def batch_sample_weight(X, device):
    """The batch's sample weights on ``device``, or None when it carries none."""
    if not isinstance(X, Mapping) or "sample_weight" not in X:
        return None
    return torch.as_tensor(X["sample_weight"]).to(device, torch.float32)


def weighted_head_loss(criterion, logits, target, sample_weight, soft=None):
    """One head's loss as the weighted mean ``sum(w_i * l_i) / n`` over the batch.

    The weights come scaled to a mean of 1 over the whole training (or
    validation) set, so that the batches' losses average, as skorch averages
    them (by batch size), to the weighted mean loss of the set:
    ``sum(w_i * l_i) / sum(w_i)``. ``soft``: the head's label distributions
    ``(n_classes, n_classes)``, else ``criterion`` (a ``CrossEntropyLoss``)
    with its label smoothing. Samples whose target is the criterion's
    ``ignore_index`` count for nothing.
    """
    logits = logits.float()
    if soft is not None:
        counted = target != criterion.ignore_index  # a missing label counts for nothing
        dist = soft.to(logits.device)[target.clamp(min=0)]
        per_sample = -(dist * torch.log_softmax(logits, dim=1)).sum(dim=1)
    else:
        per_sample = F.cross_entropy(
            logits,
            target,
            weight=criterion.weight,
            ignore_index=criterion.ignore_index,
            label_smoothing=criterion.label_smoothing,
            reduction="none",
        )
        counted = target != criterion.ignore_index
    n = counted.sum().clamp_min(1)
    return (sample_weight * per_sample * counted).sum() / n


class SampleDataset(Dataset):
    """A dataset whose batches also carry each sample's loss weight and group.

    Parameters
    ----------
    dataset : ImageDataset or FeatureDataset
        Batches ``(inputs dict, labels)`` come from its ``__getitems__``.
    sample_weight : array of float or None
        Added to the inputs as ``"sample_weight"``.
    group : array of int or None
        Added to the inputs as ``"group"``.
    """

    def __init__(self, dataset, sample_weight=None, group=None):
        self.dataset = dataset
        self.sample_weight = (
            None if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
        )
        self.group = None if group is None else torch.as_tensor(group, dtype=torch.long)

    def __len__(self):
        return len(self.dataset)

    def set_epoch(self, epoch):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitems__(self, indices):
        x, y = self.dataset.__getitems__(indices)
        x = dict(x)
        rows = torch.as_tensor(indices, dtype=torch.long)
        if self.sample_weight is not None:
            x["sample_weight"] = self.sample_weight[rows]
        if self.group is not None:
            x["group"] = self.group[rows]
        return CollatedBatch((x, y))

    def __getitem__(self, index):
        x, y = self.__getitems__([index])
        return {k: v[0] for k, v in x.items()}, y[0]


def balanced_sampler(chance, generator):
    """A sampler drawing ``len(chance)`` samples with replacement, sample ``i`` with
    probability proportional to ``chance[i]``, from ``generator`` (the training
    loader's, which the net re-seeds from ``(seed, epoch)`` every epoch)."""
    chance = np.asarray(chance, dtype=np.float64)
    return WeightedRandomSampler(
        torch.as_tensor(chance, dtype=torch.double),
        num_samples=len(chance),
        replacement=True,
        generator=generator,
    )
