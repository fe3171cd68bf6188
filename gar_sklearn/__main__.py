"""``python -m gar_sklearn`` runs the command line (see ``gar-sklearn --help``)."""

import sys

from .cli import main

sys.exit(main())
