"""The argument parser of ``gar-sklearn``: one subparser per command, shared option groups."""

import argparse

from . import _evaluate, _predict, _report, _train
from . import _types as types
from ._data import FORMATS
from ._predict import IMAGE_EXTENSIONS
from ._presets import PRESETS, setting_help

__all__ = ["build_parser"]


def _common_options():
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
    return common


def _add_force(parser, what):
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"replace {what} that holds another kind of file (a CSV where a model goes, ...); "
        "an input of the command is never replaced",
    )


def _add_plugins(parser):
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a module name, or the path of a .py file) first, so that its "
        "register_backbone(...) calls make its backbones usable; repeatable. Installed "
        "packages' entry points in the group 'gar_sklearn.backbones' are loaded too",
    )


def _add_data_options(parser):
    data = parser.add_argument_group("data")
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
        type=types.positive_int,
        metavar="N",
        help="use a random subset of N images (UTKFace: stratified by gender and race)",
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


# The settings: each left out is absent from the parsed arguments (argparse.SUPPRESS) and
# filled by apply_preset; the help adds the default and each preset's value.
_MODEL_SETTINGS = {
    "--model": dict(
        choices=("multi", "fusion"),
        help="multi: one network for all attributes; fusion: GenderFusionClassifier's default, "
        "one network with a gender head and age and race heads per gender",
    ),
    "--backbone": dict(
        metavar="NAME",
        help="a registered name (gar_sklearn.backbones.available_backbones(): mobilenet_v2, "
        "resnet50, efficientnet_b0, tiny, ...), another torchvision model, a timm model as "
        "timm/NAME or timm:NAME (where timm is installed), or a name a --plugin registers",
    ),
    "--weights": dict(
        type=types.weights,
        help="DEFAULT or a named set of pretrained weights (read from torch's hub cache, "
        "downloaded there when online), a state_dict file, or none for random initialisation",
    ),
    "--image-size": dict(
        type=types.positive_int, metavar="PX", help="images are resized to PX x PX"
    ),
    "--freeze": dict(
        type=types.freeze,
        help="auto: with pretrained weights on a CPU, freeze the first 75% of the backbone's "
        "stages (resnet50: 4 of 6, mobilenet_v2: 15 of 20) and cache their output; on a GPU or "
        "without pretrained weights, train everything. Or none, backbone (heads only), a "
        "number of stages, or a stage name",
    ),
    "--age-bins": dict(
        type=types.age_bins,
        help="auto: FairFace's nine groups for numeric ages, the labels as they are otherwise; "
        "fairface; none (exact ages or given groups as classes); or N, groups of N years",
    ),
    "--age-sigma": dict(
        type=types.optional_positive_float,
        metavar="YEARS",
        help="learn ages as Gaussian label distributions of this width in years (with "
        "--age-bins 1: exact ages) instead of one-hot classes; none for one-hot",
    ),
    "--augment": dict(
        choices=("none", "flip"),
        help="flip: train on mirrored images too (with a frozen, cached prefix: each image's "
        "mirror is the second cached view)",
    ),
    "--cache-views": dict(
        type=types.positive_int,
        metavar="N",
        help="with cached features and --augment, views cached per image",
    ),
    "--test-time-flip": dict(
        action=argparse.BooleanOptionalAction,
        help="predict each image as the mean of it and its mirror image",
    ),
}
_TRAINING_SETTINGS = {
    "--epochs": dict(type=types.positive_int, metavar="N", help="at most this many epochs"),
    "--patience": dict(
        type=types.optional_positive_int,
        metavar="N",
        help="stop when the validation loss has not improved for N epochs and keep the best "
        "epoch's weights; none: train every epoch and keep the last",
    ),
    "--batch-size": dict(type=types.positive_int, metavar="N", help=""),
    "--lr": dict(type=types.positive_float, help="learning rate"),
    "--lr-schedule": dict(
        choices=("plateau", "cosine", "onecycle", "step", "none"), help="learning-rate decay"
    ),
    "--optimizer": dict(choices=("adam", "adamw", "sgd"), help=""),
    "--weight-decay": dict(type=types.non_negative, metavar="W", help=""),
    "--dropout": dict(type=types.fraction, metavar="P", help="before each head"),
    "--label-smoothing": dict(type=types.fraction, metavar="EPS", help=""),
    "--validation-fraction": dict(
        type=types.fraction, metavar="F", help="held out for early stopping; 0 for none"
    ),
    "--weight-averaging": dict(
        type=types.weight_averaging,
        metavar="{none,ema,swa}",
        help="validate, keep and predict with an average of the trained weights: ema, a moving "
        "average over the steps; swa, the mean of each epoch's weights",
    ),
    "--ema-decay": dict(type=types.fraction, metavar="D", help="with ema, the decay per step"),
    "--averaging-start": dict(
        type=types.non_negative_int, metavar="N", help="epochs trained before averaging starts"
    ),
    "--calibrate": dict(
        action=argparse.BooleanOptionalAction,
        help="fit a temperature per head on the validation images after training, so that the "
        "probabilities are calibrated (on the flip-averaged ones with --test-time-flip)",
    ),
}


def _add_settings(group, options):
    for flag, spec in options.items():
        name = flag[2:].replace("-", "_")
        spec = {**spec, "help": setting_help(name, spec["help"])}
        group.add_argument(flag, default=argparse.SUPPRESS, **spec)


def _add_model_options(parser):
    model = parser.add_argument_group(
        "model", "Each option left out takes its value from --preset, else the default."
    )
    model.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="default",
        help="default: the defaults below; cpu-best: the library's best CPU recipe "
        "(benchmarks/accuracy_utkface.py --weight-averaging ema), the values named 'cpu-best' "
        "below",
    )
    _add_settings(model, _MODEL_SETTINGS)


