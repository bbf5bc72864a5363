"""The kill switch: while halted, the gateway refuses new OPEN orders (CLOSE still works).

The state is kept in a small JSON file in the data directory, replaced atomically, so a halt
survives a restart: a gateway that was stopped for being dangerous must not come back
trading on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from loguru import logger

from gtw_server.audit import audit
from plumbing.files import atomic_write
from protocol import AuditEvent

__all__ = ["KillSwitch"]


class _State(msgspec.Struct, frozen=True):
    halted: bool = False
    reason: str | None = None
    since: float | None = None


class KillSwitch:
    """Halt state persisted in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Told ``(halted, reason)`` after each change (the event feed publishes it at once).
        self.observers: list[Callable[[bool, str | None], None]] = []
        try:
            self._state = msgspec.json.decode(path.read_bytes(), type=_State)
        except FileNotFoundError:
            self._state = _State()
        except msgspec.DecodeError:
            # Unreadable: assume the worst, and say so.
            self._state = _State(True, f"{path} was unreadable; RESUME to trade", time.time())
            logger.error("the kill switch file {} is unreadable: trading is halted", path)

    @property
    def halted(self) -> bool:
        return self._state.halted

    @property
    def reason(self) -> str | None:
        return self._state.reason

    def halt(self, reason: str, *, uuid: str | None = None) -> None:
        """Halt (``uuid``: the HALT request's, when a client asked)."""
        self._save(_State(True, reason, time.time()))
        message = f"new orders are refused: {reason}"
        audit(AuditEvent.HALTED, message, uuid=uuid, level="WARNING", reason=reason)

    def resume(self, *, uuid: str | None = None) -> None:
        self._save(_State())
        audit(AuditEvent.RESUMED, "new orders are accepted again", uuid=uuid, level="WARNING")

    def _save(self, state: _State) -> None:
        # Durably (fsynced, file and directory): a power cut must not lose a HALT.
        atomic_write(self.path, msgspec.json.encode(state))
        self._state = state
        for observer in self.observers:
            observer(state.halted, state.reason)
