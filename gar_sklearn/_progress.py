"""Progress bars for the long loops, and the rule deciding when they are drawn.

The rule, shared by every estimator and transformer with a ``verbose``
parameter:

- ``verbose=0``: nothing is printed;
- ``verbose=1``: one line per training epoch (printed always, also into a
  log file), and progress bars on stderr when stderr is a terminal (or a
  Jupyter kernel's output); when it is not, a long step (feature
  extraction, an epoch, a prediction) prints a plain line there every
  ``PLAIN_INTERVAL_S`` seconds instead (done, rate, time left), so
  redirected output shows progress without carriage-return clutter;
- ``verbose>=2``: the bars are drawn even when stderr is not a terminal.

tqdm and the standard library only: no torch, so preprocessing can use it.
"""

import re
import sys
import time

from tqdm import tqdm

__all__ = ["PlainProgress", "progress_bar", "show_progress", "strip_colors", "write_line"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# seconds between two plain progress lines (verbose=1, stderr not a terminal)
PLAIN_INTERVAL_S = 30.0


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
    """A tqdm bar on stderr where :func:`show_progress`, else plain lines or nothing.

    The bar disappears when closed (``leave=False``): what stays on screen is
    the epoch log and the command's own output. At ``verbose=1`` with stderr
    not a terminal, a :class:`PlainProgress` prints a line every
    ``PLAIN_INTERVAL_S`` seconds instead; at ``verbose=0`` every call is a
    no-op.

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
    tqdm.tqdm or PlainProgress
        Iterate over it, or call ``update(n)`` and ``close()``, or use it as a
        context manager.
    """
    if int(verbose or 0) == 1 and not show_progress(verbose):
        return PlainProgress(total=total, desc=desc, unit=unit, iterable=iterable)
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


def _duration(seconds):
    """``"0:42"``, ``"12:05"``, ``"1:02:03"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class PlainProgress:
    """Progress as a plain line on stderr every ``PLAIN_INTERVAL_S`` seconds.

    For output that is not a terminal (a log file, a pipe): each line says
    how much is done, the rate and the time left, with no carriage return.
    A step that ends within the interval prints nothing; one that printed
    says at its end how long it took. It offers what the package calls on a
    tqdm bar: ``update``, ``set_postfix``, ``close``, iteration and use as a
    context manager.

    Parameters
    ----------
    total : int or None, default=None
    desc : str or None, default=None
    unit : str, default="img"
    iterable : iterable or None, default=None
    stream : file-like or None, default=None
        Where the lines go; None means ``sys.stderr`` at the time of writing.

    Examples
    --------
    >>> import io
    >>> from gar_sklearn import _progress
    >>> out = io.StringIO()
    >>> bar = _progress.PlainProgress(total=200, desc="features", stream=out)
    >>> bar.start -= 40; bar.last_line -= 40  # as if 40 s had passed
    >>> bar.update(100)
    >>> print(out.getvalue().strip())
    features: 100/200 img (50%), 2.5 img/s, 0:40 left
    """

    def __init__(self, total=None, desc=None, unit="img", iterable=None, stream=None):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.iterable = iterable
        self.stream = stream
        self.n = 0
        self.postfix = None
        self.start = time.monotonic()
        self.last_line = self.start
        self.printed = False
        self.closed = False
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            self.total = len(iterable)

    def _write(self, text):
        stream = sys.stderr if self.stream is None else self.stream
        print(f"{self.desc}: {text}" if self.desc else text, file=stream, flush=True)
        self.printed = True

    def _status(self, elapsed):
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{done} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {rate:.3g} {self.unit}/s"
        if self.total and rate > 0:
            text += f", {_duration((self.total - self.n) / rate)} left"
        if self.postfix:
            text += ", " + ", ".join(f"{k}={v}" for k, v in self.postfix.items())
        return text

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self.last_line >= PLAIN_INTERVAL_S:
            self._write(self._status(now - self.start))
            self.last_line = now

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        values = dict(ordered_dict or {}, **kwargs)
        self.postfix = {
            k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in values.items()
        }

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.printed:  # a step long enough to report on says when it ends
            elapsed = time.monotonic() - self.start
            self._write(f"done, {self.n} {self.unit} in {_duration(elapsed)}")

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
