"""Labelled data sets as the ``--data`` and ``--format`` options name them."""

import os

from ._errors import CommandError
from ._tables import path_column, read_table, resolved_paths

__all__ = ["ATTRIBUTES", "FORMATS", "load_labelled"]

ATTRIBUTES = ("gender", "age", "race")
FORMATS = ("utkface", "fairface", "imdb-wiki", "csv")


def _from_csv(args):
    import numpy as np

    table = read_table(args.data, "training data")
    column = path_column(table, args.data, "training data")
    labels = [a for a in ATTRIBUTES if a in table.columns]
    if not labels:
        raise CommandError(
            f"The training data file {args.data!r} needs at least one label column of "
            f"{list(ATTRIBUTES)}; it has the columns {list(table.columns)}."
        )
    paths = np.asarray(resolved_paths(table, column, args.data), dtype=object)
    return paths, table[labels].reset_index(drop=True)


def _from_folder(args):
    import numpy as np

    from gar_sklearn import datasets

    if not os.path.exists(args.data):
        raise CommandError(f"The data folder {args.data!r} does not exist.")
    if args.format == "utkface":
        bunch = datasets.load_utkface(args.data, n_samples=args.n, random_state=args.random_state)
    elif args.format == "fairface":
        bunch = datasets.load_fairface(args.data, split=args.split, padding=args.padding)
    else:
        bunch = datasets.load_imdb_wiki(args.data, source=args.imdb_source)
    target = bunch.target.reset_index(drop=True)
    return np.asarray(bunch.data, dtype=object), target[[a for a in ATTRIBUTES if a in target]]


def _subset(paths, target, args):
    import numpy as np

    if args.n > len(paths):
        raise CommandError(f"--n {args.n} asks for more images than the {len(paths)} found.")
    rng = np.random.default_rng(args.random_state)
    keep = np.sort(rng.choice(len(paths), args.n, replace=False))
    return paths[keep], target.iloc[keep].reset_index(drop=True)


def load_labelled(args, inputs):
    """``(paths, labels DataFrame)`` of the data set named by ``--data`` and ``--format``.

    The files read are added to ``inputs`` (the data file and the images).
    """
    paths, target = _from_csv(args) if args.format == "csv" else _from_folder(args)
    if len(paths) == 0:
        raise CommandError(
            f"No labelled images were found in {args.data!r} (--format {args.format})."
        )
    # load_utkface draws a subset stratified by gender and race itself
    if args.n is not None and args.format != "utkface":
        paths, target = _subset(paths, target, args)
    if os.path.isfile(args.data):
        inputs.add(args.data, "the data file (--data)")
    inputs.add(paths, "one of the images of --data")
    return paths, target
