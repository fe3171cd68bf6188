"""The skorch net of the estimators: one logit tensor per attribute, a summed loss.

Customised through skorch's public hooks only (``get_loss``,
``get_iterator``, ``train_step_single``, ``train_step``,
``validation_step``, ``evaluation_step``, ``infer``).
"""

import contextlib
import itertools
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import PrintLog
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor
from torch.utils.data import Dataset, RandomSampler

from .._compat import tensor_version
from .._config import get_config
from .._data import releasing_batches
from ..backbones import fold_batch_norm, has_forward_hooks
from ._callbacks import EpochLog
from ._weighting import batch_sample_weight, module_inputs, weighted_head_loss

__all__ = ["MISSING_LABEL", "MultiHeadNet", "to_device"]

# The code of a missing label (gar_sklearn._targets.MISSING): torch's default ignore_index.
MISSING_LABEL = -100


def to_device(x, device):
    """``x`` (a tensor, or a dict of them) on ``device``, copied without blocking: from
    pinned memory the copy to a GPU overlaps with the work already queued. float16
    tensors (cached features, stored in half precision) become float32 there, after
    the copy: half the bytes cross the bus. Anything else is returned as it is.
    """
    if isinstance(x, Mapping):
        return {k: to_device(v, device) for k, v in x.items()}
    if not isinstance(x, torch.Tensor) or device is None:
        return x
    x = x.to(device, non_blocking=True)
    return x.float() if x.dtype == torch.float16 else x


