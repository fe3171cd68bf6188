"""The ``gar-sklearn`` command: train a model, predict on photos, report per-group metrics.

::

    gar-sklearn train   --data DIR --format utkface --out model.pt
    gar-sklearn predict model.pt photos/ --detect --out preds.csv
    gar-sklearn report  preds.csv --truth labels.csv --by race,gender --plots plots/

Also runs as ``python -m gar_sklearn.cli``. Exit codes: 0 on success, 2 for
usage errors (argparse), 1 for runtime errors (missing or unreadable files,
unknown backbone, weights unavailable), printed as ``error: <message>``
without a traceback unless ``--debug``; 130 when interrupted. See
``docs/cli.md``.

torch and the estimators are imported only by the commands that need them,
so ``--help`` answers at once.
"""

import argparse
import contextlib
import os
import sys
import warnings

__all__ = ["build_parser", "main"]

ATTRIBUTES = ("gender", "age", "race")
FORMATS = ("utkface", "fairface", "imdb-wiki", "csv")
MODELS = ("multi", "fusion")
DEFAULT_BACKBONE = "mobilenet_v2"
DEFAULT_EPOCHS = 10
# the share of a pretrained backbone's stages that --freeze auto keeps frozen (mobilenet_v2: 15 of 20)
AUTO_FREEZE_SHARE = 0.75
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
PATH_COLUMNS = ("path", "file")
STATUS_OK, STATUS_UNREADABLE, STATUS_NO_FACE = "ok", "unreadable", "no face"
NO_GROUP = "(no predicted group)"
_N_BOOT = 500


class CommandError(Exception):
    """A runtime problem reported as ``error: <message>`` with exit code 1."""


# ---------------------------------------------------------------- argument types
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def _weights_arg(text):
    return None if text.lower() == "none" else text


def _freeze_arg(text):
    """'auto', 'none', 'backbone', a number of stages or a stage name."""
    low = text.lower()
    if low in ("auto", "backbone"):
        return low
    if low == "none":
        return None
    if text.lstrip("-").isdigit():
        value = int(text)
        if value < 0:
            raise argparse.ArgumentTypeError(
                f"must be auto, none, backbone, a stage count >= 0 or a stage name; got {text!r}"
            )
        return value
    return text  # a stage name, checked against the backbone in fit


def _age_bins_arg(text):
    low = text.lower()
    if low in ("auto", "fairface"):
        return low
    if low == "none":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be auto, fairface, none or a positive interval in years; got {text!r}"
        ) from None


def _groupings_arg(text):
    """``race,gender,race+gender`` -> ``["race", "gender", ("race", "gender")]``."""
    out = []
    for item in text.split(","):
        names = [n.strip() for n in item.split("+")]
        if not item.strip() or not all(names):
            raise argparse.ArgumentTypeError(
                f"must be column names separated by commas, '+' joining columns for "
                f"intersectional groups (e.g. race,gender,race+gender); got {text!r}"
            )
        out.append(names[0] if len(names) == 1 else tuple(names))
    return out


