"""Throughput and memory of MultiAttributeClassifier against hand-written PyTorch loops.

For each backbone and image size, on the same network and weights, batch
size, image size, number of torch threads and of DataLoader workers, in one
run, this script times:

- **predict**: ``MultiAttributeClassifier.predict`` on a list of UTKFace
  paths, and the inference loop a competent PyTorch user writes for the same
  network: a ``Dataset`` decoding with PIL and torchvision transforms
  (``Resize``, ``ToTensor``, ``Normalize``), a ``DataLoader`` with the same
  number of workers, a channels-last model, ``torch.inference_mode``, softmax
  and argmax per head. Each side first predicts one batch (warm-up: worker
  start, oneDNN kernel selection), which is not timed.
- **pure forward**: the network alone on pre-made normalised channels-last
  tensors, batch after batch: no decoding, no loader. It bounds both. It
  runs the network as the library's predict does, with BatchNorm folded into
  the convolutions (``gar_sklearn.backbones.fold_batch_norm``); the same
  process also times it unfolded, as the hand-written loop runs it
  (``pure, BN unfolded``).
- **paired**: the library's predict and the pure forward pass timed in turn
  in one process, ``--pairs`` times (the order alternating), their ratio
  taken pair by pair. This machine's speed drifts by 10-20 % between
  measurements seconds apart in separate processes; a pair's two
  measurements see the same machine, so their ratio is far steadier.
- **one fine-tuning epoch**: ``fit`` with ``freeze=None, max_epochs=1,
  validation_fraction=0, patience=None, lr_schedule=None`` (the whole network
  trains, nothing else runs), with ``image_cache=False`` (every image is
  decoded during the epoch) and with ``image_cache=True`` (decoded once,
  before the epoch); and a hand-written training loop: the same network, Adam
  with the same learning rate, the same batch size, the summed cross-entropy
  of the three heads, shuffled batches from a ``DataLoader`` with the same
  number of workers, ``loss.item()`` recorded per batch (as skorch does).
  Reported: the epoch alone (skorch's ``history[-1]["dur"]``; the hand loop's
  timed ``for`` loop) and the whole fit call (the library's ``fit`` from the
  call to its return, which includes building the network; the hand side's
  building of the same network plus its epoch). Neither side is warmed up.
- **pure train step**: forward, backward and Adam step on pre-made tensors,
  as many batches as an epoch, from a fresh network (no warm-up, like the fits).

Every measurement runs in a fresh Python process, so its peak resident memory
(``getrusage``) is its own: reported for the main process and for the largest
DataLoader worker (a forked worker's figure includes pages it shares with the
main process). Measurements are repeated ``--repeats`` times in a rotating
order; throughputs are medians over repeats and ratios are medians of the
per-repeat ratios. Last, the library predicts ``--memory-n`` paths (20,000
by default; UTKFace's files cycled when more are asked for) and a quarter of
them, with the first backbone at the largest size (``--memory-size``), to
show that peak memory does not grow with the length of the list and stays
within ``--memory-limit-mb``.

Every measurement process applies the library's allocator settings
(``gar_sklearn/_allocator.py``), the hand-written sides included, so that
the ratios compare like with like; ``--malloc glibc`` runs every side with
glibc's defaults instead.

The networks have random weights (``weights=None``): speed does not depend on
their values. The library's network is fitted for one epoch on a few images
to get a fitted estimator; the hand-written side loads the same weights.
Predictions of the two sides are compared (``agreement``) as a check that
they compute the same thing.

The maintainer's full run (hours on a 2-core CPU; run it on a quiet machine)::

    python benchmarks/speed.py --data ../shared/data/utkface --n 1000 --repeats 3 --out speed

A smoke test (a few minutes)::

    python benchmarks/speed.py --n 256 --repeats 1 --models mobilenet_v2 --sizes 128 --memory-n 0 --out /tmp/speed_smoke

On a GPU the same script runs unchanged with ``--device cuda`` (pinned
memory and non-blocking copies on both sides; add ``--precision bf16`` for
mixed precision).
"""

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "utkface"
FAIRFACE_EDGES = (
    3,
    10,
    20,
    30,
    40,
    50,
    60,
    70,
)  # FairFace's nine age groups, as age_bins="fairface"
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
PREDICT_KINDS = ("pure_forward", "hand_predict", "lib_predict", "paired_predict")
FIT_KINDS = ("pure_train", "hand_fit", "lib_fit", "lib_fit_cached")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="UTKFace folder (default: %(default)s)"
    )
    parser.add_argument(
        "--n", type=int, default=1000, help="images per measurement (default: %(default)s)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["mobilenet_v2", "resnet18"],
        help="torchvision backbones (default: %(default)s)",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=[224, 128],
        help="image sizes (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="default: %(default)s")
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="library predict / pure forward pairs timed in turn in one process, per repeat "
        "(default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of the main process (default: the usable cores)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers of both sides (default: the library's num_workers='auto')",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)"
    )
    parser.add_argument(
        "--precision",
        choices=sorted(PRECISIONS),
        default="fp32",
        help="autocast dtype on both sides (default: %(default)s)",
    )
    parser.add_argument("--skip-fit", action="store_true", help="time prediction only")
    parser.add_argument(
        "--malloc",
        choices=["tuned", "glibc"],
        default="tuned",
        help="every side (library, hand-written, pure) with the library's glibc allocator "
        "settings, or every side with glibc's defaults (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-n",
        type=int,
        default=20000,
        help="paths for the streaming-memory check, 0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-size",
        type=int,
        default=None,
        help="image size of the streaming-memory check (default: the largest of --sizes)",
    )
    parser.add_argument(
        "--memory-limit-mb", type=float, default=1500.0, help="default: %(default)s"
    )
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- the hand-written side
def _hand_network(model_name, n_classes, dropout=0.2):
    """What a user writes: the torchvision model without its classifier, a linear head per attribute."""
    import torch
    from torch import nn
    from torchvision.models import get_model

    class MultiHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = get_model(model_name, weights=None)
            for name in ("fc", "classifier"):
                if hasattr(self.backbone, name):
                    layer = getattr(self.backbone, name)
                    n_in = (
                        layer.in_features if isinstance(layer, nn.Linear) else layer[-1].in_features
                    )
                    setattr(self.backbone, name, nn.Identity())
            self.heads = nn.ModuleList(
                nn.Sequential(nn.Dropout(dropout), nn.Linear(n_in, c)) for c in n_classes
            )

        def forward(self, x):
            z = self.backbone(x)
            return tuple(head(z) for head in self.heads)

    return MultiHead().to(memory_format=torch.channels_last)


