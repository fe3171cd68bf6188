"""The multi-head network: normalisation, a (partly frozen) backbone and one head per attribute."""

import torch
from torch import nn

__all__ = ["Normalize", "MultiHeadNetwork", "resolve_freeze"]


class Normalize(nn.Module):
    """uint8 (or float in 0-255) images (N, 3, H, W) to normalised float tensors."""

    def __init__(self, mean, std, channels_last=False):
        super().__init__()
        self.register_buffer("scale", 1.0 / (255.0 * torch.tensor(std).view(1, 3, 1, 1)))
        self.register_buffer("shift", torch.tensor(mean).view(1, 3, 1, 1) / torch.tensor(std).view(1, 3, 1, 1))
        self.channels_last = channels_last

    def forward(self, x):
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        # one float copy, scaled in place: no temporaries the size of the batch
        x = x.to(dtype=self.scale.dtype, memory_format=layout, copy=True)
        return x.mul_(self.scale).sub_(self.shift)


def resolve_freeze(freeze, stage_names):
    """How many leading stages the ``freeze`` parameter freezes.

    ``None``/``False``/0: none; ``"backbone"``/``True``: all, pooling included;
    an int ``k``: the first ``k``; a stage name: up to and including it.
    """
    n = len(stage_names)
    if freeze is None or freeze is False:
        return 0
    if freeze is True or freeze == "backbone":
        return n
    if isinstance(freeze, str):
        if freeze not in stage_names:
            raise ValueError(
                "The 'freeze' parameter must be None, 'backbone', a number of stages or one of "
                f"the backbone's stages {stage_names}. Got {freeze!r} instead."
            )
        return stage_names.index(freeze) + 1
    if isinstance(freeze, int) and 0 <= freeze <= n:
        return freeze
    raise ValueError(
        f"The 'freeze' parameter must be None, 'backbone', an int in [0, {n}] or one of the "
        f"backbone's stages {stage_names}. Got {freeze!r} instead."
    )


class MultiHeadNetwork(nn.Module):
    """Backbone split into a ``stem`` (the frozen-able prefix) and a ``body``, then one head per attribute.

    ``forward(images=...)`` runs everything; ``forward(features=...)`` starts
    from stem outputs (cached activations) and runs body and heads only.
    Returns a tuple of logits, one tensor per attribute.
    """

    def __init__(self, backbone, n_classes, n_frozen=0, hidden_units=None, dropout=0.0,
                 channels_last=False):
        super().__init__()
        stages = backbone.stages
        self.normalize = Normalize(backbone.mean, backbone.std, channels_last=channels_last)
        self.stem = nn.Sequential(*[m for _, m in stages[:n_frozen]])
        self.body = nn.Sequential(*[m for _, m in stages[n_frozen:]])
        self.n_features = backbone.n_features
        self.heads = nn.ModuleList(
            [self._head(backbone.n_features, c, hidden_units, dropout) for c in n_classes]
        )
        self.stem_frozen = False
        self.set_stem_frozen(n_frozen > 0)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    @staticmethod
    def _head(n_in, n_out, hidden_units, dropout):
        layers = []
        if hidden_units:
            layers += [nn.Dropout(dropout), nn.Linear(n_in, hidden_units), nn.ReLU(inplace=True)]
            n_in = hidden_units
        layers += [nn.Dropout(dropout), nn.Linear(n_in, n_out)]
        return nn.Sequential(*layers)

    def set_stem_frozen(self, frozen):
        """Freeze (no gradients, BatchNorm statistics fixed) or release the stem."""
        self.stem_frozen = bool(frozen)
        for p in self.stem.parameters():
            p.requires_grad_(not frozen)
        self.train(self.training)

    def set_body_frozen(self, frozen):
        for p in self.body.parameters():
            p.requires_grad_(not frozen)

    def train(self, mode=True):
        super().train(mode)
        if self.stem_frozen:
            self.stem.eval()
        return self

    def encode(self, images):
        """Stem activations of a uint8 image batch (what the feature cache stores)."""
        x = self.normalize(images)
        if self.stem_frozen:
            with torch.no_grad():
                return self.stem(x)
        return self.stem(x)

    def forward(self, images=None, features=None):
        if features is None:
            if images is None:
                raise TypeError("MultiHeadNetwork.forward needs images or features.")
            features = self.encode(images)
        elif self.normalize.channels_last and features.dim() == 4:
            features = features.contiguous(memory_format=torch.channels_last)
        z = self.body(features)
        return tuple(head(z) for head in self.heads)