# ---------------------------------------------------------------- parser
def build_parser():
    """The argument parser of ``gar-sklearn`` (one subparser per command)."""
    common = argparse.ArgumentParser(add_help=False)
    level = common.add_mutually_exclusive_group()
    level.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=2,
        default=1,
        help="draw progress bars even when stderr is not a terminal",
    )
    level.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=0,
        help="no progress bars, epoch lines or notes (warnings and errors still show)",
    )
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")

    parser = argparse.ArgumentParser(
        prog="gar-sklearn",
        description="Estimate gender, age and race from face images: train a model, predict "
        "on images or raw photos, and report accuracy per demographic group.",
        epilog="Run 'gar-sklearn COMMAND --help' for the options of a command. Exit codes: 0 "
        "success, 1 runtime error, 2 bad arguments.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # ------------------------------------------------------------ train
    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a model on labelled face images and save it",
        description="Train a model on labelled face images and save it (load it with "
        "gar_sklearn.load). The defaults suit a CPU: a pretrained MobileNetV2 whose "
        "first 15 of 20 stages are frozen and computed once per image (cached "
        "features), so each epoch trains the last blocks and the heads only.",
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="the data set folder (utkface, fairface, imdb-wiki) or a CSV file (csv)",
    )
    data.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="utkface: labels in the file names; fairface: its label CSVs and image "
        "folders; imdb-wiki: its .mat file and crops; csv: a 'path' column "
        "(relative to the CSV's folder, or absolute) and label columns gender, "
        "age, race (any of them)",
    )
    data.add_argument(
        "--n",
        type=_positive_int,
        metavar="N",
        help="train on a random subset of N images (UTKFace: stratified by gender and race)",
    )
    data.add_argument(
        "--split",
        choices=("train", "val"),
        default="train",
        help="fairface: which published split (default: %(default)s)",
    )
    data.add_argument(
        "--padding",
        choices=("0.25", "1.25"),
        default="0.25",
        help="fairface: which crop margin (default: %(default)s)",
    )
    data.add_argument(
        "--imdb-source",
        choices=("imdb", "wiki"),
        default="imdb",
        help="imdb-wiki: which half (default: %(default)s)",
    )
    model = train.add_argument_group("model")
    model.add_argument(
        "--model",
        choices=MODELS,
        default="multi",
        help="multi: one network for all attributes; fusion: a gender network, "
        "then age and race networks per gender (default: %(default)s)",
    )
    model.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help="a name from gar_sklearn.backbones.available_backbones(), e.g. "
        "mobilenet_v2, resnet50, efficientnet_b0 (default: %(default)s)",
    )
    model.add_argument(
        "--weights",
        type=_weights_arg,
        default="DEFAULT",
        help="DEFAULT or a torchvision weights name (read from torch's hub cache, "
        "downloaded there when online), a state_dict file, or none for "
        "random initialisation (default: %(default)s)",
    )
    model.add_argument(
        "--image-size",
        type=_positive_int,
        default=224,
        metavar="PX",
        help="images are resized to PX x PX (default: %(default)s)",
    )
    model.add_argument(
        "--freeze",
        type=_freeze_arg,
        default="auto",
        help="auto: with pretrained weights, freeze the first 75%% of the "
        "backbone's stages (mobilenet_v2: 15 of 20) and cache their output; "
        "without, train everything. Or none, backbone (heads only), a "
        "number of stages, or a stage name (default: auto)",
    )
    model.add_argument(
        "--age-bins",
        type=_age_bins_arg,
        default="auto",
        help="auto: FairFace's nine groups for numeric ages, the labels as they "
        "are otherwise; fairface; none (exact ages or given groups as "
        "classes); or N, groups of N years (default: auto)",
    )
    fitting = train.add_argument_group("training")
    fitting.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULT_EPOCHS,
        help="at most this many epochs; training stops early when the "
        "validation loss stalls for 5 (default: %(default)s)",
    )
    fitting.add_argument(
        "--batch-size", type=_positive_int, default=32, help="(default: %(default)s)"
    )
    fitting.add_argument(
        "--lr", type=float, default=1e-3, help="learning rate (default: %(default)s)"
    )
    fitting.add_argument(
        "--validation-fraction",
        type=_non_negative,
        default=0.1,
        help="held out for early stopping; 0 for none (default: %(default)s)",
    )
    fitting.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)"
    )
    fitting.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="also keep the cached features on disk, reused by later runs",
    )
    fitting.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seeds the subset, split, initialisation and shuffling (default: %(default)s)",
    )
    train.add_argument("--out", required=True, metavar="MODEL", help="where to save the model file")
    train.set_defaults(func=_train)

    # ------------------------------------------------------------ predict
    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="predict gender, age and race of images or of the faces in photos",
        description="Predict with a saved model. Writes one row per image (per face with "
        "--detect): the path, the predictions, their probabilities "
        "(<attribute>_proba), the estimated age in years (age_years) and a status "
        "(ok, unreadable, no face). Unreadable images are listed in a warning and "
        "keep their row with empty predictions.",
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help="a model file written by 'gar-sklearn train' or estimator.save",
    )
    predict.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, folders (searched recursively for "
        f"{', '.join(IMAGE_EXTENSIONS)}) or CSV files with a 'path' column",
    )
    predict.add_argument(
        "--out", metavar="CSV", help="where to write the predictions (default: stdout)"
    )
    predict.add_argument(
        "--detect",
        action="store_true",
        help="find the faces in each photo first (OpenCV) and predict each face; "
        "adds face_index and the box x, y, w, h",
    )
    predict.add_argument(
        "--margin",
        type=_non_negative,
        default=0.25,
        help="--detect: margin added on each side of a face box, as a fraction "
        "of its size (default: %(default)s, as FairFace)",
    )
    predict.add_argument(
        "--max-faces",
        type=_positive_int,
        metavar="N",
        help="--detect: keep at most the N largest faces per photo",
    )
    predict.add_argument(
        "--batch-size", type=_positive_int, help="images per batch (default: the model's)"
    )
    predict.add_argument(
        "--device", default=None, help="auto, cpu, cuda (default: the model's, else cpu)"
    )
    predict.set_defaults(func=_predict)

    # ------------------------------------------------------------ report
    report = commands.add_parser(
        "report",
        parents=[common],
        help="compare predictions with the true labels, per group",
        description="Join predictions (from 'gar-sklearn predict') with true labels on the image "
        "path and print accuracy (and age error) overall and per group, with "
        "disparities. Rows are matched by absolute path (prediction paths relative "
        "to the current folder, truth paths relative to the truth CSV's folder), "
        "then by file name where it is unique on both sides.",
    )
    report.add_argument(
        "preds", metavar="PREDS", help="a predictions CSV written by 'gar-sklearn predict'"
    )
    report.add_argument(
        "--truth",
        required=True,
        metavar="CSV",
        help="a CSV with a 'path' (or 'file') column and true labels gender, age "
        "(years or groups), race",
    )
    report.add_argument(
        "--by",
        type=_groupings_arg,
        default=["race", "gender"],
        metavar="COLUMNS",
        help="columns of the truth CSV to group by, comma-separated; join with + "
        "for intersectional groups, e.g. race,gender,race+gender "
        "(default: race,gender)",
    )
    report.add_argument(
        "--min-group-size",
        type=_positive_int,
        default=30,
        metavar="N",
        help="smaller groups are marked * and left out of the disparities (default: %(default)s)",
    )
    report.add_argument(
        "--details", action="store_true", help="add the per-group classification reports"
    )
    report.add_argument("--plots", metavar="DIR", help="write PNG plots into DIR")
    report.set_defaults(func=_report)
    return parser


