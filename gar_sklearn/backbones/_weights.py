"""Pretrained weights: torchvision's weights API, torch's hub cache, or a local file."""

import os
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.models import get_model_weights
from torchvision.models._api import WeightsEnum

__all__ = [
    "WeightsUnavailableError",
    "download_to_cache",
    "resolve_weights",
    "load_state_dict_file",
    "hub_checkpoint_path",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
_DOWNLOAD_TIMEOUT_S = 30


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither in torch's hub cache nor downloadable."""


def hub_checkpoint_path(weights):
    """Where torch's hub cache keeps the file of a torchvision weights enum member."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def looks_like_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        os.sep in weights
        or weights.lower().endswith(_WEIGHT_FILE_SUFFIXES)
        or os.path.exists(weights)
    )


def existing_file(weights):
    """``weights`` as a Path to an existing file, or a FileNotFoundError naming it."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"The 'weights' parameter names the file {str(path)!r}, which does not exist. "
            "Pass an existing state_dict file, a weights name such as 'DEFAULT', or None."
        )
    return path


def _enum_for(arch):
    try:
        return get_model_weights(arch)
    except (ValueError, KeyError):
        return None


@contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def download_to_cache(url, target, what):
    """Download ``url`` to ``target`` unless it is there; never hang.

    ``what`` names the weights in the error raised when the file can be
    neither found nor downloaded.
    """
    target = Path(target)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(target.name)  # torchvision's names carry a hash prefix
    try:
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(
                url, str(target), hash_prefix=match.group(1) if match else None, progress=False
            )
    except (
        Exception
    ) as exc:  # URLError, timeouts, HTTP errors, disk errors: all mean "not available"
        raise WeightsUnavailableError(
            f"The pretrained weights {what} could not be downloaded from {url} ({exc}). "
            f"Either put the file {target.name} into {target.parent} (the folder of torch's hub "
            "cache, $TORCH_HOME/hub/checkpoints/), or pass weights=<path to a state_dict file>, "
            "or weights=None for random initialisation."
        ) from exc
    return target


def _ensure_cached(member):
    download_to_cache(member.url, hub_checkpoint_path(member), str(member))


def resolve_weights(arch, weights):
    """Turn the ``weights`` parameter into a torchvision enum member, a file path, or None.

    For a torchvision member the checkpoint is made available in torch's hub
    cache (downloading it when online). ``"DEFAULT"`` falls back, with a
    warning, to another official ImageNet checkpoint of the same architecture
    already in the hub cache when the default one can't be had.

    Returns
    -------
    member_or_path : WeightsEnum, pathlib.Path or None
    """
    if weights is None:
        return None
    if looks_like_path(weights):
        return existing_file(weights)
    enum = _enum_for(arch)
    if isinstance(weights, WeightsEnum):
        member = weights
        if enum is not None and type(weights) is not enum:
            raise ValueError(
                f"The weights {weights} belong to another architecture than {arch!r}; "
                f"use one of {[str(m) for m in enum]}."
            )
    else:
        if enum is None:
            raise ValueError(
                f"The backbone {arch!r} has no torchvision pretrained weights; use weights=None "
                f"or weights=<path to a state_dict file>. Got weights={weights!r}."
            )
        name = str(weights).split(".")[-1]
        valid = ["DEFAULT"] + [m.name for m in enum]
        if name not in valid:
            raise ValueError(
                f"The 'weights' parameter must be None, a file path or one of {valid} for "
                f"backbone {arch!r}. Got {weights!r} instead."
            )
        member = enum[name] if name != "DEFAULT" else enum.DEFAULT
    try:
        _ensure_cached(member)
    except WeightsUnavailableError:
        if str(weights).split(".")[-1] != "DEFAULT":
            raise
        cached = [m for m in type(member) if m is not member and hub_checkpoint_path(m).exists()]
        if not cached:
            raise
        warnings.warn(
            f"weights='DEFAULT' for {arch!r} is {member}, which is neither cached nor "
            f"downloadable here; using the cached {cached[0]} instead.",
            UserWarning,
            stacklevel=3,
        )
        member = cached[0]
    return member


def weights_statistics(member):
    """Input mean and std of a weights enum member (ImageNet's when it has none)."""
    return weights_preprocessing(member)[:2]


def weights_preprocessing(member):
    """``(mean, std, input_size, interpolation)`` that a weights enum member was trained with.

    ImageNet's statistics and None for what the member does not say.
    """
    try:
        transforms = member.transforms()
        mean, std = tuple(transforms.mean), tuple(transforms.std)
    except (AttributeError, TypeError):
        return IMAGENET_MEAN, IMAGENET_STD, None, None
    crop = getattr(transforms, "crop_size", None)
    interpolation = getattr(transforms, "interpolation", None)
    return (
        mean,
        std,
        int(crop[0]) if crop else None,
        getattr(interpolation, "value", interpolation),
    )


def load_state_dict_file(path):
    """Read a state_dict without executing code from the file."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"Could not read the weights file {str(path)!r} as a state_dict ({exc}). Expected a "
            "file written by torch.save(model.state_dict(), path) or a .safetensors file."
        ) from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"The weights file {str(path)!r} does not hold a state_dict (a mapping of names to "
            f"tensors); got {type(state).__name__}."
        )
    return state
