"""Shared fixtures: synthetic faces, a fitted tiny model, and the real data folder."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from gar_sklearn.datasets._synthetic import make_synthetic_faces

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAR_SKLEARN_SHARED", REPO.parent / "shared"))
UTKFACE = SHARED / "data" / "utkface"
MOBILENET_V2_FILE = SHARED / "weights" / "mobilenet_v2-b0353104.pth"

# The tests train tiny networks on tiny images: one thread is faster there (no
# synchronisation per small op) and stays fast when other processes share the cores.
torch.set_num_threads(1)

requires_utkface = pytest.mark.skipif(
    not (UTKFACE / "labels.csv").exists(),
    reason=f"real UTKFace images not found at {UTKFACE} (they are not shipped with the project)",
)

# Settings that make the tiny backbone learn the synthetic cues in seconds.
TINY = dict(backbone="tiny", weights=None, image_size=32, lr=1e-2, batch_size=32, random_state=0)


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """Tests stand in for Ctrl-C by sending SIGINT to this process. A shell that starts
    pytest as a background job without job control ignores SIGINT, and Python then never
    raises KeyboardInterrupt: install Python's own handler for the session."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def synthetic():
    """(X_train, y_train, X_test, y_test) of synthetic faces with visible labels."""
    X, y = make_synthetic_faces(480, image_size=32, random_state=0)
    return (
        X[:360],
        y.iloc[:360].reset_index(drop=True),
        X[360:],
        y.iloc[360:].reset_index(drop=True),
    )


@pytest.fixture(scope="session")
def fitted(synthetic):
    """A MultiAttributeClassifier fitted on the synthetic faces (ages in FairFace's groups)."""
    from gar_sklearn import MultiAttributeClassifier

    X, y, _, _ = synthetic
    return MultiAttributeClassifier(age_bins="fairface", max_epochs=25, **TINY).fit(X, y)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
