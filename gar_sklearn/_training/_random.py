"""Each fit's own random numbers: concurrent fits in threads draw nothing from each other.

A network's random initial weights come from torch's global generator (its
modules' constructors draw from it): they are made under one lock, with the
generator seeded for the fit and restored after, so that two fits never
interleave their draws. During training, every layer that draws random
numbers (dropout, stochastic depth) draws from a ``torch.Generator`` of the
fit, and the loader shuffles with its own: training never uses the global
generator.
"""

import contextlib
import threading

import torch
from torch import nn
from torchvision.ops import StochasticDepth as _TorchvisionStochasticDepth

from ..backbones import Dropout

__all__ = [
    "StochasticDepth",
    "fit_generator",
    "module_generator",
    "release_generator",
    "seeded_initialisation",
    "use_generator",
]

_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def seeded_initialisation(seed, device="cpu"):
    """Build networks inside: torch's global generators seeded with ``seed``, restored on
    leaving, and one thread inside at a time (``seed`` None: unseeded, still restored)."""
    devices = [] if str(device) == "cpu" else [torch.device(device)]
    with _INIT_LOCK, torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(int(seed))
        yield


def fit_generator(seed, device="cpu"):
    """A generator on ``device`` for the random layers of one fit, seeded with ``seed``."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


class StochasticDepth(_TorchvisionStochasticDepth):
    """torchvision's ``StochasticDepth`` drawing from ``generator`` when set.

    The same computation as :func:`torchvision.ops.stochastic_depth`: in
    training, each row (``mode="row"``) or the whole batch is dropped with
    probability ``p`` and the rest scaled by ``1 / (1 - p)``.
    """

    generator = None  # a torch.Generator on the input's device; None: torch's default

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device)
        noise.bernoulli_(survival, generator=self.generator)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


def _own_random_layer(module):
    """``module`` as a layer that takes a generator (a copy of the same kind), or None."""
    if type(module) is nn.Dropout:
        return Dropout(module.p, inplace=module.inplace)
    if type(module) is _TorchvisionStochasticDepth:
        return StochasticDepth(module.p, module.mode)
    kind = type(module)
    if kind.__name__ == "DropPath" and kind.__module__.startswith("timm."):
        if getattr(module, "scale_by_keep", True):  # timm's default: stochastic depth by row
            return StochasticDepth(float(module.drop_prob), "row")
    return None


def use_generator(module, generator):
    """Make every random layer of ``module`` draw from ``generator``.

    torch's ``nn.Dropout``, torchvision's ``StochasticDepth`` and timm's
    ``DropPath`` (in the backbones' blocks and projections) are replaced by
    equivalents that take a generator; they hold no state, so the weights'
    names stay the same. Other random layers (``nn.Dropout2d``, ``nn.RReLU``,
    a plugin's own) still draw from torch's global generator.
    """
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            replacement = _own_random_layer(child)
            if replacement is not None:
                replacement.train(child.training)
                setattr(parent, name, replacement)
    for layer in module.modules():
        if isinstance(layer, (Dropout, StochasticDepth)):
            layer.generator = generator
    return module


def module_generator(module):
    """The generator the random layers of ``module`` draw from, or None."""
    for layer in module.modules():
        generator = getattr(layer, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
    return None


def release_generator(module):
    """Detach the fit's generator from ``module``'s random layers (after the fit)."""
    for layer in module.modules():
        if isinstance(layer, (Dropout, StochasticDepth)):
            layer.generator = None
    return module