# ---------------------------------------------------------------- main
def main(argv=None):
    """Run ``gar-sklearn`` with ``argv`` (default: the command line); returns the exit code.

    Usage errors exit through argparse (``SystemExit(2)``); runtime errors
    return 1 after printing ``error: <message>`` to stderr.
    """
    args = build_parser().parse_args(argv)
    with _warnings_as_lines():
        try:
            args.func(args)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # e.g. '| head' stopped reading: nothing more to say
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:
            if args.debug:
                raise
            print(f"error: {_describe(exc)}", file=sys.stderr)
            return 1
    return 0


def _describe(exc):
    """The message of an error: as it is for the expected kinds, with its type otherwise."""
    text = str(exc).strip() or type(exc).__name__
    # the library's own exception classes (e.g. WeightsUnavailableError) speak to users too
    if isinstance(exc, (CommandError, ValueError, OSError, ImportError)) or (
        type(exc).__module__.startswith("gar_sklearn.")
    ):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


@contextlib.contextmanager
def _warnings_as_lines():
    """Show warnings as ``warning: <message>`` lines on stderr, each once."""

    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text not in seen:  # the same warning from several call sites (e.g. one per plot) once
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        # unreadable images have NaN probabilities by design; numpy's nanmax remark adds nothing
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
        warnings.showwarning = show
        yield


def _note(args, text):
    if args.verbosity:
        print(text, file=sys.stderr)