class _FacePaths:
    """A torch Dataset over image paths: PIL decoding and torchvision transforms."""

    def __init__(self, paths, transform, targets=None):
        self.paths, self.transform, self.targets = paths, transform, targets

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            x = self.transform(img.convert("RGB"))
        return x if self.targets is None else (x, self.targets[i])


def _transform(size):
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize((size, size)),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def _autocast(spec):
    import contextlib

    import torch

    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(spec["precision"])
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(spec["device"]).type, dtype=dtype)


def _sync(spec):
    import torch

    if spec["device"].startswith("cuda"):
        torch.cuda.synchronize()


def _batch_sizes(n, batch_size, drop_last=False):
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    return sizes[:-1] if drop_last and sizes[-1] == 1 and len(sizes) > 1 else sizes


def _hand_predict(model, paths, spec, probabilities=False):
    """Labels (as class indices, one column per head), or the probabilities of each head."""
    import torch
    from torch.utils.data import DataLoader

    cuda = spec["device"].startswith("cuda")
    loader = DataLoader(
        _FacePaths(paths, _transform(spec["size"])),
        batch_size=spec["batch_size"],
        num_workers=spec["workers"],
        pin_memory=cuda,
    )
    chunks = []
    with torch.inference_mode():
        for x in loader:
            x = x.to(spec["device"], non_blocking=cuda).contiguous(
                memory_format=torch.channels_last
            )
            with _autocast(spec):
                logits = model(x)
            probas = [torch.softmax(lg.float(), dim=1).cpu() for lg in logits]
            chunks.append(
                probas if probabilities else torch.stack([p.argmax(1) for p in probas], 1)
            )
    if probabilities:
        return [torch.cat([c[k] for c in chunks]).numpy() for k in range(len(chunks[0]))]
    return torch.cat(chunks).numpy()


def _load_hand_model(spec):
    import torch

    model = _hand_network(spec["model"], spec["n_classes"])
    model.load_state_dict(torch.load(spec["hand_weights"], weights_only=True))
    return model.to(spec["device"]).eval()


