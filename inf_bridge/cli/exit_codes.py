"""The exit codes of ``mt5-bridge``, explained once: ``--help`` prints this table and the
package's docstring is written from it, so that the two cannot drift apart."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = ["Exit", "exit_codes_help"]


class Exit(IntEnum):
    """The process's exit codes (the package's docstring and ``--help`` explain each)."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    UNREACHABLE = 3
    UNKNOWN = 4
    INTERRUPTED = 130


_EXIT_HELP: Final = (
    (Exit.OK, "done"),
    (
        Exit.REFUSED,
        "refused: an order rejected or not found, a symbol the terminal does not know, more "
        "rows than the gateway gives at once, this node's secret refused, or not confirmed",
    ),
    (Exit.USAGE, "usage or configuration error"),
    (
        Exit.UNREACHABLE,
        "the gateway is unreachable, timed out or answered nonsense (nothing was executed)",
    ),
    (Exit.UNKNOWN, "the outcome of an order is unknown: ask with `mt5-bridge order UUID`"),
    (
        Exit.INTERRUPTED,
        "interrupted (Ctrl+C; an order that was in flight is named, to be checked)",
    ),
)


def exit_codes_help() -> str:
    """The table, one code a line, as ``--help`` and the package's docstring show it."""
    return "\n".join(f"  {int(code):<4} {text}" for code, text in _EXIT_HELP)