# ---------------------------------------------------------------- tables
def _read_table(path, what):
    import pandas as pd

    if os.path.isdir(path):
        raise CommandError(f"The {what} must be a CSV file; {path!r} is a folder.")
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise CommandError(f"The {what} file {path!r} does not exist.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"Could not read the {what} file {path!r} as CSV: {exc}") from exc


def _path_column(frame, path, what):
    for name in PATH_COLUMNS:
        if name in frame.columns:
            break
    else:
        raise CommandError(
            f"The {what} file {path!r} needs a 'path' column (or 'file') naming the images; it "
            f"has the columns {list(frame.columns)}."
        )
    values = frame[name]
    missing = values.isna() | (values.astype(str).str.strip() == "")
    if missing.any():
        rows = (missing[missing].index[:5] + 2).tolist()  # +2: the header line, and 1-based
        raise CommandError(f"The {what} file {path!r} has rows without a {name!r} (lines {rows}).")
    return name


def _resolved_paths(frame, column, csv_path):
    """The paths of a CSV's ``column``, relative ones taken from the CSV's folder."""
    folder = os.path.dirname(os.fspath(csv_path))
    return [
        p if os.path.isabs(p) else os.path.normpath(os.path.join(folder, p))
        for p in frame[column].astype(str).str.strip()
    ]


# ---------------------------------------------------------------- train
def _load_training_data(args):
    """``(paths, labels DataFrame)`` of the data set named by ``--data`` and ``--format``."""
    import numpy as np

    from . import datasets

    if args.format == "csv":
        table = _read_table(args.data, "training data")
        column = _path_column(table, args.data, "training data")
        labels = [a for a in ATTRIBUTES if a in table.columns]
        if not labels:
            raise CommandError(
                f"The training data file {args.data!r} needs at least one label column of "
                f"{list(ATTRIBUTES)}; it has the columns {list(table.columns)}."
            )
        paths = np.asarray(_resolved_paths(table, column, args.data), dtype=object)
        target = table[labels].reset_index(drop=True)
    else:
        if not os.path.exists(args.data):
            raise CommandError(f"The data folder {args.data!r} does not exist.")
        if args.format == "utkface":
            bunch = datasets.load_utkface(
                args.data, n_samples=args.n, random_state=args.random_state
            )
        elif args.format == "fairface":
            bunch = datasets.load_fairface(args.data, split=args.split, padding=args.padding)
        else:
            bunch = datasets.load_imdb_wiki(args.data, source=args.imdb_source)
        paths, target = np.asarray(bunch.data, dtype=object), bunch.target.reset_index(drop=True)
        target = target[[a for a in ATTRIBUTES if a in target.columns]]
    if len(paths) == 0:
        raise CommandError(
            f"No labelled images were found in {args.data!r} (--format {args.format})."
        )
    if (
        args.n is not None and args.format != "utkface"
    ):  # load_utkface draws a stratified subset itself
        if args.n > len(paths):
            raise CommandError(f"--n {args.n} asks for more images than the {len(paths)} found.")
        keep = np.sort(
            np.random.default_rng(args.random_state).choice(len(paths), args.n, replace=False)
        )
        paths, target = paths[keep], target.iloc[keep].reset_index(drop=True)
    return paths, target


def _age_bins(choice, ages):
    import pandas as pd

    if choice != "auto":
        return choice
    numeric = pd.to_numeric(ages, errors="coerce").notna().all()
    return "fairface" if numeric else None


def _freeze(choice, backbone, weights):
    if choice != "auto":
        return choice
    if weights is None:
        return None  # frozen random features would learn nothing
    return int(len(backbone.stage_names) * AUTO_FREEZE_SHARE)


def _genders(values):
    found = sorted(set(values.dropna().astype(str)))
    if set(found) == {"Male", "Female"}:
        return ("Male", "Female")
    if len(found) != 2:
        raise CommandError(f"--model fusion needs exactly two gender values; the data has {found}.")
    return tuple(found)


def _build_estimator(args, attributes, target, backbone):
    from ._fusion import GenderFusionClassifier
    from ._multi_attribute import MultiAttributeClassifier

    age_bins = _age_bins(args.age_bins, target["age"]) if "age" in attributes else None
    common = dict(
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        freeze=_freeze(args.freeze, backbone, args.weights),
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        validation_fraction=args.validation_fraction,
        device=args.device,
        cache_dir=args.cache_dir,
        on_error="skip",
        verbose=args.verbosity,
    )
    if args.model == "multi":
        return MultiAttributeClassifier(
            attributes=tuple(attributes),
            age_bins=age_bins,
            random_state=args.random_state,
            **common,
        )
    others = tuple(a for a in attributes if a != "gender")
    if "gender" not in attributes or not others:
        raise CommandError(
            f"--model fusion needs a gender label and at least one of age, race; the data has "
            f"{list(attributes)}. Use --model multi."
        )
    return GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **common),
        specialist=MultiAttributeClassifier(attributes=others, age_bins=age_bins, **common),
        genders=_genders(target["gender"]),
        random_state=args.random_state,
    )


