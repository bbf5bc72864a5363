"""Pre-trade risk checks on the strategy node, before anything touches the network.

``RiskLimits`` says what is allowed; ``RiskMonitor`` keeps the node's view of the book
(positions from the gateway, plus what this node has filled or has in flight since) and
checks each new order against it. Orders in flight count as if filled, so twenty coroutines
firing at once cannot together exceed a limit that each alone respects. A pending order
(``Place``) is checked like a market one and, once placed, counts as if it had filled: it is
exposure waiting for a price. Closing and cancelling are never checked: they reduce risk.

    limits = RiskLimits(max_order_volume=1.0, max_symbol_volume=3.0, symbols=["EURUSD"])
    async with Bridge(endpoint, secret=secret, risk=limits) as bridge: ...
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from loguru import logger
from msgspec import Struct

from inf_bridge.day_start import DayStart, prepare, read_day_start, write_day_start
from inf_bridge.errors import RiskRejected
from protocol import Account, Open, Order, PendingType, Place, Position, Side
from protocol.symbol_names import suffixed

__all__ = ["Reservation", "RiskLimits", "RiskMonitor"]

_MINUTE_S: Final = 60.0


class RiskLimits(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the node may do. Every limit is optional; ``None`` means no limit.

    >>> RiskLimits(max_order_volume=2.0, symbols=["EURUSD"]).require_stop_loss
    False
    """

    max_order_volume: float | None = None
    # Net exposure per symbol (lots bought minus lots sold) after the order, in absolute value.
    max_symbol_volume: float | None = None
    max_positions: int | None = None
    max_orders_per_minute: int | None = None
    # Equity loss against the UTC day's first reading, in the account currency.
    max_daily_loss: float | None = None
    # Where that first reading is kept, so that a restarted node keeps counting from it
    # (``inf_bridge.day_start``); None keeps it in memory, and a restart starts a new count.
    daily_loss_file: str | None = None
    symbols: list[str] | None = None
    require_stop_loss: bool = False

    def __post_init__(self) -> None:
        for name in ("max_order_volume", "max_symbol_volume", "max_daily_loss"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"RiskLimits.{name} must be positive, got {value!r}")
        for name in ("max_positions", "max_orders_per_minute"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"RiskLimits.{name} must be an integer >= 0, got {value!r}")
        if self.daily_loss_file is not None:
            if not isinstance(self.daily_loss_file, str) or not self.daily_loss_file:
                raise ValueError(
                    f"RiskLimits.daily_loss_file must be a path, got {self.daily_loss_file!r}"
                )
            if self.max_daily_loss is None:
                raise ValueError("RiskLimits.daily_loss_file is set but max_daily_loss is not")

    @property
    def watches_equity(self) -> bool:
        return self.max_daily_loss is not None

    @property
    def watches_book(self) -> bool:
        return self.max_symbol_volume is not None or self.max_positions is not None


class Reservation(Struct, frozen=True):
    """An order that passed the checks and is in flight."""

    uuid: str
    symbol: str
    signed_volume: float  # + for a buy, - for a sell
    at: float  # when it passed, on the monitor's clock


class _Held(Struct):
    symbol: str
    signed_volume: float
    added_at: float


