"""Saving and loading fitted estimators and training checkpoints, as data and tensors only.

A file is a torch zip archive read back with ``torch.load(weights_only=True)``:
a header (format name, format version, library version), the configuration
as one JSON string, a flat ``{name: tensor}`` dict and a SHA-256 digest of
both. Loading never unpickles Python objects and never runs code from the
file; at most it imports classes of gar_sklearn (or optimizers of
``torch.optim``) named in the configuration and calls them with data.

Each estimator class says how it becomes data through one registry
(:func:`register_persistence`); a meta-estimator saves its parts by returning
them inside its own data, where they are saved through their own entries.
"""

import contextlib
import errno
import glob
import hashlib
import importlib
import itertools
import json
import numbers
import os
import pickle
import warnings
import zipfile
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._fingerprint import describe
from ._version import __version__

__all__ = [
    "FORMAT_VERSION",
    "check_fields",
    "default_dump",
    "dump_estimator",
    "fitted_attributes",
    "load",
    "register_persistence",
    "restore_estimator",
    "save",
    "storable_params",
    "remove_stale_temporaries",
    "write_failure",
]

_FORMAT = "gar_sklearn"
_tmp_counter = itertools.count()  # temporaries of one process's concurrent writes differ
FORMAT_VERSION = 1
_KINDS = {"model": "a fitted estimator", "checkpoint": "a training checkpoint"}
# prefixes of the modules whose classes a file may name
_IMPORTABLE = ("gar_sklearn.", "torch.optim.")


# ---------------------------------------------------------------- registry
_REGISTRY = {}


def _class_key(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def register_persistence(cls, dump=None, restore=None):
    """Teach :func:`save` and :func:`load` an estimator class.

    Parameters
    ----------
    cls : type
        The estimator class (a class of gar_sklearn: files name it by its
        module and name, and :func:`load` imports only gar_sklearn modules,
        which register their classes when imported).
    dump : callable, optional
        ``dump(estimator) -> data``: the fitted estimator as data made of
        None, bool, int, float, str, lists, tuples, dicts, numpy arrays,
        torch tensors, scikit-learn style objects of gar_sklearn (stored as
        their parameters and fitted attributes) and fitted estimators of
        registered classes (stored through their own ``dump``). Tensors go
        to the file's tensor table, everything else to its JSON. The
        default, :func:`default_dump`, stores the parameters that are data
        (:func:`storable_params`) and the fitted attributes
        (:func:`fitted_attributes`): enough for a meta-estimator whose fitted
        parts are registered estimators.
    restore : callable, optional
        ``restore(data, device) -> estimator``: the inverse, given the data
        with nested estimators, arrays and tensors already rebuilt (tensors
        on the CPU) and the device the caller asked for (None: each part's
        own choice). The default builds ``cls(**params)`` and sets the
        fitted attributes.

    See ``docs/persistence.md`` for a meta-estimator's registration.
    """
    _REGISTRY[_class_key(cls)] = (cls, dump or default_dump, restore or _default_restore(cls))


def default_dump(estimator):
    """Parameters that are data, and fitted attributes (see :func:`register_persistence`)."""
    params, dropped = storable_params(estimator)
    warn_dropped(dropped)
    return {"params": params, "dropped_params": dropped, "fitted": fitted_attributes(estimator)}


def _default_restore(cls):
    def restore(data, device):
        check_fields(data, ("params", "fitted"), cls.__name__)
        estimator = cls(**data["params"])
        for name, value in data["fitted"].items():
            setattr(estimator, name, value)
        return estimator

    return restore


def warn_dropped(dropped):
    if dropped:
        warnings.warn(
            f"These parameters are not data and are not saved: {dropped}; the loaded estimator "
            "has their default values (predictions are not affected, but a refit would be).",
            UserWarning,
            stacklevel=5,
        )


def _registry_entry(key):
    if key not in _REGISTRY:
        _import_class(key)  # importing its module registers it
    if key not in _REGISTRY:
        raise ValueError(f"The file holds an estimator of class {key!r}, which cannot be loaded.")
    return _REGISTRY[key]


def _import_class(key):
    module_name, _, qualname = key.partition(":")
    if not module_name.startswith(_IMPORTABLE) and module_name != "gar_sklearn":
        raise ValueError(
            f"The file names the class {key!r}; only classes of gar_sklearn and torch.optim are loaded."
        )
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"The file names the class {key!r}, which this version of gar_sklearn does not have."
        ) from exc
    if not isinstance(obj, type):
        raise ValueError(f"The file names {key!r}, which is not a class.")
    return obj