def _parts(estimator):
    """``(name, MultiAttributeClassifier)`` pairs of a fitted model."""
    if hasattr(estimator, "specialists_"):
        return [
            ("gender classifier", estimator.gender_estimator_),
            *((f"{g} specialist", part) for g, part in estimator.specialists_.items()),
        ]
    return [("model", estimator)]


def _fit_summary(name, part):
    history = list(getattr(part, "history_", []))
    if not history:
        return f"{name}: not trained"
    best = [row for row in history if row.get("valid_loss_best")]
    row = best[-1] if best else history[-1]
    accs = [
        f"{k[len('valid_acc_') :]} {v:.3f}" for k, v in row.items() if k.startswith("valid_acc_")
    ]
    scores = f"validation accuracy {', '.join(accs)}" if accs else "no validation split"
    return f"{name}: {len(history)} epochs; epoch {row['epoch']} kept: {scores}"


def _train(args):
    from .backbones import build_backbone

    # names, weights and files are checked before any image is read
    backbone = build_backbone(args.backbone, args.weights)
    paths, target = _load_training_data(args)
    attributes = list(target.columns)
    estimator = _build_estimator(args, attributes, target, backbone)
    _note(
        args,
        f"Training {type(estimator).__name__} ({args.backbone}, {', '.join(attributes)}) "
        f"on {len(paths)} images.",
    )
    estimator.fit(paths, target)
    out = os.fspath(args.out)
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    estimator.save(out)
    if args.verbosity:
        for name, part in _parts(estimator):
            print(_fit_summary(name, part))
        print(f"Saved the model to {out}")


# ---------------------------------------------------------------- predict
def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _collect_images(items):
    """The image paths named by the PATH arguments, in order: files, folders, CSVs."""
    paths = []
    for item in items:
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if _is_image(f)]
            if not found:
                raise CommandError(
                    f"The folder {item!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})."
                )
            paths += found
        elif item.lower().endswith(".csv"):
            table = _read_table(item, "image list")
            paths += _resolved_paths(table, _path_column(table, item, "image list"), item)
        elif os.path.exists(item):
            paths.append(item)
        else:
            raise CommandError(f"No such file or folder: {item!r}.")
    if not paths:
        raise CommandError("No images to predict.")
    return paths


def _configure(estimator, **params):
    """Set runtime parameters (verbose, on_error, batch_size) on every part of a loaded model."""
    for _, part in _parts(estimator):
        own = part.get_params(deep=False)
        part.set_params(**{k: v for k, v in params.items() if k in own and v is not None})


def _image_size(estimator):
    sizes = [getattr(part, "image_size_", None) for _, part in _parts(estimator)]
    return next((s for s in sizes if s), 224)


def _prediction_names(estimator):
    """The prediction columns of the output: attributes, their probabilities, age in years."""
    attributes = list(estimator.attributes_)
    return (
        attributes
        + [f"{a}_proba" for a in attributes]
        + (["age_years"] if "age" in attributes else [])
    )


def _prediction_columns(estimator, frame):
    return frame[[c for c in _prediction_names(estimator) if c in frame.columns]]


