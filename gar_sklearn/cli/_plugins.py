"""Backbone plugins: user modules whose ``register_backbone(...)`` calls add backbones.

``--plugin MODULE`` imports a module by name (from the current folder or
the Python path) or a ``.py`` file by path. Installed packages can declare
entry points in the group ``gar_sklearn.backbones``; each is loaded the same
way before a model is built or loaded: an entry naming a module imports it,
an entry naming a function (``package.module:register``) also calls it.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings

from ._errors import CommandError

__all__ = ["ENTRY_POINT_GROUP", "load_entry_points", "load_plugins"]

ENTRY_POINT_GROUP = "gar_sklearn.backbones"


def _import_file(path):
    # a name of its own, so that a plugin file called json.py shadows nothing
    name = "_gar_sklearn_plugin_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise CommandError(f"--plugin {path!r} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: the module may look itself up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_name(name):
    # as 'python -m' does: a module in the current folder is found also from the script
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise  # the plugin itself imports something missing: its own error says what
        raise CommandError(
            f"--plugin {name!r}: no module named {exc.name!r} in the current folder or on the "
            "Python path. Give an importable module name or the path of a .py file."
        ) from None
    finally:
        if added:
            sys.path.remove(os.getcwd())


def load_plugins(names):
    """Import each ``--plugin`` module (a module name or a ``.py`` path), in order."""
    for name in names or ():
        is_file = name.endswith(".py") or os.sep in name or (os.altsep and os.altsep in name)
        if is_file and not os.path.isfile(name):
            raise CommandError(f"--plugin {name!r}: no such file.")
        try:
            _import_file(name) if is_file else _import_name(name)
        except CommandError:
            raise
        except Exception as exc:
            raise CommandError(
                f"--plugin {name!r} failed while being imported: {type(exc).__name__}: {exc}"
            ) from exc


def load_entry_points():
    """Load the installed ``gar_sklearn.backbones`` entry points; a broken one is a warning."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            if entry.attr and callable(loaded):
                loaded()
        except Exception as exc:
            warnings.warn(
                f"The backbone plugin {entry.name!r} ({entry.value}, entry point group "
                f"{ENTRY_POINT_GROUP!r}) could not be loaded: {type(exc).__name__}: {exc}",
                UserWarning,
                stacklevel=2,
            )
