"""Strangers cost little: a flood of unsigned orders writes a few lines and a count, and peers
that never read their replies cost the gateway about a megabyte at most, each."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
import zmq
from support import Dealer, eventually, eventually_async, metric, ping, request, signed_open

from gtw_server.testing import GatewayProcess, free_port
from gtw_server.throttle import Throttle
from inf_bridge import Bridge
from protocol import GetOrder, GetPositions, Open, Side, encode


def test_the_throttle_counts_per_kind_and_starts_again_each_window() -> None:
    now = [0.0]
    throttle = Throttle(burst=3, window_s=10, clock=lambda: now[0])
    assert [throttle.allow("a") for _ in range(5)] == [True] * 3 + [False] * 2
    assert throttle.allow("b")  # each kind has its own allowance
    now[0] = 9.9
    assert not throttle.allow("a")
    assert throttle.summaries() == [("a", 3)]
    assert throttle.summaries() == []  # said once
    now[0] = 10.0  # a new window for "a"
    assert [throttle.allow("a") for _ in range(4)] == [True] * 3 + [False]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(sys.platform != "linux", reason="reads the gateway's /proc/PID/status")
def test_peers_that_never_read_cost_little_memory(tmp_path: Path, secret: str) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, gateway={"metrics_port": port}, log_file=log
    )
    peers, pings = 3, 20_000
    with gateway:
        handled = 'mt5_gateway_requests_total{action="PING",status="OK"}'
        before = rss_kib(gateway.pid)
        context = zmq.Context.instance()
        socks = []
        try:
            for n in range(peers):
                sock = context.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.SNDHWM, pings)
                sock.setsockopt(zmq.RCVBUF, 4096)  # and never reads: its replies pile up
                sock.connect(gateway.endpoint)
                socks.append(sock)
                for k in range(pings):
                    sock.send(ping(f"deaf-{n}-{k}"))
            try:
                eventually(
                    lambda: metric(port, handled) >= peers * pings,
                    "every PING handled",
                    timeout=60,
                )
            except AssertionError as exc:  # say where it stopped, and what the gateway said
                tail = log.read_text(encoding="utf-8").splitlines()[-20:]
                count = metric(port, handled)
                raise AssertionError(f"{exc}: {count:.0f} handled; the log ends {tail}") from None
            grown_mib = (rss_kib(gateway.pid) - before) / 1024
            print(f"gateway RSS grew {grown_mib:.2f} MiB for {peers} deaf peers")
            assert grown_mib < peers * 1.5  # was about 9 MiB per 20,000 unread replies
            assert request(gateway.endpoint, ping("still-here"))["status"] == "OK"
            eventually(
                lambda: "more dropped replies in the last" in log.read_text(encoding="utf-8"),
                "the throttle's count of dropped replies",
                timeout=20,
            )
        finally:
            for sock in socks:
                sock.close()
    assert log.read_text(encoding="utf-8").count("reply dropped") <= 20  # then a count


def test_a_flood_of_unsigned_orders_writes_a_few_lines_and_a_count(
    tmp_path: Path, secret: str
) -> None:
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, log_file=log)
    flood = 3000
    with gateway:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(gateway.endpoint)
        try:
            refused = 0
            for batch in range(0, flood, 100):  # pipelined, 100 at a time, as a client reads
                for n in range(batch, batch + 100):
                    now = time.time()
                    order = Open(uuid=f"u{n}", timestamp=now, symbol="X", type=Side.BUY, volume=1)
                    sock.send(encode(order))
                for _ in range(100):  # every one answered, precisely
                    assert sock.poll(10_000), f"only {refused} of {flood} answered"
                    assert json.loads(sock.recv())["error_code"] == "SIGNATURE_MISSING"
                    refused += 1
        finally:
            sock.close()
        audit = gateway.data_dir / "audit.jsonl"

        def summary() -> dict[str, object] | None:
            for line in audit.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record["event"] == "THROTTLED":
                    return record  # type: ignore[no-any-return]
            return None

        record = eventually(summary, "the throttle's summary", timeout=20)
        assert record["kind"] == "refusals (SIGNATURE_MISSING)"
        lines = audit.read_text(encoding="utf-8").splitlines()
        one_by_one = sum(
            '"SIGNATURE_MISSING"' in line and "THROTTLED" not in line for line in lines
        )
        assert one_by_one + int(str(record["count"])) == flood
        assert one_by_one <= 20
    assert log.read_text(encoding="utf-8").count("SIGNATURE_MISSING") <= 25


@pytest.mark.skipif(sys.platform != "linux", reason="reads the gateway's /proc/PID/status")
async def test_an_unread_flood_of_big_queries_costs_little_and_starves_no_order(
    tmp_path: Path, secret: str
) -> None:
    """GET_POSITIONS on a book of 200 positions answers about 46 KB. Answering thousands of them
    at once raises the heap once (about 10 MiB, whoever asks); past that, strangers who ask
    thousands of times and never read cost little each (their answers are refused ``BUSY``
    once they hold 512 KiB unread), a client that reads gets every answer of a burst that
    fits that budget (answered at once from the trade watcher's last look, a burst is queued
    whole before the client can read any of it), and signed orders still go."""
    port = free_port()
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, gateway={"metrics_port": port})
    handled = 'mt5_gateway_requests_total{action="GET_POSITIONS",'
    answered = 'mt5_gateway_requests_total{action="GET_POSITIONS",status="OK"}'
    queries = 1000
    # Bursts paced below the query share of the queue (none refused for it); a reader's within
    # its 512 KiB of unread answers (10 of 46 KB).
    paces = {True: 10, False: 200}
    asked = 0

    async def flood(reads: bool) -> zmq.Socket[bytes]:
        nonlocal asked
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if not reads:  # nor lets its own libzmq read for it
            sock.setsockopt(zmq.RCVHWM, 1)
            sock.setsockopt(zmq.RCVBUF, 4096)
        sock.connect(gateway.endpoint)
        for _ in range(0, queries, paces[reads]):
            for _ in range(paces[reads]):
                sock.send(encode(GetPositions(uuid=f"q{asked}", timestamp=time.time())))
                asked += 1
            await eventually_async(
                lambda until=asked: metric(port, handled) >= until, "answered", timeout=60
            )
            while reads and sock.poll(0):
                sock.recv()
        return sock

    with gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            for _ in range(200):
                await bridge.send_order("EURUSD", "BUY", 0.01)
            readers = [await flood(reads=True) for _ in range(2)]  # what answering costs anyway
            for sock in readers:
                sock.close()
            assert metric(port, answered) >= 0.9 * asked  # they read: their answers went
            before = rss_kib(gateway.pid)
            deaf = [await flood(reads=False) for _ in range(4)]
            try:
                refused = asked - metric(port, answered)
                assert refused >= 0.9 * len(deaf) * queries  # their unread answers held them back
                per_peer_mib = (rss_kib(gateway.pid) - before) / 1024 / len(deaf)
                print(f"gateway RSS grew {per_peer_mib:.2f} MiB per deaf peer of big queries")
                assert per_peer_mib < 1.5  # 512 KiB of big answers held, at most; was 40 MiB
                books = await asyncio.gather(*(bridge.get_positions() for _ in range(100)))
                assert [len(book) for book in books] == [200] * 100  # a reader gets them all
                fill = await bridge.send_order("EURUSD", "BUY", 0.01)
                assert fill.ticket > 0
            finally:
                for sock in deaf:
                    sock.close()


async def test_unsigned_lookups_hold_their_share_of_the_queue_and_no_more(
    tmp_path: Path, secret: str
) -> None:
    """GET_POSITIONS asked fresh and a GET_ORDER the journal cannot answer (a look in the
    terminal's history) are unsigned terminal work: with ``max_queue`` 8 at most two wait at
    once, the rest are answered BUSY, and a signed order sent behind the flood still goes."""
    slow = {"order_latency_ms": 300, "order_latency_holds_gil": False}
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, sim=slow, gateway={"max_queue": 8})
    with gateway:
        client = Dealer(gateway.endpoint)
        try:
            await client.send(signed_open(secret, "first", volume=0.01))  # holds the terminal
            lookups = [f"who-{n}" for n in range(10)]
            books = [f"book-{n}" for n in range(10)]
            for uuid in lookups:
                await client.send(
                    encode(GetOrder(uuid=uuid, timestamp=time.time(), order_uuid=f"x{uuid}"))
                )
            for uuid in books:  # fresh: read from the terminal, not the watcher's last look
                request = GetPositions(uuid=uuid, timestamp=time.time(), fresh=True)
                await client.send(encode(request))
            await client.send(signed_open(secret, "behind", volume=0.01))
            replies = await client.replies(22)
        finally:
            client.close()
    queries = [replies[uuid] for uuid in lookups + books]
    busy = [r for r in queries if r.get("error_code") == "BUSY"]
    assert len(busy) >= len(queries) - 2  # a quarter of max_queue: two
    answered = [r for r in queries if r not in busy]
    assert all(r["status"] == "OK" or r["error_code"] == "ORDER_NOT_FOUND" for r in answered)
    assert replies["first"]["status"] == "FILLED"
    assert replies["behind"]["status"] == "FILLED"  # the flood did not keep it out
