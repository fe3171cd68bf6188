"""Batch normalisation folded into the convolution before it, for inference.

In evaluation mode a BatchNorm layer is a fixed affine map per channel, so
the convolution that feeds it can absorb it: its weights scaled, its bias
shifted. The network then computes the same function (to float rounding)
without BatchNorm's pass over every activation and without the second
activation tensor that pass allocates (measurements: docs/speed.md). The
arithmetic is torch's ``torch.nn.utils.fusion.fuse_conv_bn_weights``; this
module decides which pairs may be folded.
"""

import copy
import importlib

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

__all__ = ["fold_batch_norm", "has_forward_hooks"]

_CONVS = {nn.BatchNorm1d: nn.Conv1d, nn.BatchNorm2d: nn.Conv2d, nn.BatchNorm3d: nn.Conv3d}


def _block_pairs():
    """Modules whose ``forward`` applies ``bn(conv(x))`` to named attribute pairs.

    torchvision's ResNet and its blocks (ResNet, ResNeXt, Wide ResNet) and the
    ``BasicConv2d`` of GoogLeNet and Inception v3. Matched by exact type: a
    subclass may compute something else.
    """
    # by module path: torchvision.models.googlenet etc. are also the builder functions' names
    resnet, googlenet, inception = (
        importlib.import_module(f"torchvision.models.{name}")
        for name in ("resnet", "googlenet", "inception")
    )
    return {
        resnet.ResNet: (("conv1", "bn1"),),
        resnet.BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
        resnet.Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
        googlenet.BasicConv2d: (("conv", "bn"),),
        inception.BasicConv2d: (("conv", "bn"),),
    }


def fold_batch_norm(module):
    """A copy of ``module`` for inference, with BatchNorm folded into the convolutions before it.

    Folded are BatchNorm layers that use running statistics and directly
    follow a convolution of the same dimension whose output they take whole:
    in a plain ``nn.Sequential`` (MobileNet, EfficientNet, RegNet, VGG and
    ResNet stems, ResNet shortcuts...), and inside torchvision's ResNet and
    Inception blocks. The convolution is rescaled and given the shifted bias;
    the BatchNorm becomes ``nn.Identity``. Any other BatchNorm is kept. The
    copy is in evaluation mode and its parameters need no gradient;
    ``module`` itself is left as it was.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    folded : torch.nn.Module
        Evaluation-mode copy that computes what ``module.eval()`` computes, to
        float rounding.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from gar_sklearn.backbones import fold_batch_norm
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> _ = net[1].running_mean.fill_(0.5)
    >>> folded = fold_batch_norm(net)
    >>> folded[1]
    Identity()
    >>> x = torch.randn(2, 3, 8, 8)
    >>> bool(torch.allclose(folded(x), net(x), atol=1e-6))
    True
    """
    folded = copy.deepcopy(module).eval()
    pairs = _block_pairs()
    shared = _shared_modules(folded)
    with torch.no_grad():
        for sub in list(folded.modules()):
            if type(sub).forward is nn.Sequential.forward:
                children = list(sub)
                for i in range(len(children) - 1):
                    if _fold_into(children[i], children[i + 1], shared):
                        sub[i + 1] = nn.Identity()
            for conv_name, bn_name in pairs.get(type(sub), ()):  # exact type: a subclass may differ
                if _fold_into(getattr(sub, conv_name), getattr(sub, bn_name), shared):
                    setattr(sub, bn_name, nn.Identity())
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded


def _shared_modules(module):
    """Ids of the submodules that appear at more than one place: never folded, as another
    place may use them without their partner."""
    seen, shared = set(), set()
    for _, sub in module.named_modules(remove_duplicate=False):
        (shared if id(sub) in seen else seen).add(id(sub))
    return shared


def _fold_into(conv, bn, shared):
    """Fold ``bn`` into ``conv`` in place; whether it could be."""
    conv_type = _CONVS.get(type(bn))
    if conv_type is None or type(conv) is not conv_type or not bn.track_running_stats:
        return False
    if id(conv) in shared or id(bn) in shared:
        return False
    if bn.running_mean is None or bn.running_var is None or bn.num_features != conv.out_channels:
        return False
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    conv.weight.copy_(weight)  # in place: keeps the weight's memory layout (channels-last)
    conv.bias = nn.Parameter(bias)
    return True


def has_forward_hooks(module):
    """Whether a forward hook or pre-hook is registered on ``module`` or a submodule.

    Such a module is run as it is rather than folded: a hook (reading
    embeddings, counting calls) must see the modules it was registered on.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    >>> has_forward_hooks(net)
    False
    >>> _ = net[1].register_forward_hook(lambda module, args, out: None)
    >>> has_forward_hooks(net)
    True
    """
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
