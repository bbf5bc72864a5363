"""Where an order's time goes: timestamps at each stage of its way through the gateway and the
worker, against the unsafe design's (issue 18).

A gateway (or the unsafe design) is started with its stages marked: ``python -m bench.stages
serve ...`` wraps the methods an order passes through (``RequestRouter.on_message``,
``OrderExecutor.admit``, ``Journal.commit``, the worker pipe's writes, ``TerminalWorker.
_resolve``, ``OrderExecutor.execute``, ``RequestRouter.send``) and the worker process's pipe
ends with ones that note the time (``time.perf_counter_ns``: CLOCK_MONOTONIC on Linux, one
clock for both processes), then runs the server as ``python -m gtw_server`` would. Each process
writes its marks to a file when it stops. Orders then go one at a time (OPEN, then CLOSE of
it) through the project's ``Bridge``, timed on the client, and each order's marks are read as
a timeline:

| stage | from | to |
|---|---|---|
| decode, check, journal the intent | the message read | admitted |
| commit the intent | admitted | the group's commit done |
| to the worker's pipe | committed | the call written |
| hop to the worker | written | the worker read it |
| the terminal (simulator) | the worker read it | its result written |
| hop back | written | the result read by the gateway |
| resume the order | result read | the order's coroutine returned |
| send the reply | returned | the reply handed to ZeroMQ |

and the client's part, marked in the client too: from its ``send`` of an order to the
server's first line (ZeroMQ and the wake-ups on both sides), from the server's ``send`` back
to the client's first line, and the rest (risk check, signing, decoding), which is the round
trip less all of those. The median and 99th percentile of each stage over the orders whose marks
are complete (an order a heartbeat PING cut into is left out) are printed; the stages need not
add up to the round trip exactly.

    python -m bench.stages --orders 2000          # ~30 s
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import bisect
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import msgspec
from loguru import logger

from bench.unsafe import UnsafeProcess
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, RiskLimits
from protocol import AnyRequest, Close, Open, Reply, Side

__all__ = ["GATEWAY_STAGES", "StageProfile", "legs", "main", "profile", "timelines"]

_MARKS_ENV: Final = "BENCH_STAGES_FILE"  # where a marked process writes its marks
_SECRET: Final = "bench-stages-" + "0" * 32
_SIM: Final = {"seed": 1, "balance": 1e9, "leverage": 1000, "always_open": True}

Mark = tuple[str, int]  # (what, perf_counter_ns)

# The gateway's stages: (name, the mark that ends it); each starts where the one before ended.
GATEWAY_STAGES: Final = (
    ("decode, check, journal the intent", "admitted"),
    ("commit the intent", "committed"),
    ("to the worker's pipe", "call written"),
    ("hop to the worker", "worker read"),
    ("the terminal (simulator)", "worker wrote"),
    ("hop back", "result read"),
    ("resume the order", "executed"),
    ("send the reply", "reply sent"),
)
_UNSAFE_STAGES: Final = (
    ("decode", "terminal called"),
    ("the terminal (simulator)", "terminal answered"),
    ("send the reply", "reply sent"),
)


class Spread(msgspec.Struct, frozen=True, array_like=True):
    """The median and the 99th percentile of a set of times, in µs."""

    p50_us: float
    p99_us: float

    @classmethod
    def of(cls, times: Sequence[float]) -> Spread:
        ordered = sorted(times)
        return cls(
            statistics.median(ordered), ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]
        )


class StageProfile(msgspec.Struct, frozen=True, kw_only=True):
    """One server's orders, one at a time: each stage's times, and around them."""

    server: str
    orders: int  # round trips timed by the client
    complete: int  # of which the marks were whole
    round_trip: Spread  # as the client timed it, of the ``complete`` orders
    server_span: Spread  # from the message read to the reply handed to ZeroMQ
    stages: list[tuple[str, Spread]]
    to_server: Spread  # the client's send of an order to the server's first line
    to_client: Spread  # the server's send of its reply to the client's first line


# -- marking, in the marked processes -------------------------------------------------------

_marks: list[Mark] = []


def _mark(what: str) -> None:
    _marks.append((what, time.perf_counter_ns()))


def _write_marks(path: str) -> None:
    Path(path).write_bytes(msgspec.msgpack.encode(_marks))


def _after(owner: Any, name: str, what: str, when: Callable[[Any], bool] = bool) -> None:
    """Mark ``what`` each time ``owner.name`` returns (a value ``when`` accepts)."""
    original = getattr(owner, name)

    def marked(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(result):
            _mark(what)
        return result

    setattr(owner, name, marked)


def _before(owner: Any, name: str, what: str) -> None:
    """Mark ``what`` each time ``owner.name`` is called."""
    original = getattr(owner, name)

    def marked(*args: Any, **kwargs: Any) -> Any:
        _mark(what)
        return original(*args, **kwargs)

    setattr(owner, name, marked)


def _after_await(owner: Any, name: str, what: str) -> None:
    """Mark ``what`` each time the coroutine ``owner.name`` returns."""
    original = getattr(owner, name)

    async def marked(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        _mark(what)
        return result

    setattr(owner, name, marked)


class _MarkedPipe:
    """A worker's pipe end that marks each message read or written."""

    def __init__(self, connection: Connection, read: str = "", wrote: str = "") -> None:
        self._connection = connection
        self._read, self._wrote = read, wrote

    def recv_bytes(self) -> bytes:
        data = self._connection.recv_bytes()
        _mark(self._read)
        return data

    def send_bytes(self, data: bytes) -> None:
        self._connection.send_bytes(data)
        _mark(self._wrote)


