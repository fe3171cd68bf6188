"""What the command prints besides results: notes, warnings."""

import contextlib
import sys
import warnings

from .._text import shown as _shown
from ._errors import cli_spelling

__all__ = ["count", "note", "shown", "warnings_as_lines"]


def note(args, text):
    """A progress note on stderr, unless ``--quiet``."""
    if args.verbosity:
        print(text, file=sys.stderr, flush=True)


def count(n, noun):
    """``"1 image"``, ``"3 images"``."""
    return f"{int(n)} {noun}{'' if n == 1 else 's'}"


def shown(names, limit=5):
    """The first ``limit`` names quoted, and how many more."""
    return _shown(names, limit)


@contextlib.contextmanager
def warnings_as_lines():
    """Show warnings as ``warning: <message>`` lines on stderr, each once, in the command's
    spelling."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = cli_spelling(str(message))
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
