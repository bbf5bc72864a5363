"""Subscribers for the market-data benchmark (issue 15): ``count`` live tick streams in one
child process, each timing every tick from when it was made to when the loop of a strategy
got it.

- ``--kind bridge`` (against the gateway): ``count`` ``inf_bridge.Bridge`` objects, each with
  its own order socket, heartbeat and SUB socket, each iterating
  ``async for tick in bridge.ticks(*symbols)``. A tick's age is the wall clock at that moment
  less the simulator's ``tick.time_msc`` (the tick's own time on its 250 ms grid, in ms).
- ``--kind hub`` (against the PUB floor, ``bench.market_floor``): ``count`` of the same
  ``EventHub`` and ``Stream`` a Bridge's ``ticks`` is made of, iterating the events
  themselves; a tick's age is the wall clock less the publisher's ``Event.time`` stamp
  (``time_msc`` is whole milliseconds, too coarse for the floor).

All the streams share this process's one event loop, as 50 strategies of one process would:
the last stream served in a burst waits for the others' decoding. The process talks on its
standard streams, one line each way:

- it prints ``ready`` once every stream has had an event (what it timed so far is dropped);
- ``report`` makes it print one JSON line (``Received``: the ages since the last report, as
  an encoded HdrHistogram of nanoseconds, and counts), and start again;
- ``stop``, the end of its input, or ``--max-seconds`` make it close everything and exit.

The secret for the Bridges comes in ``MT5_BRIDGE_SECRET``, never on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

import msgspec
import zmq
from loguru import logger

from bench.load import histogram
from inf_bridge import Bridge
from inf_bridge.streams import EventHub, Stream
from plumbing.loop import loop_factory
from protocol import Event, Tick, tick_topic

__all__ = ["Received", "SubscriberProcess", "main"]

_NS: Final = 1_000_000_000
_NS_PER_MS: Final = 1_000_000


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """What the streams got between two reports."""

    seconds: float
    events: int
    gaps: int  # Gap reports (seq skipped or a restart), over every stream
    dropped: int  # events the streams' own queues let go
    histogram: str  # HdrHistogram of ages in ns, encoded (``HdrHistogram.decode``)


class _Timing:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hist = histogram()
        self.events = 0
        self.started = time.perf_counter()

    def record(self, age_ns: int) -> None:
        self.hist.record_value(max(1, age_ns))
        self.events += 1


def _event_of(event: Event) -> Event | None:
    return event if event.kind == "tick" else None


async def _consume_ticks(stream: Stream[Tick], timing: _Timing, first: asyncio.Event) -> None:
    async for tick in stream:
        age = time.time_ns() - tick.time_msc * _NS_PER_MS
        first.set()
        timing.record(age)


async def _consume_events(stream: Stream[Event], timing: _Timing, first: asyncio.Event) -> None:
    async for event in stream:
        age = time.time_ns() - int(event.time * _NS)
        first.set()
        timing.record(age)


def _read_commands(loop: asyncio.AbstractEventLoop, commands: asyncio.Queue[str]) -> None:
    """Hand each line of standard input to the loop; ``stop`` at its end."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(commands.put_nowait, line.strip())
    loop.call_soon_threadsafe(commands.put_nowait, "stop")


