"""The progress line, on stderr so that the table on stdout stays clean.

On a terminal one line is rewritten in place (``\\r`` and erase-to-end-of-line) several times a
second; in a pipe or a CI log, where a carriage return would pile up, a plain line is printed
at most once every ``plain_every`` seconds.
"""

from __future__ import annotations

import sys
import time
from typing import Final, TextIO

__all__ = ["Progress"]

_ERASE_LINE: Final = "\r\x1b[K"


class Progress:
    """Shows what the benchmark is doing now. ``quiet`` shows nothing."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, plain_every: float = 1.0
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._quiet = quiet
        self._plain_every = plain_every
        self._last_plain = 0.0
        self._showing = False

    def show(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` as the current state; ``force`` prints it even between plain lines."""
        if self._quiet:
            return
        if self._tty:
            self._stream.write(_ERASE_LINE + text)
            self._showing = True
        else:
            now = time.monotonic()
            if not force and now - self._last_plain < self._plain_every:
                return
            self._last_plain = now
            self._stream.write(text + "\n")
        self._stream.flush()

    def clear(self) -> None:
        """Remove the line (on a terminal) before other output is printed."""
        if self._showing:
            self._stream.write(_ERASE_LINE)
            self._stream.flush()
            self._showing = False
