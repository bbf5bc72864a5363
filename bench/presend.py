"""The client's own cost of an order: ``Bridge.send_order`` up to the moment its bytes reach the
socket (breaker and risk checks, the audit calls, stamping and signing, encoding, the channel's
bookkeeping).

The Bridge is real and connected (to the floor); only its DEALER socket is fronted by a tap
that notes the time each request reaches it, then sends it on, so the rest of the round trip
runs as usual and is not counted. The tap is put in place through the Bridge's private
``_channel._socket``: the client has no hook there, and timing from outside would add the
network round trip to a figure of a few microseconds.

Its RiskMonitor is configured with every per-order limit and holds a book of
``book_positions`` positions, since book-wide limits (net exposure per symbol, position count)
look at the whole book on every order. ``parts_us`` times the same calls the Bridge makes, one
at a time, to show where the microseconds go.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any, Final, cast

import msgspec
import zmq.asyncio

from bench.load import histogram
from bench.results import Latency, PresendResult
from inf_bridge import Bridge, Position, RiskLimits, RiskMonitor, add_audit_file
from inf_bridge.client import _checked, _risk_passed, _sent, new_uuid
from protocol import Open, Side, encode, secret_key, sign

__all__ = ["measure_presend"]

_SYMBOLS: Final = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF")
_VOLUME: Final = 0.01
_STOP_LOSS: Final = 1.0
_TIMEOUT_S: Final = 2.0  # the Bridge's default request_timeout
_NO_BEAT_S: Final = 3600.0  # no heartbeat (and so no book sync) during the measurement


class _SocketTap:
    """Stands in front of the Bridge's DEALER socket: notes when a request reaches it."""

    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        self._socket = socket
        self.reached_ns = 0

    def send(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        self.reached_ns = time.perf_counter_ns()
        return self._socket.send(data, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # everything else is the socket's
        return getattr(self._socket, name)


def _limits(book_positions: int, iterations: int) -> RiskLimits:
    """Every limit on, none of them in the way of the measured orders."""
    return RiskLimits(
        max_order_volume=1.0,
        max_symbol_volume=10.0,
        max_positions=book_positions + 1000,
        max_orders_per_minute=10 * iterations + 1000,
        symbols=list(_SYMBOLS),
        require_stop_loss=True,
    )


def _book(size: int) -> list[Position]:
    """``size`` small positions, bought and sold in turn so that no symbol's net is large."""
    return [
        Position(
            ticket=1_000_000 + i,
            symbol=_SYMBOLS[i % len(_SYMBOLS)],
            type=Side.BUY if (i // len(_SYMBOLS)) % 2 == 0 else Side.SELL,
            volume=_VOLUME,
            price_open=1.1,
            price_current=1.1,
            sl=0.0,
            tp=0.0,
            profit=0.0,
            swap=0.0,
            magic=0,
            comment="",
            time=0,
        )
        for i in range(size)
    ]


async def measure_presend(
    endpoint: str,
    secret: str,
    *,
    iterations: int,
    book_positions: int,
    audit_file: Path | None = None,
) -> PresendResult:
    """Time ``iterations`` orders through a Bridge connected to ``endpoint`` (the floor).

    With ``audit_file``, the audit trail is written there meanwhile (``add_audit_file``).
    """
    monitor = RiskMonitor(_limits(book_positions, iterations))
    trail = add_audit_file(audit_file) if audit_file is not None else None
    try:
        async with Bridge(
            endpoint, secret=secret, risk=monitor, heartbeat_interval=_NO_BEAT_S
        ) as bridge:
            monitor.sync(_book(book_positions), monitor.now())
            latency = await _through_bridge(bridge, monitor, iterations)
        parts = await _parts(secret_key(secret), monitor, iterations)
    finally:
        if trail is not None:
            trail.close()
    return PresendResult(
        iterations=iterations,
        book_positions=book_positions,
        audit_sink=audit_file is not None,
        latency=latency,
        parts_us=parts,
    )


async def _through_bridge(bridge: Bridge, monitor: RiskMonitor, iterations: int) -> Latency:
    channel = bridge._channel
    socket = channel._socket
    assert socket is not None
    tap = _SocketTap(socket)
    channel._socket = cast("zmq.Socket[bytes]", tap)
    hist = histogram()
    try:
        for _ in range(iterations):
            started = time.perf_counter_ns()
            fill = await bridge.send_order(_SYMBOLS[0], "BUY", _VOLUME, sl=_STOP_LOSS)
            hist.record_value(tap.reached_ns - started)
            monitor.closed(fill.ticket, fill.volume)  # the book keeps its size
    finally:
        channel._socket = socket
    return Latency.of(hist)


async def _parts(key: bytes, monitor: RiskMonitor, iterations: int) -> dict[str, float]:
    """The median of each step of ``send_order`` before the socket, in microseconds, timed by
    making the same calls as the Bridge and its Channel, in their order. What the total has
    beyond their sum is the calls between them (coroutines, attribute look-ups)."""
    names = ("uuid", "order", "risk_check", "audit_calls", "stamp_and_sign", "encode", "channel")
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[None]] = {}
    for _ in range(iterations):
        t0 = clock()
        uuid = new_uuid()
        t1 = clock()
        order = _checked(
            Open,
            uuid=uuid,
            timestamp=0.0,
            symbol=_SYMBOLS[0],
            type="BUY",
            volume=_VOLUME,
            price=None,
            sl=_STOP_LOSS,
            tp=None,
            deviation=None,
            magic=None,
            comment=None,
        )
        t2 = clock()
        reservation = monitor.check(order)
        t3 = clock()
        _risk_passed(order)
        _sent(order, 1, None)
        t4 = clock()
        now = time.time()
        stamped = msgspec.structs.replace(order, timestamp=now)
        signed = sign(key, stamped, ts_ms=int(now * 1000))
        t5 = clock()
        encode(signed)
        t6 = clock()
        # The Channel's bookkeeping before its send: a future to wait on, and a deadline.
        waiting[uuid] = loop.create_future()
        async with asyncio.timeout(_TIMEOUT_S):  # noqa: ASYNC100 (its set-up is what is timed)
            t7 = clock()
        del waiting[uuid]
        monitor.settle(reservation, None)
        starts, ends = (t0, t1, t2, t3, t4, t5, t6), (t1, t2, t3, t4, t5, t6, t7)
        for name, start, end in zip(names, starts, ends, strict=True):
            samples[name].append(end - start)
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}