class MultiHeadNet(NeuralNet):
    """A skorch ``NeuralNet`` whose module returns one logit tensor per attribute.

    The loss is the (weighted) sum of the heads' cross-entropies. Datasets
    that have ``set_epoch`` are told the epoch before each training pass, so
    augmentation differs every epoch. With ``seed`` set, the training
    loader's generators (its shuffling and worker seeds) are re-seeded from
    ``(seed, epoch)`` at the start of every epoch, so that an epoch's batches
    depend on nothing but the seed and the epoch: a resumed fit draws what an
    uninterrupted one would. Prediction runs :meth:`inference_module` under
    ``torch.inference_mode`` and, when ``amp_dtype`` is set, autocast.

    Parameters
    ----------
    loss_weights : list of float or None
        Each head's weight in the summed loss (None: all 1).
    amp_dtype : torch.dtype or None
        Autocast dtype; float16 trains with a gradient scaler.
    seed : int or None
        Seeds each epoch's shuffling (see above).
    soft_targets : dict or None
        ``{head index: (n_classes, n_classes) tensor}``: for such a head, the
        target of true class ``c`` is the distribution in row ``c`` (label
        distribution learning, e.g. for ordinal age classes).
    """

    def __init__(
        self, *args, loss_weights=None, amp_dtype=None, seed=None, soft_targets=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.loss_weights = loss_weights
        self.amp_dtype = amp_dtype
        self.seed = seed
        self.soft_targets = soft_targets

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
        device_type = torch.device(self.device).type
        self.grad_scaler_ = torch.amp.GradScaler(device_type) if use_scaler else None
        return self

    def infer(self, x, **fit_params):
        """The module's outputs for the batch ``x``, moved with :func:`to_device` and
        run under autocast when ``amp_dtype`` is set."""
        x = to_device(x, self.device)
        with self._autocast():
            return super().infer(module_inputs(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The weighted sum over heads of each head's cross-entropy, averaged over the rows
        that have its label: a label coded ``MISSING_LABEL`` (-100) counts for nothing,
        and a head with no label in the batch adds 0. With sample weights in the batch,
        each row's loss is weighted (see :func:`._weighting.weighted_head_loss`)."""
        y_true = to_device(y_true, self.device)
        weights = self.loss_weights or [1.0] * len(y_pred)
        total = 0.0
        soft = self.soft_targets or {}
        sample_weight = batch_sample_weight(X, self.device)  # see _weighting.SampleDataset
        for k, (logits, w) in enumerate(zip(y_pred, weights)):
            y = y_true[:, k]
            labelled = y != MISSING_LABEL
            if sample_weight is not None:
                loss = weighted_head_loss(self.criterion_, logits, y, sample_weight, soft.get(k))
            elif k in soft:  # cross-entropy against a label distribution
                target = soft[k].to(logits.device)[y.clamp(min=0)]
                log_p = torch.log_softmax(logits.float(), dim=1)
                per_row = -(target * log_p).sum(dim=1)
                loss = (per_row * labelled).sum() / labelled.sum().clamp(min=1)
            else:
                # the criterion ignores MISSING_LABEL rows (its ignore_index) but gives NaN when
                # every row lacks the label: then one row gets class 0 and the loss is zeroed
                # (without a device sync to test for that case)
                any_label = labelled.any()
                y = torch.cat([torch.where(any_label, y[:1], torch.zeros_like(y[:1])), y[1:]])
                loss = self.criterion_(logits.float(), y) * any_label
            total = total + w * loss
        return total

    def get_iterator(self, dataset, training=False):
        """skorch's DataLoader, passed through :meth:`prepare_loader`; for training,
        one told the epoch each time an epoch begins (its persistent workers too,
        through shared memory), that shuffles with a generator of its own (see
        :class:`_EpochLoader`)."""
        if not training:
            loader = self.prepare_loader(super().get_iterator(dataset, training=False))
            return _ReleasingLoader(loader) if loader.num_workers else loader
        kwargs = self.get_params_for("iterator_train")
        if kwargs.get("persistent_workers") and hasattr(dataset, "set_epoch"):
            dataset = _SharedEpoch(dataset)
        kwargs.setdefault("batch_size", self.batch_size)  # as skorch's get_iterator
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        generators = [kwargs.get("generator")]
        if kwargs.pop("shuffle", False):
            kwargs["sampler"] = RandomSampler(dataset, generator=torch.Generator())
            generators.append(kwargs["sampler"].generator)
        loader = self.prepare_loader(self.iterator_train(dataset, **kwargs))
        return _EpochLoader(self, loader, dataset, [g for g in generators if g is not None])

    def prepare_loader(self, loader):
        """A hook for subclasses to adapt each DataLoader before use; here, the loader itself."""
        return loader

    def set_mode(self, training):
        """Put the module and the criterion in training or evaluation mode.

        Only where the mode changes: walking the 250 submodules of
        MobileNetV2 before every batch would cost as much as a training step
        of the heads on cached features.
        """
        for module in (self.module_, self.criterion_):
            if isinstance(module, torch.nn.Module) and module.training != bool(training):
                module.train(training)

    def train_step_single(self, batch, **fit_params):
        self.set_mode(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        (loss if self.grad_scaler_ is None else self.grad_scaler_.scale(loss)).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step(batch, **fit_params)
        # float16: the loss is scaled; callbacks see the unscaled gradients (clipping), and
        # the scaler skips the step when they overflowed
        self.optimizer_.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        self.grad_scaler_.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return step

    def validation_step(self, batch, **fit_params):
        self.set_mode(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(self, batch, training=False):
        Xi, _ = unpack_data(batch)
        self.set_mode(training)
        if training:
            with torch.inference_mode():
                return self.infer(Xi)
        return self.inference_step(Xi, self.inference_module())

    def inference_step(self, Xi, module):
        """Outputs of ``module`` (:meth:`inference_module`) for the batch ``Xi``, under
        inference mode and autocast. Loops over batches get the module once: checking
        that it is current walks every parameter."""
        x = to_tensor(to_device(module_inputs(Xi), self.device), device=self.device)
        with torch.inference_mode(), self._autocast():
            return module(**x) if isinstance(x, Mapping) else module(x)

    def inference_module(self):
        """``module_`` as prediction runs it: with the ``fold_batch_norm`` switch
        on (:func:`gar_sklearn.get_config`), an evaluation-mode copy with BatchNorm
        folded into the convolutions (:func:`~gar_sklearn.backbones.fold_batch_norm`);
        ``module_`` itself keeps its mode.

        The copy is made on first use and kept until a parameter or buffer of
        ``module_`` changes (training steps, loading a state) or ``module_``
        is replaced; it costs one more copy of the weights, and is not
        pickled. Where a forward hook is registered on ``module_`` or a
        submodule, or the switch is off, ``module_`` itself, in evaluation
        mode: hooks see the modules they were registered on.
        """
        module = self.module_
        if not get_config()["fold_batch_norm"] or has_forward_hooks(module):
            self.__dict__.pop("_inference_cache", None)
            self.set_mode(False)
            return module
        # an in-place update (optimizer step, load_state_dict) bumps a tensor's version;
        # moving it to another device gives it new storage
        key = (id(module),) + tuple(
            (t.data_ptr(), tensor_version(t))
            for t in itertools.chain(module.parameters(), module.buffers())
        )
        cached = self.__dict__.get("_inference_cache")
        if cached is None or cached[0] != key:
            self.__dict__.pop("_inference_cache", None)  # the stale copy goes before the new one
            cached = self._inference_cache = (key, fold_batch_norm(module))
        return cached[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_inference_cache", None)  # rebuilt on first use: one copy of the weights
        return state

    def iter_logits(self, dataset):
        """Yield ``(logits_tuple, flags)`` batch by batch, logits as float32 CPU tensors."""
        module = self.inference_module()
        for batch in self.get_iterator(dataset, training=False):
            out = self.inference_step(unpack_data(batch)[0], module)
            yield tuple(o.float().cpu() for o in out), batch[1]


def _epoch_seed(seed, epoch):
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)
    return int(state[0] >> 1)


class _SharedEpoch(Dataset):
    """``dataset`` whose epoch reaches persistent DataLoader workers.

    Such a worker keeps the copy of the dataset it started with; ``set_epoch``
    also writes the epoch into shared memory, which each copy reads before
    each batch. The loader's workers are resumed after the epoch is set and
    before any batch of the epoch is requested, so no batch sees a stale epoch.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.shared = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self):
        return len(self.dataset)

    def set_epoch(self, epoch):
        self.shared.fill_(int(epoch))
        self.dataset.set_epoch(epoch)

    def _current(self):
        epoch = int(self.shared)
        if getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset

    def __getitems__(self, indices):
        dataset = self._current()
        if hasattr(dataset, "__getitems__"):
            return dataset.__getitems__(indices)
        return [dataset[i] for i in indices]

    def __getitem__(self, index):
        return self._current()[index]


class _ReleasingLoader:
    """A DataLoader with workers, iterated through :func:`~gar_sklearn._data.releasing_batches`."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        yield from releasing_batches(self.loader)

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        if name == "loader":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


class _EpochLoader(_ReleasingLoader):
    """A training DataLoader that is told the epoch each time an epoch starts iterating it.

    skorch builds the training iterator once per fit; the epoch is known only
    when each epoch begins (the history has gained its row). Workers started
    for the epoch get the dataset with its epoch set; persistent workers read
    it from shared memory (:class:`_SharedEpoch`). ``generators`` (the
    sampler's and the loader's) are re-seeded from ``(seed, epoch)``. The
    sampler shuffles with a generator of its own: a loader draws its
    workers' seeds from the loader's generator only when it starts workers,
    so that with one generator an epoch's order would depend on whether the
    workers persist, and a resumed fit would not draw what an uninterrupted
    one did.
    """

    def __init__(self, net, loader, dataset, generators=()):
        super().__init__(loader)
        self.net = net
        self.dataset = dataset
        self.generators = list(generators)

    def __iter__(self):
        epoch = max(len(self.net.history) - 1, 0)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        if self.net.seed is not None:
            for generator in self.generators:
                generator.manual_seed(_epoch_seed(self.net.seed, epoch))
        yield from super().__iter__()
