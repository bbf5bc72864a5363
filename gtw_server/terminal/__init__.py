"""What imitates or describes a MetaTrader 5 terminal: nothing here knows the gateway.

``constants`` holds every constant of the ``MetaTrader5`` package, and the result types are
re-exported here: both are the protocol's (``protocol.mt5_constants``,
``protocol.mt5_structs``), since the client's ``inf_bridge.mt5`` speaks them too. ``sim`` is a
simulated terminal with the package's surface (``SimTerminal``), which the gateway drives
exactly as it drives the real one. Importing this package does not import the simulator: a
gateway on a real terminal never loads it.
"""

from protocol import mt5_constants as constants
from protocol.mt5_structs import (
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
