"""timm models as backbones: ``"timm/<name>"`` builds timm's model with its pretrained config.

timm is an optional dependency (the ``timm`` extra), imported only when a
timm name is built. The model is built without its classifier
(``num_classes=0``); its stages end at the modules of timm's ``feature_info``;
its weights come from a local file, the Hugging Face hub cache or torch's hub
cache, and are downloaded there only when missing.
"""

import os
from pathlib import Path

from ._features import BackboneFeatures
from ._stages import feature_count, split_by_trace
from ._weights import (
    WeightsUnavailableError,
    download_to_cache,
    existing_file,
    load_state_dict_file,
    looks_like_path,
)

__all__ = ["build_timm_backbone", "is_timm_name"]

PREFIXES = ("timm/", "timm:")
# the files timm publishes its weights in, safest first
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def is_timm_name(name):
    """Whether ``name`` asks for a timm model (``"timm/<name>"`` or ``"timm:<name>"``)."""
    return isinstance(name, str) and name.startswith(PREFIXES)


def _import_timm():
    try:
        import timm
    except ImportError as exc:
        raise ImportError(
            "timm backbones need timm, an optional dependency of gar-sklearn. Install it with: "
            'pip install "gar-sklearn[timm]" (or pip install timm).'
        ) from exc
    return timm


def _model_name(name, timm):
    """The timm model name (``arch`` or ``arch.tag``) in ``name``, checked."""
    model_name = name[len("timm/") :]
    arch, tag = timm.models.split_model_name_tag(model_name)
    if not model_name or not timm.is_model(arch):
        raise ValueError(
            "The 'backbone' parameter must name a timm model after 'timm/', such as "
            f"'timm/resnet50' or 'timm/legacy_xception.tf_in1k' (see timm.list_models()). "
            f"Got {name!r} instead."
        )
    if tag and f"{arch}.{tag}" not in timm.list_pretrained(f"{arch}.*"):
        raise ValueError(
            f"The 'backbone' parameter names the timm pretrained tag {tag!r}, which {arch!r} "
            f"does not have; its tags are {_tags(arch, timm)}. Got {name!r} instead."
        )
    return arch, tag


def _tags(arch, timm):
    return [n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*") if "." in n]


def build_timm_backbone(name, weights="DEFAULT", *, whole=False):
    """Build ``"timm/<name>"`` without its classifier, split at its ``feature_info`` stages.

    Parameters
    ----------
    name : str
        ``"timm/<model>"`` or ``"timm:<model>"``, optionally with a
        pretrained tag: ``"timm/resnet50.a1_in1k"``.
    weights : str, os.PathLike or None, default="DEFAULT"
        ``"DEFAULT"`` (the tag in ``name``, else timm's default tag), another
        pretrained tag of the model, a state_dict file of the timm model, or
        None for random initialisation.
    whole : bool, default=False
        One stage, ``"model"``, instead of the ``feature_info`` split.

    Returns
    -------
    BackboneFeatures
        With the mean, std, input size and interpolation of the pretrained
        config.
    """

    timm = _import_timm()
    arch, tag = _model_name(name, timm)
    if weights is not None and not looks_like_path(weights) and weights != "DEFAULT":
        tag = str(weights)
        if tag not in _tags(arch, timm):
            raise ValueError(
                f"The 'weights' parameter must be None, a file path, 'DEFAULT' or one of the "
                f"pretrained tags {_tags(arch, timm)} for backbone {name!r}. Got {weights!r} "
                "instead."
            )
    model = timm.create_model(f"{arch}.{tag}" if tag else arch, pretrained=False, num_classes=0)
    cfg = dict(model.pretrained_cfg)
    source, description = _weights_file(cfg, weights)
    if source is not None:
        _load(model, source, cfg, name, description)
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    boundaries = [info["module"] for info in getattr(model, "feature_info", [])]
    stages = None if whole else split_by_trace(model, probe_size=size, boundaries=boundaries)
    stages = stages or [("model", model)]
    return BackboneFeatures(
        stages=stages,
        n_features=feature_count(stages),
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        weights=description,
        name=name,
        input_size=size,
        interpolation=cfg.get("interpolation"),
    )


def _weights_file(cfg, weights):
    """``(path or None, description)`` of the weights to load."""
    if weights is None:
        return None, None
    if looks_like_path(weights):
        path = existing_file(weights)
        return path, str(path)
    what = f"timm/{cfg['architecture']}.{cfg['tag']}"
    cached = _cached_file(cfg)
    return (cached or _download(cfg, what)), what


def _hub_repo(cfg):
    repo = cfg.get("hf_hub_id")
    return repo.split("@")[0] if repo else None


def _cached_file(cfg):
    """The weights file of ``cfg`` in the Hugging Face hub cache or torch's hub cache, or None."""
    repo = _hub_repo(cfg)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else list(_HUB_FILES)
        for filename in names:
            path = try_to_load_from_cache(repo, filename)
            if isinstance(path, str):
                return Path(path)
    url = cfg.get("url")
    if url:
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if path.is_file():
            return path
    return None


def _download(cfg, what):
    repo = _hub_repo(cfg)
    if not repo:
        url = cfg.get("url")
        if not url:
            raise ValueError(f"timm has no pretrained weights for {what}; use weights=None.")
        import torch

        target = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        return download_to_cache(url, target, what)
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else list(_HUB_FILES)
    for filename in names:
        try:
            return Path(hf_hub_download(repo, filename))
        except Exception as exc:  # offline, timeouts, HTTP errors, disk errors
            failure = exc
            missing = isinstance(exc, EntryNotFoundError)
            if not missing or isinstance(exc, LocalEntryNotFoundError):
                break  # only a file missing from the repository is worth another name
    raise WeightsUnavailableError(
        f"The pretrained weights {what} could not be downloaded from the Hugging Face hub "
        f"repository {repo!r} ({type(failure).__name__}: {failure}). Either download them where "
        f"there is internet (`hf download {repo}`, or timm.create_model(..., pretrained=True)) "
        f"and copy the Hugging Face cache folder ($HF_HOME/hub, here {constants.HF_HUB_CACHE}) "
        "to this machine, or pass weights=<path to a state_dict file>, or weights=None for "
        "random initialisation."
    ) from failure


def _load(model, path, cfg, name, description):
    """Load a state_dict of the timm model, its classifier dropped, strictly."""
    state = load_state_dict_file(path)
    classifiers = cfg.get("classifier") or ()
    for classifier in (classifiers,) if isinstance(classifiers, str) else classifiers:
        for key in [k for k in state if k.startswith(f"{classifier}.")]:
            del state[key]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        text = " ".join(lines)[:600]
        raise ValueError(
            f"The weights {description!r} do not fit backbone {name!r}: {text} Pass weights for "
            "this model (a state_dict of the timm model)."
        ) from exc
