"""What reading one UTKFace face costs on one core, and where the time goes.

Times, per face, over ``--n`` files already in the page cache (best of
``--repeats``): the library's reading (``read_jpeg``: the file, Pillow's
header check, torchvision's public ``decode_jpeg``, the array), each of its
parts alone, and Pillow's full decoding for comparison::

    python benchmarks/read_cost.py --n 2000 --out benchmarks/results/read_cost
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _best(fn, items, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e3  # ms per face


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "utkface"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_jpeg

    from gar_sklearn.datasets import load_utkface
    from gar_sklearn.preprocessing._pixels import _plain_jpeg, read_jpeg

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the three files whose names lack a label
        X = load_utkface(args.data, n_samples=args.n, random_state=0, return_X_y=True)[0]
    paths = list(X)
    blobs = [Path(p).read_bytes() for p in paths]
    tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    max_pixels = Image.MAX_IMAGE_PIXELS or 10**9

    def pillow(path):
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))

    rows = {
        "read_jpeg (the library)": _best(
            lambda p: read_jpeg(p, 224, max_pixels), paths, args.repeats
        ),
        "  file read": _best(lambda p: Path(p).read_bytes(), paths, args.repeats),
        "  Pillow header check": _best(
            lambda b: _plain_jpeg(b, 224, max_pixels), blobs, args.repeats
        ),
        "  decode_jpeg": _best(
            lambda t: decode_jpeg(t, mode=ImageReadMode.RGB, apply_exif_orientation=True),
            tensors,
            args.repeats,
        ),
        "Pillow open, decode, RGB array": _best(pillow, paths, args.repeats),
    }
    text = (
        f"Reading {len(paths)} UTKFace faces, one thread, ms per face (best of {args.repeats}).\n\n"
    )
    text += "| step | ms per face |\n|---|---|\n"
    text += "".join(f"| {k} | {v:.3f} |\n" for k, v in rows.items())
    print(text)
    if args.out:
        # the data folder relative to the repository: results name no machine's paths
        settings = {**vars(args), "data": os.path.relpath(args.data, HERE.parent)}
        Path(f"{args.out}.json").write_text(json.dumps({"args": settings, "ms_per_face": rows}))
        Path(f"{args.out}.md").write_text(text)
    return rows


if __name__ == "__main__":
    main()
