"""Weight averaging during training (EMA or SWA), with ``torch.optim.swa_utils``.

The averaged weights are what the rest of a fit sees: from the first
validation batch of an epoch (or its end, without validation) until the
next epoch starts, the net's module holds the averaged weights, so that
validation, the per-head accuracies, early stopping's copy of the best
weights, the checkpoint's ``best.pt`` and, after training, prediction and
persistence all use them; the optimizer's own weights come back at the start
of the next epoch. Swapping copies the values in place: the optimizer keeps
its parameters, and every copied tensor's version changes, so the net's
inference copy (BatchNorm folded) is rebuilt.
"""

import itertools

import torch
from skorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ["AVERAGINGS", "WeightAveraging"]

AVERAGINGS = ("ema", "swa")


def _tensors(module):
    return list(itertools.chain(module.parameters(), module.buffers()))


@torch.no_grad()
def _copy(targets, sources):
    for t, s in zip(targets, sources):
        t.copy_(s)


class WeightAveraging(Callback):
    """Average the weights of the net's module over training and train with the
    optimizer's weights in between (see the module's docstring).

    Parameters
    ----------
    method : {"ema", "swa"}
        ``"ema"``: after every training step, ``avg = decay * avg + (1 -
        decay) * w`` (the first step copies ``w``). ``"swa"``: the equal-weight
        mean of the weights at the end of each epoch.
    decay : float
        The EMA's decay per step.
    start : int
        Epochs trained before averaging starts; before, the optimizer's
        weights are used as they are.

    BatchNorm's running statistics are averaged as the weights are
    (``use_buffers=True``): no extra pass over the data.
    """

    def __init__(self, method="ema", decay=0.999, start=0):
        self.method = method
        self.decay = decay
        self.start = start

    def initialize(self):
        self.averaged_ = None
        self.raw_ = None  # the optimizer's weights while the module holds the averaged ones
        self.swa_epoch_ = None  # the last epoch SWA averaged
        return self

    def _averaging(self, net):
        return len(net.history) - 1 >= self.start

    def _ensure_model(self, net):
        if self.averaged_ is None:
            fn = get_ema_multi_avg_fn(self.decay) if self.method == "ema" else None
            self.averaged_ = AveragedModel(net.module_, multi_avg_fn=fn, use_buffers=True)
        return self.averaged_

    def on_train_begin(self, net, **kwargs):
        self._ensure_model(net)

    def on_epoch_begin(self, net, **kwargs):
        if self.raw_ is not None:  # train on with the optimizer's weights
            _copy(_tensors(net.module_), self.raw_)
            self.raw_ = None

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.method == "ema" and self._averaging(net):
            self.averaged_.update_parameters(net.module_)

    def _swap_in(self, net):
        """Put the averaged weights into the module, keeping the optimizer's aside."""
        if self.raw_ is not None or self.averaged_ is None or not int(self.averaged_.n_averaged):
            return
        tensors = _tensors(net.module_)
        self.raw_ = [t.detach().clone() for t in tensors]
        _copy(tensors, _tensors(self.averaged_.module))

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            self._end_of_training_pass(net)

    def _end_of_training_pass(self, net):
        epoch = len(net.history)
        if self.method == "swa" and self._averaging(net) and self.swa_epoch_ != epoch:
            self.averaged_.update_parameters(
                net.module_
            )  # the optimizer's weights: not swapped yet
            self.swa_epoch_ = epoch
        self._swap_in(net)

    def on_epoch_end(self, net, **kwargs):
        self._end_of_training_pass(net)  # without validation batches

    def on_train_end(self, net, **kwargs):
        self._swap_in(net)  # an interrupted epoch: predict with the averaged weights too

    def training_state(self, net):
        """What a resumed fit needs: the averaged model and the optimizer's weights."""
        return {
            "averaged": None if self.averaged_ is None else self.averaged_.state_dict(),
            "raw": self.raw_,
            "swa_epoch_": self.swa_epoch_,
        }

    def load_training_state(self, net, state):
        if state["averaged"] is not None:
            self._ensure_model(net).load_state_dict(state["averaged"])
        self.raw_ = state["raw"]
        self.swa_epoch_ = state["swa_epoch_"]
