"""The gateway's own reasons to refuse a new order before it reaches the terminal.

``OrderGate.refusal(request)`` asks, in order: the kill switch and ``[gateway.limits]`` (for
what adds exposure: an OPEN, a PLACE), a gateway that is stopping, the account pin, the
terminal's connection, the history ledger read, and the queue. It has no side effect: it is
asked before the journal, and a uuid the journal knows gets its stored reply whatever it
said; ``None`` lets the order through.
"""

from __future__ import annotations

from collections.abc import Callable

from gtw_server.config import GatewayConfig
from gtw_server.health import TerminalMonitor
from gtw_server.killswitch import KillSwitch
from gtw_server.ledger import HistoryLedger
from gtw_server.replies import rejected
from protocol import AnyRequest, ErrorCode, Open, Place, Reply, SignedRequest

__all__ = ["OrderGate", "busy"]


def busy(request: AnyRequest) -> Reply:
    """Refused for a full queue: nothing was done, the same uuid may be sent again."""
    return rejected(
        request.uuid,
        request.action,
        ErrorCode.BUSY,
        "the gateway's queue is full; retry shortly with the same uuid",
    )


class OrderGate:
    """Refusals of new orders; ``queued()`` says how many requests wait on the terminal."""

    def __init__(
        self,
        config: GatewayConfig,
        monitor: TerminalMonitor,
        killswitch: KillSwitch,
        ledger: HistoryLedger,
        queued: Callable[[], int],
    ) -> None:
        self._config = config
        self._monitor = monitor
        self._killswitch = killswitch
        self._ledger = ledger
        self._queued = queued
        self.stopping = False  # set at shutdown: nothing new is taken
        self.opening = 0  # OPEN orders admitted and not yet answered

    @property
    def full(self) -> bool:
        return self._queued() >= self._config.max_queue

    def refusal(self, request: SignedRequest) -> Reply | None:
        if isinstance(request, Open | Place) and (refused := self._backstop(request)):
            return refused
        uuid, action = request.uuid, request.action
        if self.stopping:
            return rejected(
                uuid,
                action,
                ErrorCode.BUSY,
                "the gateway is shutting down; retry with the same uuid once it is back",
            )
        monitor = self._monitor
        if monitor.status.connected and (problem := monitor.account_problem()):
            return rejected(uuid, action, ErrorCode.RISK_REJECTED, problem)
        if not monitor.reachable:
            return rejected(
                uuid,
                action,
                ErrorCode.MT5_DISCONNECTED,
                "the terminal is not connected; nothing was executed",
            )
        if not self._ledger.loaded:
            return rejected(
                uuid,
                action,
                ErrorCode.MT5_DISCONNECTED,
                "the terminal's recent history has not been read yet (it is how an order the "
                "journal lost is recognised); nothing was executed",
            )
        return busy(request) if self.full else None

    def _backstop(self, request: Open | Place) -> Reply | None:
        """The kill switch and ``[gateway.limits]``, for a new OPEN or PLACE (a pending order
        is exposure waiting for a price; cancelling, closing and moving stops always pass)."""
        if self._killswitch.halted:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.TRADING_HALTED,
                f"trading is halted ({self._killswitch.reason}); CLOSE, CLOSE_BY, CANCEL and "
                "the MODIFY commands still work",
            )
        limits = self._config.limits
        problem = None
        if limits.symbols is not None and request.symbol not in limits.symbols:
            problem = f"{request.symbol} is not in the gateway's allowed symbols"
        elif limits.max_order_volume is not None and request.volume > limits.max_order_volume:
            problem = f"volume {request.volume:g} is over the limit of {limits.max_order_volume:g}"
        elif (
            isinstance(request, Open)
            and limits.max_positions is not None
            and self._monitor.status.positions + self.opening >= limits.max_positions
        ):
            problem = f"the gateway's limit of {limits.max_positions} open positions is reached"
        if problem is None:
            return None
        return rejected(request.uuid, request.action, ErrorCode.RISK_REJECTED, problem)
