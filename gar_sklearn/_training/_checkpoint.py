"""Training checkpoints: the state a resumed fit needs, written after every epoch."""

import os
import warnings
from pathlib import Path

from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.history import History

from .._persistence import remove_stale_temporaries, write_checkpoint
from ._random import module_generator

__all__ = [
    "TrainingCheckpoint",
    "drop_incomplete_epoch",
    "drop_training_state",
    "restore_training_state",
    "training_finished",
    "training_state",
]


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


def _callback_states(net):
    states = {}
    for name, cb in net.callbacks_:
        if isinstance(cb, EarlyStopping):
            states[name] = {
                "misses_": cb.misses_,
                "dynamic_threshold_": cb.dynamic_threshold_,
                "best_epoch_": cb.best_epoch_,
                "best_model_weights_": cb.best_model_weights_,
            }
        elif isinstance(cb, LRScheduler) and cb.lr_scheduler_ is not None:
            states[name] = {
                "state_dict": cb.lr_scheduler_.state_dict(),
                "batch_idx_": cb.batch_idx_,
            }
        elif hasattr(cb, "training_state"):  # the callback says what it needs (weight averaging)
            states[name] = {"training_state": cb.training_state(net)}
        elif hasattr(cb, "best_score_"):  # skorch's scoring callbacks: the history's "_best" flags
            states[name] = {"best_score_": cb.best_score_}
    return states


def training_state(net):
    """Everything a resumed fit needs to continue exactly: module, optimizer,
    scheduler and early-stopping state, history, and the state of the generator
    the module's random layers draw from (see ``_random``)."""
    generator = module_generator(net.module_)
    rng = {}
    if generator is not None:
        rng = {"layers": generator.get_state(), "layers_device": generator.device.type}
    return {
        "epoch": len(net.history),
        "module": net.module_.state_dict(),
        "stem_frozen": bool(net.module_.stem_frozen),
        "optimizers": {"optimizer": net.optimizer_.state_dict()},
        "callbacks": _callback_states(net),
        "history": list(net.history),
        "rng": rng,
        "grad_scaler": None if net.grad_scaler_ is None else net.grad_scaler_.state_dict(),
    }


def _restore_callbacks(net, states):
    callbacks = dict(net.callbacks_)
    for name, cb_state in states.items():
        cb = callbacks.get(name)
        if isinstance(cb, EarlyStopping):
            for attr, value in cb_state.items():
                setattr(cb, attr, value)
        elif isinstance(cb, LRScheduler) and cb.lr_scheduler_ is not None:
            cb.lr_scheduler_.load_state_dict(cb_state["state_dict"])
            cb.batch_idx_ = cb_state["batch_idx_"]
        elif cb is not None and "training_state" in cb_state:
            cb.load_training_state(net, cb_state["training_state"])
        elif cb is not None and "best_score_" in cb_state:
            cb.best_score_ = cb_state["best_score_"]


def restore_training_state(net, state):
    """Put a :func:`training_state` back into an initialized net.

    Called before the fit loop (module, history, optimizers: what the
    callbacks' ``on_train_begin`` reads) and again from the checkpoint
    callback's ``on_train_begin``, after the other callbacks have reset
    themselves (schedulers, early stopping, random state).
    """
    net.module_.load_state_dict(state["module"])
    net.module_.set_stem_frozen(state["stem_frozen"])
    net.history_ = History(state["history"])
    net.optimizer_.load_state_dict(state["optimizers"]["optimizer"])
    _restore_callbacks(net, state["callbacks"])
    generator = module_generator(net.module_)
    # a generator's state fits only its kind of device (a fit resumed on another device
    # goes on with its own draws)
    if generator is not None and state["rng"].get("layers_device") == generator.device.type:
        generator.set_state(state["rng"]["layers"])
    if state["grad_scaler"] is not None and net.grad_scaler_ is not None:
        net.grad_scaler_.load_state_dict(state["grad_scaler"])


class TrainingCheckpoint(Callback):
    """Write ``last.pt`` (the training state) after every epoch and, with
    ``write_best``, ``best.pt`` whenever the monitored loss improves, into
    ``directory``.

    Put it after every other callback: it records their state at the end of
    the epoch, and restores it after they reset themselves when training
    starts (see :meth:`resume`).

    Parameters
    ----------
    directory : str
    fingerprint : dict
        Identifies the fit (parameters and data); stored with the state and
        checked when resuming.
    write_best : callable or None
        ``write_best(path, net)`` writes a model file of the net's current
        weights.
    monitor : str
        The history key whose ``<monitor>_best`` flag marks a best epoch.
    """

    def __init__(self, directory, fingerprint, write_best=None, monitor="valid_loss"):
        self.directory = directory
        self.fingerprint = fingerprint
        self.write_best = write_best
        self.monitor = monitor

    def initialize(self):
        self.pending_ = None
        self.last_good_ = None  # the epoch of the last last.pt this fit wrote
        self.failing_ = set()  # the files whose last write failed
        return self

    def resume(self, state):
        """Restore ``state`` when training (re)starts."""
        self.pending_ = state

    def on_train_begin(self, net, **kwargs):
        # an unusable folder fails here, before any training time is spent
        os.makedirs(self.directory, exist_ok=True)
        for name in ("last.pt", "best.pt"):
            remove_stale_temporaries(Path(self.directory) / name)
        if self.pending_ is not None:
            restore_training_state(net, self.pending_)
            self.last_good_ = self.pending_["epoch"]
            self.pending_ = None

    def _write(self, name, write, net):
        """``write(path)`` of the file ``name``; a failed write (a full disk) warns, once
        until a write succeeds again, and training goes on."""
        path = Path(self.directory) / name
        try:
            write(path)
        except OSError as exc:
            if not self.failing_:  # once, until every file is written again
                warnings.warn(self._failure_message(path, exc, net), UserWarning, stacklevel=2)
            self.failing_.add(name)
            return False
        self.failing_.discard(name)
        return True

    def _failure_message(self, path, exc, net):
        last = Path(self.directory) / "last.pt"
        if path.name != "last.pt":
            kept = f"{str(path)!r} is not updated"
        elif self.last_good_ is not None:
            kept = f"{str(last)!r} holds epoch {self.last_good_}, the last written"
        elif last.exists():
            kept = f"{str(last)!r} is the one there before this fit"
        else:
            kept = "there is no checkpoint to resume from yet"
        return (
            f"Could not write the checkpoint of epoch {len(net.history)} to {str(path)!r}: "
            f"{exc} Training goes on and writes again after each epoch; until a write "
            f"succeeds, {kept}."
        )

    def _write_last(self, net, finished):
        state = training_state(net)
        state.update(fingerprint=self.fingerprint, finished=finished)
        if self._write("last.pt", lambda path: write_checkpoint(path, state), net):
            self.last_good_ = state["epoch"]

    def on_epoch_end(self, net, **kwargs):
        self._write_last(net, finished=False)
        if self.write_best is not None and net.history[-1].get(f"{self.monitor}_best"):
            self._write("best.pt", lambda path: self.write_best(path, net), net)

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
    net.optimizer_ = None
    net.train_split = None
    for _, callback in net.callbacks_:
        for attr in ("lr_scheduler_", "best_model_weights_", "averaged_", "raw_"):
            if getattr(callback, attr, None) is not None:
                setattr(callback, attr, None)
    return net
