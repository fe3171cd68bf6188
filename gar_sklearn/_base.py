"""skorch glue shared by the estimators: the multi-head net, its loss, iterators and callbacks."""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

__all__ = ["MultiHeadNet", "HeadAccuracy", "Unfreeze", "resolve_device", "drop_training_state"]


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else is checked."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {device!r} instead."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' to fall back to the CPU."
        )
    return str(dev)


_AMP_DTYPES = {"float32": None, "fp32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}


def resolve_precision(precision):
    if precision not in _AMP_DTYPES:
        raise ValueError(
            f"The 'precision' parameter must be one of {list(_AMP_DTYPES)}. Got {precision!r} instead."
        )
    return _AMP_DTYPES[precision]


class MultiHeadNet(NeuralNet):
    """A skorch ``NeuralNet`` whose module returns one logit tensor per attribute.

    The loss is the (weighted) sum of the heads' cross-entropies. Datasets
    that have ``set_epoch`` are told the epoch before each training pass, so
    augmentation differs every epoch. Prediction runs under
    ``torch.inference_mode`` and, when ``amp_dtype`` is set, autocast.
    """

    def __init__(self, *args, loss_weights=None, amp_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_weights = loss_weights
        self.amp_dtype = amp_dtype

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=self.amp_dtype)

    def initialize(self):
        super().initialize()
        use_scaler = self.amp_dtype == torch.float16
        self.grad_scaler_ = torch.amp.GradScaler(torch.device(self.device).type) if use_scaler else None
        return self

    def infer(self, x, **fit_params):
        with self._autocast():
            return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(self.device)
        weights = self.loss_weights or [1.0] * len(y_pred)
        total = 0.0
        for k, (logits, w) in enumerate(zip(y_pred, weights)):
            total = total + w * self.criterion_(logits.float(), y_true[:, k])
        return total

    def get_iterator(self, dataset, training=False):
        if training and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(len(self.history))
        return super().get_iterator(dataset, training=training)

    def train_step_single(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step(batch, **fit_params)
        # fp16: scale the loss, unscale-and-step through the GradScaler
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        for name in self._optimizers:
            self.grad_scaler_.step(getattr(self, name + "_"))
        self.grad_scaler_.update()
        return step

    def evaluation_step(self, batch, training=False):
        Xi, _ = unpack_data(batch)
        self._set_training(training)
        with torch.inference_mode():
            return self.infer(Xi)

    def iter_logits(self, dataset):
        """Yield ``(logits_tuple, flags)`` batch by batch, logits as float32 CPU tensors."""
        for batch in self.get_iterator(dataset, training=False):
            out = self.evaluation_step(batch, training=False)
            yield tuple(o.float().cpu() for o in out), batch[1]


def drop_training_state(net):
    """Keep the module and the history; drop what only training needs.

    The optimizer's moments, the validation dataset (decoded images or cached
    features), the schedulers and early stopping's copy of the weights would
    otherwise double or triple the size of a pickled estimator.
    """
    for name in net._optimizers:
        setattr(net, name + "_", None)
    net.train_split = None
    for _, callback in net.callbacks_:
        for attr in ("lr_scheduler_", "best_model_weights_"):
            if getattr(callback, attr, None) is not None:
                setattr(callback, attr, None)
    return net


class HeadAccuracy(Callback):
    """Record each head's validation accuracy (``valid_acc_<attribute>``) from the
    predictions skorch already computed for the validation loss: no extra pass."""

    def __init__(self, attributes):
        self.attributes = attributes

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = np.zeros(len(self.attributes))
        self.count_ = 0

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        y = batch[1].to(y_pred[0].device)
        for k, logits in enumerate(y_pred):
            self.correct_[k] += (logits.argmax(1) == y[:, k]).sum().item()
        self.count_ += len(y)

    def on_epoch_end(self, net, **kwargs):
        if not self.count_:
            return
        accs = self.correct_ / self.count_
        for a, acc in zip(self.attributes, accs):
            net.history.record(f"valid_acc_{a}", float(acc))
        net.history.record("valid_acc", float(accs.mean()))


class Unfreeze(Callback):
    """Release the frozen stem of the module at the start of epoch ``epoch + 1``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch + 1 and net.module_.stem_frozen:
            net.module_.set_stem_frozen(False)