def child_hand_predict(spec, paths, targets):
    model = _load_hand_model(spec)
    _hand_predict(model, paths[: spec["batch_size"]], spec)  # warm-up
    t0 = time.perf_counter()
    pred = _hand_predict(model, paths, spec)
    return {"seconds": time.perf_counter() - t0, "pred": pred.tolist()}


def _pure_forward_seconds(model, spec, n):
    import torch

    size, bs = spec["size"], spec["batch_size"]
    x = torch.randn(bs, 3, size, size, device=spec["device"]).contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode(), _autocast(spec):
        model(x)  # warm-up
        _sync(spec)
        t0 = time.perf_counter()
        for b in _batch_sizes(n, bs):
            [torch.softmax(lg.float(), dim=1).argmax(1).cpu() for lg in model(x[:b])]
        _sync(spec)
    return time.perf_counter() - t0


def _folded(model):
    """The network as the library's predict runs it: BatchNorm folded into the convolutions."""
    from gar_sklearn.backbones import fold_batch_norm

    return fold_batch_norm(model)


def child_pure_forward(spec, paths, targets):
    """The network as the library runs it (BatchNorm folded) and as the hand-written loop runs it."""
    model = _load_hand_model(spec)
    folded = _folded(model)
    return {
        "seconds": _pure_forward_seconds(folded, spec, len(paths)),
        "seconds_unfolded": _pure_forward_seconds(model, spec, len(paths)),
    }


def child_paired_predict(spec, paths, targets):
    """The library's predict and the pure forward pass in turn, ``spec["pairs"]`` times, in one process.

    This machine's speed drifts by 10-20 % between measurements taken seconds
    apart in separate processes (it shares its host); the ratio of two
    measurements taken in turn, the order alternating, is far steadier.
    """
    est = _load_library_model(spec)
    model = _folded(_load_hand_model(spec))
    est.predict(paths[: spec["batch_size"]])  # warm-up
    ratios, lib_seconds = [], []
    for k in range(spec["pairs"]):
        seconds = {}
        for side in ("lib", "pure") if k % 2 == 0 else ("pure", "lib"):
            if side == "pure":
                seconds[side] = _pure_forward_seconds(model, spec, len(paths))
            else:
                t0 = time.perf_counter()
                est.predict(paths)
                seconds[side] = time.perf_counter() - t0
        lib_seconds.append(seconds["lib"])
        ratios.append(seconds["pure"] / seconds["lib"])
    return {"seconds": float(np.median(lib_seconds)), "ratios": ratios}


