"""What the real-data benchmarks share: data, weights, timing and result files."""

import json
import platform
import resource
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gar_sklearn.datasets import group_train_test_split, load_utkface

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "utkface"
MOBILENET_V2_FILE = SHARED / "weights" / "mobilenet_v2-b0353104.pth"


def ensure_hub_weights(weights_file=MOBILENET_V2_FILE):
    """Copy the official MobileNetV2 checkpoint into torch's hub cache, so that
    weights="DEFAULT" (falling back to the cached IMAGENET1K_V1) loads offline."""
    weights_file = Path(weights_file)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if weights_file.exists() and not (cache / weights_file.name).exists():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(weights_file, cache / weights_file.name)


def utkface_split(data=DEFAULT_DATA, n=None, test_size=0.2, random_state=0):
    """UTKFace paths and labels, split so that byte-identical images stay on one side."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the three files whose names lack a label
        X, y = load_utkface(data, n_samples=n, random_state=random_state, return_X_y=True)
    X_train, X_test, y_train, y_test = group_train_test_split(
        X, y, test_size=test_size, random_state=random_state
    )
    return X_train, X_test, y_train.reset_index(drop=True), y_test.reset_index(drop=True)


def load_saved_predictions(path, X_test):
    """A baseline run's per-image results (``--save-predictions``), refused when they were
    scored on other test images than ``X_test``."""
    saved = np.load(path, allow_pickle=False)
    if not np.array_equal(saved["test_paths"], np.asarray(X_test, dtype=str)):
        raise SystemExit(f"{path} was scored on other test images: use the same --n/--seed.")
    return saved


@contextmanager
def timed(results, key):
    start = time.perf_counter()
    yield
    results[key] = round(time.perf_counter() - start, 2)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_results(out, results, markdown):
    """Write ``<out>.json`` and ``<out>.md``; print the Markdown."""
    print(markdown)
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=_jsonable))
        out.with_suffix(".md").write_text(markdown + "\n")


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def markdown_table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)
