"""Where training and prediction run, and in which floating-point precision."""

import torch

__all__ = ["resolve_device", "resolve_precision"]

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
    of the GPUs present.
    """
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
    return str(dev)


def resolve_precision(precision):
    """The autocast dtype of a ``precision`` name (None for float32)."""
    if precision not in _AMP_DTYPES:
        raise ValueError(
            f"The 'precision' parameter must be one of {list(_AMP_DTYPES)}. "
            f"Got {precision!r} instead."
        )
    return _AMP_DTYPES[precision]
