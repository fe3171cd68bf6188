"""Stages derived from how a network's forward pass runs, and the input sizes it accepts.

A network is cut into stages by watching one forward pass of a small image
(on the meta device, shapes only, for networks that take only large ones): its
top-level submodules (first-level ``nn.Sequential`` and ``nn.ModuleList``
containers opened, as timm's feature extractors do) that run one after another,
each on exactly the tensor the previous one returned, form a chain. The chain up to the global pooling
becomes the leading stages; the network itself, with those submodules
replaced by ``nn.Identity``, becomes the last stage (``"pool"``), so whatever
the forward does after the chain (pooling, flattening, a class token) still
happens. The split is kept only when running the stages in sequence gives
what the whole network gives on a real input.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["check_input_size", "feature_count", "smallest_input_size", "split_by_trace"]

_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LocalResponseNorm,
)
_MAX_SIZE = 1024  # the largest side probed when looking for an accepted input size
# image sides tried in turn when looking for one a network takes: powers of two and the
# usual input sizes
_SEARCH_SIZES = sorted({2**k for k in range(11)} | {96, 160, 192, 224, 299, 320, 384, 448})
_REAL_PROBE_MAX = 128  # the largest side probed with a real image


@dataclass
class _Call:
    path: str
    module: nn.Module
    args: tuple
    kwargs: dict
    output: object
    nested: bool


def _candidates(model):
    """Top-level submodules, first-level Sequential and ModuleList containers opened."""
    out = []
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child):
            out += [(f"{name}.{sub}", grandchild) for sub, grandchild in child.named_children()]
        else:
            out.append((name, child))
    return out


def _meta_state(module):
    """Meta stand-ins for every parameter and buffer: a forward pass computes shapes only."""
    named = list(module.named_parameters()) + list(module.named_buffers())
    return {name: torch.empty_like(t, device="meta") for name, t in named}


def _image(module, size):
    """A zero image batch of one: real (on the module's device) when small, else on the meta
    device, where a forward pass costs the same at any size (BatchNorm, a Python
    decomposition there, makes it slower than a real pass of a small image)."""
    first = next(module.parameters(), None)
    if size > _REAL_PROBE_MAX:
        return torch.zeros(1, 3, size, size, device="meta")
    device = first.device if first is not None else "cpu"
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    return torch.zeros(1, 3, size, size, device=device, dtype=dtype)


def _forward(module, x):
    """``module(x)``; on the meta device with meta stand-ins for the weights."""
    return functional_call(module, _meta_state(module), (x,)) if x.is_meta else module(x)


def _trace(model, size):
    """The candidate submodules' calls during one forward pass, in order, and its input."""
    calls, depth, hooks = [], [0], []

    def pre(path):
        def hook(module, args, kwargs):
            calls.append(_Call(path, module, args, kwargs, None, depth[0] > 0))
            depth[0] += 1

        return hook

    def post(module, args, kwargs, output):
        depth[0] -= 1
        for call in reversed(calls):
            if call.module is module and call.output is None:
                call.output = output
                break

    for path, module in _candidates(model):
        hooks.append(module.register_forward_pre_hook(pre(path), with_kwargs=True))
        hooks.append(module.register_forward_hook(post, with_kwargs=True))
    x = _image(model, size)
    try:
        with torch.no_grad():
            _forward(model, x)
    finally:
        for handle in hooks:
            handle.remove()
    return calls, x


def _is_pooled(module, x, y):
    """Whether ``module`` pooled ``x`` over space into ``y``: fewer dimensions, or, without
    weights (not a strided convolution), 1 x 1 out of more."""
    if not isinstance(y, torch.Tensor) or y.dim() < x.dim():
        return True
    collapsed = x.dim() == 4 == y.dim() and y.shape[-2:] == (1, 1) and x.shape[-2:] != (1, 1)
    return collapsed and not _has_weights(module)


def _chain(calls, x):
    """The submodules that run in sequence, each on the previous one's output, before pooling."""
    expected = x
    chain = []
    called = [id(call.module) for call in calls]
    for call in calls:
        ok = (
            not call.nested
            and called.count(id(call.module)) == 1  # an identity would stand in for every call
            and not call.kwargs
            and len(call.args) == 1
            and isinstance(call.output, torch.Tensor)
            and call.args[0] is expected
        )
        if not ok or _is_pooled(call.module, call.args[0], call.output):
            break
        chain.append((call.path, call.module))
        expected = call.output
    return chain


def _has_weights(module):
    return next(module.parameters(), None) is not None


def _belongs(path, name):
    return path == name or path.startswith(name + ".")


def _reached(chain, boundaries):
    """The boundaries the chain reaches, in its order: a boundary inside a chained submodule
    stands for that submodule (a stage cannot end inside one)."""
    paths = [path for path, _ in chain]
    reached = {}
    for b in boundaries:
        hits = [i for i, p in enumerate(paths) if _belongs(p, b) or _belongs(b, p)]
        if hits:
            name = b if _belongs(paths[hits[0]], b) else paths[hits[0]]
            reached.setdefault(name, hits[-1])
    return sorted(reached, key=reached.get)


def _group(chain, boundaries=()):
    """Stages from the chain: up to the last boundary module the chain reaches, a stage ends
    at each boundary; after it, a stage starts at every submodule with weights that is not a
    normalisation layer (which stays with the convolution before it)."""
    reached = _reached(chain, boundaries)
    groups, open_group, k = [], False, 0  # groups: [name, paths, modules]
    for i, (path, module) in enumerate(chain):
        if k < len(reached):
            following = chain[i + 1][0] if i + 1 < len(chain) else None
            ends = _belongs(path, reached[k]) and not (
                following and _belongs(following, reached[k])
            )
            starts = not open_group
            open_group = not ends
        else:
            ends = False
            starts = not open_group or (_has_weights(module) and not isinstance(module, _NORMS))
            open_group = True
        if starts:
            groups.append([None, [], []])
        groups[-1][1].append(path)
        groups[-1][2].append(module)
        if ends:
            groups[-1][0] = reached[k]
            k += 1
    paths = [path for path, _ in chain]
    return [
        (
            name or _group_name(group_paths, paths),
            mods[0] if len(mods) == 1 else nn.Sequential(*mods),
        )
        for name, group_paths, mods in groups
    ]


def _group_name(group_paths, chain_paths):
    """A group's first path, or the container it starts with whole (``conv1`` for ``conv1.0-2``)."""
    parent = group_paths[0].rpartition(".")[0]
    siblings = [p for p in chain_paths if parent and p.rpartition(".")[0] == parent]
    whole = len(siblings) > 1 and group_paths[: len(siblings)] == siblings
    return parent if whole else group_paths[0]


def _run(stages, x):
    for _, stage in stages:
        x = _forward(stage, x)
    return x


def split_by_trace(model, *, probe_size=224, boundaries=()):
    """Cut ``model`` into stages that compose to its forward pass, where one can.

    Parameters
    ----------
    model : torch.nn.Module
        A feature extractor: images ``(N, 3, H, W)`` to features ``(N, F)``.
        On success, its chained submodules are replaced by ``nn.Identity``
        (it becomes the last stage); on failure it is left as it was.
    probe_size : int, default=224
        The network's usual image side: the largest tried when looking for
        the small image the forward pass is followed on.
    boundaries : sequence of str, default=()
        Submodule paths after which a stage must end (timm's ``feature_info``
        modules); the others are cut at each submodule with weights.

    Returns
    -------
    stages : list of (str, nn.Module) or None
        The stages, the last named ``"pool"``; None when no split into at
        least two stages reproduces the network.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
    ...                     nn.Conv2d(4, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    >>> [name for name, _ in split_by_trace(net, probe_size=16)]
    ['0', '3', 'pool']
    """
    was_training = model.training
    model.eval()
    try:
        return _split(model, probe_size, boundaries)
    finally:
        model.train(was_training)


def _split(model, probe_size, boundaries):
    # followed at 128 pixels when the network takes it: a cheap real pass, with maps still
    # larger than 1 x 1 before the global pooling
    sizes = [s for s in _SEARCH_SIZES if 128 <= s < probe_size] + [probe_size]
    size = next((s for s in sizes if _accepts([("model", model)], s)), None)
    if size is None:
        return None
    try:
        calls, x = _trace(model, size)
    except Exception:  # an op without a meta kernel, a hook the network refuses...
        return None
    chain = _chain(calls, x)
    stages = _group(chain, boundaries)
    if not stages:
        return None
    last = "pool" if "pool" not in {name for name, _ in stages} else "head"
    stages = stages + [(last, model)]
    swaps = [(path, module, nn.Identity()) for path, module in chain]
    _set(model, swaps, replaced=True)
    if not (_accepts(stages, size) and _reproduces(model, stages, swaps, size)):
        _set(model, swaps, replaced=False)
        return None
    return stages


def _set(model, swaps, replaced):
    """Put the identities (or the original submodules back) at the chained paths."""
    for path, original, identity in swaps:
        parent_path, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, identity if replaced else original)


