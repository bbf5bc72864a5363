"""The market-data scenario of issue 15, against its floors in the same run.

It needs a gateway of its own (started by ``bench.suite``, on the simulator, signatures on)
and the market floors (``bench.market_floor``), and measures, in this order:

1. Bars: ``Bridge.rates(symbol, "M1", count=bars)`` from the gateway, the same call against
   the floor's canned bars (the same bytes, nothing behind them), and the floor's bytes read
   by a bare DEALER (``recv_multipart``, nothing decoded), one of each per round in turn,
   after one unmeasured round.
2. Tick delivery: ``subscribers`` streams of every symbol in one child process
   (``bench.subscribers``): against the gateway, ``Bridge`` objects iterating
   ``bridge.ticks(...)``, each tick timed from its ``time_msc`` (the simulator's tick, on a
   250 ms grid) to the iteration; against the floor, the same hub and stream a Bridge's
   ``ticks`` is made of, timed from the PUB's ``time.time()`` stamp. The gateway's figure
   includes the wait for the feed's next poll (every ``poll_interval_ms``: ticks are polled,
   not pushed), which the floor does not have.
3. Orders while streaming: PING and OPEN (OPEN then CLOSE, one in flight, through
   ``bench.load``) without subscribers and with the largest count of them streaming every
   symbol, in ``rounds`` rounds, which alternate which of the two comes first. The tick
   latency of the streams is recorded before the orders start (with that count of
   subscribers, merged over the rounds) and while they run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import zmq
from hdrh.histogram import HdrHistogram
from msgspec import Struct, field

from bench.load import LoadClients, histogram
from bench.market_floor import BAR_BYTES, SYMBOLS, MarketFloorProcess
from bench.proc import cpu_seconds
from bench.progress import Progress
from bench.results import FetchResult, Latency, LoadResult, MarketResult, TickLatency
from bench.subscribers import Received, SubscriberProcess
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge
from protocol import GetRates, Timeframe, encode

__all__ = ["MarketOptions", "measure_market"]

_SYMBOL: Final = "EURUSD"
_FETCH_TIMEOUT_S: Final = 60.0
_READY_TIMEOUT_S: Final = 60.0
_SUBSCRIBER_MARGIN_S: Final = 120.0  # a subscriber process outlives its planned use by this
_STREAMING_ONLY: Final = "streaming only"
_DURING_ORDERS: Final = "PING and OPEN one in flight"


class MarketOptions(Struct, frozen=True, kw_only=True):
    """What the market scenario measures. The defaults are ``make bench``'s.

    >>> MarketOptions().subscribers
    (1, 50)
    """

    bars: int = 100_000  # per fetch (the simulator keeps at most 100,000)
    bars_rounds: int = 5  # 0 skips the fetch
    subscribers: tuple[int, ...] = (1, 50)  # the largest also streams during the orders
    stream_s: float = 3.0  # each window of tick timing
    rounds: int = 3  # of orders without, with and beside subscribers (each first once); 0: none
    poll_interval_ms: int = 50  # the gateway's [gateway] poll_interval_ms
    symbols: tuple[str, ...] = field(default_factory=lambda: SYMBOLS)


async def measure_market(
    options: MarketOptions,
    gateway: GatewayProcess,
    floor: MarketFloorProcess,
    secret: str,
    *,
    work: Path,
    duration_s: float,
    warmup_s: float,
    progress: Progress,
) -> MarketResult:
    """Everything ``options`` asks for, against ``gateway`` and ``floor`` (both started);
    ``duration_s`` and ``warmup_s`` are each order scenario's."""
    fetch = await _fetch(options, gateway, floor, secret, progress) if options.bars_rounds else []
    scenario = _Scenario(
        options,
        gateway=gateway,
        floor=floor,
        secret=secret,
        work=work,
        progress=progress,
        duration_s=duration_s,
        warmup_s=warmup_s,
    )
    ticks = await scenario.standalone_ticks()
    quiet: list[LoadResult] = []
    streaming: list[LoadResult] = []
    elsewhere: list[LoadResult] = []
    most = max(options.subscribers, default=0)
    if most and options.rounds:
        windows: dict[str, _Windows] = {_STREAMING_ONLY: _Windows(), _DURING_ORDERS: _Windows()}
        sides = ["quiet", "streaming", "elsewhere"]
        for index in range(options.rounds):
            label = f"round {index + 1}/{options.rounds}"
            # Each round starts with another side: none always goes first.
            for side in sides[index % 3 :] + sides[: index % 3]:
                if side == "streaming":
                    await scenario.orders_streaming(most, streaming, windows, label)
                elif side == "elsewhere":
                    await scenario.orders_beside_floor_subscribers(most, elsewhere, label)
                else:
                    await scenario.orders(quiet, f"{label}, no subscribers")
        ticks += [
            scenario.latency("gateway", most, during, w.received, w.cpu)
            for during, w in windows.items()
        ]
    return MarketResult(
        poll_interval_ms=options.poll_interval_ms,
        floor_interval_ms=floor.interval_ms,
        bars=options.bars,
        fetch=fetch,
        ticks=ticks,
        streaming_subscribers=most if options.rounds else 0,
        quiet=quiet,
        streaming=streaming,
        elsewhere=elsewhere,
    )


