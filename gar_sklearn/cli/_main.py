"""``main``: parse the arguments, run the command, turn errors into exit codes."""

import contextlib
import os
import sys

from ._console import warnings_as_lines
from ._errors import describe
from ._parser import build_parser

__all__ = ["main"]


def main(argv=None):
    """Run ``gar-sklearn`` with ``argv`` (default: the command line); returns the exit code.

    Usage errors exit through argparse (``SystemExit(2)``); runtime errors
    return 1 after printing ``error: <message>`` to stderr; an interrupt
    returns 130.
    """
    args = build_parser().parse_args(argv)
    with warnings_as_lines():
        try:
            args.func(args)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # e.g. '| head' stopped reading: nothing more to say
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:
            if args.debug:
                raise
            print(f"error: {describe(exc)}", file=sys.stderr)
            return 1
    return 0
