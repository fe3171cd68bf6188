"""Backbones: the only place that builds torch modules.

A registry maps a name to a classification network with its classifier
removed, split into stages: torchvision's models, backbones registered with
:func:`register_backbone` and, with timm installed, timm's (``"timm/<name>"``).
:class:`MultiHeadNetwork` puts one softmax head per attribute on top.
"""

from ._folding import fold_batch_norm, has_forward_hooks
from ._network import Dropout, MultiHeadNetwork, Normalize, resolve_freeze
from ._registry import BackboneFeatures, available_backbones, build_backbone, register_backbone
from ._stages import check_input_size, smallest_input_size, split_by_trace
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
    "check_input_size",
    "fold_batch_norm",
    "has_forward_hooks",
    "hub_checkpoint_path",
    "register_backbone",
    "resolve_freeze",
    "smallest_input_size",
    "split_by_trace",
]