def _predict_images(estimator, paths):
    import numpy as np
    import pandas as pd

    preds = _prediction_columns(estimator, estimator.predict_frame(paths, proba=True))
    ok = preds[estimator.attributes_[0]].notna().to_numpy()
    out = pd.concat([pd.DataFrame({"path": paths}), preds.reset_index(drop=True)], axis=1)
    out["status"] = np.where(ok, STATUS_OK, STATUS_UNREADABLE)
    return out


def _predict_faces(estimator, paths, args):
    import numpy as np
    import pandas as pd

    from .preprocessing import FaceCropper

    cropper = FaceCropper(
        margin=args.margin,
        size=_image_size(estimator),
        max_faces=args.max_faces,
        on_error="skip",
        on_no_face="ignore",
        verbose=args.verbosity,
    )
    crops = cropper.transform(paths)
    faces = crops.to_frame()
    out = pd.DataFrame(
        {
            "path": [paths[i] for i in faces["source_index"]],
            **{c: faces[c].reset_index(drop=True) for c in ("face_index", "x", "y", "w", "h")},
        }
    )
    found = faces["face_found"].to_numpy()
    attributes = set(estimator.attributes_)
    for column in _prediction_names(estimator):  # empty where no face: filled below
        out[column] = np.full(len(out), None, dtype=object) if column in attributes else np.nan
    if len(crops):  # the crops all have the model's size: one array, no resizing
        preds = estimator.predict_frame(np.stack(crops), proba=True)
        for column in _prediction_names(estimator):
            out.loc[found, column] = preds[column].to_numpy()
    unreadable = faces["error"].notna().to_numpy()
    out["status"] = np.where(
        found, STATUS_OK, np.where(unreadable, STATUS_UNREADABLE, STATUS_NO_FACE)
    )
    if len(crops.no_face):
        names = [paths[i] for i in crops.no_face]
        shown = ", ".join(repr(n) for n in names[:5]) + (
            f" and {len(names) - 5} more" if len(names) > 5 else ""
        )
        warnings.warn(
            f"No face found in {len(names)} of {len(paths)} images: {shown}; their rows "
            f"have status {STATUS_NO_FACE!r} and no predictions.",
            UserWarning,
            stacklevel=2,
        )
    return out


def _predict(args):
    from ._persistence import load

    estimator = load(args.model, device=args.device)
    paths = _collect_images(args.paths)
    _configure(estimator, verbose=args.verbosity, on_error="skip", batch_size=args.batch_size)
    out = (
        _predict_faces(estimator, paths, args) if args.detect else _predict_images(estimator, paths)
    )
    for column in out.columns:  # probabilities to 4 decimals and ages to 2 are plenty in a CSV
        if column.endswith("_proba") or column == "age_years":
            out[column] = out[column].astype(float).round(4 if column.endswith("_proba") else 2)
    if args.out in (None, "-"):
        out.to_csv(sys.stdout, index=False)
        return
    if os.path.dirname(args.out):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
    out.to_csv(args.out, index=False)
    counts = out["status"].value_counts()
    extra = [f"{counts[s]} {s}" for s in (STATUS_UNREADABLE, STATUS_NO_FACE) if s in counts]
    n_ok, images = int(counts.get(STATUS_OK, 0)), _count(len(paths), "image")
    done = f"{_count(n_ok, 'face')} in {images}" if args.detect else f"{n_ok} of {images}"
    _note(
        args,
        f"Wrote predictions for {done}{' (' + ', '.join(extra) + ')' if extra else ''} "
        f"to {args.out}",
    )


# ---------------------------------------------------------------- report
def _count(n, noun):
    return f"{int(n)} {noun}{'' if n == 1 else 's'}"


def _match(pred_paths, truth_paths):
    """For each prediction path, the position of its truth row, or -1.

    Absolute paths first; then file names that occur once among the distinct
    prediction paths and once among the truth paths.
    """
    import numpy as np

    truth_abs = {}
    for i, p in enumerate(truth_paths):
        truth_abs.setdefault(os.path.abspath(p), i)
    out = np.array([truth_abs.get(os.path.abspath(p), -1) for p in pred_paths])
    truth_names = {}
    for i, p in enumerate(truth_paths):
        truth_names.setdefault(os.path.basename(p), []).append(i)
    pred_names = {}
    for p in set(pred_paths):
        pred_names.setdefault(os.path.basename(p), set()).add(p)
    for k in np.flatnonzero(out < 0):
        name = os.path.basename(pred_paths[k])
        if len(truth_names.get(name, ())) == 1 and len(pred_names[name]) == 1:
            out[k] = truth_names[name][0]
    return out