def dump_estimator(estimator):
    """The data of a fitted estimator of a registered class (see :func:`register_persistence`)."""
    key = _class_key(type(estimator))
    if key not in _REGISTRY:
        raise TypeError(
            f"Cannot save a {type(estimator).__name__}: its class is not registered with "
            "gar_sklearn._persistence.register_persistence."
        )
    return _REGISTRY[key][1](estimator)


def restore_estimator(key, data, device=None):
    """Rebuild an estimator of class ``key`` from its (decoded) data.

    Data that its class cannot be rebuilt from (a field missing, of another
    type) raises a ValueError, never an error from inside the estimator.
    """
    cls, _, restore = _registry_entry(key)
    try:
        return restore(data, device)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(
            f"The file's {cls.__name__} cannot be rebuilt from its data ({type(exc).__name__}: "
            f"{exc}): the file is damaged or was not written by this version of gar_sklearn."
        ) from exc


def check_fields(data, required, owner, what="the entries"):
    """Raise a ValueError naming the entries of ``required`` that the dict ``data`` lacks:
    a restore function's first check. ``owner`` is the estimator's class name, ``what``
    the kind of entries, for the message."""
    if not isinstance(data, dict):
        raise ValueError(
            f"The {owner} in the file holds a {type(data).__name__} where {what} "
            f"{list(required)} should be: the file is damaged or was not written by "
            "estimator.save."
        )
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(
            f"The {owner} in the file lacks {what} {missing}: the file is damaged or was not "
            "written by estimator.save."
        )


def storable_params(estimator):
    """The estimator's parameters that can be stored as data, and notes on the others.

    Returns
    -------
    params : dict
        ``get_params(deep=False)`` less the parameters that are neither data
        nor scikit-learn style objects of gar_sklearn nor torch optimizer classes.
    dropped : dict
        ``{name: repr}`` of the parameters left out (they take their default
        value when loaded).
    """
    params, dropped = {}, {}
    for name, value in estimator.get_params(deep=False).items():
        try:
            _Encoder().encode(value)
        except _Unstorable:
            dropped[name] = repr(value)
            continue
        params[name] = value
    return params, dropped


def fitted_attributes(estimator, exclude=()):
    """The instance attributes that are not parameters: public ones ending in ``_``
    and private ones (``_name``) that can be stored as data."""
    params = set(estimator.get_params(deep=False))
    out = {}
    for name, value in vars(estimator).items():
        if name in params or name in exclude or name.startswith("__"):
            continue
        if name.startswith("_"):
            try:
                _Encoder().encode(value)
            except _Unstorable:
                continue
            out[name] = value
        elif name.endswith("_"):
            out[name] = value
    return out


# ---------------------------------------------------------------- data <-> JSON + tensors
class _Unstorable(TypeError):
    pass


