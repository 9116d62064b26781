"""Where the shipped files live: installed as package data (``accelsim/data/<kind>``, see setup.cfg) or at the top
of a source checkout. One owner for both the reader (accelsim.resources) and the messages that name a shipped file
by its place in the package (accelsim.errors.shown), which cannot import each other."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
#: The kinds of shipped files, each a folder of its own.
KINDS = ("chips", "workloads", "systems", "models")


def shipped_dir(kind: str) -> Path:
    """The folder holding the shipped files of one kind: the installed package data if there is some, else the
    checkout's."""
    installed = _PACKAGE / "data" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def shipped_place(source: str) -> str | None:
    """``source``'s place among the shipped files (``chips/gaudi2.toml``) where it is one, wherever the package
    lives; None for any other path."""
    for root in (f"{_PACKAGE / 'data'}/", f"{_PACKAGE.parent}/"):
        if source.startswith(root) and source[len(root) :].startswith(tuple(f"{k}/" for k in KINDS)):
            return source[len(root) :]
    return None
