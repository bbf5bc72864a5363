"""What ``mt5-bridge watch`` shows, frame by frame: a snapshot of the link, the breaker, the
account, the positions and their symbols' quotes (the JSON of ``--json``), and its rendering."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from msgspec import Struct
from rich.console import Console, Group, RenderableType
from rich.text import Text

from inf_bridge.cli.views import (
    PROG,
    _account_view,
    _gateway_lines,
    _no_positions,
    _positions_table,
    _quotes_table,
)
from inf_bridge.client import Bridge
from inf_bridge.errors import BridgeError, GatewayTimeout
from protocol import Account, ErrorCode, GatewayInfo, Position, Tick

__all__ = ["BreakerView", "HealthView", "Snapshot"]


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
    quotes of their symbols (``quotes_error`` when those could not be had: the rest stands)."""

    time: float
    endpoint: str
    health: HealthView
    breaker: BreakerView
    gateway: GatewayInfo | None  # what the gateway said of itself: version, halted, warnings
    account: Account | None
    positions: list[Position] | None
    quotes: dict[str, Tick] | None
    quotes_error: str | None
    error: str | None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


async def _snapshot(bridge: Bridge) -> tuple[Snapshot, BridgeError | None]:
    health = bridge.health
    account: Account | None = None
    positions: list[Position] | None = None
    failure: BridgeError | None = None
    silent = health.consecutive_failures > 0
    if silent:
        # The gateway did not answer the beat: asking for more would only wait as long again.
        failure = GatewayTimeout(f"no answer from {bridge.endpoint} within {health.timeout:g} s")
    else:
        try:
            account, positions = await asyncio.gather(bridge.get_account(), bridge.get_positions())
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
        error=None if failure is None else str(failure),
    )
    return snapshot, failure


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
    return Group(*parts)
