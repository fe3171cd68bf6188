"""``python -m gar_sklearn.cli`` runs the command line (see ``gar-sklearn --help``)."""

import sys

from ._main import main

sys.exit(main())
