"""Reads beside orders (issue 16): GET_ACCOUNT and GET_POSITIONS while 64 orders are in flight,
against PING in the same run.

A gateway of its own (started by ``bench.suite``, on the simulator, signatures on). Four
``Bridge`` clients keep 16 orders each in flight (OPEN then CLOSE, ``bench.load``'s
``open_close``); beside them, one probe ``Bridge`` asks, one at a time and in turn, PING,
GET_ACCOUNT (the trade watcher's last look, as a strategy asks by default), GET_POSITIONS of
the same, and GET_ACCOUNT ``fresh`` (read from the terminal, behind the orders, within
``read_timeout_ms``). The probe's latencies are the figures; PING, answered by the gateway
itself, is the floor. The same probe runs once with no orders, for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from bench.load import LoadClients, histogram
from bench.progress import Progress
from bench.results import Latency, ReadsResult
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, BridgeError

__all__ = ["measure_reads"]

_PROBES: Final[dict[str, Callable[[Bridge], Awaitable[Any]]]] = {
    "PING": lambda bridge: bridge.ping(),
    "GET_ACCOUNT": lambda bridge: bridge.get_account(),
    "GET_POSITIONS": lambda bridge: bridge.get_positions("EURUSD"),
    "GET_ACCOUNT fresh": lambda bridge: bridge.get_account(fresh=True),
}
_CLIENTS: Final = 4
_IN_FLIGHT: Final = 16


async def measure_reads(
    gateway: GatewayProcess,
    secret: str,
    *,
    duration_s: float,
    warmup_s: float,
    progress: Progress,
) -> ReadsResult:
    """Probe the reads for ``duration_s`` quiet, then beside the orders."""
    errors: Counter[str] = Counter()
    async with Bridge(gateway.endpoint, secret=secret) as probe:
        await _probe(probe, warmup_s, errors)  # unmeasured: connections, the first look
        progress.show("reads: probing with no orders", force=True)
        quiet = await _probe(probe, duration_s, errors)
        async with LoadClients(
            "gateway",
            gateway.endpoint,
            secret=secret,
            clients=_CLIENTS,
            server_pid=gateway.pid,
            progress=progress,
        ) as load:
            orders = asyncio.create_task(
                load.run(
                    "open_close",
                    in_flight=_IN_FLIGHT,
                    warmup_s=warmup_s,
                    duration_s=duration_s + warmup_s,
                    count_positions=False,
                )
            )
            try:
                await asyncio.sleep(warmup_s * 2)  # the orders' warm-up, then theirs measured
                progress.show(f"reads: probing beside {_CLIENTS}x{_IN_FLIGHT} orders", force=True)
                loaded = await _probe(probe, duration_s, errors)
            finally:
                result = await orders
    return ReadsResult(
        clients=_CLIENTS,
        in_flight=_IN_FLIGHT,
        seconds=duration_s,
        quiet={name: Latency.of(h) for name, h in quiet.items()},
        loaded={name: Latency.of(h) for name, h in loaded.items()},
        orders_answered=result.requests,
        errors=dict(errors + Counter(result.errors)),
    )


async def _probe(bridge: Bridge, seconds: float, errors: Counter[str]) -> dict[str, HdrHistogram]:
    """Each probe in turn, one at a time, for ``seconds``; failures counted in ``errors``."""
    histograms = {name: histogram() for name in _PROBES}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, ask in _PROBES.items():
            started = time.perf_counter_ns()
            try:
                await ask(bridge)
            except BridgeError as exc:
                errors[f"{name}: {type(exc).__name__}"] += 1
                continue
            histograms[name].record_value(time.perf_counter_ns() - started)
    return histograms
