"""What ``mt5-bridge watch`` shows, frame by frame: a snapshot of the link, the breaker, the
account, the positions and their symbols' quotes, the pending orders and the last trade events
(the JSON of ``--json``), and its rendering."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self

from msgspec import Struct
from rich.console import Console, Group, RenderableType
from rich.text import Text

from inf_bridge.cli.views import (
    PROG,
    _account_view,
    _as_event,
    _event_data,
    _event_line,
    _gap_note,
    _gateway_lines,
    _no_positions,
    _pending_table,
    _positions_table,
    _quotes_table,
)
from inf_bridge.client import Bridge
from inf_bridge.errors import BridgeError, GatewayTimeout
from inf_bridge.streams import Gap
from inf_bridge.trade_events import AccountEvent, TradeEvent, TradeEvents
from protocol import Account, ErrorCode, GatewayInfo, Order, Position, Tick

__all__ = ["BreakerView", "HealthView", "RecentEvents", "Snapshot"]

_SHOWN_ORDERS: Final = 20  # pending orders in a frame; `mt5-bridge orders` lists them all
_KEPT_EVENTS: Final = 10  # the last trade events a frame shows
_RETRY_S: Final = 1.0  # after a failed read of the trade events, the next try


class HealthView(Struct, frozen=True, kw_only=True):
    state: str
    mt5_connected: bool | None
    authenticated: bool | None  # whether the gateway accepted the signed heartbeat
    auth_error: str | None  # why not: SIGNATURE_INVALID (the secret), SIGNATURE_EXPIRED (clocks)
    rtt_ms: float | None
    avg_rtt_ms: float | None
    p99_rtt_ms: float | None
    beats: int
    misses: int
    clock_offset_ms: float


class BreakerView(Struct, frozen=True, kw_only=True):
    open: bool
    reason: str | None
    opened_at: float | None


class Snapshot(Struct, frozen=True, kw_only=True):
    """One frame of ``watch``: the link, the breaker, the account, the positions and the latest
    quotes of their symbols (``quotes_error`` when those could not be had: the rest stands),
    the pending orders (``orders_error`` likewise) and the last deal and order events since
    the watch started (or after event ``events_after``: ``--since``), newest last, as
    ``tail --json`` gives them (``None`` with ``--once``, which follows none; ``events_error``
    when they cannot be read now)."""

    time: float
    endpoint: str
    health: HealthView
    breaker: BreakerView
    gateway: GatewayInfo | None  # what the gateway said of itself: version, halted, warnings
    account: Account | None
    positions: list[Position] | None
    quotes: dict[str, Tick] | None
    quotes_error: str | None
    orders: list[Order] | None
    orders_error: str | None
    events: list[dict[str, Any]] | None
    events_since: float | None  # when the watch began to follow them
    events_error: str | None
    error: str | None
    events_after: int | None = None  # the event number they follow (--since)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class RecentEvents:
    """The last ``keep`` deals and pending orders' changes, followed in the background from
    when it is entered (a task reading ``bridge.events()``) until it is left; ``error`` says
    why they cannot be read now (the next try is a second later), ``gaps`` what was lost.
    The account's events are left out: the frame shows the account itself, and its equity's
    changes, one a second, would push out every other event."""

    def __init__(self, bridge: Bridge, after: int | None = None, keep: int = _KEPT_EVENTS) -> None:
        """From now on, or from after the event numbered ``after`` (``tail --since``'s)."""
        self.events: deque[TradeEvent] = deque(maxlen=keep)
        self.error: str | None = None
        self.gaps: list[str] = []
        self.since = time.time()
        self.after = after
        self._iterator: TradeEvents = bridge.events(after, on_gap=self._gap)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        try:  # from now: an event the first frame's moment causes must not be missed
            await self._iterator.start()
        except BridgeError as exc:  # from when the log can be read, then
            self.error = str(exc)
        self._task = asyncio.create_task(self._follow(), name="watch-trade-events")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._iterator.aclose()

    def data(self) -> list[dict[str, Any]]:
        return [_event_data(event) for event in self.events]

    async def _follow(self) -> None:
        while True:
            try:
                event = await anext(self._iterator)
            except StopAsyncIteration:  # the Bridge closed
                return
            except BridgeError as exc:  # the gateway unreachable, or its log refused
                self.error = str(exc)
                await asyncio.sleep(_RETRY_S)
                continue
            self.error = None
            if not isinstance(event, AccountEvent):
                self.events.append(event)

    def _gap(self, gap: Gap) -> None:
        self.gaps = [*self.gaps[-2:], _gap_note(gap)]  # the last few: a frame stays bounded


async def _snapshot(
    bridge: Bridge, recent: RecentEvents | None = None
) -> tuple[Snapshot, BridgeError | None]:
    health = bridge.health
    account: Account | None = None
    positions: list[Position] | None = None
    orders: list[Order] | None = None
    orders_error: str | None = None
    failure: BridgeError | None = None
    silent = health.consecutive_failures > 0
    if silent:
        # The gateway did not answer the beat: asking for more would only wait as long again.
        failure = GatewayTimeout(f"no answer from {bridge.endpoint} within {health.timeout:g} s")
    else:
        try:
            account, positions, (orders, orders_error) = await asyncio.gather(
                bridge.get_account(fresh=True), bridge.get_positions(fresh=True), _pending(bridge)
            )
        except BridgeError as exc:
            failure = exc
    quotes, quotes_error = await _quotes(bridge, positions) if positions else (None, None)
    snapshot = Snapshot(
        time=time.time(),
        endpoint=bridge.endpoint,
        health=HealthView(
            state=health.state,
            # What the last answer said; with no answer now, all that is unknown.
            mt5_connected=None if silent else health.mt5_connected,
            authenticated=None if silent else health.authenticated,
            auth_error=None if silent else health.auth_error,
            rtt_ms=_ms(health.last_rtt),
            avg_rtt_ms=_ms(health.avg_rtt),
            p99_rtt_ms=_ms(health.p99_rtt),
            beats=health.beats,
            misses=health.misses,
            clock_offset_ms=round(health.clock_offset * 1000, 3),
        ),
        breaker=BreakerView(
            open=bridge.breaker.is_open,
            reason=bridge.breaker.reason,
            opened_at=bridge.breaker.opened_at,
        ),
        gateway=None if silent else health.gateway,
        account=account,
        positions=positions,
        quotes=quotes,
        quotes_error=quotes_error,
        orders=orders,
        orders_error=orders_error,
        events=None if recent is None else recent.data(),
        events_since=None if recent is None else recent.since,
        events_error=None if recent is None else _events_error(recent),
        error=None if failure is None else str(failure),
        events_after=None if recent is None else recent.after,
    )
    return snapshot, failure


async def _pending(bridge: Bridge) -> tuple[list[Order] | None, str | None]:
    """The pending orders, or why not: like the quotes, not worth the frame's failure."""
    try:
        return await bridge.orders(), None
    except BridgeError as exc:
        return None, str(exc)


def _events_error(recent: RecentEvents) -> str | None:
    said = [*recent.gaps, *([recent.error] if recent.error is not None else [])]
    return "; ".join(said) if said else None


async def _quotes(
    bridge: Bridge, positions: list[Position]
) -> tuple[dict[str, Tick] | None, str | None]:
    """The latest ticks of the positions' symbols, or why not: a frame without them is still
    worth showing, so their failure is not the frame's."""
    try:
        return await bridge.quotes(*sorted({p.symbol for p in positions})), None
    except BridgeError as exc:
        return None, str(exc)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def _secret_view(h: HealthView) -> tuple[str, str]:
    """What the gateway said of the signed heartbeat, for the Link line."""
    if h.authenticated:
        return "  secret accepted", "green"
    if h.auth_error == ErrorCode.SIGNATURE_INVALID:
        return "  secret REFUSED", "bold red"
    if h.auth_error == ErrorCode.SIGNATURE_EXPIRED:
        return "  signature EXPIRED (the clocks differ)", "bold yellow"
    return ("", "") if h.auth_error is None else (f"  signature refused ({h.auth_error})", "red")


def _render(console: Console, snapshot: Snapshot) -> RenderableType:
    h, b = snapshot.health, snapshot.breaker
    state_style = {"HEALTHY": "bold green", "DEGRADED": "bold yellow"}.get(h.state, "bold red")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    terminal = (
        ("unknown", "")
        if h.mt5_connected is None
        else ("connected", "green")
        if h.mt5_connected
        else ("DISCONNECTED", "bold red")
    )
    link = Text.assemble(
        "Link ",
        (h.state, state_style),
        f"  round trip {ms(h.rtt_ms)} ms (avg {ms(h.avg_rtt_ms)}, p99 {ms(h.p99_rtt_ms)})",
        f"  beats {h.beats} ({h.misses} missed)  terminal ",
        terminal,
        _secret_view(h),
        f"  clock {h.clock_offset_ms:+.1f} ms",
    )
    breaker = (
        Text.assemble(
            "Breaker ",
            ("OPEN", "bold red"),
            f" ({b.reason}) since {_clock(b.opened_at or snapshot.time)}: new orders are refused",
        )
        if b.open
        else Text.assemble("Breaker ", ("closed", "green"))
    )
    parts: list[RenderableType] = [
        Text(f"{PROG} watch  {snapshot.endpoint}  {_clock(snapshot.time)}", style="bold"),
        link,
        breaker,
        *_gateway_lines(snapshot.gateway),
    ]
    if snapshot.error is not None:
        parts.append(Text(snapshot.error, style="bold red"))
    if snapshot.account is not None:
        parts += [Text(""), _account_view(snapshot.account), Text("")]
    if snapshot.positions is not None:
        positions = snapshot.positions
        parts.append(
            _positions_table(console, positions) if positions else Text(_no_positions(None))
        )
    if snapshot.quotes:
        parts += [Text(""), _quotes_table(snapshot.quotes, None)]
    elif snapshot.quotes_error is not None:
        parts.append(Text(f"Quotes unavailable: {snapshot.quotes_error}", style="yellow"))
    parts += _orders_part(console, snapshot)
    parts += _events_part(snapshot)
    return Group(*parts)


def _orders_part(console: Console, snapshot: Snapshot) -> list[RenderableType]:
    orders = snapshot.orders
    if orders is None:
        error = snapshot.orders_error
        return [] if error is None else [Text(f"Pending orders unavailable: {error}", "yellow")]
    if not orders:
        return [Text(""), Text("No pending orders.")]
    parts: list[RenderableType] = [Text(""), _pending_table(console, orders[:_SHOWN_ORDERS])]
    if len(orders) > _SHOWN_ORDERS:
        more = len(orders) - _SHOWN_ORDERS
        parts.append(Text(f"... and {more} more: `{PROG} orders` lists them all"))
    return parts


def _events_part(snapshot: Snapshot) -> list[RenderableType]:
    if snapshot.events is None:  # --once: none followed
        return []
    parts: list[RenderableType] = [Text(""), Text("Deals and orders", style="bold")]
    if snapshot.events_error is not None:
        parts.append(Text(snapshot.events_error, style="yellow"))
    if not snapshot.events and snapshot.events_after is not None:
        parts.append(Text(f"None after event {snapshot.events_after}."))
    elif not snapshot.events:
        parts.append(Text(f"None since {_clock(snapshot.events_since or snapshot.time)}."))
    parts += [_event_line(_as_event(event)) for event in snapshot.events]
    return parts
