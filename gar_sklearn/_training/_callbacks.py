"""The estimators' skorch callbacks: epoch table, progress bar, per-head accuracy, unfreezing."""

import numpy as np
from skorch.callbacks import Callback, PrintLog, ProgressBar

from .._progress import progress_bar, write_line

__all__ = ["BatchProgressBar", "EpochLog", "HeadAccuracy", "Unfreeze"]


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
    predictions skorch already computed for the validation loss: no extra pass.

    A head's accuracy counts the validation rows that have its label (a
    missing label is coded below 0); a head with none gets no entry, and
    ``valid_acc`` is the mean of the recorded heads."""

    def __init__(self, attributes):
        self.attributes = attributes

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = np.zeros(len(self.attributes))
        self.count_ = np.zeros(len(self.attributes))

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        y = batch[1].to(y_pred[0].device)
        for k, logits in enumerate(y_pred):
            # argmax is never negative: a missing label is never a hit
            self.correct_[k] += (logits.argmax(1) == y[:, k]).sum().item()
            self.count_[k] += (y[:, k] >= 0).sum().item()

    def on_epoch_end(self, net, **kwargs):
        counted = self.count_ > 0
        if not counted.any():
            return
        accs = self.correct_[counted] / self.count_[counted]
        for a, acc in zip(np.asarray(self.attributes, dtype=object)[counted], accs):
            net.history.record(f"valid_acc_{a}", float(acc))
        net.history.record("valid_acc", float(accs.mean()))


class Unfreeze(Callback):
    """Release the frozen stem of the module at the start of epoch ``epoch + 1``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch + 1 and net.module_.stem_frozen:
            net.module_.set_stem_frozen(False)
