"""The order of a run, and the processes it starts.

1. The floor (``bench.floor``), the unsafe design (``bench.unsafe``: the same simulator
   called inline, none of the gateway's guarantees) and a gateway on the simulator,
   signatures on, each a child process on its own loopback port; the load runs in this
   process, on the same event loop policy. Every scenario (mode x shape) runs against the
   floor, the unsafe design, then at once the gateway, so that
   all see the same machine (it is shared, and has 2 cores).
   ``open`` runs last among the modes: it leaves its positions open, which the others would
   otherwise inherit. With ``positions``, the gateway's book is first filled up to each level
   in turn (by OPENs, unmeasured) and the scenarios are measured there again.
2. The client's cost before the socket (``bench.presend``), against the floor.
3. Memory over many requests (``bench.memory``), on the same gateway.
4. With both stopped, the market data of issue 15 (``bench.market``): a fresh gateway, and the
   market floors (``bench.market_floor``) beside it.
5. Reads beside orders (issue 16, ``bench.reads``): GET_ACCOUNT and GET_POSITIONS while 64
   orders are in flight, against PING, on a fresh gateway.
6. PING against a fresh gateway whose orders hold the GIL (``bench.gil``).
7. Orders that take the terminal 5, 20 and 50 ms, the GIL held, through a fresh gateway and a
   fresh unsafe design each (``bench.terminal_latency``, issue 18).

Every child process is stopped by its PID, also when the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from msgspec import Struct, field

from bench.floor import FloorProcess
from bench.gil import ping_during_slow_orders, start_slow_gateway
from bench.load import MODES, LoadClients, Shape, measure
from bench.machine import describe_machine
from bench.market import MarketOptions, gateway_config, measure_market
from bench.market_floor import MarketFloorProcess
from bench.memory import memory_check
from bench.mt5_module import measure as measure_mt5_module
from bench.presend import measure_presend
from bench.progress import Progress
from bench.reads import measure_reads
from bench.report import compute_ratios
from bench.results import GilResult, LoadResult, MarketResult, PresendResult, Report, Server
from bench.targets import check_targets, machine_note
from bench.terminal_latency import measure_terminal_latency
from bench.unsafe import UnsafeProcess
from gtw_server.testing import GatewayProcess, Value
from plumbing.loop import loop_factory

__all__ = ["SIM", "Options", "run_suite"]

# Enough margin for tens of thousands of 0.01-lot positions: a default 10,000 USD account at
# 1:100 runs out after about 900, and "no money" rejections would be measured instead.
# Markets open every day: the benchmark runs on a Sunday too.
SIM: Final[dict[str, Value]] = {"seed": 1, "balance": 1e9, "leverage": 1000, "always_open": True}
_MODE_ORDER: Final = ("ping", "open_close", "mixed", "open")
_TOP_UP: Final = Shape(4, 16)
_TOP_UP_LIMIT_S: Final = 600.0
_LOG_TAIL_LINES: Final = 5


class Options(Struct, frozen=True, kw_only=True):
    """What a run measures. The defaults are ``make bench``'s standard run.

    >>> Options(modes=("ping",), memory_requests=0).shapes
    (Shape(clients=1, in_flight=1), Shape(clients=4, in_flight=16))
    """

    modes: tuple[str, ...] = MODES
    shapes: tuple[Shape, ...] = (Shape(1, 1), Shape(4, 16))
    duration_s: float = 2.0
    warmup_s: float = 0.5
    positions: tuple[int, ...] = ()  # the gateway's book levels; () measures it as it comes
    presend_iterations: int = 5000  # 0 skips the client's pre-send measurement
    books: tuple[int, ...] = (20,)  # RiskMonitor book sizes for the pre-send measurement
    memory_requests: int = 200_000  # 0 skips the memory check
    memory_mode: str = "ping"
    gil_duration_s: float = 3.0  # 0 skips the GIL scenario
    market: MarketOptions | None = field(default_factory=MarketOptions)  # None skips it
    reads: bool = True  # GET_ACCOUNT and GET_POSITIONS beside 64 orders in flight (issue 16)
    terminal_latencies_ms: tuple[float, ...] = (5.0, 20.0, 50.0)  # () skips (issue 18)
    mt5_module_rounds: int = 10  # inf_bridge.mt5 against in-process (issue 19); 0 skips


def run_suite(options: Options, *, command: str, progress: Progress) -> Report:
    """Run everything ``options`` asks for; return the report with ratios and targets."""
    secret = secrets.token_hex(32)
    report = Report(
        command=command,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=describe_machine(),
    )
    with (
        tempfile.TemporaryDirectory(prefix="mt5-bench-") as tmp,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        work = Path(tmp)
        if options.modes or options.presend_iterations > 0 or options.memory_requests > 0:
            with contextlib.ExitStack() as processes:
                progress.show("starting the floor and the gateway", force=True)
                floor = processes.enter_context(FloorProcess())
                unsafe = processes.enter_context(UnsafeProcess(SIM))
                gateway = _start(work / "gateway", secret)
                processes.callback(gateway.stop)
                report.loads = runner.run(
                    _loads(options, (floor, unsafe), gateway, secret, progress)
                )
                if options.presend_iterations > 0:
                    report.presend = runner.run(
                        _presend(options, floor.endpoint, secret, work, progress)
                    )
                if options.memory_requests > 0:
                    report.memory = runner.run(
                        memory_check(
                            gateway.endpoint,
                            secret,
                            gateway_pid=gateway.pid,
                            requests=options.memory_requests,
                            mode=options.memory_mode,
                            progress=progress,
                        )
                    )
        if options.market is not None:
            report.market = _market(runner, options, work, secret, progress)
        if options.reads:
            progress.show("starting a gateway for reads beside orders", force=True)
            gateway = _start(work / "reads-gateway", secret)
            try:
                report.reads = runner.run(
                    measure_reads(
                        gateway,
                        secret,
                        duration_s=options.duration_s,
                        warmup_s=options.warmup_s,
                        progress=progress,
                    )
                )
            finally:
                gateway.stop()
        if options.gil_duration_s > 0:
            report.gil = _gil(runner, work / "slow-gateway", secret, options, progress)
        if options.terminal_latencies_ms:
            report.terminal_latency = runner.run(
                measure_terminal_latency(
                    options.terminal_latencies_ms,
                    SIM,
                    secret,
                    work=work,
                    duration_s=options.duration_s,
                    warmup_s=options.warmup_s,
                    progress=progress,
                )
            )
        if options.mt5_module_rounds > 0:
            progress.show("inf_bridge.mt5 against the same calls in-process", force=True)
            report.mt5_module = measure_mt5_module(options.mt5_module_rounds)
    progress.clear()
    report.ratios = compute_ratios(report.loads)
    report.unsafe_ratios = compute_ratios(report.loads, "unsafe")
    report.targets = check_targets(report)
    report.machine_note = machine_note(report)
    return report


def _start(data_dir: Path, secret: str, config: dict[str, Value] | None = None) -> GatewayProcess:
    """A started gateway (``config``: its ``[gateway]`` table); if it cannot start, the error
    carries the end of its log."""
    log_file = data_dir.with_suffix(".log")
    gateway = GatewayProcess(data_dir, secret=secret, sim=SIM, gateway=config, log_file=log_file)
    try:
        return gateway.start()
    except RuntimeError as exc:
        gateway.stop()  # it may still be running, only slow to answer
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = "\n".join(lines[-_LOG_TAIL_LINES:])
        raise RuntimeError(f"{exc}; the end of its log:\n{tail}") from None


async def _loads(
    options: Options,
    bases: tuple[FloorProcess, UnsafeProcess],
    gateway: GatewayProcess,
    secret: str,
    progress: Progress,
) -> list[LoadResult]:
    modes = [mode for mode in _MODE_ORDER if mode in options.modes]
    levels: tuple[int | None, ...] = options.positions or (None,)
    floor, unsafe = bases
    servers: list[tuple[Server, str, int]] = [
        ("floor", floor.endpoint, floor.pid),
        ("unsafe", unsafe.endpoint, unsafe.pid),
        ("gateway", gateway.endpoint, gateway.pid),
    ]
    results = []
    for index, level in enumerate(levels):
        if level is not None:
            await _top_up(gateway, secret, level, progress)
        for mode in modes:
            for shape in options.shapes:
                # The floor and the unsafe design are measured at the first level only.
                for server, endpoint, pid in servers if index == 0 else servers[2:]:
                    result = await measure(
                        server,
                        endpoint,
                        pid=pid,
                        secret=secret,
                        mode=mode,
                        shape=shape,
                        warmup_s=options.warmup_s,
                        duration_s=options.duration_s,
                        progress=progress,
                    )
                    results.append(result)
    return results


async def _top_up(gateway: GatewayProcess, secret: str, level: int, progress: Progress) -> None:
    """OPEN positions (unmeasured) until the gateway holds ``level`` of them."""
    async with LoadClients(
        "gateway",
        gateway.endpoint,
        secret=secret,
        clients=_TOP_UP.clients,
        server_pid=gateway.pid,
        progress=progress,
    ) as clients:
        missing = level - await clients.open_positions()
        if missing > 0:
            await clients.run(
                "open",
                in_flight=_TOP_UP.in_flight,
                warmup_s=0.0,
                duration_s=_TOP_UP_LIMIT_S,
                max_requests=missing,
            )


async def _presend(
    options: Options, endpoint: str, secret: str, work: Path, progress: Progress
) -> list[PresendResult]:
    results = []
    for book in options.books:
        progress.show(f"client cost before the socket, {book} positions in the book", force=True)
        results.append(
            await measure_presend(
                endpoint, secret, iterations=options.presend_iterations, book_positions=book
            )
        )
    progress.show("client cost before the socket, with the audit file", force=True)
    results.append(
        await measure_presend(
            endpoint,
            secret,
            iterations=options.presend_iterations,
            book_positions=options.books[0],
            audit_file=work / "audit.jsonl",
        )
    )
    return results


def _market(
    runner: asyncio.Runner, options: Options, work: Path, secret: str, progress: Progress
) -> MarketResult:
    market = options.market or MarketOptions()
    progress.show("starting a gateway and the market floors for market data", force=True)
    with contextlib.ExitStack() as processes:
        floor = processes.enter_context(
            MarketFloorProcess(rows=market.bars, interval_ms=market.poll_interval_ms)
        )
        gateway = _start(work / "market-gateway", secret, dict(gateway_config(market)))
        processes.callback(gateway.stop)
        (work / "market").mkdir()
        return runner.run(
            measure_market(
                market,
                gateway,
                floor,
                secret,
                work=work / "market",
                duration_s=options.duration_s,
                warmup_s=options.warmup_s,
                progress=progress,
            )
        )


def _gil(
    runner: asyncio.Runner, data_dir: Path, secret: str, options: Options, progress: Progress
) -> GilResult:
    progress.show("starting a gateway whose orders hold the GIL for 300 ms", force=True)
    gateway = start_slow_gateway(data_dir, secret, SIM)
    if isinstance(gateway, str):
        return GilResult(skipped=gateway)
    try:
        return runner.run(
            ping_during_slow_orders(
                gateway, secret, duration_s=options.gil_duration_s, progress=progress
            )
        )
    finally:
        gateway.stop()
