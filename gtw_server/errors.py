"""Exceptions of the gateway.

Exception tree::

    GatewayError                 base of everything the gateway raises on purpose
    ├── ConfigError              a bad flag, environment variable, TOML field or secret file;
    │                            the message names the field and says how to fix it
    ├── DataDirInUse             another process holds the data directory's lock
    ├── JournalError             the journal could not be opened or written
    │   ├── JournalDamaged         the file is not a sound journal; the message names it and
    │   │                          the fix (``python -m gtw_server journal recover``)
    │   └── JournalUnavailable     a write could not be made now (another process holds the
    │                              file's lock, the disk is full): the order is refused
    ├── EventLogError            the trade event log could not be opened, written or read
    │                            (events wait in the terminal's history; the look is retried)
    └── TerminalError            the terminal worker could not do what was asked
        ├── TerminalDisconnected   the terminal is not reachable: nothing was executed
        ├── TerminalUnavailable    the terminal cannot be loaded here (e.g. no MetaTrader5)
        ├── TerminalRefused        the terminal cannot answer this request as asked (an unknown
        │                          symbol, too many rows): carries the ErrorCode to reply with
        ├── WorkerUnavailable      the call was never sent: the worker is restarting or stopping
        └── WorkerCrashed          the worker died while running this very call, so the
                                   terminal may or may not have done it (reconcile)

Requests never see these: the server turns each into a ``REJECTED`` (or ``PENDING``) reply.
(The simulated terminal, a leaf that knows nothing of these, has one exception of its own,
``terminal.sim.args.CallFailed``, which it turns into ``None`` and ``last_error()`` as the real
package reports failures, before any caller sees it.)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataDirInUse",
    "EventLogError",
    "GatewayError",
    "JournalDamaged",
    "JournalError",
    "JournalUnavailable",
    "TerminalDisconnected",
    "TerminalError",
    "TerminalRefused",
    "TerminalUnavailable",
    "WorkerCrashed",
    "WorkerUnavailable",
]


class GatewayError(Exception):
    """Base of the gateway's exceptions."""


class ConfigError(GatewayError):
    """The configuration cannot be used; the message names the field and the fix."""


class DataDirInUse(GatewayError):
    """Another gateway (or a ``journal recover``) holds the data directory."""


class EventLogError(GatewayError):
    """The trade event log could not be opened, written or read."""


class JournalError(GatewayError):
    """The journal could not be opened or written."""


class JournalDamaged(JournalError):
    """The journal file is damaged; the message names it and how to recover."""


class JournalUnavailable(JournalError):
    """A journal write could not be made now; nothing that needed it may proceed."""


class TerminalError(GatewayError):
    """The terminal worker could not do what was asked."""


class TerminalDisconnected(TerminalError):
    """The terminal is not reachable (the adapter says so before sending anything); nothing
    was executed."""


class TerminalRefused(TerminalError):
    """A read the terminal cannot answer as asked; ``code`` is the reply's ``ErrorCode``
    value (``SYMBOL_NOT_FOUND``, ``TOO_LARGE``, ``INVALID_REQUEST``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TerminalUnavailable(TerminalError):
    """The terminal cannot be loaded on this machine."""


class WorkerUnavailable(TerminalError):
    """The call was never sent to the terminal: the worker is restarting or stopping."""


class WorkerCrashed(TerminalError):
    """The worker died (or was killed as hung) while running this call; its effect on the
    terminal is unknown until reconciled."""