class _Encoder:
    """Turns data into JSON-able values, moving tensors to ``self.tensors``.

    Tagged dicts (keys starting with ``__``) stand for what JSON lacks:
    tuples, dicts with other than str keys, arrays, tensors, classes and
    objects. Anything else raises :class:`_Unstorable`.
    """

    def __init__(self, tensors=None, prefix=""):
        self.tensors = {} if tensors is None else tensors
        self.prefix = prefix

    def encode(self, obj, path=""):
        if obj is None or isinstance(obj, (bool, str, float)):
            return obj
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), path)
        if isinstance(obj, numbers.Integral):
            return int(obj)
        if isinstance(obj, (list, tuple, dict)):
            return self._container(obj, path)
        if isinstance(obj, (torch.Tensor, np.ndarray)):
            return self._array(obj, path)
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        if isinstance(obj, Enum) and type(obj).__module__.startswith("torchvision."):
            return f"{type(obj).__name__}.{obj.name}"  # a weights enum: its name resolves it
        return self._object(obj, path)

    def _container(self, obj, path):
        if isinstance(obj, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: self.encode(v, f"{path}/{k}") for k, v in obj.items()}
        items = [
            [self.encode(k), self.encode(v, f"{path}/{i}")] for i, (k, v) in enumerate(obj.items())
        ]
        return {"__items__": items}

    def _array(self, obj, path):
        if isinstance(obj, torch.Tensor):
            name = self.prefix + path.lstrip("/") or "tensor"
            while name in self.tensors:
                name += "'"
            self.tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": name}
        if obj.dtype.kind not in "biufUSO":
            raise _Unstorable(f"{path or 'value'}: an array of dtype {obj.dtype}")
        return {
            "__ndarray__": self.encode(obj.ravel().tolist(), path),
            "dtype": obj.dtype.str if obj.dtype != object else "object",
            "shape": list(obj.shape),
        }

    def _object(self, obj, path):
        if isinstance(obj, type):
            key = _class_key(obj)
            if key.startswith(_IMPORTABLE) and (
                key.startswith("gar_sklearn.") or issubclass(obj, torch.optim.Optimizer)
            ):
                return {"__class__": key}
        else:
            key = _class_key(type(obj))
            if key in _REGISTRY and _is_fitted(obj):
                state = self.encode(dump_estimator(obj), f"{path}/state")
                return {"__estimator__": key, "state": state}
            if key.startswith("gar_sklearn.") and hasattr(obj, "get_params"):
                fitted = {k: v for k, v in vars(obj).items() if k.endswith("_") and k[0] != "_"}
                return {
                    "__object__": key,
                    "params": self.encode(obj.get_params(deep=False), f"{path}/params"),
                    "fitted": self.encode(fitted, f"{path}/fitted"),
                }
        raise _Unstorable(f"{path or 'value'}: {type(obj).__name__} {obj!r}")


def _is_fitted(obj):
    try:
        check_is_fitted(obj)
    except (NotFittedError, TypeError):
        return False
    return True


def _decode(value, tensors, device):
    if isinstance(value, list):
        return [_decode(v, tensors, device) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v, tensors, device) for v in value["__tuple__"])
    if "__items__" in value:
        return {
            _decode(k, tensors, device): _decode(v, tensors, device) for k, v in value["__items__"]
        }
    if "__tensor__" in value:
        try:
            return tensors[value["__tensor__"]]
        except KeyError as exc:
            raise ValueError(f"The file lacks the tensor {value['__tensor__']!r}.") from exc
    if "__ndarray__" in value:
        flat = _decode(value["__ndarray__"], tensors, device)
        arr = np.empty(len(flat), dtype=np.dtype(value["dtype"]))
        arr[:] = flat
        return arr.reshape(value["shape"])
    if "__class__" in value:
        cls = _import_class(value["__class__"])
        if not (
            cls.__module__.startswith("gar_sklearn.") or issubclass(cls, torch.optim.Optimizer)
        ):
            raise ValueError(
                f"The file names the class {value['__class__']!r}, which is not loaded."
            )
        return cls
    if "__estimator__" in value:
        return restore_estimator(
            value["__estimator__"], _decode(value["state"], tensors, device), device
        )
    if "__object__" in value:
        cls = _import_class(value["__object__"])
        if not hasattr(cls, "get_params"):
            raise ValueError(
                f"The file names the class {value['__object__']!r}, which is not loaded."
            )
        obj = cls(**_decode(value["params"], tensors, device))
        for name, attr in _decode(value["fitted"], tensors, device).items():
            setattr(obj, name, attr)
        return obj
    if "__unstorable__" in value:
        raise ValueError(
            f"The file holds an object of class {value['__unstorable__']!r} that was not stored."
        )
    return {k: _decode(v, tensors, device) for k, v in value.items()}


