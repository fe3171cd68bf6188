"""One registry from a backbone name to a feature extractor split into stages.

A backbone is a classification network with its classifier removed, cut into
an ordered list of stages so that the first ``k`` stages can be frozen (and
their output cached) while the rest is trained. Names reach torchvision's
classifiers, backbones registered with :func:`register_backbone`, and, with
timm installed, any timm model (``"timm/<name>"``).
"""

import os
import warnings
from dataclasses import dataclass
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models as tv_models
from torchvision.models import get_model, get_model_weights, list_models

from ._features import BackboneFeatures
from ._stages import feature_count, split_by_trace
from ._timm import build_timm_backbone, is_timm_name
from ._tiny import TinyConvNet
from ._weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    download_to_cache,
    existing_file,
    load_state_dict_file,
    looks_like_path,
    resolve_weights,
    weights_preprocessing,
)

__all__ = ["BackboneFeatures", "available_backbones", "build_backbone", "register_backbone"]

# torchvision builds these without ``transform_input`` when given no weights: their pretrained
# weights then expect images normalised with mean = std = 0.5, which is what that step computes
_HALF_NORMALISED = {"googlenet", "inception_v3"}


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


def _split_squeezenet(m):
    # its classifier is a 1000-channel convolution: the features are the pooled 512 channels
    return _split_features(m, m.classifier[1].in_channels)


def _remove_classifier(m):
    """Replace the last linear layer by an identity; return its input size."""
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
    return last.in_features


def _split_generic(m):
    """Any torchvision classifier: its last linear layer removed, stages from its forward pass."""
    n_features = _remove_classifier(m)
    return split_by_trace(m) or [("model", m)], n_features


def _split_derived(m):
    """A feature extractor: stages from its forward pass, the feature size from its output."""
    stages = split_by_trace(m) or [("model", m)]
    return stages, feature_count(stages)


def _whole_torchvision(m):
    n_features = _remove_classifier(m)
    return [("model", m)], n_features


def _whole_derived(m):
    return [("model", m)], feature_count([("model", m)])


def _joined(split):
    """``split`` with its stages joined into one."""

    def whole(m):
        stages, n_features = split(m)
        return [("model", nn.Sequential(*[stage for _, stage in stages]))], n_features

    return whole


@dataclass(frozen=True)
class _Entry:
    build: object  # callable() -> nn.Module with random weights
    split: object  # callable(module) -> (stages, n_features)
    arch: str = None  # torchvision architecture name, for its weights enum
    mean: tuple = None
    std: tuple = None
    weights: dict = None  # named weights: name -> file path or URL
    default_weights: str = None
    input_size: int = None
    interpolation: str = None


_REGISTRY = {}