def _reproduces(model, stages, swaps, size):
    """Whether the stages compute what the whole network computes on a random image."""
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.to(_image(model, 1).device)
    try:
        with torch.no_grad():
            got = x
            for _, stage in stages:
                given, before = got, got.clone()
                got = stage(given)
                if not torch.equal(given, before):  # it would change cached features
                    return False
            _set(model, swaps, replaced=False)
            try:
                expected = model(x)
            finally:
                _set(model, swaps, replaced=True)
    except Exception:
        return False
    if not isinstance(expected, torch.Tensor) or got.shape != expected.shape:
        return False
    tolerance = 1e-5 * max(1.0, float(expected.abs().max()))
    return bool(torch.allclose(got, expected, rtol=1e-4, atol=tolerance))


def _accepts(stages, size):
    return _probe(stages, size) is not None


def _probe(stages, size):
    """The output of the stages, in evaluation mode, for a zero ``size`` x ``size`` image
    (see :func:`_image`), or None when they refuse it."""
    modes = [(m, m.training) for _, stage in stages for m in stage.modules()]
    try:
        for _, stage in stages:
            stage.eval()
        with torch.no_grad():
            return _run(stages, _image(stages[0][1], size))
    except Exception:
        return None
    finally:
        for module, training in modes:
            module.training = training


