"""The strategy-side client of the MT5 bridge.

from inf_bridge import Bridge

async with Bridge("tcp://127.0.0.1:5555", secret=secret) as bridge:
    tick = await bridge.tick("EURUSD")
    fill = await bridge.send_order("EURUSD", "BUY", 0.10, sl=round(tick.bid - 0.0050, 5))
    bars = await bridge.rates("EURUSD", "M1", count=1000)   # numpy, as copy_rates_* gives
    async with bridge.ticks("EURUSD") as ticks:
        async for tick in ticks: ...
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
    InvalidRequest,
    NotExecuted,
    OrderRejected,
    OutcomeUnknown,
    RequestRefused,
    RiskRejected,
)
from inf_bridge.heartbeat import HeartbeatMonitor
from inf_bridge.metrics import serve_metrics
from inf_bridge.results import OrderDone, OrderFilled, OrderState
from inf_bridge.risk import RiskLimits, RiskMonitor
from inf_bridge.streams import Gap, Stream
from inf_bridge.trade_events import AccountEvent, DealEvent, OrderEvent, TradeEvent, TradeEvents
from protocol import (
    Account,
    Bar,
    Deal,
    Event,
    Order,
    PendingType,
    Position,
    Side,
    SymbolInfo,
    Tick,
    Timeframe,
)

__all__ = [
    "Account",
    "AccountEvent",
    "BadReply",
    "Bar",
    "BreakerChange",
    "Bridge",
    "BridgeError",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientConfig",
    "ConfigError",
    "Deal",
    "DealEvent",
    "Event",
    "Gap",
    "GatewayTimeout",
    "GatewayUnreachable",
    "HeartbeatMonitor",
    "InvalidOrder",
    "InvalidRequest",
    "NotExecuted",
    "Order",
    "OrderDone",
    "OrderEvent",
    "OrderFilled",
    "OrderRejected",
    "OrderState",
    "OutcomeUnknown",
    "PendingType",
    "Position",
    "RequestRefused",
    "RiskLimits",
    "RiskMonitor",
    "RiskRejected",
    "Side",
    "Stream",
    "SymbolInfo",
    "Tick",
    "Timeframe",
    "TradeEvent",
    "TradeEvents",
    "add_audit_file",
    "default_config_file",
    "load_config",
    "serve_metrics",
]
