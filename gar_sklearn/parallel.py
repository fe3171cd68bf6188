"""Prediction over dask collections of image paths: one model load per worker process.

Grid searches need nothing from here: scikit-learn's searches run their fits
on a dask cluster through joblib's dask backend
(``with joblib.parallel_config(backend="dask"): search.fit(X, y)``); see
``docs/scaling.md``. dask is imported only when these functions are called.
"""

import copy
import os
import threading
from collections import OrderedDict

import numpy as np

from ._persistence import load

__all__ = ["predict_partitions"]


class _ModelCache:
    """Models read from files in this process, kept by file and settings.

    A dask worker process runs many partitions; each reads the file once. The
    lock makes concurrent first calls (a worker with several threads) load it
    once between them. At most ``max_models`` models are kept, the least
    recently used dropped first.
    """

    def __init__(self, max_models=2):
        self.max_models = max_models
        self.loads = 0  # files read so far: one per worker and model is the point
        self._models = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path, settings, device):
        path = os.path.abspath(os.fspath(path))
        stat = os.stat(path)  # a rewritten file is a new model
        key = (path, stat.st_mtime_ns, stat.st_size, tuple(sorted(settings.items())), device)
        with self._lock:
            if key not in self._models:
                self._models[key] = _with_settings(load(path, device=device), settings)
                self.loads += 1
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]


_model_cache = _ModelCache()


def _with_settings(estimator, settings):
    return estimator.set_params(**settings) if settings else estimator


def _resolve(model, settings, device):
    if isinstance(model, (str, os.PathLike)):
        return _model_cache.get(model, settings, device)
    return model


def _predict_frame(part, model, column, proba, settings, device, meta):
    """Predictions for one partition (a pandas DataFrame or Series), indexed like it."""
    paths = part if column is None else part[column]
    if len(paths) == 0:
        return meta.set_axis(part.index[:0])
    frame = _resolve(model, settings, device).predict_frame(paths.tolist(), proba=proba)
    frame.index = part.index
    return frame


def _predict_records(part, model, proba, settings, device):
    """Predictions for one bag partition: a dict per path, the path included."""
    paths = list(part)
    if not paths:
        return []
    frame = _resolve(model, settings, device).predict_frame(paths, proba=proba)
    frame.insert(0, "path", paths)
    return frame.to_dict(orient="records")


def _output_meta(estimator, proba):
    """The (empty) frame of predictions: predict one blank image and keep the columns."""
    size = estimator.image_size_
    return estimator.predict_frame(np.zeros((1, size, size, 3), np.uint8), proba=proba).iloc[:0]