def feature_count(stages):
    """The length of the feature vectors the stages compute."""
    out = None
    for size in [s for s in _SEARCH_SIZES if s >= 32]:
        out = _probe(stages, size)
        if out is not None:
            break
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ValueError(
            "A backbone must map an image batch (N, 3, H, W) to features (N, n_features); got "
            f"{'no output at any probed size' if out is None else tuple(getattr(out, 'shape', ()))}."
        )
    return int(out.shape[1])


def _as_stages(backbone):
    stages = backbone if isinstance(backbone, list) else getattr(backbone, "stages", None)
    if stages is None:
        if not isinstance(backbone, nn.Module):
            raise TypeError(
                "Expected a built backbone (gar_sklearn.backbones.build_backbone) or a "
                f"torch.nn.Module; got {type(backbone).__name__}."
            )
        stages = [("model", backbone)]
    return stages


def smallest_input_size(backbone, max_size=_MAX_SIZE):
    """The smallest square image side a backbone accepts.

    Small sizes are tried with a real forward pass of a zero image, larger
    ones on the meta device, which computes shapes only (no arithmetic,
    whatever the network's size). The search assumes that a network taking
    ``s`` pixels also takes every size between ``s`` and the first size found
    to work (pooling and strided layers only shrink).

    Parameters
    ----------
    backbone : BackboneFeatures or torch.nn.Module
        A built backbone (its stages are run in sequence) or a network.
    max_size : int, default=1024
        The largest side tried.

    Returns
    -------
    int or None
        None when no size up to ``max_size`` is accepted.

    Examples
    --------
    >>> from gar_sklearn.backbones import build_backbone, smallest_input_size
    >>> smallest_input_size(build_backbone("tiny", weights=None))
    1
    """
    stages = _as_stages(backbone)
    low, working = 0, None
    for size in [s for s in _SEARCH_SIZES if s < max_size] + [max_size]:
        if _accepts(stages, size):
            working = size
            break
        low = size
    if working is None:
        return None
    high = working  # low fails (or is 0), high works
    while high - low > 1:
        mid = (low + high) // 2
        if _accepts(stages, mid):
            high = mid
        else:
            low = mid
    return high


def check_input_size(backbone, image_size, name=None):
    """Raise a ValueError when ``backbone`` cannot take square images of ``image_size`` pixels.

    Parameters
    ----------
    backbone : BackboneFeatures or torch.nn.Module
    image_size : int
    name : str, optional
        The backbone's name for the message (defaults to ``backbone.name``).

    Raises
    ------
    ValueError
        Naming the backbone, the requested size and the smallest size it
        accepts.

    Examples
    --------
    >>> from gar_sklearn.backbones import build_backbone, check_input_size
    >>> check_input_size(build_backbone("tiny", weights=None), 8)
    """
    stages = _as_stages(backbone)
    if _accepts(stages, int(image_size)):
        return
    name = name or getattr(backbone, "name", None) or type(backbone).__name__
    smallest = smallest_input_size(stages)
    if smallest is not None and smallest > image_size:
        rule = f"be at least {smallest} for backbone {name!r} (smaller images shrink to nothing in its layers)"
    elif smallest is not None:
        rule = f"fit backbone {name!r}, which takes {smallest} x {smallest} pixels but not every larger size"
    else:
        rule = f"fit backbone {name!r}, which takes no square image up to {_MAX_SIZE} pixels"
    raise ValueError(
        f"The 'image_size' parameter must {rule}. Got image_size={image_size} instead."
    )