async def _serve(args: argparse.Namespace) -> int:
    symbols = [s for s in args.symbols.split(",") if s]
    topics = [tick_topic(symbol) for symbol in symbols]
    timing = _Timing()
    firsts = [asyncio.Event() for _ in range(args.count)]
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(target=_read_commands, args=(loop, commands), daemon=True).start()
    async with contextlib.AsyncExitStack() as stack:
        streams: list[Stream[Tick] | Stream[Event]] = []
        tasks: list[asyncio.Task[None]] = []
        if args.kind == "bridge":
            secret = os.environ.get("MT5_BRIDGE_SECRET")
            for first in firsts:
                bridge = Bridge(args.endpoint, secret=secret, events_endpoint=args.events)
                await stack.enter_async_context(bridge)
                ticks = bridge.ticks(*symbols)
                streams.append(ticks)
                tasks.append(asyncio.create_task(_consume_ticks(ticks, timing, first)))
        else:
            context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
            for first in firsts:
                hub = EventHub(args.events, context=context)
                stack.callback(hub.close)
                events: Stream[Event] = Stream(hub, topics, _event_of)
                streams.append(events)
                tasks.append(asyncio.create_task(_consume_events(events, timing, first)))
        deadline = loop.time() + args.max_seconds
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(*(first.wait() for first in firsts))
                timing.reset()
                print("ready", flush=True)
                while (command := await commands.get()) != "stop":
                    if command == "report":
                        print(_report(timing, streams), flush=True)
                        timing.reset()
        except TimeoutError:
            print("bench.subscribers: --max-seconds reached", file=sys.stderr)
        finally:
            for stream in streams:
                await stream.aclose()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def _report(timing: _Timing, streams: Sequence[Stream[Tick] | Stream[Event]]) -> str:
    received = Received(
        seconds=time.perf_counter() - timing.started,
        events=timing.events,
        gaps=sum(len(s.gaps) for s in streams),
        dropped=sum(s.dropped for s in streams),
        histogram=timing.hist.encode().decode("ascii"),
    )
    return msgspec.json.encode(received).decode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.subscribers", description="Timed live tick streams."
    )
    parser.add_argument("--kind", choices=("bridge", "hub"), required=True)
    parser.add_argument("--endpoint", help="the gateway's order endpoint (--kind bridge)")
    parser.add_argument("--events", required=True, help="the event (PUB) endpoint")
    parser.add_argument("--count", type=int, required=True, help="how many subscribers")
    parser.add_argument("--symbols", required=True, help="comma-separated")
    parser.add_argument("--max-seconds", type=float, required=True, help="exit after this")
    args = parser.parse_args(argv)
    if args.kind == "bridge" and not args.endpoint:
        parser.error("--kind bridge needs --endpoint")
    if not 1 <= args.count <= 1000:
        parser.error("--count is 1 to 1000")
    logger.remove()  # the Bridges' audit and gap lines would be what is measured
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_serve(args))


class SubscriberProcess:
    """``python -m bench.subscribers`` as a child process, driven through its standard streams
    and stopped by its PID (killed if it does not stop).

    ``max_seconds`` bounds its life whatever happens here; its standard error goes to
    ``log_file``.
    """

    def __init__(
        self,
        *,
        kind: str,
        events: str,
        count: int,
        symbols: Sequence[str],
        max_seconds: float,
        log_file: Path,
        endpoint: str | None = None,
        secret: str | None = None,
    ) -> None:
        self.kind = kind
        self.count = count
        self._command = [sys.executable, "-m", "bench.subscribers", "--kind", kind]
        self._command += ["--events", events, "--count", str(count)]
        self._command += ["--symbols", ",".join(symbols), "--max-seconds", f"{max_seconds:g}"]
        if endpoint is not None:
            self._command += ["--endpoint", endpoint]
        self._secret = secret
        self._log_file = log_file
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the subscribers are not running")
        return self._process.pid

    async def start(self, timeout: float) -> None:
        """Start it and wait until every stream has had an event (``RuntimeError`` if not
        within ``timeout`` seconds, with the end of its log)."""
        self._spawn()
        line = await self._line(timeout)
        if line != "ready":
            self.stop()
            tail = self._log_file.read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(
                f"{self.count} {self.kind} subscribers were not ready in {timeout:g} s "
                f"({line!r}); the end of their log:\n" + "\n".join(tail)
            )

    def _spawn(self) -> None:
        env = dict(os.environ)
        env.pop("MT5_BRIDGE_SECRET", None)
        if self._secret is not None:
            env["MT5_BRIDGE_SECRET"] = self._secret
        self._log = self._log_file.open("ab")
        self._process = subprocess.Popen(
            self._command,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        stdout = self._process.stdout
        assert stdout is not None  # stdout=PIPE
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    async def report(self, timeout: float = 30.0) -> Received:
        """What the streams got since they were ready or since the last report."""
        self._send("report")
        line = await self._line(timeout)
        if line is None:
            raise RuntimeError(f"the {self.kind} subscribers did not report in {timeout:g} s")
        return msgspec.json.decode(line, type=Received)

    def stop(self, timeout: float = 10.0) -> int:
        """Ask it to stop; kill it (by its PID) if it has not exited within ``timeout``."""
        process = self._process
        if process is None:
            return 0
        self._send("stop")
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode

    def _send(self, command: str) -> None:
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return
        with contextlib.suppress(OSError):  # it exited meanwhile
            process.stdin.write(command + "\n")
            process.stdin.flush()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    async def _line(self, timeout: float) -> str | None:
        try:
            return await asyncio.to_thread(self._lines.get, True, timeout)
        except queue.Empty:
            return None


if __name__ == "__main__":
    sys.exit(main())
