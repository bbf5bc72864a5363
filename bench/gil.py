"""PING while slow orders are in flight: does the gateway's loop stay free?

The ``MetaTrader5`` binary holds the GIL for the whole of ``order_send`` (docs/ARCHITECTURE.md),
which is why terminal calls run in a worker process. This scenario gives the simulator that
behaviour (``order_latency_ms=300``, ``order_latency_holds_gil=true``), keeps orders in flight
without a pause, and measures PINGs from another client meanwhile. A simulator that does not
know these switches refuses to start; the scenario then reports itself skipped instead of
failing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from bench.load import LoadClients
from bench.progress import Progress
from bench.results import GilResult
from gtw_server.testing import GatewayProcess, Value

__all__ = ["ORDER_LATENCY_MS", "ping_during_slow_orders", "start_slow_gateway"]

ORDER_LATENCY_MS: Final = 300.0
_ORDERS_IN_FLIGHT: Final = 2
_FIRST_ORDER_S: Final = 0.1  # lets the first order reach the worker before PINGs start
_UNSUPPORTED: Final = "order_latency_ms"  # named in the simulator's refusal


def start_slow_gateway(
    data_dir: Path, secret: str, sim: Mapping[str, Value]
) -> GatewayProcess | str:
    """A started gateway whose terminal holds the GIL for 300 ms per order, or, when the
    simulator cannot do that, the reason to skip the scenario."""
    log_file = data_dir.with_suffix(".log")
    gateway = GatewayProcess(
        data_dir,
        secret=secret,
        sim={**sim, "order_latency_ms": ORDER_LATENCY_MS, "order_latency_holds_gil": True},
        log_file=log_file,
    )
    try:
        return gateway.start()
    except RuntimeError:
        gateway.stop()  # it may still be running, only slow to answer
        log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
        if _UNSUPPORTED in log:
            return f"skipped: simulator lacks {_UNSUPPORTED}"
        raise


async def ping_during_slow_orders(
    gateway: GatewayProcess, secret: str, *, duration_s: float, progress: Progress
) -> GilResult:
    """PING one-in-flight for ``duration_s`` while two OPENs are always in flight."""
    endpoint, pid = gateway.endpoint, gateway.pid
    quiet = Progress(quiet=True)  # one progress line: the PINGs'
    async with (
        LoadClients(
            "gateway", endpoint, secret=secret, clients=1, server_pid=pid, progress=quiet
        ) as trader,
        LoadClients(
            "gateway", endpoint, secret=secret, clients=1, server_pid=pid, progress=progress
        ) as pinger,
    ):
        orders = asyncio.create_task(
            trader.run(
                "open",
                in_flight=_ORDERS_IN_FLIGHT,
                warmup_s=0.0,
                duration_s=duration_s + 2 * _FIRST_ORDER_S,
            )
        )
        try:
            await asyncio.sleep(_FIRST_ORDER_S)
            ping = await pinger.run("ping", in_flight=1, warmup_s=0.0, duration_s=duration_s)
        finally:
            order_result = await orders
    return GilResult(
        order_latency_ms=ORDER_LATENCY_MS,
        orders_in_flight=_ORDERS_IN_FLIGHT,
        ping=ping,
        orders=order_result,
    )
