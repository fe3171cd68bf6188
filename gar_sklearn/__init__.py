"""gar_sklearn: gender, age and race estimation from face images.

scikit-learn estimators over skorch-wrapped, pretrained torchvision backbones,
with fairness metrics and per-group reports. Subpackages that need no torch
(``metrics``, ``datasets``, ``preprocessing``, ``augmentation``) import without
it: the estimators are loaded on first use.
"""

import importlib

from ._config import config_context, get_config, set_config
from ._version import __version__

_LAZY = {
    "MultiAttributeClassifier": "._multi_attribute",
    "GenderFusionClassifier": "._fusion",
    "load": "._persistence",
}

__all__ = ["__version__", "config_context", "get_config", "set_config", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gar_sklearn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