def _age_group_of(age, groups):
    """The label among ``groups`` whose range holds ``age`` (exact years), else :data:`NO_GROUP`."""
    import re

    for label in groups:
        text = str(label).strip()
        if m := re.fullmatch(r"(\d+)\s*-\s*(\d+)", text):
            if int(m[1]) <= age <= int(m[2]):
                return label
        elif m := re.fullmatch(r"(?:more than\s*(\d+)|(\d+)\s*\+)", text):
            if age >= int(m[1] or m[2]):
                return label
        elif re.fullmatch(r"\d+", text) and int(text) == age:
            return label
    return NO_GROUP


def _true_ages_like(true_ages, pred_ages, all_pred_ages):
    """The true age labels in the vocabulary of the predictions.

    Numeric true ages against predicted groups are put in the predicted group
    holding them (FairFace's nine groups when the predictions use them).
    """
    import numpy as np
    import pandas as pd

    true_num = pd.to_numeric(true_ages, errors="coerce")
    pred_num = pd.to_numeric(pred_ages, errors="coerce")
    if true_num.notna().all() and pred_num.notna().all():  # exact ages on both sides
        return true_num.round().astype(int).to_numpy(), pred_num.round().astype(int).to_numpy()
    if not true_num.notna().all():  # groups on both sides: compare as text
        return true_ages.astype(str).to_numpy(), pred_ages.astype(str).to_numpy()
    from .preprocessing import FAIRFACE_AGE_GROUPS, AgeBinner

    vocabulary = list(dict.fromkeys(all_pred_ages.dropna().astype(str)))
    if set(vocabulary) <= set(FAIRFACE_AGE_GROUPS):
        truth = AgeBinner("fairface").fit([0]).transform(true_num.to_numpy())
    else:
        truth = np.asarray(
            [_age_group_of(a, vocabulary) for a in true_num.to_numpy()], dtype=object
        )
    return np.asarray(truth, dtype=object), pred_ages.astype(str).to_numpy()


def _age_order(labels):
    from .preprocessing import age_group_midpoints

    def key(label):
        try:
            return (0, float(age_group_midpoints([label])[0]))
        except ValueError:
            return (1, 0.0)

    return sorted(set(labels), key=key)