def to_data(obj):
    """``obj`` as JSON-able data and a tensor table (see :class:`_Encoder`)."""
    encoder = _Encoder()
    return encoder.encode(obj), encoder.tensors


# ---------------------------------------------------------------- files
def _digest(config, tensors):
    h = hashlib.sha256(config.encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _Recorder:
    """A file's ``write`` and ``flush`` for torch.save, recording the OSError that torch
    turns into its own RuntimeError ("unexpected pos ...")."""

    def __init__(self, file):
        self.file = file
        self.error = None

    def write(self, data):
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self):
        self.file.flush()


def _os_error(exc, recorder):
    """The OSError behind ``exc`` (itself, the recorded one, or one in its chain), or None."""
    if recorder is not None and recorder.error is not None:
        return recorder.error
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_failure(path, cause):
    """An OSError of ``cause``'s errno (and subclass) naming ``path``, its reason, and that
    the file there before, if any, is unchanged."""
    path = Path(path)
    code = errno.errorcode.get(cause.errno, str(cause.errno))
    reason = cause.strerror or os.strerror(cause.errno)
    kept = "the file already there is unchanged" if path.exists() else "nothing was written"
    return OSError(cause.errno, f"Could not write {str(path)!r}: {reason} ({code}); {kept}.")


def _check_target(path):
    if path.is_dir():
        raise IsADirectoryError(
            errno.EISDIR,
            f"Could not write {str(path)!r}: it is a folder; name a file in it, such as "
            f"{str(path / 'model.pt')!r}.",
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            errno.ENOENT,
            f"Could not write {str(path)!r}: the folder {str(path.parent)!r} does not exist.",
        )


def _process_running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM), or a platform without signal 0
        return True
    return True


