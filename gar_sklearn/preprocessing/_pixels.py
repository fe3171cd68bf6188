"""The two costly steps of reading an image, done with torch's kernels: JPEG decoding and resizing.

torchvision's libjpeg-turbo decoder gives Pillow's pixels in less time, and
torch's antialiased bilinear kernel resizes a batch of uint8 images at once,
within 2 of Pillow's values (``docs/speed.md`` has the measurements). Where
the network keeps every core busy, decoding cannot hide behind it: making it
cheap is what is left.

torch is imported on first use: the dataset loaders, which read labels and
paths only, stay free of it.
"""

import io

import numpy as np

__all__ = ["read_jpeg", "resize_images"]


def _plain_jpeg(data, size, max_pixels):
    """Whether torchvision's decoder takes the JPEG ``data``: 8-bit grey or colour (1 or 3
    components) without Adobe's colour transform (left to Pillow), of at most
    ``max_pixels`` pixels, and not so large that Pillow's reduced-scale decoding
    (``draft``) would shrink it for ``size``."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            plain = img.format == "JPEG" and img.mode in ("L", "RGB") and "adobe" not in img.info
            w, h = img.size
    except Exception:  # noqa: BLE001 - Pillow reads it again and names the problem
        return False
    small = size is None or min(w, h) < 2 * size
    return plain and 0 < w * h <= max_pixels and small


def read_jpeg(path, size, max_pixels):
    """The upright RGB pixels (H, W, 3) of a plain JPEG file, or None to leave it to Pillow.

    Plain JPEGs (see :func:`_plain_jpeg`) are decoded by torchvision's
    ``decode_jpeg``; anything else, and any failure, returns None: the Pillow
    path then reads the file, or explains what is wrong with it.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not _plain_jpeg(data, size, max_pixels):
        return None
    try:
        chw = _decode(data)
    except Exception:  # noqa: BLE001 - Pillow decodes again and names the problem
        return None
    if chw is None:
        return None
    # the decoder's memory is (H, W, 3) already; a turn by its EXIF orientation is a view
    return np.ascontiguousarray(chw.permute(1, 2, 0).numpy())


def _decode(data):
    """torchvision's decoding of JPEG bytes to a (3, H, W) uint8 tensor, upright; None
    where torchvision has no image decoder."""
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # a torchvision without its image extension
        return None
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    # (torchvision 0.29 issues a DeprecationWarning at every call: TorchCodec is to take image
    # decoding over. Python hides it by default; where warnings are errors, Pillow decodes.)
    return decode_jpeg(tensor, mode=ImageReadMode.RGB, apply_exif_orientation=True)


def resize_images(images, size):
    """uint8 RGB arrays (H, W, 3) of any sizes as one uint8 tensor (n, 3, size, size).

    Bilinear with antialiasing (as Pillow's ``BILINEAR`` resize, within 2),
    one call per distinct input size. The result's memory is channels-last
    (n, size, size, 3), which the network's first layer reads directly.
    Call it from the thread that runs torch (or a DataLoader worker): torch
    parallelises the kernel over its own threads.

    Examples
    --------
    >>> import numpy as np
    >>> out = resize_images([np.zeros((40, 30, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)], 16)
    >>> tuple(out.shape), out.dtype, int(out[1].min())
    ((2, 3, 16, 16), torch.uint8, 255)
    """
    import torch
    from torch.nn import functional as F

    by_shape = {}
    for i, img in enumerate(images):
        by_shape.setdefault(img.shape, []).append(i)
    out = (
        None if len(by_shape) == 1 else torch.empty((len(images), size, size, 3), dtype=torch.uint8)
    )
    for shape, index in by_shape.items():
        batch = torch.from_numpy(np.stack([images[i] for i in index]))
        if shape[:2] != (size, size):
            nchw = batch.permute(0, 3, 1, 2)  # channels-last memory: torch's fast uint8 path
            batch = F.interpolate(
                nchw, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            ).permute(0, 2, 3, 1)
        if out is None:
            return batch.permute(0, 3, 1, 2)
        out[torch.as_tensor(index)] = batch
    return out.permute(0, 3, 1, 2)
