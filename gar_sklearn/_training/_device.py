"""Where training and prediction run, and in which floating-point precision."""

import contextlib

import torch

from .._config import get_config

__all__ = ["cuda_speed_settings", "resolve_device", "resolve_precision"]

_AMP_DTYPES = {
    "float32": None,
    "fp32": None,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else is checked.

    A CUDA device is checked against the machine's: its index must name one
    of the GPUs present. With an ``accelerator`` configured
    (:func:`gar_sklearn.set_config`), ``"auto"`` is the device it gives this
    process, and another kind of device is refused.
    """
    accelerator = get_config()["accelerator"]
    if accelerator is not None:
        return _accelerated_device(device, accelerator)
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            "The 'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'. "
            f"Got {device!r} instead."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' to fall back to the CPU."
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device={device!r} names GPU {dev.index}, but this machine has {count} GPU(s) "
                f"(cuda:0 to cuda:{count - 1})."
            )
    return "cpu" if dev.type == "cpu" else str(dev)


def _accelerated_device(device, accelerator):
    given = torch.device(accelerator.device)
    if device is None or device == "auto" or torch.device(device).type == given.type:
        return "cpu" if given.type == "cpu" else str(given)
    raise ValueError(
        f"device={device!r} was requested, but the configured accelerator runs this process "
        f"on {str(given)!r}; use device='auto' to train where the accelerator places it."
    )


def resolve_precision(precision, device="cpu"):
    """The autocast dtype of a ``precision`` name on ``device`` (None for float32).

    ``"auto"``: bfloat16 on a GPU that computes in it (compute capability 8.0
    and later: A100, H100, RTX 30xx and later), else float32; float32 on the CPU.
    """
    if precision == "auto":
        cuda = torch.device(device).type == "cuda"
        return torch.bfloat16 if cuda and _bf16_supported(device) else None
    if precision not in _AMP_DTYPES:
        raise ValueError(
            f"The 'precision' parameter must be one of {['auto', *_AMP_DTYPES]}. "
            f"Got {precision!r} instead."
        )
    return _AMP_DTYPES[precision]


def _bf16_supported(device):
    # natively, not emulated: torch.cuda.is_bf16_supported() also says True for older GPUs
    # that emulate bfloat16 slowly
    return torch.cuda.get_device_capability(torch.device(device))[0] >= 8


def _tf32_flags():
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        # torch >= 2.9: reading the older allow_tf32 flags fails once the newer ones were set
        return [(matmul, "fp32_precision", "tf32"), (conv, "fp32_precision", "tf32")]
    return [(matmul, "allow_tf32", True), (torch.backends.cudnn, "allow_tf32", True)]


# switch -> the torch flags it sets: (owner, attribute, value)
_CUDA_FLAGS = {
    "cuda_tf32": _tf32_flags(),
    "cudnn_benchmark": [(torch.backends.cudnn, "benchmark", True)],
}


@contextlib.contextmanager
def cuda_speed_settings(device):
    """Within the block, the CUDA speed switches of :func:`gar_sklearn.get_config`
    (``cuda_tf32``, ``cudnn_benchmark``) that are on set their torch flags, when
    ``device`` is a GPU; the flags are restored afterwards. On the CPU, nothing."""
    flags = []
    if torch.device(device).type == "cuda":
        config = get_config()
        flags = [flag for name, fl in _CUDA_FLAGS.items() if config[name] for flag in fl]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in flags]
    try:
        for owner, name, value in flags:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
