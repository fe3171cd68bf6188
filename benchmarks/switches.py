"""The end-to-end gain of each speed switch of ``gar_sklearn.set_config``, measured in pairs.

For each switch, the library's own work that the switch speeds up is timed
with the switch on and off, in turn, ``--pairs`` times (the order
alternating), and the gain is the median of the pairs' ratios (off time / on
time): a pair's two measurements see the same machine, so their ratio stays
steady where the machine's speed drifts.

- ``fold_batch_norm``: ``predict`` on UTKFace paths (decoding included).
- ``fused_adam``: one training epoch from cached features (the frozen stem's
  features are cached before; skorch's epoch ``dur``).
- ``fast_dropout``: one training epoch of the default heads (a hidden layer,
  dropout 0.2) from the cached pooled features of the whole backbone
  (``freeze="backbone"``), where dropout is a large part of the work.
- ``tune_cpu_allocator``: ``predict`` on UTKFace paths, each side in a fresh
  process (the setting is process-wide and cannot be undone).

The networks have random weights: speed does not depend on their values.
Run it on a quiet machine::

    python benchmarks/switches.py --data ../shared/data/utkface --n 480 --pairs 5 \\
        --out benchmarks/results/switches
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "utkface"))
    parser.add_argument("--n", type=int, default=480, help="images (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=5, help="default: %(default)s")
    parser.add_argument("--model", default="mobilenet_v2", help="default: %(default)s")
    parser.add_argument("--sizes", default="128,224", help="default: %(default)s")
    parser.add_argument(
        "--freeze", type=int, default=12, help="stages cached for fused_adam and fast_dropout"
    )
    parser.add_argument(
        "--switches", default="fold_batch_norm,fused_adam,fast_dropout,tune_cpu_allocator"
    )
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_sample(data, n, seed=0):
    from gar_sklearn.datasets import load_utkface

    X, y = load_utkface(data, return_X_y=True)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(X), size=min(n, len(X)), replace=False))
    return [X[i] for i in keep], y.iloc[keep].reset_index(drop=True)


def _estimator(model, size, **params):
    from gar_sklearn import MultiAttributeClassifier

    return MultiAttributeClassifier(
        backbone=model,
        weights=None,
        image_size=size,
        age_bins="fairface",
        max_epochs=1,
        validation_fraction=0,
        patience=None,
        lr_schedule=None,
        num_workers=0,
        random_state=0,
        **params,
    )


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pairs(n_pairs, run):
    """``[(seconds on, seconds off), ...]``: ``run(flag)`` timed in turn, order alternating."""
    out = []
    for k in range(n_pairs):
        order = (True, False) if k % 2 == 0 else (False, True)
        times = {flag: run(flag) for flag in order}
        out.append((times[True], times[False]))
    return out


def fold_batch_norm(args, X, y, size):
    import gar_sklearn

    clf = _estimator(args.model, size).fit(X[:64], y.iloc[:64])
    clf.predict(X[:32])  # warm-up: oneDNN kernel selection

    def run(flag):
        with gar_sklearn.config_context(fold_batch_norm=flag):
            return _seconds(lambda: clf.predict(X))

    return _pairs(args.pairs, run)


def _cached_epoch(args, X, y, size, switch, **params):
    """Pairs of one training epoch's time from cached features, ``switch`` on and off."""
    import gar_sklearn

    params = {"freeze": args.freeze, **params}
    _estimator(args.model, size, **params).fit(X, y)  # fills the feature cache

    def run(flag):
        with gar_sklearn.config_context(**{switch: flag}):
            clf = _estimator(args.model, size, **params).fit(X, y)
        return clf.history_[-1]["dur"]

    return _pairs(args.pairs, run)


def fused_adam(args, X, y, size):
    return _cached_epoch(args, X, y, size, "fused_adam", head_hidden_units=None)


def fast_dropout(args, X, y, size):
    return _cached_epoch(args, X, y, size, "fast_dropout", freeze="backbone")


def _allocator_child(args, size, flag):
    env = dict(os.environ, GAR_SKLEARN_TUNE_CPU_ALLOCATOR="1" if flag else "0")
    spec = json.dumps({"size": size, "data": args.data, "n": args.n, "model": args.model})
    done = subprocess.run(
        [sys.executable, __file__, "--child", spec],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def tune_cpu_allocator(args, X, y, size):
    return _pairs(args.pairs, lambda flag: _allocator_child(args, size, flag))


def child(spec):
    spec = json.loads(spec)
    X, y = load_sample(spec["data"], spec["n"])
    clf = _estimator(spec["model"], spec["size"]).fit(X[:64], y.iloc[:64])
    clf.predict(X[:32])
    print(json.dumps({"seconds": _seconds(lambda: clf.predict(X))}))


def summarise(pairs):
    ratios = [off / on for on, off in pairs]
    return {
        "gain": statistics.median(ratios),
        "ratios": ratios,
        "seconds_on": statistics.median(on for on, _ in pairs),
        "seconds_off": statistics.median(off for _, off in pairs),
    }


def markdown(results, args):
    lines = [
        f"Switch gains: {args.model}, {args.n} UTKFace images, {args.pairs} pairs "
        f"(gain = time off / time on, median of the pairs).",
        "",
        "| switch | px | what is timed | on (s) | off (s) | gain | pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    what = {
        "fold_batch_norm": "predict from paths",
        "fused_adam": f"epoch from cached features (freeze={args.freeze})",
        "fast_dropout": "epoch of the default heads from cached pooled features",
        "tune_cpu_allocator": "predict from paths, fresh process",
    }
    for r in results:
        s = r["summary"]
        pairs = " ".join(f"{x:.2f}" for x in s["ratios"])
        lines.append(
            f"| {r['switch']} | {r['size']} | {what[r['switch']]} | {s['seconds_on']:.2f} | "
            f"{s['seconds_off']:.2f} | {s['gain']:.2f}x | {pairs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args.child)
    X, y = load_sample(args.data, args.n)
    runners = {
        "fold_batch_norm": fold_batch_norm,
        "fused_adam": fused_adam,
        "fast_dropout": fast_dropout,
        "tune_cpu_allocator": tune_cpu_allocator,
    }
    results = []
    for switch in args.switches.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            pairs = runners[switch](args, X, y, size)
            results.append({"switch": switch, "size": size, "summary": summarise(pairs)})
            print(json.dumps(results[-1]), flush=True)
    text = markdown(results, args)
    print(text)
    if args.out:
        # the data folder relative to the repository: results name no machine's paths
        settings = {**vars(args), "data": os.path.relpath(args.data, REPO)}
        Path(f"{args.out}.json").write_text(json.dumps({"args": settings, "results": results}))
        Path(f"{args.out}.md").write_text(text)


if __name__ == "__main__":
    main()
