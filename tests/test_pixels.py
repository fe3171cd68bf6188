"""Decoding JPEGs with torchvision and resizing with torch: the same pixels as Pillow, faster."""

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gar_sklearn.preprocessing import ImageLoadError, _images, load_image, read_image
from gar_sklearn.preprocessing._pixels import read_jpeg, resize_images


def _pillow_only(monkeypatch):
    """Read every file with Pillow, as before the torch path existed: the oracle."""
    monkeypatch.setattr(_images, "read_jpeg", lambda *args: None)


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)[
        :h, :w
    ].copy()  # blocks: a photo, not noise


def _jpeg(path, array, mode="RGB", orientation=None):
    img = Image.fromarray(array).convert(mode)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    img.save(path, "JPEG", quality=90, **kwargs)
    return str(path)


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4, 5, 6, 7, 8])
def test_jpegs_decode_to_pillows_pixels_turned_upright(tmp_path, monkeypatch, mode, orientation):
    path = _jpeg(tmp_path / "face.jpg", _photo(37, 23), mode, orientation)
    fast = read_jpeg(path, 16, _images._HUGE_PIXELS)
    assert (
        fast is not None and fast.flags.c_contiguous
    )  # a plain JPEG: the torch path, turned in memory
    got_read, got_load = read_image(path, 16), load_image(path, 16)
    _pillow_only(monkeypatch)
    np.testing.assert_array_equal(fast, read_image(path, 16))  # identical decoding and orientation
    np.testing.assert_array_equal(got_read, fast)
    assert got_read.shape == ((23, 37, 3) if orientation in (5, 6, 7, 8) else (37, 23, 3))
    np.testing.assert_array_equal(got_load, load_image(path, 16))


def test_pillow_reads_what_the_torch_path_declines(tmp_path):
    photo = _photo(40, 40)
    png = tmp_path / "face.png"
    Image.fromarray(photo).save(png)
    cmyk = _jpeg(tmp_path / "cmyk.jpg", photo, "CMYK")
    big = _jpeg(tmp_path / "big.jpg", _photo(64, 80))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((tmp_path / "big.jpg").read_bytes()[:300])
    declined = [str(png), cmyk, str(truncated), str(tmp_path / "missing.jpg")]
    for path in declined:
        assert read_jpeg(path, 16, _images._HUGE_PIXELS) is None, path
    # a JPEG that Pillow decodes at half scale or less for 32 px (64 >= 2 x 32): Pillow's faster
    assert read_jpeg(big, 32, _images._HUGE_PIXELS) is None
    assert read_jpeg(big, 33, _images._HUGE_PIXELS) is not None
    assert read_image(big, 32).shape == (32, 40, 3)  # reduced by Pillow's draft
    assert load_image(str(png), 16).shape == load_image(cmyk, 16).shape == (16, 16, 3)
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(str(truncated), 16)  # Pillow names the problem
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(str(tmp_path / "missing.jpg"), 16)


def _jpeg_bytes(array, mode="RGB", **options):
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _segment(marker, payload):
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


@pytest.mark.parametrize(
    "mode, options",
    [
        ("RGB", {}),
        ("L", {}),
        ("RGB", {"progressive": True}),
        ("RGB", {"subsampling": 0}),
        ("RGB", {"exif": b"Exif\x00\x00MM"}),
    ],
)
def test_plain_jpegs_take_the_torch_path_with_pillows_pixels(tmp_path, monkeypatch, mode, options):
    data = _jpeg_bytes(_photo(37, 23, 1), mode, **options)
    # a comment segment and fill bytes before the frame header change nothing
    padded = data[:2] + _segment(0xFE, b"a comment") + b"\xff\xff" + data[2:]
    paths = []
    for k, content in enumerate((data, padded)):
        path = tmp_path / f"face{k}.jpg"
        path.write_bytes(content)
        paths.append(str(path))
    fast = [read_jpeg(path, 16, _images._HUGE_PIXELS) for path in paths]
    _pillow_only(monkeypatch)
    for path, got in zip(paths, fast):
        assert got is not None
        np.testing.assert_array_equal(got, read_image(path, 16))


def _sof_position(data):
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        if marker in data:
            return data.index(marker)
    raise AssertionError("no frame header")


