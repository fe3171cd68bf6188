"""Saving and loading fitted estimators as data and tensors, and teaching it new classes.

``estimator.save(path)`` and :func:`load` (also ``gar_sklearn.load``) cover
the library's estimators; :func:`register_persistence` adds a class of one's
own (see ``docs/persistence.md``).
"""

from ._persistence import (
    default_dump,
    fitted_attributes,
    load,
    register_persistence,
    save,
    storable_params,
)

__all__ = [
    "default_dump",
    "fitted_attributes",
    "load",
    "register_persistence",
    "save",
    "storable_params",
]
