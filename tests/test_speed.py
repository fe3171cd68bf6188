"""Streaming prediction in bounded memory, and the benchmark's hand-written loops (benchmarks/speed.py).

The timings themselves are the benchmark's business: a shared CI machine
cannot assert them. What is tested here is what the timings rest on: predict
streams (its memory does not grow with the number of paths), and the
hand-written PyTorch loops the library is compared with compute the same
thing as the library.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.datasets import make_synthetic_faces

from .conftest import REPO, UTKFACE, requires_utkface

MB = 2**20


def _speed_module():
    spec = importlib.util.spec_from_file_location(
        "speed_benchmark", REPO / "benchmarks" / "speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_faces(folder, n, size, random_state=0):
    X, y = make_synthetic_faces(n, image_size=size, random_state=random_state)
    paths = []
    for i, img in enumerate(X):
        path = folder / f"face_{i:04d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths, y


_PREDICT_AND_MEASURE = """
import json, re, resource, sys
import psutil, torch
torch.set_num_threads(int(sys.argv[4]))
from gar_sklearn import load
model_path, files_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = json.load(open(files_path))
paths = [files[i % len(files)] for i in range(n)]
est = load(model_path)
est.predict(paths[:64])  # warm-up: a DataLoader worker, the allocator's pools
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # start the peak resident memory (VmHWM) afresh from here
base = psutil.Process().memory_info().rss
labels = est.predict(paths)
assert labels.shape == (n, 3)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
print(json.dumps({"growth": peak - base,
                  "worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def _predict_in_subprocess(model_path, files_path, n, threads):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _PREDICT_AND_MEASURE,
            str(model_path),
            str(files_path),
            str(n),
            str(threads),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK),
    reason="needs Linux's /proc/self/clear_refs to measure the peak memory of one call",
)
# one torch thread leaves a core spare here: a DataLoader worker decodes; with every core
# computing (where the machine has 2), the main process decodes each batch itself
@pytest.mark.parametrize(
    "threads", [1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2]
)
def test_predict_streams_paths_in_memory_that_does_not_grow_with_their_number(tmp_path, threads):
    pytest.importorskip("psutil")
    size, n = 96, 2000
    files, y = _write_faces(tmp_path, 100, size)
    X = np.stack([np.asarray(Image.open(p)) for p in files])
    est = MultiAttributeClassifier(
        backbone="tiny",
        weights=None,
        image_size=size,
        age_bins="fairface",
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    model_path = tmp_path / "model.pt"
    est.save(model_path)
    files_path = tmp_path / "files.json"
    files_path.write_text(json.dumps(files))

    small = _predict_in_subprocess(model_path, files_path, n, threads)
    large = _predict_in_subprocess(model_path, files_path, 4 * n, threads)
    # Holding the decoded images would cost 27 KB each, 160 MB for the 6000 more paths (as
    # float tensors four times that). Streaming costs a few batches whatever their number;
    # memory that was not reused from batch to batch grew by about 100 MB over the first
    # hundred batches (see release_received_batches).
    assert small["growth"] < 30 * MB, small["growth"] / MB
    assert large["growth"] - small["growth"] < 20 * MB, (small["growth"] / MB, large["growth"] / MB)
    assert large["worker"] - small["worker"] < 20 * MB, (small["worker"] / MB, large["worker"] / MB)


def test_hand_written_loops_compute_what_the_library_computes(tmp_path):
    """The benchmark compares like with like: same network, weights, images and outputs."""
    speed = _speed_module()
    paths, frame = _write_faces(tmp_path, 24, 40)
    spec = dict(
        model="mobilenet_v2",
        size=32,
        batch_size=8,
        threads=1,
        workers=0,
        workers_param=0,
        device="cpu",
        precision="float32",
        frame=frame,
        hand_weights=str(tmp_path / "hand.pt"),
        lib_model=str(tmp_path / "lib.pkl"),
    )
    codes = speed.encode(frame)
    spec["n_classes"] = speed.child_prepare(spec, paths, codes)["n_classes"]
    assert spec["n_classes"][0] == 2

    est = speed._load_library_model(spec)
    hand = speed._load_hand_model(spec)
    probas = speed._hand_predict(hand, paths, spec, probabilities=True)
    for got, expected in zip(probas, est.predict_proba(paths)):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    lib = speed.child_lib_predict(spec, paths, codes)["pred"]
    assert lib == speed.child_hand_predict(spec, paths, codes)["pred"]

    # one epoch each: the same number of images goes through both training loops
    hand_fit = speed.child_hand_fit(spec, paths, codes)
    lib_fit = speed.child_lib_fit(spec, paths, codes)
    assert hand_fit["images"] == lib_fit["images"] == len(paths)
    assert 0 < lib_fit["seconds"] <= lib_fit["fit_seconds"]


@requires_utkface
@pytest.mark.realdata
def test_speed_benchmark_runs_on_utkface(tmp_path):
    out = tmp_path / "speed"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "speed.py"),
            "--data",
            str(UTKFACE),
            "--n",
            "24",
            "--batch-size",
            "8",
            "--models",
            "mobilenet_v2",
            "--sizes",
            "128",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--pairs",
            "2",
            "--skip-fit",
            "--memory-n",
            "16",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    (row,) = result["rows"]
    assert row["agreement"] == 1.0
    assert row["predict_per_s"] > 0 and row["predict_vs_hand"] > 0
    assert row["predict_vs_pure_each"] == [
        pytest.approx(row["predict_vs_pure"])
    ]  # one repeat: its median
    (paired,) = row["runs"]["paired_predict"]
    assert len(paired["ratios"]) == 2 and all(r > 0 for r in paired["ratios"])
    assert row["predict_vs_pure_paired"] == pytest.approx(float(np.median(paired["ratios"])))
    assert [r["n"] for r in result["memory"]["runs"]] == [4, 16]
    assert "| mobilenet_v2 | 128 |" in out.with_suffix(".md").read_text()