class RiskMonitor:
    """Checks orders against ``limits`` and tracks the book they are checked against."""

    def __init__(self, limits: RiskLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._symbols = frozenset(limits.symbols) if limits.symbols is not None else None
        self._positions: dict[int, _Held] = {}
        self._orders: dict[int, _Held] = {}  # pending orders placed, by ticket
        self._in_flight: dict[str, Reservation] = {}
        # Net lots per symbol over both, kept up to date so a check costs the same whatever
        # the size of the book.
        self._net: defaultdict[str, float] = defaultdict(float)
        # The names orders were checked under, and the broker's names the gateway resolved
        # them to: the book the gateway reports (broker's names) is counted under the
        # strategy's, so a limit holds whatever the broker calls the symbol.
        self._asked: set[str] = set()
        self._names: dict[str, str] = {}  # broker's name -> the strategy's
        self._recent: deque[float] = deque()
        self.day: str | None = None
        self.day_start_equity: float | None = None
        self._day_file: Path | None = None
        if limits.daily_loss_file is not None:
            try:
                self._day_file = prepare(limits.daily_loss_file)
            except OSError as exc:
                raise ValueError(
                    f"RiskLimits.daily_loss_file {limits.daily_loss_file!r} cannot be used: {exc}"
                ) from None
        elif limits.max_daily_loss is not None:
            logger.warning(
                "max_daily_loss without daily_loss_file: the day's starting equity is held in "
                "memory, and a restart of this process starts the day's loss count again"
            )

    # -- checks -----------------------------------------------------------------------------

    def check(self, order: Open | Place) -> Reservation:
        """Pass ``order`` (and hold its exposure until ``settle``), or raise ``RiskRejected``."""
        limits = self.limits
        if self._symbols is not None and order.symbol not in self._symbols:
            raise RiskRejected(
                "SYMBOL_NOT_ALLOWED", f"{order.symbol} is not in the allowed symbols"
            )
        if limits.max_order_volume is not None and order.volume > limits.max_order_volume:
            raise RiskRejected(
                "MAX_ORDER_VOLUME",
                f"{order.volume:g} lots is over the limit of {limits.max_order_volume:g}",
            )
        if limits.require_stop_loss and not order.sl:
            raise RiskRejected("STOP_LOSS_REQUIRED", "every order must carry a stop loss")
        side = PendingType(order.type).side if isinstance(order, Place) else order.type
        signed = order.volume if side is Side.BUY else -order.volume
        if limits.max_symbol_volume is not None:
            net = self.exposure(order.symbol) + signed
            if abs(net) > limits.max_symbol_volume + 1e-9:
                raise RiskRejected(
                    "MAX_SYMBOL_VOLUME",
                    f"net {order.symbol} exposure would be {net:+g} lots; the limit is "
                    f"{limits.max_symbol_volume:g}",
                )
        if limits.max_positions is not None:
            count = len(self._positions) + len(self._orders) + len(self._in_flight)
            if count >= limits.max_positions:
                raise RiskRejected(
                    "MAX_POSITIONS",
                    f"{count} positions open, opening or pending; the limit is "
                    f"{limits.max_positions}",
                )
        now = self._clock()
        if limits.max_orders_per_minute is not None:
            while self._recent and now - self._recent[0] >= _MINUTE_S:
                self._recent.popleft()
            if len(self._recent) >= limits.max_orders_per_minute:
                raise RiskRejected(
                    "MAX_ORDERS_PER_MINUTE",
                    f"{limits.max_orders_per_minute} orders were sent in the last minute",
                )
            self._recent.append(now)
        self._asked.add(order.symbol)
        reservation = Reservation(order.uuid, order.symbol, signed, now)
        self._in_flight[order.uuid] = reservation
        self._net[order.symbol] += signed
        return reservation

    def settle(
        self, reservation: Reservation, ticket: int | None, *, pending: bool = False
    ) -> None:
        """The order in flight ended: filled as position ``ticket`` (placed as pending order
        ``ticket``, with ``pending``), or not (``None``)."""
        if self._in_flight.pop(reservation.uuid, None) is None:
            return
        if ticket is None:
            self._net[reservation.symbol] -= reservation.signed_volume
        elif pending:
            if ticket in self._orders or ticket in self._positions:
                # A sync asked after this order was sent has it already (pending, or filled).
                self._net[reservation.symbol] -= reservation.signed_volume
            else:
                self._orders[ticket] = _Held(
                    reservation.symbol, reservation.signed_volume, self._clock()
                )
        else:
            held = self._positions.get(ticket)
            if held is None:
                self._positions[ticket] = _Held(
                    reservation.symbol, reservation.signed_volume, self._clock()
                )
            elif held.added_at < reservation.at:  # a netting account's one position grew
                held.signed_volume += reservation.signed_volume
            else:  # a sync asked after this order was sent: the fill is in its book already
                self._net[reservation.symbol] -= reservation.signed_volume

    def closed(self, ticket: int, volume: float) -> None:
        """``volume`` lots of position ``ticket`` were closed."""
        held = self._positions.get(ticket)
        if held is None:
            return
        remaining = max(abs(held.signed_volume) - volume, 0.0)
        signed = remaining if held.signed_volume > 0 else -remaining
        self._net[held.symbol] += signed - held.signed_volume
        if remaining <= 1e-9:
            del self._positions[ticket]
        else:
            held.signed_volume = signed

    def cancelled(self, ticket: int) -> None:
        """Pending order ``ticket`` was cancelled."""
        held = self._orders.pop(ticket, None)
        if held is not None:
            self._net[held.symbol] -= held.signed_volume

    def named(self, asked: str, broker: str) -> None:
        """The gateway traded ``broker``'s symbol for an order that named ``asked`` (a
        reply's ``symbol``): count the book's ``broker`` positions as ``asked``."""
        self._names[broker] = asked

    def _as_asked(self, name: str) -> str:
        """The name the strategy trades the broker's symbol ``name`` under: told by a reply
        (``named``), else the one name it ordered whose suffixed form ``name`` is."""
        if (asked := self._names.get(name)) is not None:
            return asked
        matches = [asked for asked in self._asked if suffixed(asked, [name])]
        return matches[0] if len(matches) == 1 else name

    def exposure(self, symbol: str) -> float:
        """Net lots of ``symbol``: positions, pending orders and orders in flight."""
        return self._net.get(symbol, 0.0)

    def now(self) -> float:
        """This monitor's clock, to stamp a ``sync`` request with."""
        return self._clock()

    # -- the gateway's view -----------------------------------------------------------------

    def sync(
        self,
        positions: Iterable[Position],
        requested_at: float,
        orders: Iterable[Order] | None = None,
    ) -> None:
        """Replace the book with the gateway's ``positions`` (and pending ``orders``, when
        given), asked for at ``requested_at`` (this monitor's clock); fills and placements
        recorded since then are kept."""
        book = {
            p.ticket: _Held(
                self._as_asked(p.symbol),
                p.volume if p.type is Side.BUY else -p.volume,
                requested_at,
            )
            for p in positions
        }
        self._positions = _merged(book, self._positions, requested_at)
        if orders is not None:
            pending = {
                o.ticket: _Held(self._as_asked(o.symbol), _signed(o), requested_at)
                for o in orders
                if o.ticket not in self._positions
            }
            self._orders = _merged(pending, self._orders, requested_at)
        self._net = defaultdict(float)
        for held in (*self._positions.values(), *self._orders.values()):
            self._net[held.symbol] += held.signed_volume
        for flying in self._in_flight.values():
            self._net[flying.symbol] += flying.signed_volume

    def daily_loss_breached(self, account: Account, now: datetime | None = None) -> bool:
        """Whether equity has fallen more than ``max_daily_loss`` below the UTC day's first
        reading (which this call records, in ``daily_loss_file`` when there is one)."""
        if self.limits.max_daily_loss is None:
            return False
        today = (now or datetime.now(UTC)).date().isoformat()
        if today != self.day or self.day_start_equity is None:
            self.day, self.day_start_equity = today, self._day_start(today, account)
        return self.day_start_equity - account.equity > self.limits.max_daily_loss

    def _day_start(self, day: str, account: Account) -> float:
        """The day's first equity: the stored one for this day and account, else this one."""
        if self._day_file is None:
            return account.equity
        stored = read_day_start(self._day_file)
        if stored is not None and stored.applies_to(day, account.login, account.server):
            return stored.equity
        reading = DayStart(
            day=day, login=account.login, server=account.server, equity=account.equity
        )
        write_day_start(self._day_file, reading)
        return account.equity


def _merged(
    book: dict[int, _Held], ours: dict[int, _Held], requested_at: float
) -> dict[int, _Held]:
    """The gateway's ``book``, with what this node recorded after it was asked for."""
    for ticket, held in ours.items():
        if ticket not in book and held.added_at > requested_at:
            book[ticket] = held
    return book


def _signed(order: Order) -> float:
    """A pending order's lots still to fill: + for a buy, - for a sell (ORDER_TYPE_* is even
    for a buy)."""
    return order.volume_current if order.type % 2 == 0 else -order.volume_current
