"""skorch glue shared by the estimators: the multi-head net, its loss, iterators and callbacks."""

import contextlib
import itertools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, PrintLog, ProgressBar
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._data import releasing_batches
from ._progress import progress_bar, write_line
from .backbones import fold_batch_norm, has_forward_hooks

__all__ = [
    "MultiHeadNet",
    "HeadAccuracy",
    "Unfreeze",
    "TrainingCheckpoint",
    "resolve_device",
    "drop_training_state",
    "training_finished",
    "EpochLog",
    "BatchProgressBar",
]


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


_AMP_DTYPES = {
    "float32": None,
    "fp32": None,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


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
    augmentation differs every epoch. With ``seed`` set, the training
    loader's generator (its shuffling and worker seeds) is re-seeded from
    ``(seed, epoch)`` at the start of every epoch, so that an epoch's batches
    depend on nothing but the seed and the epoch: a resumed fit draws what an
    uninterrupted one would. Prediction runs :meth:`inference_module` (BatchNorm
    folded) under ``torch.inference_mode`` and, when ``amp_dtype`` is set,
    autocast.
    """

    def __init__(
        self, *args, loss_weights=None, amp_dtype=None, seed=None, soft_targets=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.loss_weights = loss_weights
        self.amp_dtype = amp_dtype
        self.seed = seed
        self.soft_targets = (
            soft_targets  # {head index: (n_classes, n_classes) target distributions}
        )

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=self.amp_dtype)

    def get_default_callbacks(self):
        # the epoch table goes above any open progress bar, and without colour codes off a terminal
        return [
            (name, EpochLog() if type(cb) is PrintLog else cb)
            for name, cb in super().get_default_callbacks()
        ]

    def notify(self, method_name, **cb_kwargs):
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            # skorch runs the epoch table last, so early stopping (which raises) would hide
            # the epoch that triggered it: print that row before stopping
            if method_name == "on_epoch_end":
                for _, cb in self.callbacks_:
                    if isinstance(cb, PrintLog):
                        cb.on_epoch_end(self, **cb_kwargs)
            raise

    def initialize(self):
        super().initialize()
        use_scaler = self.amp_dtype == torch.float16
        self.grad_scaler_ = (
            torch.amp.GradScaler(torch.device(self.device).type) if use_scaler else None
        )
        return self

    def infer(self, x, **fit_params):
        with self._autocast():
            return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(self.device)
        weights = self.loss_weights or [1.0] * len(y_pred)
        total = 0.0
        soft = self.soft_targets or {}
        for k, (logits, w) in enumerate(zip(y_pred, weights)):
            if (
                k in soft
            ):  # cross-entropy against a label distribution (ordinal classes such as age)
                target = soft[k].to(logits.device)[y_true[:, k]]
                loss = -(target * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
            else:
                loss = self.criterion_(logits.float(), y_true[:, k])
            total = total + w * loss
        return total

    def get_iterator(self, dataset, training=False):
        loader = super().get_iterator(dataset, training=training)
        return _EpochLoader(self, loader, dataset) if training else loader

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

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking MobileNetV2's 250 submodules takes
        # about 1 ms, as long as a whole step of the heads on cached features: only on a change
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != bool(training):
                module.train(training)

    def evaluation_step(self, batch, training=False):
        Xi, _ = unpack_data(batch)
        self._set_training(training)
        if training:
            with torch.inference_mode():
                return self.infer(Xi)
        return self.inference_step(Xi, self.inference_module())

    def inference_step(self, Xi, module):
        """Outputs of ``module`` (:meth:`inference_module`) for the batch ``Xi``, under
        inference mode and autocast. Loops over batches get the module once: checking
        that it is current costs about half a millisecond for MobileNetV2."""
        x = to_tensor(Xi, device=self.device)
        with torch.inference_mode(), self._autocast():
            return module(**x) if isinstance(x, Mapping) else module(x)

    def inference_module(self):
        """``module_`` as prediction runs it: an evaluation-mode copy with BatchNorm
        folded into the convolutions (:func:`~gar_sklearn.backbones.fold_batch_norm`);
        ``module_`` itself keeps its mode.

        Made on first use and kept until a parameter or buffer of ``module_``
        changes (training steps, loading a state) or ``module_`` is replaced;
        it costs one more copy of the weights, and is not pickled. Where a
        forward hook is registered on ``module_`` or a submodule, ``module_``
        itself, in evaluation mode: hooks see the modules they were registered on.
        """
        module = self.module_
        if has_forward_hooks(module):
            self.__dict__.pop("_inference_cache", None)
            self._set_training(False)
            return module
        # an in-place update (optimizer step, load_state_dict) bumps a tensor's version;
        # moving it to another device gives it new storage
        key = (id(module),) + tuple(
            (t.data_ptr(), t._version)
            for t in itertools.chain(module.parameters(), module.buffers())
        )
        cached = self.__dict__.get("_inference_cache")
        if cached is None or cached[0] != key:
            self.__dict__.pop(
                "_inference_cache", None
            )  # the stale copy goes before the new one is made
            cached = self._inference_cache = (key, fold_batch_norm(module))
        return cached[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop(
            "_inference_cache", None
        )  # rebuilt on first use: pickles hold one copy of the weights
        return state

    def iter_logits(self, dataset):
        """Yield ``(logits_tuple, flags)`` batch by batch, logits as float32 CPU tensors."""
        module = self.inference_module()
        for batch in self.get_iterator(dataset, training=False):
            out = self.inference_step(unpack_data(batch)[0], module)
            yield tuple(o.float().cpu() for o in out), batch[1]


def _epoch_seed(seed, epoch):
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] >> 1)


class _EpochLoader:
    """A training DataLoader that is told the epoch each time an epoch starts iterating it.

    skorch builds the training iterator once per fit; the epoch is known only
    when each epoch begins (the history has gained its row). Workers are
    started afresh for every epoch and get the dataset with its epoch set.
    """

    def __init__(self, net, loader, dataset):
        self.net = net
        self.loader = loader
        self.dataset = dataset

    def __iter__(self):
        epoch = max(len(self.net.history) - 1, 0)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        generator = getattr(self.loader, "generator", None)
        if self.net.seed is not None and generator is not None:
            generator.manual_seed(_epoch_seed(self.net.seed, epoch))
        yield from releasing_batches(self.loader)  # else resident memory grows by a batch per batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        if name == "loader":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


def training_finished(net):
    """Whether the last fit of ``net`` ran to its end: all epochs, or stopped early.

    skorch stops early by raising KeyboardInterrupt, and also swallows a
    user's: only the early-stopping callback's count tells them apart.
    """
    for _, cb in getattr(net, "callbacks_", ()):
        if isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience:
            return True
    history = net.history
    return len(history) >= net.max_epochs and "dur" in history[-1]


def drop_incomplete_epoch(net):
    """Remove the history row of an epoch cut short (it has no losses); return whether there was one."""
    if len(net.history) and "dur" not in net.history[-1]:
        net.history.pop()
        return True
    return False


# ---------------------------------------------------------------- checkpoints
def training_state(net):
    """Everything a resumed fit needs to continue exactly: module, optimizer,
    scheduler and early-stopping state, history, random number generators."""
    callbacks = {}
    for name, cb in net.callbacks_:
        if isinstance(cb, EarlyStopping):
            callbacks[name] = {
                "misses_": cb.misses_,
                "dynamic_threshold_": cb.dynamic_threshold_,
                "best_epoch_": cb.best_epoch_,
                "best_model_weights_": cb.best_model_weights_,
            }
        elif isinstance(cb, LRScheduler) and cb.lr_scheduler_ is not None:
            callbacks[name] = {
                "state_dict": cb.lr_scheduler_.state_dict(),
                "batch_idx_": cb.batch_idx_,
            }
        elif hasattr(cb, "best_score_"):  # skorch's scoring callbacks: the history's "_best" flags
            callbacks[name] = {"best_score_": cb.best_score_}
    rng = {"torch": torch.get_rng_state()}
    if str(net.device).startswith("cuda") and torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "epoch": len(net.history),
        "module": net.module_.state_dict(),
        "stem_frozen": bool(net.module_.stem_frozen),
        "optimizers": {name: getattr(net, name + "_").state_dict() for name in net._optimizers},
        "callbacks": callbacks,
        "history": list(net.history),
        "rng": rng,
        "grad_scaler": None if net.grad_scaler_ is None else net.grad_scaler_.state_dict(),
    }


def restore_training_state(net, state):
    """Put a :func:`training_state` back into an initialized net.

    Called before the fit loop (module, history, optimizers: what the
    callbacks' ``on_train_begin`` reads) and again from the checkpoint
    callback's ``on_train_begin``, after the other callbacks have reset
    themselves (schedulers, early stopping, random state).
    """
    from skorch.history import History

    net.module_.load_state_dict(state["module"])
    net.module_.set_stem_frozen(state["stem_frozen"])
    net.history_ = History(state["history"])
    for name, opt_state in state["optimizers"].items():
        getattr(net, name + "_").load_state_dict(opt_state)
    callbacks = dict(net.callbacks_)
    for name, cb_state in state["callbacks"].items():
        cb = callbacks.get(name)
        if isinstance(cb, EarlyStopping):
            for attr, value in cb_state.items():
                setattr(cb, attr, value)
        elif isinstance(cb, LRScheduler) and cb.lr_scheduler_ is not None:
            cb.lr_scheduler_.load_state_dict(cb_state["state_dict"])
            cb.batch_idx_ = cb_state["batch_idx_"]
        elif cb is not None and "best_score_" in cb_state:
            cb.best_score_ = cb_state["best_score_"]
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and str(net.device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    if state["grad_scaler"] is not None and net.grad_scaler_ is not None:
        net.grad_scaler_.load_state_dict(state["grad_scaler"])


class TrainingCheckpoint(Callback):
    """Write ``last.pt`` (the training state) after every epoch and ``best.pt``
    (a model file, loadable with :func:`gar_sklearn.load`) whenever the
    monitored loss improves, into ``directory``.

    Put it after every other callback: it records their state at the end of
    the epoch, and restores it after they reset themselves when training
    starts (see :meth:`resume`).
    """

    def __init__(self, directory, fingerprint, model_template=None, monitor="valid_loss"):
        self.directory = directory
        self.fingerprint = fingerprint
        self.model_template = model_template
        self.monitor = monitor

    def initialize(self):
        self.pending_ = None
        return self

    def resume(self, state):
        """Restore ``state`` when training (re)starts."""
        self.pending_ = state

    def on_train_begin(self, net, **kwargs):
        if self.pending_ is not None:
            restore_training_state(net, self.pending_)
            self.pending_ = None

    def _write_last(self, net, finished):
        from ._persistence import write_checkpoint

        state = training_state(net)
        state.update(fingerprint=self.fingerprint, finished=finished)
        write_checkpoint(Path(self.directory) / "last.pt", state)

    def on_epoch_end(self, net, **kwargs):
        os.makedirs(self.directory, exist_ok=True)
        self._write_last(net, finished=False)
        if self.model_template is not None and net.history[-1].get(f"{self.monitor}_best"):
            from ._persistence import write_model_snapshot

            write_model_snapshot(Path(self.directory) / "best.pt", self.model_template, net)

    def on_train_end(self, net, **kwargs):
        # an interrupted fit keeps the last complete epoch's state, to resume from
        if len(net.history) and training_finished(net):
            self._write_last(net, finished=True)


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


class EpochLog(PrintLog):
    """skorch's epoch table, printed above any open progress bar (``tqdm.write``) and
    without colour codes when stdout is not a terminal; silent when the net's
    ``verbose`` is 0."""

    def _sink(self, text, verbose):
        if verbose:
            write_line(text)


class BatchProgressBar(ProgressBar):
    """skorch's per-epoch batch bar (training and validation batches, with the
    running losses), drawn only where :func:`gar_sklearn._progress.show_progress`
    allows at the net's ``verbose`` level."""

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        total = self._get_batches_per_epoch(net, dataset_train, dataset_valid)
        self.pbar_ = progress_bar(
            net.verbose, total=total, desc=f"epoch {len(net.history)}", unit="batch"
        )


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
