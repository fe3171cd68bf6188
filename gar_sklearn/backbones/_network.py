"""The multi-head network: normalisation, a (partly frozen) backbone and one head per attribute."""

import numbers

import torch
from torch import nn

from .._config import get_config

__all__ = ["Dropout", "MultiHeadNetwork", "Normalize", "resolve_freeze"]


class Normalize(nn.Module):
    """uint8 (or float in 0-255) images (N, 3, H, W) to normalised float tensors."""

    def __init__(self, mean, std, channels_last=False):
        super().__init__()
        self.register_buffer("scale", 1.0 / (255.0 * torch.tensor(std).view(1, 3, 1, 1)))
        self.register_buffer(
            "shift", torch.tensor(mean).view(1, 3, 1, 1) / torch.tensor(std).view(1, 3, 1, 1)
        )
        self.channels_last = channels_last

    def forward(self, x):
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        if x.dtype != torch.uint8 and x.dtype != self.scale.dtype:
            x = x.to(self.scale.dtype)
        # one pass from uint8 to the normalised floats (half the time of a float copy
        # scaled in place), laid out as the network reads them
        out = torch.addcmul(-self.shift, x, self.scale)
        return (
            out if out.is_contiguous(memory_format=layout) else out.contiguous(memory_format=layout)
        )


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask can be drawn from a generator of its own.

    The draws come from ``generator`` when it is set (the estimators give
    each fit its own, on the input's device), else from torch's default
    generator, which ``torch.manual_seed`` reproduces. An element is zeroed
    with probability ``p`` and the others are scaled by ``1 / (1 - p)``, so
    the expectation is unchanged.

    With the ``fast_dropout`` switch of :func:`gar_sklearn.set_config` on (the
    default), a CPU mask is built from 16-bit slices of 64-bit draws instead
    of one draw per element: ``p`` is then rounded to a multiple of 1/65536
    (within 1e-5) and the kept elements are scaled by the exact inverse of
    their keep probability (``docs/speed.md`` has the measured gain).

    Examples
    --------
    >>> import torch
    >>> drop = Dropout(0.5)
    >>> x = torch.ones(2, 8)
    >>> bool(torch.equal(drop.eval()(x), x))
    True
    >>> sorted(drop.train()(x).unique().tolist()) in ([0.0, 2.0], [0.0], [2.0])
    True
    """

    _LEVELS = 1 << 16
    generator = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        dropped = round(self.p * self._LEVELS)
        fast = x.device.type == "cpu" and not self.inplace and 0 < dropped < self._LEVELS
        if fast and get_config()["fast_dropout"]:
            return self._sliced_mask(x, dropped)
        if self.generator is None or self.p >= 1:
            return nn.functional.dropout(x, self.p, self.training, self.inplace)
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        keep.div_(1 - self.p)
        return x.mul_(keep) if self.inplace else x * keep

    def _sliced_mask(self, x, dropped):
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64)
        bits.random_(-(1 << 63), None, generator=self.generator)
        draws = bits.view(torch.int16)[:n].view(x.shape).float()  # uniform on -32768..32767
        # keep where draw >= dropped - 32768: sign() of the shifted draw (never 0) is then +1
        keep = draws.sub_(dropped - 32768 - 0.5).sign_().add_(1.0)
        keep.mul_(0.5 * self._LEVELS / (self._LEVELS - dropped))
        return x * keep.to(x.dtype)


def resolve_freeze(freeze, stage_names):
    """How many leading stages the ``freeze`` parameter freezes.

    ``None`` or 0: none; ``"backbone"``: all, pooling included; an int ``k``:
    the first ``k``; a stage name: up to and including it.
    """
    n = len(stage_names)
    if freeze is None:
        return 0
    if isinstance(freeze, str) and freeze == "backbone":
        return n
    if isinstance(freeze, str):
        if freeze not in stage_names:
            raise ValueError(
                "The 'freeze' parameter must be None, 'backbone', a number of stages or one of "
                f"the backbone's stages {stage_names}. Got {freeze!r} instead."
            )
        return stage_names.index(freeze) + 1
    if isinstance(freeze, numbers.Integral) and not isinstance(freeze, bool) and 0 <= freeze <= n:
        return int(freeze)
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

    def __init__(
        self, backbone, n_classes, n_frozen=0, hidden_units=None, dropout=0.0, channels_last=False
    ):
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
            layers += [Dropout(dropout), nn.Linear(n_in, hidden_units), nn.ReLU(inplace=True)]
            n_in = hidden_units
        layers += [Dropout(dropout), nn.Linear(n_in, n_out)]
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