def predict_partitions(
    model,
    paths,
    *,
    column=None,
    proba=False,
    batch_size=None,
    num_workers=None,
    on_error=None,
    device=None,
):
    """Predict the images of a dask collection of paths, partition by partition.

    Each partition becomes one task that runs
    :meth:`~gar_sklearn.MultiAttributeClassifier.predict_frame` on its paths,
    where dask runs it: on a cluster's workers when a
    ``dask.distributed.Client`` is active. Given a model file, every worker
    process reads it once and keeps it for all the partitions it runs; given
    a fitted estimator, dask sends it once to each worker that needs it.
    Nothing is computed until the result is (``.compute()``, ``.to_csv()``,
    ``.to_parquet()``).

    Parameters
    ----------
    model : str, os.PathLike or fitted estimator
        A file written by ``estimator.save(path)`` (best: small to send, read
        once per worker), at a path that the workers can read (a shared file
        system, or the same path on every machine) and that this process
        reads once to learn the output columns; or a fitted estimator of
        gar_sklearn.
    paths : dask DataFrame, dask Series or dask Bag of str
        The image paths, as the workers see them.
    column : str or None, default=None
        The column of paths when ``paths`` is a DataFrame (None: its only column).
    proba : bool, default=False
        Also return the probability of each predicted class and, with an age
        attribute, ``age_years`` (as ``predict_frame(X, proba=True)``).
    batch_size, num_workers, on_error : default=None
        Override the model's parameters of these names on the workers (None
        keeps the model's). ``num_workers="auto"`` starts no DataLoader
        process inside dask's worker processes, which may not have children:
        decoding then runs in the task's thread, and a worker with several
        threads decodes one partition while it computes another.
        ``on_error="skip"`` turns unreadable files into rows of None
        instead of failing the task.
    device : str or None, default=None
        Where a model file's network goes on the workers (``"cpu"``,
        ``"cuda"``, ``"auto"``; None: as saved, or the CPU when that device
        is missing). Only for a model file.

    Returns
    -------
    dask DataFrame or dask Bag
        For a DataFrame or Series: a DataFrame with the index of ``paths`` and
        one column per attribute (as ``predict_frame``), to join back to the
        input. For a Bag: a Bag of dicts, the ``"path"`` and its predictions.

    Examples
    --------
    >>> import dask, dask.bag as db
    >>> from gar_sklearn import MultiAttributeClassifier
    >>> from gar_sklearn.datasets import make_synthetic_faces
    >>> from gar_sklearn.parallel import predict_partitions
    >>> X, y = make_synthetic_faces(20, image_size=16, random_state=0)
    >>> clf = MultiAttributeClassifier(backbone="tiny", weights=None, image_size=16,
    ...                                attributes=("gender",), max_epochs=1, random_state=0,
    ...                                verbose=0).fit(X, y)
    >>> images = db.from_sequence(list(X[:6]), npartitions=3)  # paths, usually
    >>> rows = predict_partitions(clf, images).compute(scheduler="sync")
    >>> len(rows), sorted(rows[0])
    (6, ['gender', 'path'])
    """
    import dask.bag as db

    settings = {
        name: value
        for name, value in (
            ("batch_size", batch_size),
            ("num_workers", num_workers),
            ("on_error", on_error),
        )
        if value is not None
    }
    local, task_model = _task_model(model, settings, device)
    meta = _output_meta(local, proba)
    if isinstance(paths, db.Bag):
        if column is not None:
            raise ValueError(
                f"The 'column' parameter applies to a DataFrame only; got column={column!r} with a Bag."
            )
        return paths.map_partitions(_predict_records, task_model, proba, settings, device)
    column = _path_column(paths, column)
    return paths.map_partitions(
        _predict_frame, task_model, column, proba, settings, device, meta, meta=meta
    )


def _task_model(model, settings, device):
    """The model here (to learn the output columns) and as the tasks get it."""
    import dask
    from sklearn.utils.validation import check_is_fitted

    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise ValueError(
                f"The 'model' parameter must be a fitted estimator or the path of a file written by "
                f"estimator.save(path). Got {os.fspath(model)!r}, which is not a file."
            )
        return _with_settings(load(model, device="cpu"), settings), os.fspath(model)
    if callable(getattr(model, "predict_frame", None)):
        check_is_fitted(model)
        if device is not None:
            raise ValueError(
                "The 'device' parameter applies to a model file only; an estimator predicts on the "
                f"device it was fitted on. Got device={device!r} with a {type(model).__name__}."
            )
        local = _with_settings(copy.copy(model), settings)  # the caller's keeps its params
        return local, dask.delayed(
            local, pure=False
        )  # one piece of the graph, sent once per worker
    raise TypeError(
        "The 'model' parameter must be a fitted gar_sklearn estimator or the path of a file "
        f"written by estimator.save(path). Got {type(model).__name__} instead."
    )


def _path_column(paths, column):
    """The column of paths of a dask DataFrame (None for a Series); checks ``paths``."""
    import pandas as pd

    part_meta = getattr(paths, "_meta", None)
    if not hasattr(paths, "map_partitions") or not isinstance(part_meta, (pd.DataFrame, pd.Series)):
        raise TypeError(
            "The 'paths' parameter must be a dask DataFrame, Series or Bag of image paths. Got "
            f"{type(paths).__name__} instead. For paths in memory use estimator.predict_frame(paths), "
            "or dask.bag.from_sequence(paths, npartitions=...) to spread them over a cluster."
        )
    if isinstance(part_meta, pd.Series):
        if column is not None:
            raise ValueError(
                f"The 'column' parameter applies to a DataFrame only; got column={column!r} with "
                "a Series."
            )
        return None
    columns = list(part_meta.columns)
    if column is None and len(columns) != 1:
        raise ValueError(
            f"The 'column' parameter must name the column of paths among {columns}; got None "
            f"with {len(columns)} columns."
        )
    column = columns[0] if column is None else column
    if column not in columns:
        raise ValueError(
            f"The 'column' parameter must be one of {columns}. Got {column!r} instead."
        )
    return column
