"""What imitates or describes a MetaTrader 5 terminal: nothing here knows the gateway.

``constants`` holds every constant of the ``MetaTrader5`` package and ``structs`` its result
types; ``sim`` is a simulated terminal with the package's surface (``SimTerminal``), which the
gateway drives exactly as it drives the real one. Importing this package does not import the
simulator: a gateway on a real terminal never loads it.
"""

from gtw_server.terminal import constants
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
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "constants",
]