def child_pure_train(spec, paths, targets):
    import torch
    from torch import nn

    t0 = time.perf_counter()
    model = _hand_network(spec["model"], spec["n_classes"]).to(spec["device"]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    size, bs = spec["size"], spec["batch_size"]
    x = torch.randn(bs, 3, size, size, device=spec["device"]).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.as_tensor(np.asarray(targets[:bs]), device=spec["device"])
    criterion = nn.CrossEntropyLoss()
    t1 = time.perf_counter()
    for b in _batch_sizes(len(paths), bs, drop_last=True):
        with _autocast(spec):
            out = model(x[:b])
        loss = sum(criterion(o.float(), y[:b, k]) for k, o in enumerate(out))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    _sync(spec)
    t2 = time.perf_counter()
    return {"seconds": t2 - t1, "fit_seconds": t2 - t0}


def child_hand_fit(spec, paths, targets):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    cuda = spec["device"].startswith("cuda")
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = _hand_network(spec["model"], spec["n_classes"]).to(spec["device"]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    dataset = _FacePaths(paths, _transform(spec["size"]), torch.as_tensor(np.asarray(targets)))
    bs = spec["batch_size"]
    loader = DataLoader(
        dataset,
        batch_size=bs,
        shuffle=True,
        num_workers=spec["workers"],
        drop_last=len(paths) % bs == 1,
        pin_memory=cuda,
    )
    t1 = time.perf_counter()
    losses, images = [], 0
    for x, y in loader:
        x = x.to(spec["device"], non_blocking=cuda).contiguous(memory_format=torch.channels_last)
        y = y.to(spec["device"], non_blocking=cuda)
        with _autocast(spec):
            out = model(x)
        loss = sum(criterion(o.float(), y[:, k]) for k, o in enumerate(out))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        images += len(y)
    t2 = time.perf_counter()
    return {"seconds": t2 - t1, "fit_seconds": t2 - t0, "images": images}


# ---------------------------------------------------------------- the library's side
def _library_params(spec):
    params = dict(
        backbone=spec["model"],
        weights=None,
        image_size=spec["size"],
        age_bins="fairface",
        batch_size=spec["batch_size"],
        device=spec["device"],
        precision=spec["precision"],
        random_state=0,
    )
    if spec["workers_param"] is not None:
        params["num_workers"] = spec["workers_param"]
    return params


def child_prepare(spec, paths, targets):
    """Fit the library's network on a few images; save it, and its weights for the hand-written side."""
    import torch

    from gar_sklearn import MultiAttributeClassifier

    keep = _covering_subset(np.asarray(targets), 2 * spec["batch_size"])
    est = MultiAttributeClassifier(
        freeze=None,
        max_epochs=1,
        validation_fraction=0,
        patience=None,
        lr_schedule=None,
        **_library_params(spec),
    )
    est.fit([paths[i] for i in keep], spec["frame"].iloc[keep])
    est.net_.module_.to("cpu")
    n_classes = [len(c) for c in est.classes_]
    if any(n <= int(np.max(np.asarray(targets)[:, k])) for k, n in enumerate(n_classes)):
        raise RuntimeError(f"the labels have more classes than the library's heads {n_classes}")
    hand = _hand_network(spec["model"], n_classes)
    # the two networks hold the same layers in the same order; the library's also holds
    # the normalisation constants (in the hand-written side they are in the transform)
    lib_state = [
        (k, v) for k, v in est.net_.module_.state_dict().items() if not k.startswith("normalize.")
    ]
    hand_keys = list(hand.state_dict())
    if len(hand_keys) != len(lib_state) or any(
        hand.state_dict()[k].shape != v.shape for k, (_, v) in zip(hand_keys, lib_state)
    ):
        raise RuntimeError(f"the hand-written {spec['model']} does not match the library's network")
    torch.save({k: v for k, (_, v) in zip(hand_keys, lib_state)}, spec["hand_weights"])
    est.net_.module_.to(spec["device"])
    with open(spec["lib_model"], "wb") as f:
        pickle.dump(est, f)
    return {"n_classes": n_classes}


def _covering_subset(codes, n):
    """Indices of about n rows that hold every class of every attribute (the heads get all classes)."""
    chosen = {
        int(np.flatnonzero(codes[:, k] == c)[0])
        for k in range(codes.shape[1])
        for c in np.unique(codes[:, k])
    }
    rest = [i for i in range(len(codes)) if i not in chosen]
    return sorted(chosen) + rest[: max(0, n - len(chosen))]


def _load_library_model(spec):
    with open(spec["lib_model"], "rb") as f:
        est = pickle.load(f)
    return est.set_params(
        batch_size=spec["batch_size"],
        **({} if spec["workers_param"] is None else {"num_workers": spec["workers_param"]}),
    )


def _codes(est, labels):
    index = [{c: i for i, c in enumerate(classes)} for classes in est.classes_]
    return [[index[k][v] for k, v in enumerate(row)] for row in labels]


def child_lib_predict(spec, paths, targets):
    est = _load_library_model(spec)
    est.predict(paths[: spec["batch_size"]])  # warm-up
    t0 = time.perf_counter()
    labels = est.predict(paths)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds}
    if spec.get("return_pred", True):
        out["pred"] = _codes(est, labels)
    return out


def _child_lib_fit(spec, paths, cache):
    from gar_sklearn import MultiAttributeClassifier

    t0 = time.perf_counter()
    est = MultiAttributeClassifier(
        freeze=None,
        max_epochs=1,
        validation_fraction=0,
        patience=None,
        lr_schedule=None,
        image_cache=cache,
        **_library_params(spec),
    )
    est.fit(paths, spec["frame"])
    fit_seconds = time.perf_counter() - t0
    epoch = est.history_[-1]
    return {
        "seconds": epoch["dur"],
        "fit_seconds": fit_seconds,
        "images": sum(b["train_batch_size"] for b in epoch["batches"]),
    }


def child_lib_fit(spec, paths, targets):
    return _child_lib_fit(spec, paths, cache=False)


def child_lib_fit_cached(spec, paths, targets):
    return _child_lib_fit(spec, paths, cache=True)


def run_child(kind, spec_file):
    import torch

    from gar_sklearn._allocator import tune_cpu_allocator

    with open(spec_file, "rb") as f:
        spec = pickle.load(f)
    torch.set_num_threads(spec["threads"])
    # the same allocator on every side: the library would apply it itself, the hand-written side not
    tuned = tune_cpu_allocator()
    paths, targets = spec["paths"], spec["targets"]
    if kind == "memory":
        spec = dict(spec, return_pred=False)
        kind = "lib_predict"
    result = globals()[f"child_{kind}"](spec, paths, targets)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["malloc_tuned"] = tuned
    result["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if spec["device"].startswith("cuda"):
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


def spawn(kind, spec, workdir):
    spec_file = Path(workdir) / f"spec_{kind}.pkl"
    with open(spec_file, "wb") as f:
        pickle.dump(spec, f)
    env = dict(os.environ, GAR_SKLEARN_TUNE_MALLOC="1" if spec["malloc"] == "tuned" else "0")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--spec-file", str(spec_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(
            f"measurement {kind!r} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


# ---------------------------------------------------------------- the run
def load_sample(data, n, seed=0):
    """n UTKFace rows drawn at random (the files are sorted by age): paths, label frame, codes."""
    labels = pd.read_csv(Path(data) / "labels.csv")
    rows = labels.sample(n=min(n, len(labels)), random_state=seed).reset_index(drop=True)
    if n > len(rows):  # more than UTKFace holds: cycle through the files
        rows = rows.iloc[np.arange(n) % len(rows)].reset_index(drop=True)
    paths = [str(Path(data) / f) for f in rows["file"]]
    frame = rows[["gender", "age", "race"]]
    return paths, frame, encode(frame)


def encode(frame):
    """Class indices of gender, FairFace age group and race, in the library's class order (sorted)."""
    return np.stack(
        [
            pd.factorize(frame["gender"], sort=True)[0],
            np.digitize(frame["age"].to_numpy(), FAIRFACE_EDGES),
            pd.factorize(frame["race"], sort=True)[0],
        ],
        axis=1,
    )


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def benchmark(args):
    from gar_sklearn._data import default_num_workers

    threads = args.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    workers = args.workers if args.workers is not None else default_num_workers()
    paths, frame, codes = load_sample(args.data, args.n)
    n = len(paths)
    common = dict(
        batch_size=args.batch_size,
        pairs=args.pairs,
        threads=threads,
        workers=workers,
        workers_param=args.workers,
        device=args.device,
        precision=PRECISIONS[args.precision],
        malloc=args.malloc,
        paths=paths,
        frame=frame,
        targets=codes,
    )
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        prepared = {}

        def prepare(model, size):
            """The spec of a model and size, whose library and hand-written networks are saved once."""
            if (model, size) not in prepared:
                spec = dict(
                    common,
                    model=model,
                    size=size,
                    hand_weights=str(Path(workdir) / f"hand_{model}_{size}.pt"),
                    lib_model=str(Path(workdir) / f"lib_{model}_{size}.pkl"),
                )
                spec["n_classes"] = spawn("prepare", spec, workdir)["n_classes"]
                prepared[model, size] = spec
            return prepared[model, size]

        for model in args.models:
            for size in args.sizes:
                spec = prepare(model, size)
                kinds = PREDICT_KINDS + (() if args.skip_fit else FIT_KINDS)
                runs = {k: [] for k in kinds}
                for r in range(args.repeats):
                    for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                        res = spawn(kind, spec, workdir)
                        runs[kind].append(res)
                        print(
                            f"{model} {size}px repeat {r + 1}: {kind:15s} {n / res['seconds']:8.1f} img/s "
                            f"peak RSS {res['peak_rss_mb']:.0f} MB",
                            flush=True,
                        )
                rows.append(summarise(model, size, n, runs))
        memory = None
        if args.memory_n:
            model, size = args.models[0], args.memory_size or max(args.sizes)
            mem_paths, _, mem_codes = load_sample(args.data, args.memory_n)
            spec = prepare(model, size)
            memory = {
                "model": model,
                "image_size": size,
                "limit_mb": args.memory_limit_mb,
                "runs": [],
            }
            for m in (args.memory_n // 4, args.memory_n):
                res = spawn(
                    "memory", dict(spec, paths=mem_paths[:m], targets=mem_codes[:m]), workdir
                )
                memory["runs"].append(
                    {
                        "n": m,
                        "seconds": res["seconds"],
                        "images_per_s": m / res["seconds"],
                        "peak_rss_mb": res["peak_rss_mb"],
                        "worker_peak_rss_mb": res["worker_peak_rss_mb"],
                    }
                )
                print(
                    f"memory: predict {m} paths: peak RSS {res['peak_rss_mb']:.0f} MB "
                    f"(worker {res['worker_peak_rss_mb']:.0f} MB)",
                    flush=True,
                )
            memory["passed"] = all(r["peak_rss_mb"] <= args.memory_limit_mb for r in memory["runs"])
    return {
        "settings": {
            "n": n,
            "batch_size": args.batch_size,
            "pairs": args.pairs,
            "threads": threads,
            "workers": workers,
            "device": args.device,
            "precision": args.precision,
            "repeats": args.repeats,
            "malloc": args.malloc,
            "cpu_count": os.cpu_count(),
            "torch": _torch_version(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        },
        "rows": rows,
        "memory": memory,
    }


def _torch_version():
    import torch

    return torch.__version__


def summarise(model, size, n, runs):
    def rate(kind):
        return _median([n / r["seconds"] for r in runs.get(kind, [])])

    def ratios(a, b, key="seconds"):
        pairs = list(zip(runs.get(a, []), runs.get(b, [])))
        return [
            rb[key] / ra[key] for ra, rb in pairs
        ]  # throughput a / throughput b, repeat by repeat

    def ratio(a, b, key="seconds"):
        return _median(ratios(a, b, key))

    def peak(kind, key="peak_rss_mb"):
        return _median([r[key] for r in runs.get(kind, [])])

    agreement = None
    if runs["lib_predict"] and runs["hand_predict"]:
        a = np.asarray(runs["lib_predict"][0]["pred"])
        b = np.asarray(runs["hand_predict"][0]["pred"])
        agreement = float((a == b).all(axis=1).mean())
    row = {
        "model": model,
        "image_size": size,
        "predict_per_s": rate("lib_predict"),
        "hand_predict_per_s": rate("hand_predict"),
        "pure_forward_per_s": rate("pure_forward"),
        "pure_forward_unfolded_per_s": _median(
            [
                n / r["seconds_unfolded"]
                for r in runs.get("pure_forward", [])
                if "seconds_unfolded" in r
            ]
        ),
        "predict_vs_hand": ratio("lib_predict", "hand_predict"),
        "predict_vs_pure": ratio("lib_predict", "pure_forward"),
        "predict_vs_pure_each": ratios("lib_predict", "pure_forward"),
        "predict_vs_pure_paired": _median(
            [x for r in runs.get("paired_predict", []) for x in r["ratios"]]
        ),
        "predict_vs_pure_paired_each": [
            _median(r["ratios"]) for r in runs.get("paired_predict", [])
        ],
        "agreement": agreement,
        "predict_peak_rss_mb": peak("lib_predict"),
        "hand_predict_peak_rss_mb": peak("hand_predict"),
        "predict_worker_peak_rss_mb": peak("lib_predict", "worker_peak_rss_mb"),
    }
    if runs.get("lib_fit"):
        row.update(
            {
                "epoch_per_s": rate("lib_fit"),
                "epoch_cached_per_s": rate("lib_fit_cached"),
                "hand_epoch_per_s": rate("hand_fit"),
                "pure_train_per_s": rate("pure_train"),
                "epoch_vs_hand": ratio("lib_fit", "hand_fit"),
                "epoch_cached_vs_hand": ratio("lib_fit_cached", "hand_fit"),
                "epoch_vs_pure": ratio("lib_fit", "pure_train"),
                "fit_seconds": peak("lib_fit", "fit_seconds"),
                "fit_cached_seconds": peak("lib_fit_cached", "fit_seconds"),
                "hand_fit_seconds": peak("hand_fit", "fit_seconds"),
                "fit_vs_hand": ratio("lib_fit", "hand_fit", "fit_seconds"),
                "fit_peak_rss_mb": peak("lib_fit"),
                "fit_cached_peak_rss_mb": peak("lib_fit_cached"),
                "hand_fit_peak_rss_mb": peak("hand_fit"),
            }
        )
    row["runs"] = {
        k: [{key: v for key, v in r.items() if key != "pred"} for r in rs] for k, rs in runs.items()
    }
    return row


def _f(value, fmt="{:.1f}"):
    return "-" if value is None else fmt.format(value)


_MALLOC = {
    "tuned": "glibc with the library's settings on every side (gar_sklearn/_allocator.py)",
    "glibc": "glibc defaults on every side (GAR_SKLEARN_TUNE_MALLOC=0)",
}


def markdown(result):
    s = result["settings"]
    lines = [
        f"{s['n']} UTKFace images, batch size {s['batch_size']}, {s['threads']} torch thread(s), "
        f"{s['workers']} DataLoader worker(s), device {s['device']}, precision {s['precision']}, "
        f"allocator {_MALLOC[s.get('malloc', 'glibc')]}, medians of {s['repeats']} repeat(s); torch {s['torch']}, {s['cpu_count']} CPUs.",
        "",
        f"Command: `{s['command']}`",
        "",
        "**Prediction** (images/s; peak RSS of the main process in MB)",
        "",
        "| model | px | predict | hand-written | pure forward | pure, BN unfolded | predict / hand | "
        "predict / pure | predict / pure, each repeat | predict / pure, paired | paired, each repeat | agreement | "
        "RSS predict | RSS hand |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['image_size']} | {_f(r['predict_per_s'])} | {_f(r['hand_predict_per_s'])} | "
            f"{_f(r['pure_forward_per_s'])} | {_f(r.get('pure_forward_unfolded_per_s'))} | "
            f"{_f(r['predict_vs_hand'], '{:.3f}')} | "
            f"{_f(r['predict_vs_pure'], '{:.3f}')} | "
            f"{' '.join(f'{x:.2f}' for x in r.get('predict_vs_pure_each', [])) or '-'} | "
            f"{_f(r.get('predict_vs_pure_paired'), '{:.3f}')} | "
            f"{' '.join(f'{x:.2f}' for x in r.get('predict_vs_pure_paired_each', [])) or '-'} | "
            f"{_f(r['agreement'], '{:.3f}')} | "
            f"{_f(r['predict_peak_rss_mb'], '{:.0f}')} | {_f(r['hand_predict_peak_rss_mb'], '{:.0f}')} |"
        )
    if any("epoch_per_s" in r for r in result["rows"]):
        lines += [
            "",
            "**One fine-tuning epoch** (images/s of the epoch; fit = whole call in seconds, network building included)",
            "",
            "| model | px | library | library, image cache | hand-written | pure train step | epoch / hand | "
            "cached / hand | fit s (library / cached / hand) | fit / hand | RSS fit (library / cached / hand) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["rows"]:
            if "epoch_per_s" not in r:
                continue
            lines.append(
                f"| {r['model']} | {r['image_size']} | {_f(r['epoch_per_s'])} | {_f(r['epoch_cached_per_s'])} | "
                f"{_f(r['hand_epoch_per_s'])} | {_f(r['pure_train_per_s'])} | {_f(r['epoch_vs_hand'], '{:.3f}')} | "
                f"{_f(r['epoch_cached_vs_hand'], '{:.3f}')} | {_f(r['fit_seconds'])} / "
                f"{_f(r['fit_cached_seconds'])} / {_f(r['hand_fit_seconds'])} | {_f(r['fit_vs_hand'], '{:.3f}')} | "
                f"{_f(r['fit_peak_rss_mb'], '{:.0f}')} / {_f(r['fit_cached_peak_rss_mb'], '{:.0f}')} / "
                f"{_f(r['hand_fit_peak_rss_mb'], '{:.0f}')} |"
            )
    mem = result.get("memory")
    if mem:
        lines += [
            "",
            f"**Streaming prediction** ({mem['model']}, {mem['image_size']} px; "
            f"limit {mem['limit_mb']:.0f} MB: {'passed' if mem['passed'] else 'FAILED'})",
            "",
            "| paths | images/s | peak RSS main (MB) | peak RSS largest worker (MB) |",
            "|---|---|---|---|",
        ]
        for r in mem["runs"]:
            lines.append(
                f"| {r['n']} | {r['images_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['worker_peak_rss_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        run_child(argv[1], argv[3])
        return
    args = parse_args(argv)
    if not (Path(args.data) / "labels.csv").exists():
        sys.exit(
            f"UTKFace not found at {args.data} (expected labels.csv and images/); pass --data."
        )
    result = benchmark(args)
    table = markdown(result)
    print(table)
    if args.out:
        Path(f"{args.out}.json").write_text(json.dumps(result, indent=1))
        Path(f"{args.out}.md").write_text(table)
        print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