def _comparison(args):
    """``(y, y_true, y_pred, age_pred, notes)`` of the matched, predicted images."""
    import numpy as np
    import pandas as pd

    preds = _read_table(args.preds, "predictions")
    truth = _read_table(args.truth, "truth")
    pred_col = _path_column(preds, args.preds, "predictions")
    truth_col = _path_column(truth, args.truth, "truth")
    attributes = [c for c in preds.columns if f"{c}_proba" in preds.columns]
    if not attributes:
        raise CommandError(
            f"The predictions file {args.preds!r} has no prediction columns (an attribute column "
            f"with its '<attribute>_proba', as 'gar-sklearn predict' writes); it has "
            f"{list(preds.columns)}."
        )
    shared = [a for a in attributes if a in truth.columns]
    if not shared:
        raise CommandError(
            f"The truth file {args.truth!r} has none of the predicted attributes {attributes}; "
            f"it has the columns {list(truth.columns)}."
        )
    by_columns = sorted({c for g in args.by for c in ((g,) if isinstance(g, str) else g)})
    missing = [c for c in by_columns if c not in truth.columns]
    if missing:
        raise CommandError(
            f"--by names {missing}, which the truth file {args.truth!r} lacks; it has the "
            f"columns {list(truth.columns)}."
        )

    pred_paths = preds[pred_col].astype(str).str.strip().tolist()
    match = _match(pred_paths, _resolved_paths(truth, truth_col, args.truth))
    predicted = preds[shared].notna().all(axis=1).to_numpy()
    unmatched = match < 0
    if unmatched.all():
        raise CommandError(
            f"No prediction matched a row of the truth file {args.truth!r} by path (absolute, or "
            "by file name where unique). Check the 'path' columns of both files."
        )
    several = np.zeros(len(preds), bool)
    if (
        "face_index" in preds.columns
    ):  # one truth row per image: images with several faces are ambiguous
        faces = pd.Series(predicted, index=pred_paths).groupby(level=0).sum()
        several = np.isin(pred_paths, faces.index[faces > 1])
    rows = ~unmatched & predicted & ~several
    if not rows.any():
        raise CommandError("No matched image has a prediction to compare.")
    if len(set(match[rows])) < rows.sum():
        raise CommandError(
            "Several prediction rows match the same truth row; give each image once."
        )
    left_out = [  # distinct images, each counted under the first reason it meets
        (unmatched, "not in the truth file"),
        (~unmatched & ~predicted, "without a prediction (unreadable or no face)"),
        (~unmatched & predicted & several, "with several faces"),
    ]
    notes = [f"{int(rows.sum())} of {_count(len(set(pred_paths)), 'predicted image')} compared"]
    for mask, why in left_out:
        n = len({p for p, m in zip(pred_paths, mask) if m})
        if n:
            notes.append(f"{_count(n, 'image')} {why} left out")

    y = truth.iloc[match[rows]].reset_index(drop=True)
    y_pred = preds.loc[rows, shared].reset_index(drop=True)
    y_true = y[shared].copy()
    age_pred = None
    if "age" in shared:
        y_true["age"], y_pred["age"] = _true_ages_like(y["age"], y_pred["age"], preds["age"])
        exact = pd.to_numeric(y["age"], errors="coerce").notna().all()
        if exact and "age_years" in preds.columns:
            age_pred = preds.loc[rows, "age_years"].to_numpy(dtype=float)
    return y[shared + [c for c in by_columns if c not in shared]], y_true, y_pred, age_pred, notes


def _write_plots(folder, report, y_true, y_pred, groupings, min_group_size):
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    from .plotting import plot_age_error, plot_confusion_matrices, plot_group_metric

    os.makedirs(folder, exist_ok=True)
    written = []

    def save(fig, name):
        path = os.path.join(folder, name)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    labels = (
        {"age": _age_order(list(y_true["age"]) + list(y_pred["age"]))} if "age" in y_true else None
    )
    displays = plot_confusion_matrices(y_true, y_pred, labels=labels)
    save(next(iter(displays.values())).figure_, "confusion_matrices.png")
    for grouping in groupings:
        names = (grouping,) if isinstance(grouping, str) else tuple(grouping)
        sensitive = report.sensitive[list(names)]
        for attr in y_true.columns:
            ax = plot_group_metric(
                y_true[attr].to_numpy(),
                y_pred[attr].to_numpy(),
                sensitive_features=sensitive,
                n_boot=_N_BOOT,
                random_state=0,
                min_group_size=min_group_size,
            )
            ax.set_title(f"{attr} accuracy by {' x '.join(names)}")
            save(ax.figure, f"accuracy_{attr}_by_{'_x_'.join(names)}.png")
    if report.age_true is not None:
        save(plot_age_error(report.age_true, report.age_pred).figure, "age_error.png")
    return written


def _report(args):
    from .metrics import GroupReport

    y, y_true, y_pred, age_pred, notes = _comparison(args)
    others = [c for c in y.columns if c not in y_true.columns]  # grouping columns not predicted
    report = GroupReport.from_predictions(
        y_true,
        y_pred,
        sensitive_features=y[others] if others else None,
        age_true=None if age_pred is None else y["age"],
        age_pred=age_pred,
        by=args.by,
        min_group_size=args.min_group_size,
    )
    _note(args, "; ".join(notes) + ".")
    print(report.to_text(details=args.details))
    if args.plots:
        written = _write_plots(args.plots, report, y_true, y_pred, args.by, args.min_group_size)
        _note(args, f"Wrote {len(written)} plots to {args.plots}")


if __name__ == "__main__":
    sys.exit(main())
