"""The strategy-side client of the MT5 bridge.

from inf_bridge import Bridge

async with Bridge("tcp://127.0.0.1:5555", secret=secret) as bridge:
    fill = await bridge.send_order("EURUSD", "BUY", 0.10)
"""

from inf_bridge.audit import add_audit_file
from inf_bridge.breaker import BreakerChange, CircuitBreaker
from inf_bridge.client import Bridge
from inf_bridge.config import ClientConfig, default_config_file, load_config
from inf_bridge.errors import (
    BadReply,
    BridgeError,
    CircuitOpen,
    ConfigError,
    GatewayTimeout,
    GatewayUnreachable,
    InvalidOrder,
    NotExecuted,
    OrderRejected,
    OutcomeUnknown,
    RiskRejected,
)
from inf_bridge.heartbeat import HeartbeatMonitor
from inf_bridge.metrics import serve_metrics
from inf_bridge.results import OrderFilled, OrderState
from inf_bridge.risk import RiskLimits, RiskMonitor
from protocol import Account, Position, Side

__all__ = [
    "Account",
    "BadReply",
    "BreakerChange",
    "Bridge",
    "BridgeError",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientConfig",
    "ConfigError",
    "GatewayTimeout",
    "GatewayUnreachable",
    "HeartbeatMonitor",
    "InvalidOrder",
    "NotExecuted",
    "OrderFilled",
    "OrderRejected",
    "OrderState",
    "OutcomeUnknown",
    "Position",
    "RiskLimits",
    "RiskMonitor",
    "RiskRejected",
    "Side",
    "add_audit_file",
    "default_config_file",
    "load_config",
    "serve_metrics",
]
