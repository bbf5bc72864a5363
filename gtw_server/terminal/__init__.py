"""The terminal side of the gateway: a simulated MetaTrader 5 terminal and its result types.

``SimTerminal`` has the surface of the ``MetaTrader5`` module (functions as methods, constants
as attributes, struct-sequence results), so the gateway drives either one the same way.
``constants`` holds every constant of the package; ``structs`` its result types.
"""

from gtw_server.terminal import constants
from gtw_server.terminal.sim import SimTerminal
from gtw_server.terminal.sim_config import SimConfig
from gtw_server.terminal.structs import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)

__all__ = [
    "AccountInfo",
    "BookInfo",
    "OrderCheckResult",
    "OrderSendResult",
    "SimConfig",
    "SimTerminal",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "constants",
]
