"""The strategy-side client of the MT5 bridge.

from inf_bridge import Bridge

async with Bridge("tcp://127.0.0.1:5555", secret=secret) as bridge:
    fill = await bridge.send_order("EURUSD", "BUY", 0.10)
"""

from inf_bridge.client import Bridge
from inf_bridge.errors import (
    BridgeError,
    CircuitOpen,
    GatewayTimeout,
    OrderRejected,
    OutcomeUnknown,
    ProtocolError,
    RiskRejected,
)
from inf_bridge.results import OrderFilled, OrderState
from protocol import Account, Position, Side

__all__ = [
    "Account",
    "Bridge",
    "BridgeError",
    "CircuitOpen",
    "GatewayTimeout",
    "OrderFilled",
    "OrderRejected",
    "OrderState",
    "OutcomeUnknown",
    "Position",
    "ProtocolError",
    "RiskRejected",
    "Side",
]
