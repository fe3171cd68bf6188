"""Progress bars for the long loops, and the rule deciding when they are drawn.

The rule, shared by every estimator and transformer with a ``verbose``
parameter:

- ``verbose=0``: nothing is printed;
- ``verbose=1``: one line per training epoch (printed always, also into a
  log file), and progress bars on stderr only when stderr is a terminal
  (or a Jupyter kernel's output): piped or redirected output stays free of
  carriage-return clutter;
- ``verbose>=2``: the bars are drawn even when stderr is not a terminal.

tqdm and the standard library only: no torch, so preprocessing can use it.
"""

import re
import sys

from tqdm import tqdm

__all__ = ["progress_bar", "show_progress", "strip_colors", "write_line"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _is_interactive(stream):
    """Whether ``stream`` is a terminal, or the output of a Jupyter kernel (never a tty)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.startswith("ipykernel")


def show_progress(verbose, stream=None):
    """Whether progress bars are drawn at this ``verbose`` level.

    Parameters
    ----------
    verbose : int or bool
    stream : file-like, default=None
        Where the bars would go; None means ``sys.stderr`` (looked up at call
        time, so redirections made after import count).

    Returns
    -------
    bool
        ``verbose >= 2``, or ``verbose == 1`` and ``stream`` is a terminal.

    Examples
    --------
    >>> import io
    >>> from gar_sklearn._progress import show_progress
    >>> show_progress(0), show_progress(1, io.StringIO()), show_progress(2, io.StringIO())
    (False, False, True)
    """
    level = int(verbose or 0)
    if level <= 0:
        return False
    if level >= 2:
        return True
    return _is_interactive(sys.stderr if stream is None else stream)


def progress_bar(verbose, total=None, desc=None, unit="img", iterable=None):
    """A tqdm bar on stderr, disabled (every call a no-op) unless :func:`show_progress`.

    The bar disappears when closed (``leave=False``): what stays on screen is
    the epoch log and the command's own output.

    Parameters
    ----------
    verbose : int or bool
    total : int or None, default=None
    desc : str or None, default=None
        A short label shown before the bar.
    unit : str, default="img"
    iterable : iterable or None, default=None
        Iterate over the bar to count these items (closed at the end).

    Returns
    -------
    tqdm.tqdm
        Iterate over it, or call ``update(n)`` and ``close()``, or use it as a
        context manager.
    """
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        file=sys.stderr,
        disable=not show_progress(verbose),
        dynamic_ncols=True,
    )


def strip_colors(text):
    """``text`` without ANSI colour codes."""
    return _ANSI.sub("", text)


def write_line(text, stream=None):
    """Print ``text`` to ``stream`` (stdout) above any open progress bar.

    Colour codes are kept on a terminal only.
    """
    stream = sys.stdout if stream is None else stream
    if not _is_interactive(stream):
        text = strip_colors(text)
    tqdm.write(text, file=stream)
