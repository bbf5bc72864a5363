"""The market-data floors (issue 15): the same bytes as the gateway's, sent with nothing behind.

One child process serves two sockets on loopback ports of its own:

- a ROUTER (``bench.floor``'s echo server, on the gateway's own transport) that also answers
  GET_RATES at once with the reply frame and a frame of ``rows`` x 60 zero bytes built at
  start: the bytes of ``rows`` M1 bars, sent zero-copy and tracked as the gateway sends them.
  A ``Bridge`` runs against it unchanged (``Bridge.rates``), and so does a bare DEALER.
- a PUB that publishes, every ``interval_ms``, one tick event per symbol back to back (the
  burst the gateway's feed sends after a poll that found a tick of each), on the gateway's
  topics, each an ``Event`` of the same shape stamped with ``time.time()`` just before it is
  sent (``Event.time``): what a subscriber receives later than that stamp is the floor of
  delivery, transport and decoding in the subscriber's process.

    python -m bench.market_floor --bind tcp://127.0.0.1:6000 --events tcp://127.0.0.1:6001

``MarketFloorProcess`` runs it as a child process, stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid as uuid_module
from collections.abc import Sequence
from typing import Final

import numpy as np
import zmq

from bench.floor import EchoServer
from gtw_server.runtime import install_stop_handlers
from gtw_server.testing import ServerProcess, free_port
from gtw_server.transport import split_envelope
from plumbing.loop import loop_factory
from protocol import (
    RATES_DTYPE,
    DecodeError,
    Event,
    GetRates,
    Reply,
    Rows,
    Status,
    Tick,
    decode_request,
    encode,
    tick_topic,
)

__all__ = ["BAR_BYTES", "SYMBOLS", "BulkServer", "MarketFloorProcess", "main"]

BAR_BYTES: Final = np.dtype(RATES_DTYPE).itemsize  # 60
# The simulator's six symbols: what a strategy following "everything" subscribes to.
SYMBOLS: Final = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "GER40")
_SNDHWM: Final = 10_000  # the gateway's event socket's


class BulkServer(EchoServer):
    """The echo floor, answering GET_RATES with up to ``rows`` canned bars."""

    def __init__(self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]], rows: int) -> None:
        super().__init__(endpoint, context)
        self._rows = rows
        self._body = bytes(rows * BAR_BYTES)

    def _on_message(self, frames: list[bytes]) -> None:
        envelope, body = split_envelope(frames)
        try:
            request = decode_request(body[-1])
        except DecodeError:
            super()._on_message(frames)
            return
        if not isinstance(request, GetRates):
            super()._on_message(frames)
            return
        rows = min(request.count or self._rows, self._rows)
        reply = Reply(
            uuid=request.uuid,
            action=request.action,
            status=Status.OK,
            timestamp=time.time(),
            rows=Rows(dtype=RATES_DTYPE, rows=rows),
        )
        data = self._body if rows == self._rows else self._body[: rows * BAR_BYTES]
        self._transport.send([*envelope, encode(reply), data], refusable=True)


class TickPublisher:
    """A PUB socket sending one stamped tick event per symbol every ``interval_s``."""

    def __init__(
        self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]], interval_s: float
    ) -> None:
        sock: zmq.Socket[bytes] = context.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, _SNDHWM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        self._sock = sock
        self._interval_s = interval_s
        self._run = uuid_module.uuid4().hex
        self._seq = dict.fromkeys(SYMBOLS, 0)
        self._topics = {symbol: tick_topic(symbol) for symbol in SYMBOLS}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            for symbol in SYMBOLS:
                self._publish(symbol)
            await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))

    def _publish(self, symbol: str) -> None:
        seq = self._seq[symbol] = self._seq[symbol] + 1
        now = time.time()
        tick = Tick(
            time=int(now),
            bid=1.1,
            ask=1.10015,
            last=0.0,
            volume=0,
            time_msc=int(now * 1000),
            flags=6,
            volume_real=0.0,
            symbol=symbol,
        )
        event = Event(run=self._run, seq=seq, kind="tick", time=now, symbol=symbol, tick=tick)
        with contextlib.suppress(zmq.Again):  # PUB drops rather than blocks, as the gateway's
            self._sock.send_multipart([self._topics[symbol], encode(event)], zmq.NOBLOCK)

    def close(self) -> None:
        self._sock.close(linger=0)


async def _serve(endpoint: str, events: str, rows: int, interval_s: float) -> int:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        server = BulkServer(endpoint, context, rows)
        publisher = TickPublisher(events, context, interval_s)
    except zmq.ZMQError as exc:
        print(f"market floor: cannot bind: {exc}", file=sys.stderr)
        context.destroy(linger=0)
        return 2
    stop = asyncio.Event()
    remove_handlers = install_stop_handlers(asyncio.get_running_loop(), lambda _: stop.set())
    server.start()
    publishing = asyncio.create_task(publisher.run())
    try:
        await stop.wait()
    finally:
        remove_handlers()
        publishing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publishing
        publisher.close()
        server.close()
        context.term()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.market_floor",
        description="The market-data floors: canned bars on a ROUTER, stamped ticks on a PUB.",
    )
    parser.add_argument("--bind", required=True, help="ROUTER endpoint, tcp://127.0.0.1:PORT")
    parser.add_argument("--events", required=True, help="PUB endpoint, tcp://127.0.0.1:PORT")
    parser.add_argument("--rows", type=int, default=100_000, help="bars in a full answer")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="between tick bursts")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_serve(args.bind, args.events, args.rows, args.interval_ms / 1000))


class MarketFloorProcess(ServerProcess):
    """The market floors as a child process on two free loopback ports, stopped by its PID."""

    name = "market floor"

    def __init__(self, *, rows: int, interval_ms: float) -> None:
        super().__init__()
        self.rows = rows
        self.interval_ms = interval_ms
        self.events_endpoint = f"tcp://127.0.0.1:{free_port()}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.market_floor",
            "--bind",
            self.endpoint,
            "--events",
            self.events_endpoint,
            "--rows",
            str(self.rows),
            "--interval-ms",
            f"{self.interval_ms:g}",
        ]


if __name__ == "__main__":
    sys.exit(main())
