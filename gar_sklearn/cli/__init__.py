"""The ``gar-sklearn`` command: train, predict, report per group, or all of it at once.

::

    gar-sklearn train    --data DIR --format utkface --out model.pt
    gar-sklearn predict  model.pt photos/ --detect --out preds.csv
    gar-sklearn report   preds.csv --truth labels.csv --by race,gender --plots plots/
    gar-sklearn evaluate --data DIR --format utkface --preset cpu-best --out runs/utk

Also runs as ``python -m gar_sklearn`` and ``python -m gar_sklearn.cli``.
Exit codes: 0 on success, 2 for usage errors (argparse), 1 for runtime
errors (missing or unreadable files, unknown backbone, weights unavailable,
an output that would overwrite an input), printed as ``error: <message>``
without a traceback unless ``--debug``; 130 when interrupted. See
``docs/cli.md``.

One module per command (``_train``, ``_predict``, ``_report``,
``_evaluate``); the parser in ``_parser``; shared helpers for argument types
(``_types``), errors and their spelling (``_errors``), output-file safety
(``_files``), settings and presets (``_presets``), the estimator
(``_model``) and plugins (``_plugins``). torch and the estimators are
imported only by the commands that need them, so ``--help`` answers at once.
"""

from ._main import main
from ._parser import build_parser

__all__ = ["build_parser", "main"]
