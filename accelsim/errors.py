"""The package's one exception type, so callers and the CLI can tell bad input from bugs."""

from __future__ import annotations


class AccelsimError(Exception):
    """Bad input or an impossible request, with a message that names the file, the key and what is allowed.

    The CLI prints ``str(err)`` on one line and exits with status 2.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        self.detail = message
        parts = [p for p in (source, key) if p]
        super().__init__(": ".join(parts + [message]))