# -- bars ------------------------------------------------------------------------------------


async def _fetch(
    options: MarketOptions,
    gateway: GatewayProcess,
    floor: MarketFloorProcess,
    secret: str,
    progress: Progress,
) -> list[FetchResult]:
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], float | None] = {}
    last: dict[tuple[str, str], int] = {}
    pids = {"gateway": gateway.pid, "floor": floor.pid}
    bare = _BareDealer(floor.endpoint, options.bars)
    try:
        async with (
            Bridge(gateway.endpoint, secret=secret, request_timeout=_FETCH_TIMEOUT_S) as gw,
            Bridge(floor.endpoint, secret=secret, request_timeout=_FETCH_TIMEOUT_S) as fl,
        ):
            fetchers: list[tuple[str, str, Callable[[], Awaitable[int]]]] = [
                ("gateway", "Bridge.rates", lambda: _rates(gw, options.bars)),
                ("floor", "Bridge.rates", lambda: _rates(fl, options.bars)),
                ("floor", "bare DEALER", bare.fetch),
            ]
            for index in range(options.bars_rounds + 1):  # the first is not measured
                for server, client, fetch in fetchers:
                    progress.show(
                        f"{options.bars:,} bars from the {server} ({client}), round {index}/"
                        f"{options.bars_rounds}",
                        force=index == 0,
                    )
                    cpu_before = cpu_seconds(pids[server])
                    started = time.perf_counter()
                    rows = await fetch()
                    elapsed = time.perf_counter() - started
                    cpu_after = cpu_seconds(pids[server])
                    key = (server, client)
                    if index:
                        times.setdefault(key, []).append(elapsed * 1000)
                        spent = (
                            None
                            if cpu_before is None or cpu_after is None
                            else cpu_after - cpu_before
                        )
                        total = cpu.get(key, 0.0)
                        cpu[key] = None if spent is None or total is None else total + spent
                    last[key] = rows
    finally:
        bare.close()
    return [
        FetchResult(
            server=server,
            client=client,
            rows=last[server, client],
            bytes=last[server, client] * BAR_BYTES,
            rounds=len(ms),
            p50_ms=statistics.median(ms),
            best_ms=min(ms),
            worst_ms=max(ms),
            server_cpu_ms=_per_fetch_ms(cpu[server, client], len(ms)),
        )
        for (server, client), ms in times.items()
    ]


def _per_fetch_ms(seconds: float | None, fetches: int) -> float | None:
    return None if seconds is None else seconds / fetches * 1000


async def _rates(bridge: Bridge, count: int) -> int:
    return len(await bridge.rates(_SYMBOL, "M1", count=count))


