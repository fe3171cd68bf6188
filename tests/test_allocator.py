"""The CPU allocator settings: a freed batch's memory is reused without faulting pages back in."""

import json
import platform
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the allocator settings are glibc's (mallopt)",
)

# In a fresh process: predict with a tiny model on the CPU (which applies the settings unless
# disabled), then count the page faults of each forward pass of a small convolutional network
# whose activations (32 MiB a layer) are above glibc's default mapping threshold.
SCRIPT = """
import json, resource, numpy as np, torch
from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._allocator import tune_cpu_allocator
X = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
clf = MultiAttributeClassifier(attributes=("label",), backbone="tiny", weights=None, image_size=16,
                               max_epochs=1, validation_fraction=0, device="cpu")
clf.fit(X, np.array(["a", "b"] * 4)).predict(X)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 32, 3, padding=1))
x = torch.randn(16, 3, 128, 128)
faults = []
with torch.inference_mode():
    net(x)
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net(x).sum().item()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": tune_cpu_allocator(), "faults": faults}))
"""


def _run(env_value):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if env_value is not None:
        env["GAR_SKLEARN_TUNE_MALLOC"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_fit_and_predict_keep_freed_batches_for_reuse():
    pages = 2**25 // 4096  # one 32 MiB activation, faulted in page by page when its memory is fresh
    tuned = _run(None)
    assert tuned["applied"] is True
    # freed activations are reused: most passes fault no page in (now and then the heap grows
    # by an activation's worth as small blocks come to lie in the freed space)
    assert sorted(tuned["faults"])[len(tuned["faults"]) // 2] < pages // 20, tuned
    default = _run("0")
    assert default["applied"] is False
    # glibc's defaults hand each activation back and fault its pages in again at every pass
    assert min(default["faults"]) > pages, default
    assert sum(tuned["faults"]) < sum(default["faults"]) / 4, (tuned, default)