def remove_stale_temporaries(path):
    """Delete the temporary files of :func:`write_file` beside ``path`` whose writer is
    no longer running (killed while writing, e.g. by SIGKILL); never another live
    process's. Returns the paths removed."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        candidates = list(path.parent.glob(glob.escape(prefix) + "*.tmp"))
    except OSError:
        return removed
    for candidate in candidates:
        pid = candidate.name[len(prefix) :].split(".")[0]
        if not pid.isdigit() or _process_running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def write_file(path, kind, config, tensors):
    """Write a gar_sklearn file atomically (a killed writer leaves the old file intact).

    The file is written to ``.<name>.<pid>.<n>.tmp`` beside ``path``, then
    renamed over it; temporaries of writers that died first are removed. A
    failed write (a full disk, no permission) raises an OSError of its errno
    naming the path and the cause, and leaves the file there before as it was.
    """
    path = Path(path)
    text = json.dumps(config, allow_nan=True)
    payload = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "kind": kind,
        "config": text,
        "tensors": tensors,
        "digest": _digest(text, tensors),
    }
    _check_target(path)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
    recorder = None
    try:
        with open(tmp, "wb") as f:
            recorder = _Recorder(f)
            torch.save(payload, recorder)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        cause = _os_error(exc, recorder)
        if cause is None:
            raise
        raise write_failure(path, cause) from cause
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _is_zip_start(head):
    """Whether a file starts like a zip archive (a truncated one fails later, with torch's
    reason)."""
    return head == b"PK"


def _load_payload(path):
    """The dict stored in ``path``, read without running code; explains what else it holds."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise ValueError(
            f"{str(path)!r} is not a gar_sklearn file but a Python pickle. gar_sklearn.load never "
            "runs code from a file; unpickle only files you trust, with pickle.load or joblib.load."
        )
    if not zipfile.is_zipfile(path) and not _is_zip_start(head):
        # torch's own message (about weights_only) would only confuse here
        raise ValueError(
            f"{str(path)!r} is not a gar_sklearn file, or it is corrupted or truncated (it is "
            "not a zip archive, as gar_sklearn files are)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if zipfile.is_zipfile(path) and "weights only" in str(exc).lower():
            raise ValueError(
                f"{str(path)!r} is not a gar_sklearn file: it holds Python objects, not only data "
                "and tensors. gar_sklearn.load never runs code from a file; unpickle only files "
                "you trust, with torch.load(weights_only=False)."
            ) from exc
        raise ValueError(
            f"{str(path)!r} is not a gar_sklearn file, or it is corrupted or truncated "
            f"({_first_line(exc)})."
        ) from exc
    except Exception as exc:  # zip and storage errors of a truncated or damaged file
        raise ValueError(
            f"{str(path)!r} is not a gar_sklearn file, or it is corrupted or truncated "
            f"({_first_line(exc)})."
        ) from exc


def _check_header(path, payload, kind):
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        held = (
            type(payload).__name__
            if not isinstance(payload, dict)
            else "a dict without the gar_sklearn header"
        )
        raise ValueError(
            f"{str(path)!r} is not a gar_sklearn file: it holds {held} (write gar_sklearn files "
            "with estimator.save(path))."
        )
    version, written_by = payload.get("format_version"), payload.get("library_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by gar_sklearn {written_by!s} in file format version "
            f"{version!r}; this gar_sklearn {__version__} reads format version {FORMAT_VERSION} "
            f"only. Load it with gar_sklearn {written_by!s}, or refit."
        )
    if payload.get("kind") != kind:
        hint = (
            " Resume training by fitting with checkpoint_dir set to its folder, or load the "
            "folder's best.pt."
            if payload.get("kind") == "checkpoint"
            else ""
        )
        held = _KINDS.get(payload.get("kind"), repr(payload.get("kind")))
        raise ValueError(f"{str(path)!r} holds {held}, not {_KINDS[kind]}.{hint}")


def read_file(path, kind, device=None):
    """Read a gar_sklearn file of ``kind``; returns its decoded data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such gar_sklearn file: {str(path)!r}.")
    payload = _load_payload(path)
    _check_header(path, payload, kind)
    try:
        text, tensors = payload["config"], payload["tensors"]
        ok = (
            isinstance(text, str)
            and isinstance(tensors, dict)
            and payload.get("digest") == _digest(text, tensors)
        )
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"{str(path)!r} is a damaged gar_sklearn file ({exc}).") from exc
    if not ok:
        raise ValueError(
            f"{str(path)!r} is corrupted: its content does not match the checksum written with it."
        )
    try:
        return _decode(json.loads(text), tensors, device)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r} cannot be loaded: {exc}") from exc


def save(estimator, path):
    """Save a fitted estimator as data and tensors (see :func:`load`).

    Parameters
    ----------
    estimator : fitted estimator of gar_sklearn
    path : str or os.PathLike
        The file to write (replaced atomically when it exists).
    """
    if _class_key(type(estimator)) not in _REGISTRY:
        dump_estimator(estimator)  # raises the "not registered" TypeError
    check_is_fitted(estimator)
    config, tensors = to_data(estimator)
    write_file(path, "model", config, tensors)


def load(path, *, device=None):
    """Load an estimator saved with ``estimator.save(path)``.

    The file is read with ``torch.load(weights_only=True)``: only data and
    tensors, no code runs. The network is rebuilt from the backbone's name
    with random weights, then given the saved ones: nothing is downloaded.

    Parameters
    ----------
    path : str or os.PathLike
    device : str or None, default=None
        Where the network goes: ``"cpu"``, ``"cuda"``, ``"auto"``; None
        keeps the device it was saved from when that exists here, and uses
        the CPU otherwise (a model trained on a GPU loads on a CPU-only
        machine).

    Returns
    -------
    estimator

    Raises
    ------
    ValueError
        When the file is not a gar_sklearn model, is corrupted or truncated,
        or was written in another version of the file format.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> import gar_sklearn
    >>> from gar_sklearn.datasets import make_synthetic_faces
    >>> X, y = make_synthetic_faces(40, image_size=16, random_state=0)
    >>> clf = gar_sklearn.MultiAttributeClassifier(
    ...     backbone="tiny", weights=None, image_size=16, attributes=("gender",),
    ...     max_epochs=1, random_state=0, verbose=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> clf.save(path)
    >>> again = gar_sklearn.load(path)
    >>> bool(np.array_equal(again.predict_proba(X)[0], clf.predict_proba(X)[0]))
    True
    """
    estimator = read_file(path, "model", device=device)  # the top level decodes to the estimator
    if not hasattr(estimator, "get_params"):
        raise ValueError(f"{str(path)!r} is a gar_sklearn file but holds no estimator.")
    return estimator


# ---------------------------------------------------------------- model snapshots
def model_template(estimator, data):
    """A model file's configuration for ``estimator`` whose ``dump`` gives ``data``
    less some entries, to be completed by :func:`write_model_snapshot`.

    ``data`` must hold no tensors: the checkpoint callback keeps the template
    and adds the current weights at each best epoch.
    """
    encoder = _Encoder()
    state = encoder.encode(data, "state")
    if encoder.tensors:
        raise TypeError(f"The template of a {type(estimator).__name__} must hold no tensors.")
    return {"__estimator__": _class_key(type(estimator)), "state": state}


def write_model_snapshot(path, template, **entries):
    """Write a model file: ``template`` (:func:`model_template`) completed with ``entries``."""
    encoder = _Encoder(prefix="state/")
    extra = {name: encoder.encode(value, name) for name, value in entries.items()}
    config = {**template, "state": {**template["state"], **extra}}
    write_file(path, "model", config, encoder.tensors)


# ---------------------------------------------------------------- checkpoints
def params_fingerprint(estimator, exclude=()):
    """The estimator's parameters, less ``exclude``, as comparable data (see
    :func:`gar_sklearn._fingerprint.describe`)."""
    params = estimator.get_params(deep=False)
    return describe({k: v for k, v in params.items() if k not in exclude})


def read_checkpoint(path, fingerprint):
    """The training state in ``path``, after checking it comes from the same configuration and data.

    Returns None when there is no checkpoint.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = read_file(path, "checkpoint")
    except ValueError as exc:
        raise ValueError(
            f"The checkpoint {str(path)!r} cannot be used to resume: {exc} Delete it (or choose "
            "another checkpoint_dir) to train from scratch."
        ) from exc
    saved = state.get("fingerprint", {})
    if saved != fingerprint:
        differences = []
        old, new = saved.get("params", {}), fingerprint["params"]
        for name in sorted(set(old) | set(new)):
            if old.get(name, "<absent>") != new.get(name, "<absent>"):
                differences.append(
                    f"{name}={_short(old.get(name, '<absent>'))} there, "
                    f"{_short(new.get(name, '<absent>'))} here"
                )
        if saved.get("data") != fingerprint["data"]:
            differences.append("the images or labels differ")
        if saved.get("library") != fingerprint["library"]:
            differences.append(f"written by gar_sklearn {saved.get('library')}")
        raise ValueError(
            f"checkpoint_dir={str(path.parent)!r} holds a checkpoint of another fit, which is not "
            f"resumed: {'; '.join(differences) or 'its configuration differs'}. Use another "
            "checkpoint_dir, or delete the folder's files to train from scratch."
        )
    return state


def _short(value):
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def write_checkpoint(path, state):
    config, tensors = to_data(state)
    write_file(path, "checkpoint", config, tensors)