class _BareDealer:
    """A DEALER that asks for the bars and takes the frames as they come, decoding nothing."""

    def __init__(self, endpoint: str, bars: int) -> None:
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sock: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._bars = bars

    async def fetch(self) -> int:
        request = GetRates(
            uuid=uuid_module.uuid4().hex,
            timestamp=time.time(),
            symbol=_SYMBOL,
            timeframe=Timeframe.M1,
            count=self._bars,
        )
        self._sock.send(encode(request))
        if not self._sock.poll(int(_FETCH_TIMEOUT_S * 1000)):
            raise RuntimeError(f"the market floor did not answer in {_FETCH_TIMEOUT_S:g} s")
        frames = self._sock.recv_multipart(copy=False)
        return len(frames[-1].buffer) // BAR_BYTES

    def close(self) -> None:
        self._sock.close(linger=0)
        self._context.term()


# -- ticks and orders -------------------------------------------------------------------------


class _Windows:
    """Tick timing windows of one kind, over the rounds."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.cpu: list[tuple[float | None, float | None]] = []

    def add(self, received: Received, cpu: tuple[float | None, float | None]) -> None:
        self.received.append(received)
        self.cpu.append(cpu)


class _Scenario:
    def __init__(
        self,
        options: MarketOptions,
        *,
        gateway: GatewayProcess,
        floor: MarketFloorProcess,
        secret: str,
        work: Path,
        progress: Progress,
        duration_s: float,
        warmup_s: float,
    ) -> None:
        self.options = options
        self.gateway = gateway
        self.floor = floor
        self.secret = secret
        self.work = work
        self.progress = progress
        self.duration_s = duration_s
        self.warmup_s = warmup_s

    def subscribers(self, server: str, count: int) -> SubscriberProcess:
        # Bounded whatever happens here: its planned use, and a margin.
        life = self.options.stream_s * 2 + 4 * (self.duration_s + self.warmup_s)
        if server == "gateway":
            return SubscriberProcess(
                kind="bridge",
                events=self.gateway.events_endpoint,
                endpoint=self.gateway.endpoint,
                secret=self.secret,
                count=count,
                symbols=self.options.symbols,
                max_seconds=life + _SUBSCRIBER_MARGIN_S,
                log_file=self.work / "subscribers.log",
            )
        return SubscriberProcess(
            kind="hub",
            events=self.floor.events_endpoint,
            count=count,
            symbols=self.options.symbols,
            max_seconds=life + _SUBSCRIBER_MARGIN_S,
            log_file=self.work / "subscribers.log",
        )

    def server_pid(self, server: str) -> int:
        return self.gateway.pid if server == "gateway" else self.floor.pid

    async def standalone_ticks(self) -> list[TickLatency]:
        """Tick latency of each subscriber count against the floor, and of each but the
        largest against the gateway (the largest is measured around the orders)."""
        results = []
        most = max(self.options.subscribers, default=0)
        for count in self.options.subscribers:
            servers = ("floor",) if count == most and self.options.rounds else ("floor", "gateway")
            for server in servers:
                subs = self.subscribers(server, count)
                self.progress.show(f"{count} subscribers of the {server}: starting", force=True)
                await subs.start(_READY_TIMEOUT_S)
                try:
                    received, cpu = await self.window(server, count, subs)
                finally:
                    subs.stop()
                results.append(self.latency(server, count, _STREAMING_ONLY, [received], [cpu]))
        return results

    async def window(
        self, server: str, count: int, subs: SubscriberProcess
    ) -> tuple[Received, tuple[float | None, float | None]]:
        """Let ``subs`` stream for ``stream_s``; what they got, and the CPU shares used."""
        self.progress.show(
            f"{count} subscribers of the {server}: {self.options.stream_s:g} s", force=True
        )
        await subs.report()  # from now on
        before = self.cpu(server, subs)
        await asyncio.sleep(self.options.stream_s)
        received = await subs.report()
        return received, self.cpu_share(before, self.cpu(server, subs), received.seconds)

    def cpu(self, server: str, subs: SubscriberProcess) -> tuple[float | None, float | None]:
        return cpu_seconds(self.server_pid(server)), cpu_seconds(subs.pid)

    @staticmethod
    def cpu_share(
        before: tuple[float | None, float | None],
        after: tuple[float | None, float | None],
        seconds: float,
    ) -> tuple[float | None, float | None]:
        shares: list[float | None] = []
        for start, end in zip(before, after, strict=True):
            shares.append(None if start is None or end is None else (end - start) / seconds * 100)
        return shares[0], shares[1]

    def latency(
        self,
        server: str,
        count: int,
        during: str,
        received: list[Received],
        cpu: list[tuple[float | None, float | None]],
    ) -> TickLatency:
        merged = histogram()
        for part in received:
            merged.add(HdrHistogram.decode(part.histogram))
        servers = [c[0] for c in cpu]
        clients = [c[1] for c in cpu]
        return TickLatency(
            server=server,
            client="Bridge.ticks" if server == "gateway" else "EventHub stream",
            subscribers=count,
            symbols=len(self.options.symbols),
            during=during,
            seconds=sum(r.seconds for r in received),
            events=sum(r.events for r in received),
            gaps=sum(r.gaps for r in received),
            dropped=sum(r.dropped for r in received),
            latency=Latency.of(merged),
            server_cpu_percent=_mean(servers),
            client_cpu_percent=_mean(clients),
        )

    async def orders(self, results: list[LoadResult], label: str) -> None:
        """PING, then OPEN and CLOSE, one in flight, for ``duration_s`` each."""
        async with LoadClients(
            "gateway",
            self.gateway.endpoint,
            secret=self.secret,
            clients=1,
            server_pid=self.gateway.pid,
            progress=self.progress,
        ) as clients:
            for mode in ("ping", "open_close"):
                self.progress.show(f"{label}: {mode}", force=True)
                results.append(
                    await clients.run(
                        mode,
                        in_flight=1,
                        warmup_s=self.warmup_s,
                        duration_s=self.duration_s,
                        count_positions=False,
                    )
                )

    async def orders_streaming(
        self,
        count: int,
        results: list[LoadResult],
        windows: dict[str, _Windows],
        label: str,
    ) -> None:
        """``count`` subscribers streaming: a window of ticks alone, then the orders."""
        subs = self.subscribers("gateway", count)
        self.progress.show(f"{label}: starting {count} subscribers", force=True)
        await subs.start(_READY_TIMEOUT_S)
        try:
            received, shares = await self.window("gateway", count, subs)
            windows[_STREAMING_ONLY].add(received, shares)
            start = self.cpu("gateway", subs)
            started = time.perf_counter()
            await self.orders(results, f"{label}, {count} subscribers streaming")
            # A window of at least stream_s, so that it holds ticks even when the orders are
            # shorter than a tick (tiny test runs); the standard run's orders last longer.
            await asyncio.sleep(max(0.0, started + self.options.stream_s - time.perf_counter()))
            received = await subs.report()
            shares = self.cpu_share(start, self.cpu("gateway", subs), received.seconds)
            windows[_DURING_ORDERS].add(received, shares)
        finally:
            subs.stop()

    async def orders_beside_floor_subscribers(
        self, count: int, results: list[LoadResult], label: str
    ) -> None:
        """The orders while ``count`` subscribers stream from the floor's PUB: the same load on
        the machine, none on the gateway."""
        subs = self.subscribers("floor", count)
        self.progress.show(f"{label}: starting {count} subscribers of the floor", force=True)
        await subs.start(_READY_TIMEOUT_S)
        try:
            await self.orders(results, f"{label}, {count} subscribers of the floor streaming")
        finally:
            subs.stop()


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known and len(known) == len(values) else None


def gateway_config(options: MarketOptions) -> dict[str, int]:
    """The ``[gateway]`` table the market scenario's gateway runs with."""
    return {"poll_interval_ms": options.poll_interval_ms}
