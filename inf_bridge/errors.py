"""Exceptions of the strategy-side client.

Exception tree::

    BridgeError              base of everything this package raises on purpose
    ├── ConfigError          a client config (TOML, environment, flags) that cannot be used;
    │                        the message names the field and says how to fix it
    ├── RiskRejected         the node's RiskMonitor refused the order; nothing was sent
    ├── CircuitOpen          the circuit breaker is open; nothing was sent
    ├── OrderRejected        the gateway or terminal refused it; nothing was executed
    ├── GatewayTimeout       no answer in time, and nothing was executed (or a query timed out)
    ├── OutcomeUnknown       no way to tell whether the order executed; ask later with
    │                        ``bridge.get_order(exc.uuid)``
    └── ProtocolError        the gateway answered something this client cannot read

A timeout is never reported as a rejection: ``OrderRejected`` means the order did not execute,
``OutcomeUnknown`` means it may have.
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "CircuitOpen",
    "ConfigError",
    "GatewayTimeout",
    "OrderRejected",
    "OutcomeUnknown",
    "ProtocolError",
    "RiskRejected",
]


class BridgeError(Exception):
    """Base of the client's exceptions."""


class ConfigError(BridgeError):
    """The configuration cannot be used; the message names the field (as the flag, the
    environment variable or the TOML key it came from) and says how to fix it."""


class RiskRejected(BridgeError):
    """The RiskMonitor refused the order before it was sent. ``reason`` is a code such as
    ``MAX_ORDER_VOLUME``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class CircuitOpen(BridgeError):
    """The circuit breaker is open (``reason`` says why); the order was not sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the circuit breaker is open ({reason}); the order was not sent")
        self.reason = reason


class OrderRejected(BridgeError):
    """The gateway or the terminal refused the order; it was not executed.

    ``error_code`` is the protocol's code (``MT5_REJECTED``, ``SIGNATURE_EXPIRED``, ...);
    ``retcode`` is the terminal's, when it was the terminal that refused.
    """

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        uuid: str | None = None,
        retcode: int | None = None,
    ) -> None:
        detail = f" (retcode {retcode})" if retcode is not None else ""
        super().__init__(f"{error_code}: {message}{detail}")
        self.error_code = error_code
        self.message = message
        self.uuid = uuid
        self.retcode = retcode


class GatewayTimeout(BridgeError):
    """The gateway did not answer in time. For an order this is raised only once the
    gateway has confirmed it does not have it, i.e. nothing was executed."""


class OutcomeUnknown(BridgeError):
    """Whether the order executed cannot be told now. Ask later with ``get_order(uuid)``."""

    def __init__(self, uuid: str, message: str) -> None:
        super().__init__(f"order {uuid}: {message}")
        self.uuid = uuid


class ProtocolError(BridgeError):
    """The gateway sent something this client cannot understand."""
