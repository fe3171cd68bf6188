"""How much of the per-race gender gap is the races' share of children.

Reads a run's saved per-image results (``accuracy_utkface.py`` or
``fairness_utkface.py`` with ``--save-predictions``) and the test faces'
true ages, and reports the gender accuracy per race for faces under
``--adult-age`` and from it on, each race's share of such children, and the
per-race gender gap (the best race's gender accuracy minus the worst's, over
races with at least ``--min-race-size`` test faces, with its 95 % bootstrap
interval, resampled within each race) over all faces and over the older ones
alone. Nothing is trained; it takes seconds.

    python benchmarks/gender_gap_by_age.py --predictions benchmarks/results/fairness_utkface.npz \\
        --out benchmarks/results/gender_gap_by_age
"""

import argparse

import numpy as np
from _common import (
    DEFAULT_DATA,
    load_saved_predictions,
    markdown_table,
    utkface_split,
    write_results,
)
from _intervals import gap_interval, resamples


def gender_by_race_and_age(correct, races, ages, adult_age):
    """One row per race: gender accuracy of the faces under ``adult_age`` and of the others,
    their numbers, and the share of the younger ones."""
    rows = []
    for race in sorted(set(races)):
        young = (races == race) & (ages < adult_age)
        old = (races == race) & (ages >= adult_age)
        rows.append(
            {
                "race": str(race),
                "n": int(young.sum() + old.sum()),
                "gender_accuracy": float(correct[young | old].mean()),
                "share_young": float(young.sum() / (young.sum() + old.sum())),
                "n_young": int(young.sum()),
                "gender_accuracy_young": float(correct[young].mean()) if young.any() else np.nan,
                "n_old": int(old.sum()),
                "gender_accuracy_old": float(correct[old].mean()) if old.any() else np.nan,
            }
        )
    return rows


def gaps(correct, races, ages, adult_age, min_size, n_boot, seed):
    """The per-race gender gap with its interval, over all faces and from ``adult_age`` on."""
    out = {}
    for name, rows in (("all", np.ones(len(races), bool)), ("old", ages >= adult_age)):
        draws = resamples(int(rows.sum()), n_boot, seed, strata=races[rows])
        out[name] = gap_interval(correct[rows], races[rows], min_size, draws)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", required=True, help="a run's saved <out>.npz")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="UTKFace folder")
    parser.add_argument("--n", type=int, default=None, help="the run's --n")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--adult-age", type=int, default=15, help="children are younger")
    parser.add_argument("--min-race-size", type=int, default=100, help="races in the gap")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    args = parser.parse_args(argv)

    _, X_test, _, y_test = utkface_split(args.data, n=args.n, random_state=args.seed)
    saved = load_saved_predictions(args.predictions, X_test)
    correct = saved["gender_correct"].astype(float)
    races, ages = y_test["race"].to_numpy(), y_test["age"].to_numpy(dtype=float)
    results = {
        "n_test": len(X_test),
        "adult_age": args.adult_age,
        "min_race_size": args.min_race_size,
        "overall": {
            "gender_accuracy": float(correct.mean()),
            "gender_accuracy_young": float(correct[ages < args.adult_age].mean()),
            "gender_accuracy_old": float(correct[ages >= args.adult_age].mean()),
            "share_young": float((ages < args.adult_age).mean()),
        },
        "by_race": gender_by_race_and_age(correct, races, ages, args.adult_age),
        "gaps": gaps(
            correct, races, ages, args.adult_age, args.min_race_size, args.n_boot, args.seed
        ),
    }
    write_results(args.out, results, markdown(results))
    return results


def markdown(results):
    a, o = results["adult_age"], results["overall"]
    columns = ["race", "n", "gender_accuracy", "share_young", "n_young"]
    columns += ["gender_accuracy_young", "n_old", "gender_accuracy_old"]
    lines = [
        f"{results['n_test']} test faces; 'young': under {a} years. Gender accuracy "
        f"{o['gender_accuracy']:.3f}: {o['gender_accuracy_young']:.3f} under {a} "
        f"({o['share_young']:.1%} of the faces), {o['gender_accuracy_old']:.3f} from {a} on.",
        "",
        markdown_table(results["by_race"], columns),
        "",
        f"Per-race gender gap (best race minus worst, races with at least "
        f"{results['min_race_size']} faces; 95 % bootstrap interval):",
        "",
    ]
    for name, gap in results["gaps"].items():
        faces = "all faces" if name == "all" else f"faces from {a} years on"
        lines.append(
            f"- {faces}: {gap['value']:.3f} [{gap['lower']:.3f}, {gap['upper']:.3f}] "
            f"({gap['best']} - {gap['worst']})"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