def marked_worker_main(calls: Connection, results: Connection, spec: Any) -> None:
    """The worker process, its pipe ends marked; its marks written when it leaves."""
    from gtw_server import worker  # noqa: PLC0415 (the child's own import)

    path = os.environ[_MARKS_ENV] + f".worker-{os.getpid()}"
    try:
        worker.worker_main(
            _MarkedPipe(calls, read="worker read"),  # type: ignore[arg-type]
            _MarkedPipe(results, wrote="worker wrote"),  # type: ignore[arg-type]
            spec,
        )
    finally:
        _write_marks(path)


_ORDERS: Final = (b'"OPEN"', b'"CLOSE"')


def _is_order(frame: bytes) -> bool:
    return any(action in frame for action in _ORDERS)


def _mark_client() -> None:
    """Mark, in this process, each order the client sends and each order's reply it reads."""
    from inf_bridge.channel import Channel  # noqa: PLC0415 (only when profiling)

    send, deliver = Channel._send, Channel._deliver

    async def marked_send(channel: Channel, sock: Any, loop: Any, frame: bytes) -> None:
        await send(channel, sock, loop, frame)
        if _is_order(frame):
            _mark("client sent")

    def marked_deliver(channel: Channel, frames: list[bytes]) -> None:
        if _is_order(frames[0]):
            _mark("client read")
        deliver(channel, frames)

    Channel._send = marked_send  # type: ignore[method-assign,assignment]
    Channel._deliver = marked_deliver  # type: ignore[method-assign,assignment]


def legs(marks: Sequence[Mark]) -> Iterator[tuple[int, int]]:
    """Each order's two ZeroMQ legs (ns): its send to the server's read, and the server's reply
    to the client's read; only orders no other message cut into."""
    times: list[int] = []
    for what, ns in marks:
        if what == "client sent":
            times = [ns]
        elif times and what == _LEGS[len(times)]:
            times.append(ns)
            if len(times) == len(_LEGS):
                yield times[1] - times[0], times[3] - times[2]
                times = []
        elif what in _LEGS:
            times = []


_LEGS: Final = ("client sent", "read", "reply sent", "client read")


def _mark_gateway() -> None:
    from gtw_server import worker  # noqa: PLC0415 (only in the marked process)
    from gtw_server.dispatch import RequestRouter  # noqa: PLC0415
    from gtw_server.executor import OrderExecutor  # noqa: PLC0415
    from gtw_server.journal import Journal  # noqa: PLC0415

    _before(RequestRouter, "on_message", "read")
    _after(OrderExecutor, "admit", "admitted", when=lambda reply: reply is None)
    _after(Journal, "commit", "committed", when=lambda _: True)
    _after(Connection, "send_bytes", "call written", when=lambda _: True)
    _before(worker.TerminalWorker, "_resolve", "result read")
    _after_await(OrderExecutor, "execute", "executed")
    _after(RequestRouter, "send", "reply sent", when=lambda _: True)
    # The worker process starts from this function (spawn pickles it by name).
    worker.worker_main = marked_worker_main