def test_everything_but_plain_jpegs_is_left_to_pillow(tmp_path):
    data = _jpeg_bytes(_photo(20, 30, 2))
    sof = _sof_position(data)

    def patched(offset, value):
        return data[:offset] + bytes([value]) + data[offset + 1 :]

    declined = {
        "lossless": patched(sof + 1, 0xC3),
        "12-bit samples": patched(sof + 4, 12),
        "height 0": patched(sof + 5, 0)[: sof + 6] + b"\x00" + data[sof + 7 :],
        "Adobe's marker": data[:2]
        + _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00")
        + data[2:],
        "CMYK": _jpeg_bytes(_photo(20, 30, 2), "CMYK"),  # Pillow writes Adobe's marker
        "cut before the frame header": data[:sof],
        "cut inside it": data[: sof + 6],
        "a scan before any frame": b"\xff\xd8\xff\xda\x00\x08" + data[sof:],
        "a GIF": b"GIF89a",
        "empty": b"",
        "garbage where a marker belongs": data[:2] + b"\x00" + data[2:],
    }
    for name, content in declined.items():
        path = tmp_path / "declined.jpg"
        path.write_bytes(content)
        assert read_jpeg(str(path), 16, _images._HUGE_PIXELS) is None, name


def test_progressive_and_unsubsampled_jpegs_decode_to_pillows_pixels(tmp_path, monkeypatch):
    paths = []
    for k, options in enumerate([{"progressive": True}, {"subsampling": 0}, {"subsampling": 1}]):
        path = tmp_path / f"face{k}.jpg"
        path.write_bytes(_jpeg_bytes(_photo(41, 29, k), **options))
        paths.append(str(path))
    fast = [read_jpeg(path, 16, _images._HUGE_PIXELS) for path in paths]
    _pillow_only(monkeypatch)
    for path, got in zip(paths, fast):
        assert got is not None and got.flags.c_contiguous
        np.testing.assert_array_equal(got, read_image(path, 16))


@settings(max_examples=80, deadline=None)
@given(
    h=st.integers(1, 90), w=st.integers(1, 90), size=st.integers(1, 70), seed=st.integers(0, 2**16)
)
def test_resizing_gives_pillows_bilinear_within_two(h, w, size, seed):
    image = _photo(h, w, seed)
    expected = np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    ).astype(int)
    got = resize_images([image], size)[0].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(got - expected).max() <= 2


@pytest.mark.parametrize("size", [128, 224])
def test_resizing_a_face_differs_from_pillow_in_few_pixels(size):
    image = _photo(200, 200, 7)
    expected = np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    ).astype(int)
    diff = np.abs(resize_images([image], size)[0].permute(1, 2, 0).numpy().astype(int) - expected)
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_a_batch_of_mixed_sizes_keeps_its_order_and_is_channels_last():
    images = [_photo(40, 30, 1), _photo(16, 16, 2), _photo(40, 30, 3), _photo(25, 70, 4)]
    batch = resize_images(images, 16)
    assert batch.shape == (4, 3, 16, 16) and batch.dtype == torch.uint8
    assert batch.is_contiguous(memory_format=torch.channels_last)
    for image, got in zip(images, batch):
        torch.testing.assert_close(got, resize_images([image], 16)[0], rtol=0, atol=0)
    np.testing.assert_array_equal(
        batch[1].permute(1, 2, 0).numpy(), images[1]
    )  # already 16 px: as is
    assert resize_images([images[0]], 16).is_contiguous(memory_format=torch.channels_last)


def test_load_image_of_an_array_resizes_like_a_batch():
    image = _photo(50, 60, 5)
    np.testing.assert_array_equal(
        load_image(image, 24), resize_images([image], 24)[0].permute(1, 2, 0).numpy()
    )
    out = load_image(image, 24)
    assert out.flags.writeable and out.flags.c_contiguous


def test_where_torchvisions_deprecation_warning_is_an_error_pillow_decodes(tmp_path, monkeypatch):
    import warnings

    path = tmp_path / "face.jpg"
    path.write_bytes(_jpeg_bytes(_photo(30, 20, 3)))
    fast = read_jpeg(str(path), 16, _images._HUGE_PIXELS)
    assert fast is not None and fast.shape == (30, 20, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert read_jpeg(str(path), 16, _images._HUGE_PIXELS) is None
        strict = read_image(str(path), 16)
    _pillow_only(monkeypatch)
    np.testing.assert_array_equal(strict, read_image(str(path), 16))
    np.testing.assert_array_equal(fast, strict)
