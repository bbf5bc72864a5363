"""The real terminal: the official ``MetaTrader5`` package, which exists only for Windows."""

from __future__ import annotations

import importlib
from types import ModuleType

from gtw_server.errors import TerminalUnavailable

__all__ = ["load_metatrader5"]


def load_metatrader5() -> ModuleType:
    """Import ``MetaTrader5``, or say plainly why it cannot be used here."""
    try:
        return importlib.import_module("MetaTrader5")
    except ImportError as exc:
        raise TerminalUnavailable(
            "the MetaTrader5 package is not installed. It exists only for Windows: there, "
            "install the gateway with `pip install mt5-bridge[mt5]`. Elsewhere use "
            f"--terminal sim (the simulated terminal). ({exc})"
        ) from None
