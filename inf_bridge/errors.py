"""Exceptions of the strategy-side client.

Exception tree::

    BridgeError                  base of everything this package raises on purpose
    ├── ConfigError              a client config (TOML, environment, flags) that cannot be used;
    │                            the message names the field and says how to fix it
    ├── InvalidRequest           an argument outside the protocol's limits (also a
    │   │                        ValueError): nothing was sent
    │   └── InvalidOrder         ...of an order (also a NotExecuted, below)
    ├── RequestRefused           the gateway refused a market-data request (``error_code``:
    │                            SYMBOL_NOT_FOUND, TOO_LARGE, BUSY, ...)
    ├── NotExecuted              the order was NOT executed, for certain: safe to send again
    │   │                        (with a new uuid, or the same one)
    │   ├── InvalidOrder         a field outside the protocol's limits; nothing was sent
    │   ├── CircuitOpen          the circuit breaker is open; nothing was sent
    │   ├── RiskRejected         the node's RiskMonitor refused the order; nothing was sent
    │   ├── OrderRejected        the gateway or terminal refused it; nothing was executed
    │   └── GatewayTimeout       no answer in time, and nothing was executed (or a query
    │       │                    timed out)
    │       └── GatewayUnreachable  no connection to the gateway: the request never left
    │                               this process
    ├── OutcomeUnknown           no way to tell whether the order executed; ask later with
    │                            ``bridge.get_order(exc.uuid)``
    └── BadReply                 the gateway answered something this client cannot read
                                 (not to be confused with ``protocol.ProtocolError``, what the
                                 wire contract's own code raises)

A timeout is never reported as a rejection: ``NotExecuted`` means the order did not execute,
``OutcomeUnknown`` means it may have.
"""

from __future__ import annotations

__all__ = [
    "BadReply",
    "BridgeError",
    "CircuitOpen",
    "ConfigError",
    "GatewayTimeout",
    "GatewayUnreachable",
    "InvalidOrder",
    "InvalidRequest",
    "NotExecuted",
    "OrderRejected",
    "OutcomeUnknown",
    "RequestRefused",
    "RiskRejected",
]


class BridgeError(Exception):
    """Base of the client's exceptions."""


class ConfigError(BridgeError):
    """The configuration cannot be used; the message names the field (as the flag, the
    environment variable or the TOML key it came from) and says how to fix it."""


class NotExecuted(BridgeError):
    """The order certainly did not execute (nothing to reconcile, nothing to ask about)."""


class InvalidRequest(BridgeError, ValueError):
    """A value the wire contract refuses (``field`` names it); nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidOrder(NotExecuted, InvalidRequest):
    """An order's value the wire contract refuses (``field`` names it), caught before the
    risk check and before anything was sent or recorded as passed."""


class RequestRefused(BridgeError):
    """The gateway refused a market-data request; ``error_code`` says why
    (``SYMBOL_NOT_FOUND``, ``TOO_LARGE``, ``INVALID_REQUEST``, ``BUSY``, ``MT5_DISCONNECTED``)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


class RiskRejected(NotExecuted):
    """The RiskMonitor refused the order before it was sent. ``reason`` is a code such as
    ``MAX_ORDER_VOLUME``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class CircuitOpen(NotExecuted):
    """The circuit breaker is open (``reason`` says why); the order was not sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the circuit breaker is open ({reason}); the order was not sent")
        self.reason = reason


class OrderRejected(NotExecuted):
    """The gateway or the terminal refused the order; it was not executed.

    ``error_code`` is the protocol's code (``MT5_REJECTED``, ``SIGNATURE_EXPIRED``, ...);
    ``retcode`` is the terminal's, when it was the terminal that refused, and then ``bid``
    and ``ask`` its quote (at a requote, 10004: the prices it offers), ``request_id`` and
    ``retcode_external`` the rest of its answer.
    """

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        uuid: str | None = None,
        retcode: int | None = None,
        bid: float | None = None,
        ask: float | None = None,
        request_id: int | None = None,
        retcode_external: int | None = None,
    ) -> None:
        detail = f" (retcode {retcode})" if retcode is not None else ""
        super().__init__(f"{error_code}: {message}{detail}")
        self.error_code = error_code
        self.message = message
        self.uuid = uuid
        self.retcode = retcode
        self.bid = bid
        self.ask = ask
        self.request_id = request_id
        self.retcode_external = retcode_external


class GatewayTimeout(NotExecuted):
    """The gateway did not answer in time. For an order this is raised only once the
    gateway has confirmed it does not have it, i.e. nothing was executed."""


class GatewayUnreachable(GatewayTimeout):
    """No connection to the gateway within the timeout: the request was never sent (the
    socket queues nothing without a connection, so it cannot leave later either)."""


class OutcomeUnknown(BridgeError):
    """Whether the order executed cannot be told now. Ask later with ``get_order(uuid)``."""

    def __init__(self, uuid: str, message: str) -> None:
        super().__init__(f"order {uuid}: {message}")
        self.uuid = uuid
        self.message = message


class BadReply(BridgeError):
    """The gateway sent something this client cannot understand (a reply without the field
    its request promises)."""
