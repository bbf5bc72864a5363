"""The load generator: N strategy clients, each with K requests in flight, through the real client.

Each client is an ``inf_bridge.Bridge`` (its own DEALER socket, heartbeat and RiskMonitor), so
what a strategy pays on its side (risk check, signing, encoding, matching the reply, the
audit calls) is inside every latency measured here; only the audit *sink* is left out (the
benchmark removes loguru's handlers: a terminal full of audit lines would measure the
terminal). K coroutines per client each send one request and await it, then the next: K=1
is one-in-flight latency, a larger K pipelines.

Modes, each request timed on its own and kept per action:

- ``ping``: PING.
- ``open``: OPEN (signed), leaving the position open.
- ``open_close``: OPEN, then CLOSE of that position; the book stays flat.
- ``mixed``: OPEN, PING, GET_ACCOUNT, GET_POSITIONS, CLOSE, as a strategy might cycle.

A run is a warm-up phase (not recorded) then a measured one, bounded by time and by a
request count, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Self, TypeVar

from hdrh.histogram import HdrHistogram
from msgspec import Struct

from bench.proc import cpu_seconds
from bench.progress import Progress
from bench.results import Latency, LoadResult, Server
from inf_bridge import (
    Bridge,
    BridgeError,
    CircuitOpen,
    GatewayTimeout,
    OrderRejected,
    OutcomeUnknown,
    RiskLimits,
    RiskRejected,
)

__all__ = ["MODES", "REQUEST_CAP", "LoadClients", "Shape", "histogram", "measure"]

T = TypeVar("T")

MODES: Final = ("ping", "open", "open_close", "mixed")
_SYMBOL: Final = "EURUSD"
_MIXED_SYMBOL: Final = "GBPUSD"  # its own symbol, so GET_POSITIONS sees only mixed's positions
_VOLUME: Final = 0.01
# Checks that cost the same whatever the book holds: book-wide limits (exposure, position
# count) are measured on their own, by the pre-send benchmark over growing books.
_LIMITS: Final = RiskLimits(max_order_volume=1.0, symbols=[_SYMBOL, _MIXED_SYMBOL])
_NS: Final = 1_000_000_000
_HIGHEST_NS: Final = 600 * _NS  # a round trip longer than 10 minutes is not recorded
_SIGNIFICANT_DIGITS: Final = 3
_TICK_S: Final = 0.25  # progress line refresh
# A bound on the requests of any one phase; the time limit normally ends it long before.
REQUEST_CAP: Final = 100_000_000


def histogram() -> HdrHistogram:
    """An empty histogram of nanoseconds, from 1 ns to 10 minutes at 3 significant digits."""
    return HdrHistogram(1, _HIGHEST_NS, _SIGNIFICANT_DIGITS)


class Shape(Struct, frozen=True):
    """``clients`` x ``in_flight`` requests outstanding; written ``4x16``."""

    clients: int
    in_flight: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        """``"4x16"`` -> ``Shape(4, 16)``."""
        clients, sep, in_flight = text.lower().partition("x")
        try:
            shape = cls(int(clients), int(in_flight))
        except ValueError:
            raise ValueError(f"a shape is CLIENTSxIN_FLIGHT, e.g. 4x16; got {text!r}") from None
        if not sep or shape.clients < 1 or shape.in_flight < 1:
            raise ValueError(f"a shape is CLIENTSxIN_FLIGHT, both >= 1; got {text!r}")
        return shape

    def __str__(self) -> str:
        return f"{self.clients}x{self.in_flight}"


class _Recorder:
    """Times requests, one histogram per action, and counts errors by code."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.issued = 0
        self.answered = 0
        self.histograms: dict[str, HdrHistogram] = {}
        self.errors: Counter[str] = Counter()

    @property
    def spent(self) -> bool:
        return self.issued >= self.budget

    async def timed(self, action: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """Await ``call()``; record its latency under ``action``, or its error code."""
        self.issued += 1
        started = time.perf_counter_ns()
        try:
            result = await call()
        except BridgeError as exc:
            self.errors[_error_code(exc)] += 1
            return None
        elapsed = time.perf_counter_ns() - started
        hist = self.histograms.get(action)
        if hist is None:
            hist = self.histograms[action] = histogram()
        hist.record_value(elapsed)
        self.answered += 1
        return result


def _error_code(exc: BridgeError) -> str:
    if isinstance(exc, OrderRejected):
        return exc.error_code
    if isinstance(exc, RiskRejected):
        return f"RISK_REJECTED:{exc.reason}"
    if isinstance(exc, CircuitOpen):
        return "CIRCUIT_OPEN"
    if isinstance(exc, OutcomeUnknown):
        return "OUTCOME_UNKNOWN"
    if isinstance(exc, GatewayTimeout):
        return "TIMEOUT"
    return type(exc).__name__


async def _ping(bridge: Bridge, rec: _Recorder) -> None:
    await rec.timed("PING", bridge.ping)


async def _open(bridge: Bridge, rec: _Recorder) -> None:
    await rec.timed("OPEN", lambda: bridge.send_order(_SYMBOL, "BUY", _VOLUME))


async def _open_close(bridge: Bridge, rec: _Recorder) -> None:
    fill = await rec.timed("OPEN", lambda: bridge.send_order(_SYMBOL, "BUY", _VOLUME))
    if fill is not None:
        await rec.timed("CLOSE", lambda: bridge.close_position(fill.ticket))


async def _mixed(bridge: Bridge, rec: _Recorder) -> None:
    fill = await rec.timed("OPEN", lambda: bridge.send_order(_MIXED_SYMBOL, "SELL", _VOLUME))
    await rec.timed("PING", bridge.ping)
    await rec.timed("GET_ACCOUNT", bridge.get_account)
    await rec.timed("GET_POSITIONS", lambda: bridge.get_positions(_MIXED_SYMBOL))
    if fill is not None:
        await rec.timed("CLOSE", lambda: bridge.close_position(fill.ticket))


_OPERATIONS: Final[dict[str, Callable[[Bridge, _Recorder], Awaitable[None]]]] = {
    "ping": _ping,
    "open": _open,
    "open_close": _open_close,
    "mixed": _mixed,
}


class LoadClients:
    """``clients`` Bridges connected to ``endpoint``; ``run`` puts load through them.

    ``server_pid`` is the server's process, whose CPU time per request is reported.
    """

    def __init__(
        self,
        server: Server,
        endpoint: str,
        *,
        secret: str,
        clients: int,
        server_pid: int,
        progress: Progress,
    ) -> None:
        if clients < 1:
            raise ValueError(f"clients must be >= 1, got {clients}")
        self.server: Server = server
        self.server_pid = server_pid
        self._progress = progress
        self._bridges = [Bridge(endpoint, secret=secret, risk=_LIMITS) for _ in range(clients)]
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for bridge in self._bridges:
                await stack.enter_async_context(bridge)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def open_positions(self) -> int:
        """How many positions the server has open now (the floor keeps none)."""
        return len(await self._bridges[0].get_positions())

    async def run(
        self,
        mode: str,
        *,
        in_flight: int,
        warmup_s: float,
        duration_s: float,
        max_requests: int = REQUEST_CAP,
        count_positions: bool = True,
    ) -> LoadResult:
        """Warm up for ``warmup_s``, then measure ``mode`` for ``duration_s`` or
        ``max_requests`` requests, whichever ends first.

        ``count_positions`` asks the server how many positions it has open first (reported
        as ``positions``, else -1): one GET_POSITIONS of the whole book, whose reply can be
        megabytes, which is why the memory check does without it.
        """
        operation = _OPERATIONS[mode]
        label = f"{self.server} {mode} {len(self._bridges)}x{in_flight}"
        positions = await self.open_positions() if count_positions else -1
        warmup = _Recorder(REQUEST_CAP)
        if warmup_s > 0:
            await self._phase(
                operation, in_flight, warmup_s, warmup, label=f"{label} warm-up", final_line=False
            )
        measured = _Recorder(max_requests)
        client_cpu = time.process_time()
        server_cpu = cpu_seconds(self.server_pid)
        started = time.perf_counter()
        await self._phase(operation, in_flight, duration_s, measured, label=label, final_line=True)
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        server_after = cpu_seconds(self.server_pid)
        server_cpu = (
            None if server_cpu is None or server_after is None else server_after - server_cpu
        )
        everything = histogram()
        for hist in measured.histograms.values():
            everything.add(hist)
        answered = max(1, measured.answered)
        return LoadResult(
            server=self.server,
            mode=mode,
            clients=len(self._bridges),
            in_flight=in_flight,
            positions=positions,
            seconds=seconds,
            requests=measured.answered,
            throughput=measured.answered / seconds if seconds > 0 else 0.0,
            latency=Latency.of(everything),
            by_action={a: Latency.of(h) for a, h in sorted(measured.histograms.items())},
            errors=dict(warmup.errors + measured.errors),
            client_cpu_us=client_cpu / answered * 1e6,
            server_cpu_us=None if server_cpu is None else server_cpu / answered * 1e6,
        )

    async def _phase(
        self,
        operation: Callable[[Bridge, _Recorder], Awaitable[None]],
        in_flight: int,
        seconds: float,
        rec: _Recorder,
        *,
        label: str,
        final_line: bool,
    ) -> None:
        """Run ``in_flight`` loops of ``operation`` on every client until time or budget ends;
        ``final_line`` leaves the phase's last progress line even in a log."""
        started = time.perf_counter()
        deadline = started + seconds

        async def loop(bridge: Bridge) -> None:
            while time.perf_counter() < deadline and not rec.spent:
                await operation(bridge, rec)

        ticker = asyncio.create_task(self._tick(label, rec, started, seconds))
        try:
            async with asyncio.TaskGroup() as group:
                for bridge in self._bridges:
                    for _ in range(in_flight):
                        group.create_task(loop(bridge))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        self._show(label, rec, started, seconds, force=final_line)

    async def _tick(self, label: str, rec: _Recorder, started: float, seconds: float) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            self._show(label, rec, started, seconds)

    def _show(
        self, label: str, rec: _Recorder, started: float, seconds: float, *, force: bool = False
    ) -> None:
        elapsed = time.perf_counter() - started
        # A phase ends at its time or its count: show how far along the one that binds is.
        if rec.budget < REQUEST_CAP:
            done = f"{rec.issued:,}/{rec.budget:,} sent"
        else:
            done = f"{min(elapsed, seconds):4.1f}/{seconds:g} s"
        self._progress.show(
            f"{label}: {done}, {rec.answered:,} answered "
            f"({rec.answered / max(elapsed, 1e-9):,.0f}/s), {sum(rec.errors.values())} errors",
            force=force,
        )


async def measure(
    server: Server,
    endpoint: str,
    *,
    pid: int,
    secret: str,
    mode: str,
    shape: Shape,
    warmup_s: float,
    duration_s: float,
    progress: Progress,
    count_positions: bool = True,
) -> LoadResult:
    """One scenario (``mode`` at ``shape``) against one server, with clients of its own."""
    async with LoadClients(
        server,
        endpoint,
        secret=secret,
        clients=shape.clients,
        server_pid=pid,
        progress=progress,
    ) as clients:
        return await clients.run(
            mode,
            in_flight=shape.in_flight,
            warmup_s=warmup_s,
            duration_s=duration_s,
            count_positions=count_positions,
        )