def _add_training_options(parser):
    fitting = parser.add_argument_group("training")
    _add_settings(fitting, _TRAINING_SETTINGS)
    _add_run_options(fitting.add_argument)


def _add_run_options(add):
    add("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    add(
        "--cache-dir",
        metavar="DIR",
        help="also keep the cached features on disk, reused by later runs",
    )
    add(
        "--random-state",
        metavar="SEED",
        type=int,
        default=0,
        help="seeds the subset, the split, initialisation and shuffling (default: %(default)s)",
    )


def _add_report_options(parser, by_default, by_help):
    parser.add_argument(
        "--by",
        type=types.groupings,
        default=by_default,
        metavar="COLUMNS",
        help="columns to group by, comma-separated; join with + for intersectional groups, "
        f"e.g. race,gender,race+gender (default: {by_help})",
    )
    parser.add_argument(
        "--min-group-size",
        type=types.positive_int,
        default=30,
        metavar="N",
        help="smaller groups are marked * and left out of the disparities (default: %(default)s)",
    )
    parser.add_argument(
        "--details", action="store_true", help="add the per-group classification reports"
    )


def _train_parser(commands, common):
    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a model on labelled face images and save it",
        description="Train a model on labelled face images and save it (load it with "
        "gar_sklearn.load). The defaults are the library's: a pretrained ResNet50 whose "
        "first 4 of 6 stages are frozen and computed once per image on a CPU (cached "
        "features), so each epoch trains the last stages and the heads only; the whole "
        "network on a GPU. --backbone mobilenet_v2 is a much lighter choice for a CPU.",
    )
    _add_data_options(train)
    _add_model_options(train)
    _add_training_options(train)
    train.add_argument("--out", required=True, metavar="MODEL", help="where to save the model file")
    _add_force(train, "an --out file")
    _add_plugins(train)
    train.set_defaults(func=_train.run)


def _predict_parser(commands, common):
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
    add = predict.add_argument
    add("model", metavar="MODEL", help="a model file written by 'gar-sklearn train' or .save")
    add(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, folders (searched recursively for "
        f"{', '.join(IMAGE_EXTENSIONS)}) or CSV files with a 'path' column",
    )
    add("--out", metavar="CSV", help="where to write the predictions (default: stdout)")
    add(
        "--detect",
        action="store_true",
        help="find the faces in each photo first (OpenCV) and predict each face; "
        "adds face_index and the box x, y, w, h",
    )
    add(
        "--margin",
        type=types.non_negative,
        default=0.25,
        help="--detect: margin added on each side of a face box, as a fraction "
        "of its size (default: %(default)s, as FairFace)",
    )
    add("--max-faces", type=types.positive_int, metavar="N", help="--detect: the N largest faces")
    add("--batch-size", type=types.positive_int, help="images per batch (default: the model's)")
    add("--device", default=None, help="auto, cpu, cuda (default: the model's, else cpu)")
    _add_force(predict, "an --out file")
    _add_plugins(predict)
    predict.set_defaults(func=_predict.run)


def _report_parser(commands, common):
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
    add = report.add_argument
    add("preds", metavar="PREDS", help="a predictions CSV written by 'gar-sklearn predict'")
    add(
        "--truth",
        required=True,
        metavar="CSV",
        help="a CSV with a 'path' (or 'file') column and true labels gender, age "
        "(years or groups), race",
    )
    _add_report_options(report, ["race", "gender"], "race,gender")
    add("--plots", metavar="DIR", help="write PNG plots into DIR")
    add("--json", metavar="FILE", help="also write the report as JSON into FILE")
    _add_force(report, "a plot or --json file")
    report.set_defaults(func=_report.run)


def _evaluate_parser(commands, common):
    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="split, train, predict the held-out images and report per group: the main job",
        description="Split a labelled data set into training and held-out images, keeping "
        "byte-identical images on one side; train; predict the held-out images; print the "
        "report per race, per gender and per race x gender; and write into --out: model.pt, "
        "split.csv (every image, its labels and its side), predictions.csv (the held-out "
        "predictions), report.txt, report.json and plots/.",
    )
    _add_data_options(evaluate)
    evaluate.add_argument(
        "--test-size",
        metavar="SIZE",
        type=types.test_size,
        default=0.2,
        help="the held-out share of the images in (0, 1), or their number (default: %(default)s)",
    )
    _add_model_options(evaluate)
    _add_training_options(evaluate)
    report = evaluate.add_argument_group("report")
    _add_report_options(report, None, "those of race, gender, race+gender the labels have")
    report.add_argument("--no-plots", action="store_true", help="write no plots")
    evaluate.add_argument("--out", required=True, metavar="DIR", help="the folder to write into")
    _add_force(evaluate, "a file in --out")
    _add_plugins(evaluate)
    evaluate.set_defaults(func=_evaluate.run)


def build_parser():
    """The argument parser of ``gar-sklearn`` (one subparser per command)."""
    from gar_sklearn import __version__

    parser = argparse.ArgumentParser(
        prog="gar-sklearn",
        description="Estimate gender, age and race from face images: train a model, predict "
        "on images or raw photos, report accuracy per demographic group, or do all of it "
        "on a held-out split (evaluate).",
        epilog="Run 'gar-sklearn COMMAND --help' for the options of a command. Exit codes: 0 "
        "success, 1 runtime error, 2 bad arguments, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()
    _train_parser(commands, common)
    _predict_parser(commands, common)
    _report_parser(commands, common)
    _evaluate_parser(commands, common)
    return parser
