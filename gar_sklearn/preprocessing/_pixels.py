"""The two costly steps of reading an image, done with torch's kernels: JPEG decoding and resizing.

Per UTKFace image (200 x 200 JPEG) on one core, Pillow took 0.39 ms to decode,
turn upright and copy, and 0.33 ms (128 px) or 0.55 ms (224 px) to resize;
torchvision's libjpeg-turbo decoder gives the same pixels in 0.16 ms, file
read and header check included (0.14 of it is the decoder itself), and
torch's antialiased bilinear kernel for uint8 resizes a batch in 0.05-0.08 ms
per image, within 2 of Pillow's values (1 on faces).
Where the network keeps every core busy, decoding cannot hide behind it:
making it cheap is what is left. (On two cores, reading the next batch in
more threads was slower, even with torch's OpenMP workers, which spin for
about 10 ms after each forward pass, stopped first: docs/speed.md.)

torch is imported on first use: the dataset loaders, which read labels and
paths only, stay free of it.
"""

import numpy as np

__all__ = ["jpeg_frame", "read_jpeg", "resize_images"]

_JPEG_START = b"\xff\xd8\xff"
_SOF_PLAIN = frozenset((0xC0, 0xC1, 0xC2))  # Huffman-coded frames: baseline, extended, progressive
_SOF_OTHER = frozenset((0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def jpeg_frame(data):
    """``(width, height, components)`` of a plain JPEG's frame header, or None.

    Plain: 8-bit samples, Huffman-coded (baseline, extended or progressive),
    and no Adobe colour-transform marker; anything else (arithmetic coding,
    lossless, 12-bit, Adobe's transforms, a malformed marker) gives None.
    Parsing the markers by hand costs a few microseconds, against 24 for
    Pillow's ``Image.open`` of the same header.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (40, 30)).save(buffer, "JPEG")
    >>> jpeg_frame(buffer.getvalue())
    (40, 30, 3)
    >>> jpeg_frame(b"not a jpeg") is None
    True
    """
    if not data.startswith(_JPEG_START):
        return None
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_PLAIN:
            if length < 8 or pos + 10 > end or data[pos + 4] != 8:
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (width, height, data[pos + 9]) if width and height else None
        if marker in _SOF_OTHER or marker in (0xD9, 0xDA) or length < 2:
            return None  # another coding, or a scan before any frame header
        if marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe":
            return None  # its colour transform: left to Pillow
        pos += 2 + length
    return None


def read_jpeg(path, size, max_pixels):
    """The upright RGB pixels (H, W, 3) of a plain JPEG file, or None to leave it to Pillow.

    Used for plain JPEGs (:func:`jpeg_frame`) in grey or colour (1 or 3
    components) of at most ``max_pixels`` pixels that Pillow's reduced-scale
    decoding (``draft``) would not shrink for ``size``. Anything else, and any
    failure, returns None: the Pillow path then reads the file, or explains
    what is wrong with it.
    """
    decode = _decoder()
    if decode is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
        frame = jpeg_frame(data)
        if frame is None:
            return None
        w, h, components = frame
        if (
            components not in (1, 3)
            or w * h > max_pixels
            or size is not None
            and min(w, h) >= 2 * size
        ):
            return None
        chw = decode(data)
    except Exception:  # noqa: BLE001 - Pillow decodes again and names the problem
        return None
    # the decoder's memory is (H, W, 3) already; a turn by its EXIF orientation is a view
    return np.ascontiguousarray(chw.permute(1, 2, 0).numpy())


def _decoder():
    """torchvision's JPEG decoder, as a function of the file's bytes; None without it.

    Made the first time a JPEG is read, so that importing the package does
    not import torch. (Two threads that make it at once make the same one.)
    """
    if "decode" not in _decoders:
        _decoders["decode"] = _torch_decoder()
    return _decoders["decode"]


_decoders = {}


def _torch_decoder():
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # a torchvision without its image extension
        return None
    op = _jpeg_operator()

    def decode(data):
        tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if op is not None:
            return op(tensor, ImageReadMode.RGB.value, True)
        return decode_jpeg(tensor, mode=ImageReadMode.RGB, apply_exif_orientation=True)

    return decode


def _jpeg_operator():
    """The operator behind ``torchvision.io.decode_jpeg``, or None where it is not registered.

    The same pixels, without the wrapper's checks and the deprecation warning
    it issues at every call (torchvision 0.29 hands image decoding over to
    TorchCodec). Where it is missing, the decoder calls the wrapper.
    """
    import torch

    try:
        return torch.ops.image.decode_jpeg
    except (AttributeError, RuntimeError):
        return None


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
