"""GenderFusionClassifier's finetune strategy: specialists that start from a network
trained on every face (the shared strategy's) and are fine-tuned on their gender's faces.
"""

import functools

import torch

from ._fusion_shared import head_name
from ._multi_attribute import MultiAttributeClassifier, _dump, _restore
from ._persistence import register_persistence

__all__ = ["FINETUNE_PATIENCE", "WarmStartedClassifier", "finetune_part", "load_warm_start"]

# fine-tuning stops early on its gender's validation loss, with this patience when
# the specialist has none
FINETUNE_PATIENCE = 2


class WarmStartedClassifier(MultiAttributeClassifier):
    """A :class:`MultiAttributeClassifier` whose fit starts from a fitted network's weights.

    Before ``fit``, ``_warm_start`` holds ``(module, heads)``: the fitted
    network's module and, for each attribute of this classifier, the index of
    the module's head to start from and that head's class labels. The
    backbone starts from the module's; each head from its source head, class
    by class (a class the source head lacks keeps its random start). The fit
    drops ``_warm_start``; a clone keeps it.
    """

    def __sklearn_clone__(self):
        twin = super().__sklearn_clone__()
        if hasattr(self, "_warm_start"):
            twin._warm_start = self._warm_start
        return twin

    def _fit_network(self, data):
        self._start_classes = data.classes
        try:
            return super()._fit_network(data)
        finally:
            for name in ("_start_classes", "_warm_start"):
                vars(self).pop(name, None)

    def _build_module(self, n_classes, device):
        module, backbone, n_frozen = super()._build_module(n_classes, device)
        start = getattr(self, "_warm_start", None)
        if start is not None:
            source, heads = start
            load_warm_start(module, source, heads, self._start_classes)
        return module, backbone, n_frozen


register_persistence(
    WarmStartedClassifier, _dump, functools.partial(_restore, cls=WarmStartedClassifier)
)


def load_warm_start(module, source, heads, classes):
    """Copy ``source``'s backbone into ``module``, and into each head ``j`` the head
    ``heads[j][0]`` of ``source``, its last layer row by row where the class labels
    (``classes[j]`` and ``heads[j][1]``) agree."""
    state = module.state_dict()
    theirs = {k: v.detach().cpu() for k, v in source.state_dict().items()}
    for key in state:
        if not key.startswith("heads."):
            state[key] = theirs[key].clone()
    for j, (k, their_classes) in enumerate(heads):
        last = len(module.heads[j]) - 1
        rows = {c: i for i, c in enumerate(list(their_classes))}
        pairs = [(i, rows[c]) for i, c in enumerate(classes[j].tolist()) if c in rows]
        mine = torch.as_tensor([i for i, _ in pairs], dtype=torch.long)
        theirs_rows = torch.as_tensor([r for _, r in pairs], dtype=torch.long)
        for key in [k_ for k_ in state if k_.startswith(f"heads.{j}.")]:
            their_key = f"heads.{k}." + key[len(f"heads.{j}.") :]
            if key.startswith(f"heads.{j}.{last}."):
                state[key] = state[key].clone()
                state[key][mine] = theirs[their_key][theirs_rows].to(state[key].dtype)
            else:
                state[key] = theirs[their_key].clone()
    module.load_state_dict(state)


def finetune_part(specialist, network, gender, attributes, lr_factor):
    """The unfitted specialist of ``gender``: ``specialist``'s settings with the learning
    rates times ``lr_factor`` and early stopping, starting from ``network`` (a fitted
    :class:`~gar_sklearn._fusion_shared.GenderHeadsNetwork`) and its heads of ``gender``.
    ``specialist`` is a fresh clone: its parameters are used as they are."""
    params = specialist.get_params(deep=False)
    params = {k: v for k, v in params.items() if k in WarmStartedClassifier._get_param_names()}
    params["lr"] = params["lr"] * lr_factor
    if params.get("backbone_lr") is not None:
        params["backbone_lr"] = params["backbone_lr"] * lr_factor
    if params.get("patience") is None:
        params["patience"] = FINETUNE_PATIENCE
    part = WarmStartedClassifier(**params)
    heads = list(network.attributes_)
    sources = []
    for a in attributes:
        k = heads.index(head_name(a, gender))
        sources.append((k, network.classes_[k].tolist()))
    part._warm_start = (network.net_.module_, sources)
    return part
