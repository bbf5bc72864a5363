"""Exceptions of the gateway.

Exception tree::

    GatewayError                 base of everything the gateway raises on purpose
    ├── ConfigError              a bad flag, environment variable, TOML field or secret file;
    │                            the message names the field and says how to fix it
    ├── JournalError             the journal could not be opened or written
    └── TerminalError            the terminal worker could not do what was asked
        ├── TerminalUnavailable    the terminal cannot be loaded here (e.g. no MetaTrader5)
        ├── WorkerUnavailable      the call was never sent: the worker is restarting or stopping
        └── WorkerCrashed          the worker died while running this very call, so the
                                   terminal may or may not have done it (reconcile)

Requests never see these: the server turns each into a ``REJECTED`` (or ``PENDING``) reply.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GatewayError",
    "JournalError",
    "TerminalError",
    "TerminalUnavailable",
    "WorkerCrashed",
    "WorkerUnavailable",
]


class GatewayError(Exception):
    """Base of the gateway's exceptions."""


class ConfigError(GatewayError):
    """The configuration cannot be used; the message names the field and the fix."""


class JournalError(GatewayError):
    """The journal could not be opened or written."""


class TerminalError(GatewayError):
    """The terminal worker could not do what was asked."""


class TerminalUnavailable(TerminalError):
    """The terminal cannot be loaded on this machine."""


class WorkerUnavailable(TerminalError):
    """The call was never sent to the terminal: the worker is restarting or stopping."""


class WorkerCrashed(TerminalError):
    """The worker died (or was killed as hung) while running this call; its effect on the
    terminal is unknown until reconciled."""
