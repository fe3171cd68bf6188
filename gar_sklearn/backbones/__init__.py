"""Backbones: the only place that builds torch modules.

A registry maps a name to a torchvision classification model with its
classifier removed, split into stages; :class:`MultiHeadNetwork` puts one
softmax head per attribute on top.
"""

from ._folding import fold_batch_norm, has_forward_hooks
from ._network import Dropout, MultiHeadNetwork, Normalize, resolve_freeze
from ._registry import BackboneFeatures, available_backbones, build_backbone, register_backbone
from ._tiny import TinyConvNet
from ._weights import WeightsUnavailableError, hub_checkpoint_path

__all__ = [
    "BackboneFeatures",
    "Dropout",
    "MultiHeadNetwork",
    "Normalize",
    "TinyConvNet",
    "WeightsUnavailableError",
    "available_backbones",
    "build_backbone",
    "fold_batch_norm",
    "has_forward_hooks",
    "hub_checkpoint_path",
    "register_backbone",
    "resolve_freeze",
]