def _mark_unsafe() -> None:
    from bench.unsafe import UnsafeServer  # noqa: PLC0415 (only in the marked process)
    from gtw_server.transport import RouterTransport  # noqa: PLC0415

    reply = UnsafeServer._reply

    def marked_reply(server: UnsafeServer, request: AnyRequest) -> Reply:
        if not isinstance(request, Open | Close):  # a heartbeat's PING: not an order
            return reply(server, request)
        _mark("terminal called")
        answer = reply(server, request)
        _mark("terminal answered")
        return answer

    _before(UnsafeServer, "_on_message", "read")
    UnsafeServer._reply = marked_reply  # type: ignore[method-assign,assignment]
    _after(RouterTransport, "send", "reply sent", when=lambda _: True)


def serve_marked(kind: str, argv: Sequence[str]) -> int:
    """Run the gateway (``kind`` "gateway") or the unsafe design with its stages marked."""
    path = os.environ[_MARKS_ENV]
    atexit.register(_write_marks, path)
    if kind == "gateway":
        from gtw_server.__main__ import main as gateway_main  # noqa: PLC0415

        _mark_gateway()
        return gateway_main(argv)
    from bench.unsafe import main as unsafe_main  # noqa: PLC0415

    _mark_unsafe()
    return unsafe_main(argv)


# -- the marked servers, as child processes -------------------------------------------------


class _Marked:
    """Runs a server's command through ``python -m bench.stages serve KIND``."""

    kind: str
    marks_file: Path

    def marked(self, command: list[str]) -> list[str]:
        module = command.index("-m")
        return [sys.executable, "-m", "bench.stages", "serve", self.kind, *command[module + 2 :]]

    def marked_env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, _MARKS_ENV: str(self.marks_file)}


class MarkedGateway(_Marked, GatewayProcess):
    kind = "gateway"

    def __init__(self, work: Path) -> None:
        super().__init__(work / "gateway", secret=_SECRET, sim=_SIM, log_file=work / "gw.log")
        self.marks_file = work / "gateway.marks"

    def command(self) -> list[str]:
        return self.marked(super().command())

    def environment(self) -> dict[str, str]:
        return self.marked_env(super().environment())


class MarkedUnsafe(_Marked, UnsafeProcess):
    kind = "unsafe"

    def __init__(self, work: Path) -> None:
        super().__init__(_SIM, log_file=work / "unsafe.log")
        self.marks_file = work / "unsafe.marks"

    def command(self) -> list[str]:
        return self.marked(super().command())

    def environment(self) -> dict[str, str]:
        return self.marked_env(super().environment())


# -- reading the marks ----------------------------------------------------------------------


def _load(path: Path) -> list[Mark]:
    return [(what, ns) for what, ns in msgspec.msgpack.decode(path.read_bytes())]


def timelines(marks: Sequence[Mark], ends: Sequence[str]) -> Iterator[list[int]]:
    """Each order's times (ns) at ``ends``, in order, from the ``read`` that starts it, each
    the first such mark after the one before (a ``committed`` of other writes may come between
    two stages): only orders no other message cut into (a PING, a watcher's look)."""
    times: list[int] = []
    for what, ns in marks:
        if what == "read":
            times = [ns]
        elif times and what == ends[len(times) - 1]:
            times.append(ns)
            if len(times) == len(ends) + 1:
                yield times
                times = []


