"""One registry from a backbone name to a feature extractor split into stages.

A backbone is a torchvision classification model with its classifier removed,
cut into an ordered list of stages so that the first ``k`` stages can be
frozen (and their output cached) while the rest is trained.
"""

import warnings
from dataclasses import dataclass, field

from torch import nn
from torchvision import models as tv_models
from torchvision.models import get_model, list_models

from ._tiny import TinyConvNet
from ._weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_state_dict_file,
    looks_like_path,
    resolve_weights,
    weights_statistics,
)

__all__ = ["BackboneFeatures", "available_backbones", "build_backbone", "register_backbone"]


@dataclass
class BackboneFeatures:
    """A built backbone: stages whose composition maps images to feature vectors.

    Attributes
    ----------
    stages : list of (str, nn.Module)
        Named stages in order; the last one pools to ``(N, n_features)``.
    n_features : int
        Length of the feature vector.
    mean, std : tuple of float
        Input statistics of the weights (ImageNet's for random weights).
    weights : str or None
        What was loaded: a torchvision weights name, a file path, or None.
    """

    stages: list
    n_features: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    weights: object = None
    stage_names: list = field(init=False)

    def __post_init__(self):
        self.stage_names = [name for name, _ in self.stages]


def _pool():
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def _split_resnet(m):
    stem = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)
    stages = [("stem", stem)] + [(f"layer{i}", getattr(m, f"layer{i}")) for i in range(1, 5)]
    return stages + [("pool", _pool())], m.fc.in_features


def _split_features(m, n_features, pool=None):
    """Models whose ``features`` is a Sequential of blocks (MobileNet, EfficientNet, DenseNet)."""
    stages = [(f"features.{name}", block) for name, block in m.features.named_children()]
    return stages + [("pool", pool or _pool())], n_features


def _split_mobilenet_v2(m):
    return _split_features(m, m.last_channel)


def _split_mobilenet_v3(m):
    # keep the pretrained 960->1280 projection: it is part of the ImageNet features
    proj = m.classifier[:-1]
    return _split_features(m, proj[0].out_features, nn.Sequential(m.avgpool, nn.Flatten(1), *proj))


def _split_efficientnet(m):
    return _split_features(m, m.classifier[-1].in_features)


def _split_densenet(m):
    return _split_features(m, m.classifier.in_features, nn.Sequential(nn.ReLU(), *_pool()))


def _split_vgg(m):
    blocks, current, n = [], [], 0
    for layer in m.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            n += 1
            blocks.append((f"block{n}", nn.Sequential(*current)))
            current = []
    proj = m.classifier[:-1]  # the pretrained 4096-d layers
    head = nn.Sequential(m.avgpool, nn.Flatten(1), *proj)
    return blocks + [("pool", head)], m.classifier[-1].in_features


def _split_generic(m):
    """Any torchvision classifier: replace its last Linear layer by an identity."""
    last_name, last = None, None
    for name, module in m.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None:
        raise ValueError(f"{type(m).__name__} has no linear classifier layer to remove.")
    parent = m.get_submodule(last_name.rpartition(".")[0]) if "." in last_name else m
    setattr(parent, last_name.rpartition(".")[2], nn.Identity())
    if getattr(m, "aux_logits", False):  # Inception and GoogLeNet: plain tensors out
        m.aux_logits = False
        for aux in ("AuxLogits", "aux1", "aux2"):
            if hasattr(m, aux):
                setattr(m, aux, None)
    return [("model", m)], last.in_features


@dataclass(frozen=True)
class _Entry:
    build: object  # callable() -> nn.Module with random weights
    split: object  # callable(module) -> (stages, n_features)
    arch: str = None  # torchvision architecture name, for its weights enum


_REGISTRY = {}


def register_backbone(name, build, split, arch=None):
    """Make ``name`` usable as the ``backbone`` parameter of the estimators.

    Parameters
    ----------
    name : str
        The name users pass.
    build : callable
        ``build()`` returns the full network with random weights.
    split : callable
        ``split(network)`` returns ``(stages, n_features)``: a list of
        ``(stage_name, module)`` whose composition maps a normalised image
        batch to ``(N, n_features)`` features.
    arch : str, optional
        The torchvision architecture whose weights enum resolves ``weights``
        names such as ``"DEFAULT"``.

    Examples
    --------
    >>> from torch import nn
    >>> from gar_sklearn.backbones import register_backbone, build_backbone
    >>> register_backbone(
    ...     "flat", build=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)),
    ...     split=lambda net: ([("pool", net)], 3))
    >>> build_backbone("flat", weights=None).n_features
    3
    """
    _REGISTRY[name] = _Entry(build=build, split=split, arch=arch)