def register_backbone(
    name,
    build,
    split=None,
    arch=None,
    *,
    mean=None,
    std=None,
    weights=None,
    default_weights=None,
    input_size=None,
    interpolation=None,
):
    """Make ``name`` usable as the ``backbone`` parameter of the estimators.

    Parameters
    ----------
    name : str
        The name users pass.
    build : callable
        ``build()`` returns the network with random weights: the full
        network when ``split`` is given, else a feature extractor mapping an
        image batch to ``(N, n_features)``.
    split : callable or None, default=None
        ``split(network)`` returns ``(stages, n_features)``: a list of
        ``(stage_name, module)`` whose composition maps a normalised image
        batch to ``(N, n_features)`` features. None derives the stages from
        the forward pass (:func:`split_by_trace`).
    arch : str, optional
        The torchvision architecture whose weights enum resolves ``weights``
        names such as ``"DEFAULT"``.
    mean, std : sequence of 3 floats, optional
        The input normalisation the network expects, used with every weights
        (ImageNet's, or the torchvision weights' own, when omitted).
    weights : dict, optional
        Named weights: a name maps to a state_dict file of ``build()``'s
        network or to an http(s) URL of one (downloaded into torch's hub
        cache on first use, read from there offline).
    default_weights : str, optional
        The name in ``weights`` that ``weights="DEFAULT"`` loads; defaults to
        the only one when ``weights`` has one entry.
    input_size : int, optional
        The image side the weights were trained at.
    interpolation : {"bilinear", "bicubic", ...}, optional
        The resize interpolation of the weights' preprocessing.

    Examples
    --------
    >>> from torch import nn
    >>> from gar_sklearn.backbones import register_backbone, build_backbone
    >>> register_backbone(
    ...     "flat", build=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)),
    ...     split=lambda net: ([("pool", net)], 3))
    >>> build_backbone("flat", weights=None).n_features
    3
    >>> register_backbone(
    ...     "small", build=lambda: nn.Sequential(
    ...         nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
    ...         nn.AdaptiveAvgPool2d(1), nn.Flatten(1)),
    ...     mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    >>> bb = build_backbone("small", weights=None)
    >>> bb.stage_names, bb.n_features, bb.mean
    (['0', '2', 'pool'], 16, (0.5, 0.5, 0.5))
    """
    named = dict(weights or {})
    if default_weights is None and len(named) == 1:
        default_weights = next(iter(named))
    if default_weights is not None and default_weights not in named:
        raise ValueError(
            f"The 'default_weights' parameter must be one of the named weights {list(named)}. "
            f"Got {default_weights!r} instead."
        )
    _REGISTRY[name] = _Entry(
        build=build,
        split=split or _split_derived,
        arch=arch,
        mean=None if mean is None else tuple(float(v) for v in mean),
        std=None if std is None else tuple(float(v) for v in std),
        weights=named,
        default_weights=default_weights,
        input_size=input_size,
        interpolation=interpolation,
    )


def _torchvision_entry(arch, split):
    def build():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # inception/googlenet init notices
            return get_model(arch, weights=None)

    return _Entry(build=build, split=split, arch=arch)