async def _orders(endpoint: str, count: int) -> list[tuple[int, int]]:
    """OPEN then CLOSE of it, ``count`` orders in all, one at a time: when each was sent and
    when its reply came (ns)."""
    limits = RiskLimits(max_order_volume=1.0, symbols=["EURUSD"])
    round_trips = []
    async with Bridge(endpoint, secret=_SECRET, risk=limits) as bridge:
        for _ in range(count // 2):
            started = time.perf_counter_ns()
            opened = await bridge.send_order("EURUSD", Side.BUY, 0.01)
            middle = time.perf_counter_ns()
            assert opened.ticket is not None, opened
            await bridge.close_position(opened.ticket)
            ended = time.perf_counter_ns()
            round_trips += [(started, middle), (middle, ended)]
    return round_trips


def whole_trips(lines: Sequence[list[int]], trips: Sequence[tuple[int, int]]) -> list[float]:
    """The round trips (µs) of the orders whose server marks are whole (``lines``): the one
    each line lies in. The other figures are of these orders; medians of two different sets
    of orders need not compare as their orders do."""
    starts = [start for start, _ in trips]
    found = []
    for line in lines:
        index = bisect.bisect_right(starts, line[0]) - 1
        if index >= 0 and line[-1] <= trips[index][1]:
            found.append((trips[index][1] - trips[index][0]) / 1000)
    return found


def _merge(path: Path) -> list[Mark]:
    """The marks of a server and of its worker processes, in time order."""
    marks = _load(path)
    for extra in path.parent.glob(path.name + ".worker-*"):
        marks += _load(extra)
    return sorted(marks, key=lambda mark: mark[1])


async def profile(work: Path, orders: int, warmup: int = 200) -> list[StageProfile]:
    """The unsafe design's orders and the gateway's, one at a time, stage by stage."""
    results = []
    servers: list[tuple[str, Any, Sequence[tuple[str, str]]]] = [
        ("unsafe", MarkedUnsafe(work), _UNSAFE_STAGES),
        ("gateway", MarkedGateway(work), GATEWAY_STAGES),
    ]
    _mark_client()
    for name, server, stages in servers:
        with server:
            await _orders(server.endpoint, warmup)
            started = time.perf_counter_ns()
            round_trips = await _orders(server.endpoint, orders)
        client = [mark for mark in _marks if mark[1] >= started]
        _marks.clear()
        marks = [mark for mark in _merge(server.marks_file) if mark[1] >= started]
        ends = [end for _, end in stages]
        lines = list(timelines(marks, ends))
        both = list(legs(sorted(marks + client, key=lambda mark: mark[1])))
        trips = whole_trips(lines, round_trips)
        if not trips or not both:
            raise RuntimeError(f"no whole order in the {name}'s marks")
        spans = [[(b - a) / 1000 for a, b in itertools.pairwise(line)] for line in lines]
        results.append(
            StageProfile(
                server=name,
                orders=len(round_trips),
                complete=len(lines),
                round_trip=Spread.of(trips),
                server_span=Spread.of([(line[-1] - line[0]) / 1000 for line in lines]),
                stages=[
                    (stage, Spread.of([span[n] for span in spans]))
                    for n, (stage, _) in enumerate(stages)
                ],
                to_server=Spread.of([there / 1000 for there, _ in both]),
                to_client=Spread.of([back / 1000 for _, back in both]),
            )
        )
    return results


def render(profiles: Sequence[StageProfile]) -> str:
    """The profiles as a Markdown table, the gateway's stages beside the unsafe design's."""
    lines = ["| server | stage | p50 µs | p99 µs |", "|---|---|---|---|"]
    for result in profiles:
        for stage, spread in result.stages:
            lines.append(
                f"| {result.server} | {stage} | {spread.p50_us:,.0f} | {spread.p99_us:,.0f} |"
            )
        span, trip = result.server_span, result.round_trip
        lines.append(
            f"| {result.server} | **in the server** | **{span.p50_us:,.0f}** | "
            f"**{span.p99_us:,.0f}** |"
        )
        there, back = result.to_server, result.to_client
        lines.append(
            f"| {result.server} | the client's send to the server's first line (ZeroMQ, "
            f"wake-ups) | {there.p50_us:,.0f} | {there.p99_us:,.0f} |"
        )
        lines.append(
            f"| {result.server} | the server's send to the client's first line | "
            f"{back.p50_us:,.0f} | {back.p99_us:,.0f} |"
        )
        rest = trip.p50_us - span.p50_us - there.p50_us - back.p50_us
        lines.append(
            f"| {result.server} | the client's own (risk check, signing, decoding; the rest, "
            f"at p50) | {rest:,.0f} | |"
        )
        lines.append(
            f"| {result.server} | **round trip** ({result.complete:,} of {result.orders:,} "
            f"orders whole) | **{trip.p50_us:,.0f}** | **{trip.p99_us:,.0f}** |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve_marked(argv[1], argv[2:])
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--orders", type=int, default=2000, help="orders timed, per server")
    parser.add_argument("--json", type=Path, help="also write the profiles here")
    args = parser.parse_args(argv)
    logger.remove()  # the client's audit lines would time the terminal
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as work:
        profiles = asyncio.run(profile(Path(work), args.orders))
    print(render(profiles))
    if args.json:
        args.json.write_bytes(msgspec.json.encode(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
