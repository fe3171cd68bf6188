"""CSV files of image paths: reading them, finding the path column, resolving the paths."""

import os

from ._errors import CommandError

__all__ = ["PATH_COLUMNS", "path_column", "read_table", "resolved_paths"]

PATH_COLUMNS = ("path", "file")


def read_table(path, what):
    """The CSV file ``path`` as a DataFrame; ``what`` names it in errors."""
    import pandas as pd

    if os.path.isdir(path):
        raise CommandError(f"The {what} must be a CSV file; {path!r} is a folder.")
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise CommandError(f"The {what} file {path!r} does not exist.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"Could not read the {what} file {path!r} as CSV: {exc}") from exc
    _check_header(path, what, table)
    return table


def _check_header(path, what, table):
    """Refuse a header naming a column twice (pandas would rename the second 'x.1', and
    its values would be silently left out)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated and len(header) == len(table.columns):
        raise CommandError(
            f"The {what} file {path!r} names the column(s) {repeated} more than once in its "
            "header; rename or drop the duplicates."
        )


def path_column(frame, path, what):
    """The name of the column of ``frame`` that names the images ('path' or 'file')."""
    for name in PATH_COLUMNS:
        if name in frame.columns:
            break
    else:
        raise CommandError(
            f"The {what} file {path!r} needs a 'path' column (or 'file') naming the images; it "
            f"has the columns {list(frame.columns)}."
        )
    values = frame[name]
    missing = values.isna() | (values.astype(str).str.strip() == "")
    if missing.any():
        rows = (missing[missing].index[:5] + 2).tolist()  # +2: the header line, and 1-based
        raise CommandError(f"The {what} file {path!r} has rows without a {name!r} (lines {rows}).")
    return name


def resolved_paths(frame, column, csv_path):
    """The paths of a CSV's ``column``, relative ones taken from the CSV's folder."""
    folder = os.path.dirname(os.fspath(csv_path))
    return [
        p if os.path.isabs(p) else os.path.normpath(os.path.join(folder, p))
        for p in frame[column].astype(str).str.strip()
    ]