_FAMILIES = {
    _split_resnet: (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
    ),
    _split_mobilenet_v2: ("mobilenet_v2",),
    _split_mobilenet_v3: ("mobilenet_v3_large", "mobilenet_v3_small"),
    _split_densenet: ("densenet121", "densenet161", "densenet169", "densenet201"),
    _split_efficientnet: tuple(f"efficientnet_b{i}" for i in range(8))
    + ("efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"),
    _split_vgg: tuple(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    _split_squeezenet: ("squeezenet1_0", "squeezenet1_1"),
}
for _split, _archs in _FAMILIES.items():
    for _arch in _archs:
        _REGISTRY[_arch] = _torchvision_entry(_arch, _split)
_REGISTRY["tiny"] = _Entry(build=TinyConvNet, split=TinyConvNet.split)
# the one-stage layout (whole=True) of each split that has one
_WHOLE = {_split_generic: _whole_torchvision, _split_derived: _whole_derived}
_WHOLE.update({split: _whole_torchvision for split in _FAMILIES if split is not _split_squeezenet})


def available_backbones():
    """Names the ``backbone`` parameter accepts: registered ones first, then
    every other torchvision classification model (with its last linear layer
    removed and stages derived from its forward pass).

    With timm installed, any timm model name prefixed with ``"timm/"`` (or
    ``"timm:"``) is accepted too; those are not listed here (see
    ``timm.list_models()``).

    Examples
    --------
    >>> from gar_sklearn.backbones import available_backbones
    >>> {"resnet50", "mobilenet_v2", "tiny"} <= set(available_backbones())
    True
    """
    others = sorted(set(list_models(module=tv_models)) - set(_REGISTRY))
    return list(_REGISTRY) + others


def _entry(name):
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in list_models(module=tv_models):
        return _torchvision_entry(name, _split_generic)
    raise ValueError(
        f"The 'backbone' parameter must be one of {list(_REGISTRY)}, another torchvision "
        "classification model name (see gar_sklearn.backbones.available_backbones()) or a timm "
        f"model name such as 'timm/resnet50'. Got {name!r} instead."
    )


def build_backbone(name, weights="DEFAULT", *, whole=False):
    """Build a backbone by name with the requested weights.

    Parameters
    ----------
    name : str
        A name from :func:`available_backbones`, or ``"timm/<model name>"``
        (also ``"timm:<model name>"``) for a timm model, for example
        ``"timm/legacy_xception.tf_in1k"``.
    weights : str, os.PathLike, WeightsEnum or None, default="DEFAULT"
        ``"DEFAULT"``, a torchvision weights name such as ``"IMAGENET1K_V1"``
        (read from torch's hub cache, downloaded there when online), a name
        given to :func:`register_backbone`, a timm pretrained tag such as
        ``"tf_in1k"``, a path to a state_dict file of the full network, or
        None for random initialisation.
    whole : bool, default=False
        Build the feature extractor as one stage, ``"model"``, instead of
        splitting it: the layout of a fitted estimator whose
        ``stage_names_`` is ``["model"]``.

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
    if is_timm_name(name):
        return build_timm_backbone(name, weights, whole=whole)
    entry = _entry(name)
    split = _WHOLE.get(entry.split, _joined(entry.split)) if whole else entry.split
    source, description, preprocessing = _resolve(name, entry, weights)
    model = entry.build()
    if source is not None:
        state = load_state_dict_file(source) if looks_like_path(source) else source
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(
                f"The weights {description!r} do not fit backbone {name!r}: {_summarise_mismatch(exc)}"
                " Pass weights for this architecture (a state_dict of the full network)."
            ) from exc
    stages, n_features = split(model)
    mean, std, input_size, interpolation = preprocessing
    return BackboneFeatures(
        stages=stages,
        n_features=int(n_features),
        mean=entry.mean or mean,
        std=entry.std or std,
        weights=description,
        name=name,
        input_size=entry.input_size or input_size,
        interpolation=entry.interpolation or interpolation,
    )


def _resolve(name, entry, weights):
    """``(state_dict or file or None, description, (mean, std, input_size, interpolation))``."""
    preprocessing = _architecture_preprocessing(entry.arch)
    if weights is None:
        return None, None, preprocessing
    if looks_like_path(weights):
        path = existing_file(weights)
        return path, str(path), preprocessing
    if entry.weights and (
        weights in entry.weights or weights == "DEFAULT" and entry.default_weights
    ):
        key = entry.default_weights if weights == "DEFAULT" else weights
        return _named_file(name, key, entry.weights[key]), f"{name}.{key}", preprocessing
    if entry.arch is None:
        valid = ["DEFAULT", *entry.weights] if entry.weights else []
        missing = "to download" if weights == "DEFAULT" else f"named {weights!r}"
        options = "weights=None or weights=<path to a state_dict file>"
        if valid:
            options = f"weights=None, weights=<path to a state_dict file> or one of {valid}"
        raise ValueError(
            f"The backbone {name!r} has no pretrained weights {missing}; use {options}. "
            f"Got weights={weights!r}."
        )
    member = resolve_weights(entry.arch, weights)
    if isinstance(member, os.PathLike):
        return member, str(member), preprocessing
    mean, std, input_size, interpolation = weights_preprocessing(member)
    if entry.arch in _HALF_NORMALISED:
        mean = std = (0.5, 0.5, 0.5)
    description = f"{type(member).__name__}.{member.name}"
    return (
        member.get_state_dict(progress=False),
        description,
        (mean, std, input_size, interpolation),
    )


def _architecture_preprocessing(arch):
    """ImageNet's statistics, with the input size of the architecture's default weights."""
    try:
        default = get_model_weights(arch).DEFAULT if arch else None
    except (ValueError, KeyError, AttributeError):
        default = None
    _, _, input_size, interpolation = weights_preprocessing(default)
    return IMAGENET_MEAN, IMAGENET_STD, input_size, interpolation


def _named_file(name, key, source):
    """The file of the named weights ``key``: a local path, or a URL fetched into the hub cache."""
    source = os.fspath(source)
    if urlparse(source).scheme in ("http", "https"):
        target = os.path.join(
            torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(source).path)
        )
        return download_to_cache(source, target, f"{key!r} of backbone {name!r}")
    return existing_file(source)


def _summarise_mismatch(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[1:]) if len(lines) > 1 else lines[0] if lines else str(exc)
    return text[:600] + ("..." if len(text) > 600 else "")