def _torchvision_entry(arch, split):
    def build():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # inception/googlenet init notices
            return get_model(arch, weights=None)

    return _Entry(build=build, split=split, arch=arch)


for _arch in (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
):
    _REGISTRY[_arch] = _torchvision_entry(_arch, _split_resnet)
_REGISTRY["mobilenet_v2"] = _torchvision_entry("mobilenet_v2", _split_mobilenet_v2)
_REGISTRY["mobilenet_v3_large"] = _torchvision_entry("mobilenet_v3_large", _split_mobilenet_v3)
_REGISTRY["mobilenet_v3_small"] = _torchvision_entry("mobilenet_v3_small", _split_mobilenet_v3)
for _arch in ("densenet121", "densenet161", "densenet169", "densenet201"):
    _REGISTRY[_arch] = _torchvision_entry(_arch, _split_densenet)
for _arch in ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"):
    _REGISTRY[_arch] = _torchvision_entry(_arch, _split_efficientnet)
for _arch in ("vgg16", "vgg16_bn", "vgg19", "vgg19_bn"):
    _REGISTRY[_arch] = _torchvision_entry(_arch, _split_vgg)
_REGISTRY["tiny"] = _Entry(build=TinyConvNet, split=TinyConvNet.split)


def available_backbones():
    """Names the ``backbone`` parameter accepts: registered ones first, then
    every other torchvision classification model (with its last linear layer
    removed and no stage split).

    Examples
    --------
    >>> from gar_sklearn.backbones import available_backbones
    >>> {"resnet50", "mobilenet_v2", "tiny"} <= set(available_backbones())
    True
    """
    others = sorted(set(list_models(module=tv_models)) - set(_REGISTRY))
    return list(_REGISTRY) + others


def _entry(name):
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in list_models(module=tv_models):
        return _torchvision_entry(name, _split_generic)
    raise ValueError(
        f"The 'backbone' parameter must be one of {list(_REGISTRY)} or another torchvision "
        f"classification model name (see gar_sklearn.backbones.available_backbones()). "
        f"Got {name!r} instead."
    )


def build_backbone(name, weights="DEFAULT"):
    """Build a backbone by name with the requested weights.

    Parameters
    ----------
    name : str
        A name from :func:`available_backbones`.
    weights : str, os.PathLike, WeightsEnum or None, default="DEFAULT"
        ``"DEFAULT"`` or a torchvision weights name such as ``"IMAGENET1K_V1"``
        (read from torch's hub cache, downloaded there when online), a path to
        a state_dict file of the full torchvision model, or None for random
        initialisation.

    Returns
    -------
    BackboneFeatures

    Examples
    --------
    >>> import torch
    >>> from gar_sklearn.backbones import build_backbone
    >>> bb = build_backbone("tiny", weights=None)
    >>> x = torch.zeros(2, 3, 32, 32)
    >>> for _, stage in bb.stages:
    ...     x = stage(x)
    >>> tuple(x.shape) == (2, bb.n_features)
    True
    """
    entry = _entry(name)
    if weights is not None and entry.arch is None and not _is_file_weights(weights):
        raise ValueError(
            f"The backbone {name!r} has no pretrained weights to download; use weights=None or "
            f"weights=<path to a state_dict file>. Got weights={weights!r}."
        )
    resolved = resolve_weights(entry.arch, weights) if weights is not None else None
    model = entry.build()
    mean, std, description = IMAGENET_MEAN, IMAGENET_STD, None
    if resolved is not None:
        if _is_file_weights(resolved):
            state = load_state_dict_file(resolved)
            description = str(resolved)
        else:
            state = resolved.get_state_dict(progress=False)
            mean, std = weights_statistics(resolved)
            description = f"{type(resolved).__name__}.{resolved.name}"
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(
                f"The weights {description!r} do not fit backbone {name!r}: {_summarise_mismatch(exc)}"
                " Pass weights for this architecture (a state_dict of the full torchvision model)."
            ) from exc
    stages, n_features = entry.split(model)
    return BackboneFeatures(
        stages=stages, n_features=int(n_features), mean=mean, std=std, weights=description
    )


def _is_file_weights(weights):
    return looks_like_path(weights)


def _summarise_mismatch(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[1:]) if len(lines) > 1 else lines[0] if lines else str(exc)
    return text[:600] + ("..." if len(text) > 600 else "")
