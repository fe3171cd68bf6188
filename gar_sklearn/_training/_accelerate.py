"""Data-parallel training through Hugging Face accelerate (skorch's ``AccelerateMixin``)."""

import torch.nn.functional as F
from skorch.hf import AccelerateMixin

from ._net import MultiHeadNet

__all__ = ["AcceleratedMultiHeadNet", "CrossEntropy"]


class CrossEntropy:
    """``torch.nn.CrossEntropyLoss`` as a plain callable: the accelerator prepares every
    criterion that is a module, and on several CPU processes wraps it in
    DistributedDataParallel, which refuses a module without parameters."""

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = label_smoothing

    def __call__(self, logits, target):
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)


class AcceleratedMultiHeadNet(AccelerateMixin, MultiHeadNet):
    """:class:`~gar_sklearn._training.MultiHeadNet` trained through an ``accelerate.Accelerator``.

    Run in every process that ``accelerate launch`` starts (one per GPU):
    the accelerator places the module, wraps it for distributed data
    parallelism, gives each process its share of every training and
    validation batch list, and runs mixed precision (its
    ``mixed_precision``; the net's own ``amp_dtype`` stays None).

    Every process records the mean loss over the processes, so that the
    histories agree and early stopping and learning-rate schedules decide
    alike everywhere (a process that stopped alone would leave the others
    waiting); per-head validation accuracies are each process's own share.
    After training the module is unwrapped, and prediction runs on the
    process's device as with any fitted net.
    """

    def __init__(self, *args, accelerator, **kwargs):
        # unwrapped after the callbacks' on_train_end (see notify): early stopping restores
        # the best weights, saved from the wrapped module, into the wrapped module
        super().__init__(*args, accelerator=accelerator, unwrap_after_train=False, **kwargs)

    # the training loader is prepared inside MultiHeadNet.get_iterator (prepare_loader), before
    # the wrapper that re-seeds it each epoch: a wrapper would not be recognised and sharded
    get_iterator = MultiHeadNet.get_iterator

    def prepare_loader(self, loader):
        return self.accelerator.prepare(loader)

    def initialize(self):
        super().initialize()
        self.grad_scaler_ = None  # the accelerator scales float16 losses itself
        return self

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        step["loss"] = self.accelerator.reduce(step["loss"].detach(), "mean")
        return step

    def validation_step(self, batch, **fit_params):
        step = super().validation_step(batch, **fit_params)
        step["loss"] = self.accelerator.reduce(step["loss"], "mean")
        return step

    def notify(self, method_name, **cb_kwargs):
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end":
            self.accelerator.wait_for_everyone()
            self.module_ = self.accelerator.unwrap_model(self.module_, keep_fp32_wrapper=False)
            self.device = str(self.accelerator.device)  # prediction runs where training ran

    def __getstate__(self):
        state = super().__getstate__()
        state["accelerator"] = (
            None  # a process's accelerator does not travel; prediction needs none
        )
        return state
