"""The package's one exception type, so callers and the CLI can tell bad input from bugs."""

from __future__ import annotations

from .places import shipped_place


def shown(source: str) -> str:
    """A source as a message names it: a shipped file as ``chips/gaudi2.toml`` wherever the package lives (a machine
    path in an error tells the reader nothing and differs from machine to machine), anything else as given."""
    return shipped_place(source) or source


class AccelsimError(Exception):
    """Bad input or an impossible request, with a message that names the file, the key and what is allowed.

    The CLI prints ``str(err)`` on one line and exits with status 2.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        self.detail = message
        parts = [p for p in (shown(source) if source else None, key) if p]
        super().__init__(": ".join(parts + [message]))
