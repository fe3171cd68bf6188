"""Output-file safety: never write over an input, never replace a file of another kind unasked.

A command collects the files it reads in :class:`Inputs` and checks every
path it is about to write with :func:`check_output`: a path that is one of
the inputs (the same file, also through a symbolic or hard link) is refused
even with ``--force``; an existing file holding another kind of content (a
model where a CSV would go, a CSV where a model would go) is replaced only
with ``--force``. Files are written through a temporary file and renamed
into place, so that a failed write leaves the old file as it was.
"""

import os
import zipfile

from .._persistence import remove_stale_temporaries, write_failure
from ._errors import CommandError

__all__ = ["KINDS", "Inputs", "check_output", "file_kind", "write_atomically"]

KINDS = {
    "model": "a gar_sklearn model file",
    "archive": "a zip archive (such as a torch checkpoint)",
    "csv": "a CSV file",
    "json": "a JSON file",
    "text": "a text file",
    "image": "an image",
    "binary": "a binary file",
    "empty": "an empty file",
}
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
_TEXT_KINDS = {".csv": "csv", ".json": "json", ".txt": "text", ".md": "text", ".log": "text"}


def _zip_kind(path):
    """'model' for a gar_sklearn file (a torch archive whose pickle names the format)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if pickles and b"gar_sklearn" in archive.read(pickles[0])[:4096]:
                return "model"
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    return "archive"


def file_kind(path):
    """What an existing file holds: one of the keys of :data:`KINDS`."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at 4096 bytes is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "binary"
    if "\x00" in text:
        return "binary"
    ext = os.path.splitext(path)[1].lower()
    if ext in _TEXT_KINDS:
        return _TEXT_KINDS[ext]
    if text.lstrip().startswith(("{", "[")):
        return "json"
    return "csv" if "," in text.split("\n", 1)[0] else "text"


def _key(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


class Inputs:
    """The files a command reads, each with the role it plays (``"the model file"``)."""

    def __init__(self):
        self._groups = []  # (paths, role); keys computed on the first existing output
        self._keys = None

    def add(self, paths, role):
        """Record ``paths`` (one path or a list) as inputs playing ``role``."""
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        self._groups.append(([os.fspath(p) for p in paths], role))
        self._keys = None
        return self

    def find(self, path):
        """``(input path, role)`` of the input that ``path`` is (same inode), or None."""
        if self._keys is None:
            self._keys = {}
            for paths, role in self._groups:
                for p in paths:
                    try:
                        self._keys.setdefault(_key(p), (p, role))
                    except OSError:  # a missing input: nothing can be written over it
                        pass
        try:
            return self._keys.get(_key(path))
        except OSError:
            return None


def check_output(path, kind, inputs, force, option="--out"):
    """Raise a :class:`CommandError` naming ``path`` unless writing ``kind`` there is safe."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise CommandError(f"{option} {path!r} is a folder; give the path of a file.")
    hit = inputs.find(path)
    if hit is not None:
        source, role = hit
        same = "" if os.path.abspath(source) == os.path.abspath(path) else f" ({source!r})"
        raise CommandError(
            f"{option} {path!r} is {role}{same}, an input of this command; it is never "
            "overwritten. Choose another output path."
        )
    if not os.path.exists(path):  # a dangling link: replaced, its target untouched
        return
    found = file_kind(path)
    if found not in (kind, "empty") and not force:
        raise CommandError(
            f"{option} {path!r} already exists and holds {KINDS[found]}, not {KINDS[kind]}; "
            "pass --force to replace it."
        )


def write_atomically(path, write):
    """Call ``write(temporary path)``, then move the file to ``path`` in one step."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(path)  # of writers killed before
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno is None:
            raise
        # named after the target, not the temporary file (a full disk: ENOSPC)
        raise write_failure(path, exc) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
