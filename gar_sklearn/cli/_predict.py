"""``gar-sklearn predict``: a saved model's predictions for images, or for the faces in photos."""

import os
import sys
import warnings

from ._console import count, note, shown
from ._errors import CommandError
from ._files import Inputs, check_output, write_atomically
from ._model import parts
from ._plugins import load_entry_points, load_plugins
from ._tables import path_column, read_table, resolved_paths

__all__ = ["IMAGE_EXTENSIONS", "prediction_frame", "run"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
STATUS_OK, STATUS_UNREADABLE, STATUS_NO_FACE = "ok", "unreadable", "no face"


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _folder_images(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if _is_image(f)]
    if not found:
        raise CommandError(
            f"The folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})."
        )
    return found


def collect_images(items, inputs):
    """The image paths named by the PATH arguments, in order: files, folders, CSVs."""
    paths = []
    for item in items:
        if os.path.isdir(item):
            paths += _folder_images(item)
        elif item.lower().endswith(".csv"):
            table = read_table(item, "image list")
            paths += resolved_paths(table, path_column(table, item, "image list"), item)
            inputs.add(item, "the image list")
        elif os.path.exists(item):
            paths.append(item)
        else:
            raise CommandError(f"No such file or folder: {item!r}.")
    if not paths:
        raise CommandError("No images to predict.")
    inputs.add(paths, "one of the images to predict")
    return paths


def _configure(estimator, **params):
    """Set runtime parameters (verbose, on_error, batch_size) on every part of a loaded model."""
    for _, part in parts(estimator):
        own = part.get_params(deep=False)
        part.set_params(**{k: v for k, v in params.items() if k in own and v is not None})


def _image_size(estimator):
    sizes = [getattr(part, "image_size_", None) for _, part in parts(estimator)]
    return next((s for s in sizes if s), 224)


def _prediction_names(estimator):
    """The prediction columns of the output: attributes, their probabilities, age in years."""
    attributes = list(estimator.attributes_)
    return (
        attributes
        + [f"{a}_proba" for a in attributes]
        + (["age_years"] if "age" in attributes else [])
    )


def prediction_frame(estimator, paths, age_groups=None):
    """``path``, the predictions (and ``age_group`` with ``age_groups``) and ``status``."""
    import numpy as np
    import pandas as pd

    frame = estimator.predict_frame(paths, proba=True, age_groups=age_groups)
    names = _prediction_names(estimator) + (["age_group"] if age_groups is not None else [])
    preds = frame[[c for c in names if c in frame.columns]]
    ok = preds[estimator.attributes_[0]].notna().to_numpy()
    out = pd.concat([pd.DataFrame({"path": list(paths)}), preds.reset_index(drop=True)], axis=1)
    out["status"] = np.where(ok, STATUS_OK, STATUS_UNREADABLE)
    return out


def _face_rows(paths, faces):
    import pandas as pd

    return pd.DataFrame(
        {
            "path": [paths[i] for i in faces["source_index"]],
            **{c: faces[c].reset_index(drop=True) for c in ("face_index", "x", "y", "w", "h")},
        }
    )


def _predict_faces(estimator, paths, args):
    import numpy as np

    from gar_sklearn.preprocessing import FaceCropper

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
    out = _face_rows(paths, faces)
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
        warnings.warn(
            f"No face found in {len(names)} of {len(paths)} images: {shown(names)}; their rows "
            f"have status {STATUS_NO_FACE!r} and no predictions.",
            UserWarning,
            stacklevel=2,
        )
    return out


def rounded(frame):
    """Probabilities to 4 decimals and ages to 2: plenty in a CSV."""
    for column in frame.columns:
        if column.endswith("_proba") or column == "age_years":
            frame[column] = frame[column].astype(float).round(4 if column.endswith("_proba") else 2)
    return frame


def _summary(out, n_paths, args):
    counts = out["status"].value_counts()
    extra = [f"{counts[s]} {s}" for s in (STATUS_UNREADABLE, STATUS_NO_FACE) if s in counts]
    n_ok, images = int(counts.get(STATUS_OK, 0)), count(n_paths, "image")
    done = f"{count(n_ok, 'face')} in {images}" if args.detect else f"{n_ok} of {images}"
    return f"Wrote predictions for {done}{' (' + ', '.join(extra) + ')' if extra else ''}"


def run(args):
    from gar_sklearn import load

    to_file = args.out not in (None, "-")
    inputs = Inputs().add(args.model, "the model file")
    if to_file:
        check_output(args.out, "csv", inputs, args.force)
    load_entry_points()
    load_plugins(args.plugin)
    estimator = load(args.model, device=args.device)
    paths = collect_images(args.paths, inputs)
    if to_file:  # before anything is predicted
        check_output(args.out, "csv", inputs, args.force)
    _configure(estimator, verbose=args.verbosity, on_error="skip", batch_size=args.batch_size)
    if args.detect:
        out = _predict_faces(estimator, paths, args)
    else:
        out = prediction_frame(estimator, paths)
    out = rounded(out)
    if not to_file:
        out.to_csv(sys.stdout, index=False)
        return
    check_output(args.out, "csv", inputs, args.force)
    write_atomically(args.out, lambda tmp: out.to_csv(tmp, index=False))
    note(args, f"{_summary(out, len(paths), args)} to {args.out}")
