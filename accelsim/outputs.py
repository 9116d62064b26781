"""Where output goes: checked before any work, so a bad path is one error line, not a traceback after minutes of
simulation; and names that become parts of file names, made safe so nothing is written outside the folder asked
for."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import AccelsimError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DOTS = re.compile(r"\.{2,}")


def safe_name(text: str) -> str:
    """``text`` made fit to be (part of) a file name: letters, digits, ``-``, ``_`` and ``.`` are kept, anything
    else (a path separator, a space, ``$``) becomes ``_``; a run of dots (``..``) becomes ``_`` and so does a
    leading dot, so the result is never a path, a parent folder or a hidden file. Never empty."""
    out = _DOTS.sub("_", _UNSAFE.sub("_", text))
    if out.startswith("."):
        out = "_" + out[1:]
    return out or "_"


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` as a file to write: its folder must exist and be writable, and it must not be a folder (an
    existing file must be writable: it is appended to or replaced)."""
    p = Path(path)
    if str(path).strip() == "":
        raise AccelsimError("expected a file name, got an empty path", key=option)
    if p.is_dir():
        raise AccelsimError("is a folder; name a file to write", source=str(path), key=option)
    folder = p.parent
    if not folder.exists():
        raise AccelsimError(f"its folder {str(folder)!r} does not exist; create it first", source=str(path), key=option)
    if not folder.is_dir():
        raise AccelsimError(f"{str(folder)!r} is not a folder", source=str(path), key=option)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AccelsimError(
            f"cannot write in the folder {str(folder)!r} (permission denied)", source=str(path), key=option
        )
    if p.exists() and not (p.is_file() and os.access(p, os.W_OK)):
        raise AccelsimError(
            "exists and cannot be written (not a regular file, or permission denied)", source=str(path), key=option
        )
    return p


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` as a folder to write files into: an existing, writable folder, or one that can be created (its
    nearest existing ancestor is a writable folder). Nothing is created here."""
    p = Path(path)
    if str(path).strip() == "":
        raise AccelsimError("expected a folder, got an empty path", key=option)
    if p.exists():
        if not p.is_dir():
            raise AccelsimError("exists and is not a folder", source=str(path), key=option)
        if not os.access(p, os.W_OK | os.X_OK):
            raise AccelsimError("cannot write in this folder (permission denied)", source=str(path), key=option)
        return p
    ancestor = p.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise AccelsimError(f"cannot be created: {str(ancestor)!r} is not a folder", source=str(path), key=option)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise AccelsimError(
            f"cannot be created: no permission to write in {str(ancestor)!r}", source=str(path), key=option
        )
    return p


def write_failed(path: str | Path, exc: OSError, option: str | None = None) -> AccelsimError:
    """An OSError met while writing ``path`` (the disk filled up, the folder went away) as a one-line error."""
    reason = exc.strerror or type(exc).__name__
    return AccelsimError(f"cannot write: {reason}", source=str(path), key=option)
