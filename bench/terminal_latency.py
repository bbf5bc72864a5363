"""What a real terminal changes (issue 18): orders that take the terminal 5, 20 or 50 ms.

The real ``MetaTrader5`` binary spends milliseconds in ``order_send`` and holds the GIL
meanwhile. Here the simulator does the same (``order_latency_ms``, GIL held) behind both the
gateway and the unsafe design (``bench.unsafe``), each started afresh for each latency, and
the same scenarios run against both: OPEN then CLOSE one in flight (OPEN p50), 4 clients x 16
in flight (orders/s), and the mixed mode with as many in flight (its PING p50: whether the
server still answers a PING while orders are on the terminal). The unsafe design calls the
terminal on its event loop, so a PING waits behind every order in its queue; the gateway's
terminal is in its worker process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from bench.load import Shape, measure
from bench.progress import Progress
from bench.results import LoadResult, Server, TerminalLatencyResult
from bench.unsafe import UnsafeProcess
from gtw_server.testing import GatewayProcess, ServerProcess, Value

__all__ = ["SCENARIOS", "measure_terminal_latency"]

# (mode, shape): what each latency is measured with.
SCENARIOS: Final = (
    ("open_close", Shape(1, 1)),
    ("open_close", Shape(4, 16)),
    ("mixed", Shape(4, 16)),
)


async def measure_terminal_latency(
    latencies_ms: Sequence[float],
    sim: Mapping[str, Value],
    secret: str,
    *,
    work: Path,
    duration_s: float,
    warmup_s: float,
    progress: Progress,
) -> list[TerminalLatencyResult]:
    """Each latency, against a fresh unsafe design and a fresh gateway in turn."""
    results = []
    for latency_ms in latencies_ms:
        slow = {**sim, "order_latency_ms": latency_ms, "order_latency_holds_gil": True}
        loads: list[LoadResult] = []
        progress.show(f"orders taking the terminal {latency_ms:g} ms", force=True)
        servers: list[tuple[Server, ServerProcess]] = [
            ("unsafe", UnsafeProcess(slow)),
            (
                "gateway",
                GatewayProcess(
                    work / f"latency-{latency_ms:g}",
                    secret=secret,
                    sim=slow,
                    log_file=work / f"latency-{latency_ms:g}.log",
                ),
            ),
        ]
        for server, process in servers:
            with process:
                for mode, shape in SCENARIOS:
                    loads.append(
                        await measure(
                            server,
                            process.endpoint,
                            pid=process.pid,
                            secret=secret,
                            mode=mode,
                            shape=shape,
                            warmup_s=warmup_s,
                            duration_s=duration_s,
                            progress=progress,
                            count_positions=False,
                        )
                    )
        results.append(TerminalLatencyResult(order_latency_ms=latency_ms, loads=loads))
    return results
