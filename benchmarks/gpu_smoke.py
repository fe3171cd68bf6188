"""A short run of the library's main paths on one CUDA GPU, timed against hand-written CUDA loops.

    python benchmarks/gpu_smoke.py                  # one GPU, a few hundred UTKFace faces
    python benchmarks/gpu_smoke.py --dry-run        # the same steps on the CPU, tiny and fast

Runs, on a few hundred faces of ``../shared/data/utkface`` (or synthetic faces
with ``--synthetic``): full fine-tuning, training from cached features,
prediction from paths, the fusion model, saving on the GPU and loading on the
CPU and back, and training in bfloat16 and float16. Each step prints ``ok`` or
``FAILED`` with its reason; the exit status is 1 when any failed.

Then, measured in the same run, on the same network and images:

- **predict ratio**: the library's ``predict_proba`` over image files against a
  hand-written CUDA inference loop (a DataLoader with as many workers decoding
  with PIL, pinned memory, non-blocking copies, the same BatchNorm-folded
  network under the same autocast): hand seconds / library seconds;
- **train ratio**: a training epoch of the library (skorch's epoch duration,
  images in the decoded-image cache) against a hand-written CUDA training
  loop over the same images held in pinned memory (same network, Adam,
  autocast): hand seconds / library seconds;
- **GPU busy**: the mean of ``utilization.gpu`` (the share of time a kernel
  ran) sampled with pynvml, or nvidia-smi, while the library predicts.

Targets: both ratios >= 0.9, and GPU busy >= 80 % at 224 px with ResNet50.
``--dry-run`` runs every step and both ratios on the CPU (tiny backbone,
32 px, a few dozen images) to show that the script works end to end; its
numbers mean nothing.
"""

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "utkface"
TARGETS = {"predict_ratio": 0.9, "train_ratio": 0.9, "gpu_busy_percent": 80.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a UTKFace folder (labels.csv)")
    p.add_argument("--synthetic", action="store_true", help="synthetic faces instead of UTKFace")
    p.add_argument("--n", type=int, default=None, help="faces used (default 400; dry run 40)")
    p.add_argument("--backbone", default=None, help="default resnet50 (dry run: tiny)")
    p.add_argument("--image-size", type=int, default=None, help="default 224 (dry run: 32)")
    p.add_argument("--batch-size", type=int, default=None, help="default 64 (dry run: 16)")
    p.add_argument(
        "--predict-images",
        type=int,
        default=None,
        help="images predicted for the ratio and GPU busy: the test paths repeated "
        "(default 8000, enough seconds to sample; dry run 64)",
    )
    p.add_argument("--dry-run", action="store_true", help="on the CPU, tiny: no GPU needed")
    p.add_argument("--out", default=None, help="write <out>.json with every number")
    args = p.parse_args(argv)
    small = args.dry_run
    defaults = dict(
        n=40 if small else 400,
        backbone="tiny" if small else "resnet50",
        image_size=32 if small else 224,
        batch_size=16 if small else 64,
        predict_images=64 if small else 8000,
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.device = "cpu" if small else "cuda"
    return args


def check_cuda(args):
    """Exit with a clear message where the run needs CUDA and there is none."""
    if args.dry_run or torch.cuda.is_available():
        return
    sys.exit(
        "gpu_smoke.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine "
        f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
        "Run it with --dry-run to check the same steps on the CPU."
    )


# ------------------------------------------------------------------------- data
def faces(args, folder):
    """(train paths, train labels, test paths, test labels): image files on disk."""
    if args.synthetic:
        from PIL import Image

        from gar_sklearn.datasets import make_synthetic_faces

        X, y = make_synthetic_faces(args.n, image_size=max(args.image_size, 32), random_state=0)
        paths = []
        for i, image in enumerate(X):
            paths.append(str(Path(folder) / f"face_{i:04d}.png"))
            Image.fromarray(image).save(paths[-1])
        cut = int(0.8 * len(paths))
        return paths[:cut], y.iloc[:cut].reset_index(drop=True), paths[cut:], y.iloc[cut:]
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _common import utkface_split

    X_train, X_test, y_train, y_test = utkface_split(args.data, n=args.n)
    return list(X_train), y_train, list(X_test), y_test


# ------------------------------------------------------------------------ steps
class Steps:
    """Run named steps; a failure is reported and the run goes on."""

    def __init__(self):
        self.results, self.failed = {}, []

    def run(self, name, fn, *args):
        start = time.perf_counter()
        try:
            detail = fn(*args)
        except Exception as exc:  # report every failure, not only the first
            self.failed.append(name)
            print(f"FAILED {name}: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
            return None
        seconds = time.perf_counter() - start
        self.results[name] = {"seconds": round(seconds, 2), **(detail or {})}
        print(f"ok     {name} ({seconds:.1f} s) {detail or ''}", flush=True)
        return detail


def estimator(args, **params):
    from gar_sklearn import MultiAttributeClassifier

    base = dict(
        backbone=args.backbone,
        weights=None,  # no download: speed and the code paths do not depend on the weights
        image_size=args.image_size,
        batch_size=args.batch_size,
        age_bins="fairface",
        max_epochs=2,
        precision="auto",
        device=args.device,
        random_state=0,
    )
    return MultiAttributeClassifier(**{**base, **params})


def _finite_losses(clf):
    losses = [row["train_loss"] for row in clf.history_]
    if not np.all(np.isfinite(losses)):
        raise AssertionError(f"non-finite training losses {losses}")
    return losses


def step_full_fit(args, data, models):
    clf = estimator(args).fit(data[0], data[1])
    _finite_losses(clf)
    if not str(clf.device_).startswith(args.device):
        raise AssertionError(f"trained on {clf.device_}, not {args.device}")
    models["full"] = clf
    return {
        "device": clf.device_,
        "amp_dtype": str(clf.net_.amp_dtype),
        "epochs": len(clf.history_),
    }


def step_cached_fit(args, data, models):
    clf = estimator(args, freeze="backbone", max_epochs=3).fit(data[0], data[1])
    _finite_losses(clf)
    if not clf.used_feature_cache_:
        raise AssertionError("did not train from cached features")
    probas = clf.predict_proba(data[2])
    models["cached"] = clf
    return {"rows": len(probas[0])}


def step_predict_paths(args, data, models):
    probas = models["full"].predict_proba(data[2])
    for p in probas:
        if p.shape[0] != len(data[2]) or not np.allclose(p.sum(axis=1), 1, atol=1e-3):
            raise AssertionError("probabilities of the wrong shape or not summing to 1")
    return {"images": len(data[2])}


def step_fusion(args, data, models):
    from gar_sklearn import GenderFusionClassifier

    fusion = GenderFusionClassifier(
        gender_estimator=estimator(args, attributes=("gender",), max_epochs=1),
        specialist=estimator(args, attributes=("age", "race"), max_epochs=1),
        random_state=0,
    ).fit(data[0], data[1])
    predictions = fusion.predict(data[2])
    return {"shape": list(np.shape(predictions))}


def step_save_load(args, data, models, folder):
    import gar_sklearn

    clf, path = models["full"], Path(folder) / "model.pt"
    clf.save(path)
    here = clf.predict_proba(data[2])
    on_cpu = gar_sklearn.load(path, device="cpu")
    back = gar_sklearn.load(path, device=args.device)
    worst = 0.0
    for a, b, c in zip(here, on_cpu.predict_proba(data[2]), back.predict_proba(data[2])):
        # the same device, the same numbers (up to kernels that are not deterministic)
        np.testing.assert_allclose(c, a, atol=5e-3)
        worst = max(worst, float(np.abs(b - a).max()))
    if worst > 0.1:  # the CPU computes in float32, the GPU maybe in bfloat16; wrong weights
        # would differ by far more
        raise AssertionError(f"CPU and {args.device} probabilities differ by {worst}")
    return {"cpu_vs_device_max_abs": round(worst, 5), "loaded_on": back.device_}


def step_mixed_precision(args, data, models):
    detail = {}
    for precision in ("bfloat16", "float16"):
        clf = estimator(args, precision=precision, max_epochs=1).fit(data[0], data[1])
        detail[precision] = round(float(_finite_losses(clf)[-1]), 6)
        scaler = clf.net_.grad_scaler_ is not None
        if scaler != (precision == "float16"):
            raise AssertionError(f"{precision}: gradient scaler {'on' if scaler else 'off'}")
    return detail


# ----------------------------------------------------------- hand-written loops
def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


class _Files(torch.utils.data.Dataset):
    """Image files decoded by PIL and resized: the usual hand-written dataset."""

    def __init__(self, paths, size):
        self.paths, self.size = paths, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            image = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def hand_predict(clf, paths, workers):
    """Softmax outputs of the estimator's network over ``paths``, by a plain CUDA loop."""
    device, module = clf.net_.device, clf.net_.inference_module()
    loader = torch.utils.data.DataLoader(
        _Files(paths, clf.image_size_),
        batch_size=int(clf.batch_size),
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    outputs = []
    with torch.inference_mode(), _autocast(device, clf.net_.amp_dtype):
        for images in loader:
            logits = module(images=images.to(device, non_blocking=True))
            outputs.append([torch.softmax(lg.float(), 1).cpu() for lg in logits])
    return [torch.cat(parts).numpy() for parts in zip(*outputs)]


def hand_train_epoch(module, loader, device, amp_dtype, optimizer):
    """One epoch of a plain training loop: batches from pinned memory, autocast, Adam."""
    criterion = torch.nn.CrossEntropyLoss()
    module.train()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp_dtype):
            logits = module(images=x)
        loss = sum(criterion(lg.float(), y[:, k]) for k, lg in enumerate(logits))
        loss.backward()
        optimizer.step()
    _sync(device)


# ------------------------------------------------------------------ measurements
class GpuBusy:
    """Sample the GPU's ``utilization.gpu`` (percent of time a kernel ran) in the background,
    with pynvml where it is installed, else nvidia-smi; ``source`` says which, or why none."""

    def __init__(self, device, interval=0.05):
        self.device, self.interval = torch.device(device), interval
        self.samples, self.source = [], None
        self._stop = threading.Event()

    def _bus_id(self):
        """The GPU's PCI address, as NVML and nvidia-smi name it (CUDA_VISIBLE_DEVICES
        renumbers torch's devices, not theirs); None where torch does not tell."""
        with contextlib.suppress(Exception):
            props = torch.cuda.get_device_properties(self.device)
            return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        return None

    def _nvml_handle(self):
        import pynvml

        pynvml.nvmlInit()
        bus_id = self._bus_id()
        if bus_id is not None:
            with contextlib.suppress(Exception):
                return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(bus_id)
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(self.device.index or 0)

    def _poll_nvml(self, nvml, handle):
        while not self._stop.is_set():
            self.samples.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            time.sleep(self.interval)

    def __enter__(self):
        if self.device.type != "cuda":
            self.source = "none: not a CUDA device (dry run)"
            return self
        try:
            nvml, handle = self._nvml_handle()
        except Exception as exc:  # no pynvml, or no NVML library
            nvml = None
            reason = f"pynvml unusable ({type(exc).__name__})"
        if nvml is not None:
            self.source = "pynvml"
            self._thread = threading.Thread(target=self._poll_nvml, args=(nvml, handle))
            self._thread.start()
        elif shutil.which("nvidia-smi"):
            self.source = "nvidia-smi"
            index = self._bus_id() or str(self.device.index or 0)
            self._smi = subprocess.Popen(
                ["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        else:
            self.source = f"none: {reason} and nvidia-smi not on PATH; GPU busy not measured"
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.source == "pynvml":
            self._thread.join()
        elif self.source == "nvidia-smi":
            self._smi.terminate()
            out, _ = self._smi.communicate(timeout=10)
            self.samples = [float(v) for v in out.split() if v.strip().isdigit()]

    def mean(self):
        return round(float(np.mean(self.samples)), 1) if self.samples else None


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def measure_predict(args, data, models):
    """Library against hand-written prediction over the test paths, repeated; GPU busy."""
    from gar_sklearn._data import loading_policy

    clf, paths = models["full"], data[2]
    paths = (paths * (args.predict_images // len(paths) + 1))[: args.predict_images]
    workers = loading_policy(args.device).num_workers
    warm = paths[: 2 * args.batch_size]
    clf.predict_proba(warm), hand_predict(clf, warm, workers)  # cuDNN's choices, page cache
    with GpuBusy(args.device) as busy:
        lib, lib_seconds = _timed(clf.predict_proba, paths)
    hand, hand_seconds = _timed(hand_predict, clf, paths, workers)
    differ = max(float(np.abs(a - b).max()) for a, b in zip(lib, hand))
    return {
        "images": len(paths),
        "workers": workers,
        "library_seconds": round(lib_seconds, 3),
        "hand_seconds": round(hand_seconds, 3),
        "predict_ratio": round(hand_seconds / lib_seconds, 3),
        "gpu_busy_percent": busy.mean(),
        "gpu_busy_source": busy.source,
        "max_abs_probability_difference": round(differ, 4),  # PIL against torch resizing
    }


def measure_train(args, data, models):
    """A library training epoch against a hand-written one, over the same images in memory."""
    from gar_sklearn._data import decode_images
    from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
    from gar_sklearn.preprocessing._images import as_image_source

    params = dict(max_epochs=3, validation_fraction=0, patience=None, lr_schedule=None)
    clf = estimator(args, **params).fit(data[0], data[1])
    lib_epoch = min(row["dur"] for row in clf.history_[1:])
    source = as_image_source(data[0])
    decoded, _ = decode_images(source, np.arange(len(source)), args.image_size)
    images = torch.from_numpy(decoded).permute(0, 3, 1, 2)
    n_classes = [len(c) for c in clf.classes_]
    codes = torch.stack([torch.randint(c, (len(images),)) for c in n_classes], 1)
    cuda = torch.device(args.device).type == "cuda"
    module = MultiHeadNetwork(
        build_backbone(args.backbone, weights=None), n_classes, dropout=0.2, channels_last=True
    ).to(args.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True if cuda else None)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, codes),
        batch_size=args.batch_size,
        shuffle=True,
        pin_memory=cuda,
        drop_last=len(images) % args.batch_size == 1,  # as the library: no batch of one
    )
    epochs = []
    for _ in range(3):  # the first warms up, as the library's first epoch does
        _, seconds = _timed(
            hand_train_epoch, module, loader, args.device, clf.net_.amp_dtype, optimizer
        )
        epochs.append(seconds)
    hand_epoch = min(epochs[1:])
    return {
        "images": len(images),
        "library_epoch_seconds": round(lib_epoch, 3),
        "hand_epoch_seconds": round(hand_epoch, 3),
        "train_ratio": round(hand_epoch / lib_epoch, 3),
    }


# -------------------------------------------------------------------------- main
def _summary(args, steps):
    numbers = {**steps.results.get("predict_ratio", {}), **steps.results.get("train_ratio", {})}
    where = "CPU, dry run: the numbers mean nothing" if args.dry_run else _gpu_name(args)
    print(f"\n{args.backbone} at {args.image_size} px, batch {args.batch_size}, on {where}")
    for name, target in TARGETS.items():
        value = numbers.get(name)
        verdict = "not measured" if value is None else ("met" if value >= target else "NOT met")
        print(f"  {name:18s} {value!s:>8s}   target >= {target}: {verdict}")
    if "gpu_busy_source" in numbers:
        print(f"  GPU busy sampled by: {numbers['gpu_busy_source']}")


def _gpu_name(args):
    return f"{torch.cuda.get_device_name(args.device)} (torch {torch.__version__})"


def main(argv=None):
    args = parse_args(argv)
    check_cuda(args)
    folder = tempfile.mkdtemp(prefix="gpu_smoke_")
    steps, models, counts = Steps(), {}, {}
    try:
        data = faces(args, folder)
        counts = {"train": len(data[0]), "test": len(data[2])}
        print(f"{len(data[0])} training and {len(data[2])} test faces, device {args.device}")
        steps.run("full_fine_tuning", step_full_fit, args, data, models)
        steps.run("cached_feature_training", step_cached_fit, args, data, models)
        if "full" in models:
            steps.run("predict_from_paths", step_predict_paths, args, data, models)
            steps.run("save_load_across_devices", step_save_load, args, data, models, folder)
            steps.run("predict_ratio", measure_predict, args, data, models)
        steps.run("fusion_model", step_fusion, args, data, models)
        steps.run("mixed_precision", step_mixed_precision, args, data, models)
        steps.run("train_ratio", measure_train, args, data, models)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _summary(args, steps)
    report = {
        "args": vars(args),
        "faces": counts,
        "results": steps.results,
        "failed": steps.failed,
    }
    if args.out:
        Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    if steps.failed:
        print(f"\nFAILED steps: {', '.join(steps.failed)}")
    return report


if __name__ == "__main__":
    sys.exit(1 if main()["failed"] else 0)
