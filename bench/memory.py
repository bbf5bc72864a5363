"""Memory flat: resident sizes of the gateway and of the load process around many requests.

PING by default (the issue allows it, and it is fast); ``open_close`` checks the order path,
with the book kept flat so that only what should not grow can.

A warm-up first (a tenth of the count) lets caches, allocator pools and the journal's page
cache reach their working size; then the sizes are read, the counted requests are sent, and
they are read again. A garbage collection before each reading keeps collectable garbage out
of the client's figure. Nothing else is asked of the gateway meanwhile: a GET_POSITIONS of a
book of thousands (which the load scenarios otherwise send first) is a one-off allocation of
megabytes that would read as growth.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Final

from bench.load import LoadClients
from bench.proc import rss_bytes
from bench.progress import Progress
from bench.results import MemoryResult

__all__ = ["memory_check"]

_CLIENTS: Final = 4
_IN_FLIGHT: Final = 16
_WARMUP_SHARE: Final = 10  # a tenth of the count, at least _WARMUP_MIN
_WARMUP_MIN: Final = 1000
_TIME_LIMIT_S: Final = 600.0  # a bound on each phase, should the gateway crawl


async def memory_check(
    endpoint: str,
    secret: str,
    *,
    gateway_pid: int,
    requests: int,
    mode: str = "ping",
    progress: Progress,
) -> MemoryResult:
    """Send ``requests`` requests of ``mode`` (4 clients x 16 in flight) and compare
    resident sizes."""
    async with LoadClients(
        "gateway",
        endpoint,
        secret=secret,
        clients=_CLIENTS,
        server_pid=gateway_pid,
        progress=progress,
    ) as clients:
        await clients.run(
            mode,
            in_flight=_IN_FLIGHT,
            warmup_s=0.0,
            duration_s=_TIME_LIMIT_S,
            max_requests=max(requests // _WARMUP_SHARE, _WARMUP_MIN),
            count_positions=False,
        )
        gc.collect()
        gateway_before, client_before = rss_bytes(gateway_pid), rss_bytes(os.getpid())
        started = time.perf_counter()
        result = await clients.run(
            mode,
            in_flight=_IN_FLIGHT,
            warmup_s=0.0,
            duration_s=_TIME_LIMIT_S,
            max_requests=requests,
            count_positions=False,
        )
        seconds = time.perf_counter() - started
        gc.collect()
        gateway_after, client_after = rss_bytes(gateway_pid), rss_bytes(os.getpid())
    return MemoryResult(
        requests=result.requests,
        mode=mode,
        seconds=seconds,
        gateway_before=gateway_before,
        gateway_after=gateway_after,
        client_before=client_before,
        client_after=client_after,
    )
