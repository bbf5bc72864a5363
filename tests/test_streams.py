"""Live streams end to end: a real gateway process publishes on its event socket, and the
public client (``bridge.ticks``, ``bars``, ``states``) or a raw SUB socket receives.

And what a hostile or careless subscriber does to it: one that never reads, one whose key is not
listed, a subscription to a symbol that does not exist, a gateway that restarts under a stream,
an event port that is taken.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest
import zmq
import zmq.auth

from gtw_server.curve import keygen
from gtw_server.events import EventPublisher
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, RequestRefused, Tick
from protocol import Tick as WireTick
from protocol import decode_event, tick_topic
from tests.support import eventually, run_gateway

STREAM_TIMEOUT_S = (
    60.0  # every wait on a stream is bounded (a quiet hour ticks a few times a minute)
)


async def _take(stream: object, count: int, timeout: float = STREAM_TIMEOUT_S) -> list[Tick]:
    """The next ``count`` items of ``stream``, within ``timeout`` seconds."""
    taken: list[Tick] = []
    async with asyncio.timeout(timeout):
        async for item in stream:  # type: ignore[attr-defined]
            taken.append(item)
            if len(taken) == count:
                break
    return taken


async def test_ticks_of_several_symbols_in_order_without_gaps(bridge: Bridge) -> None:
    async with bridge.ticks("EURUSD", "GBPUSD") as stream:
        # A symbol ticks 4 to 80 times a minute, by the hour (the simulator's sessions): 8
        # ticks of two symbols take up to a minute in the quietest hour.
        ticks = await _take(stream, 8, timeout=90)
        assert stream.gaps == []
        assert stream.dropped == 0
    assert {tick.symbol for tick in ticks} == {"EURUSD", "GBPUSD"}
    for symbol in ("EURUSD", "GBPUSD"):
        times = [tick.time_msc for tick in ticks if tick.symbol == symbol]
        assert times == sorted(set(times)), f"{symbol}: each tick once, in order"
    assert all(tick.bid < tick.ask and tick.time == tick.time_msc // 1000 for tick in ticks)
    latest = await bridge.tick("EURUSD")
    assert latest.time_msc >= max(t.time_msc for t in ticks if t.symbol == "EURUSD")


async def test_two_streams_share_a_topic_and_closing_one_keeps_the_other(bridge: Bridge) -> None:
    first = bridge.ticks("EURUSD")
    async with bridge.ticks("EURUSD") as second:
        await _take(first, 2)
        await first.aclose()
        assert len(await _take(second, 3)) == 3  # still subscribed for the second


async def test_a_stream_of_an_unknown_symbol_is_refused(bridge: Bridge) -> None:
    async with bridge.ticks("NOPE") as stream:
        with pytest.raises(RequestRefused) as refused:
            await _take(stream, 1)
    assert refused.value.error_code == "SYMBOL_NOT_FOUND"
    assert "'NOPE' is not known to the terminal" in refused.value.message
    assert await bridge.tick("EURUSD")  # the gateway is fine


async def test_the_states_stream_hears_a_halt_and_a_resume(bridge: Bridge) -> None:
    async with bridge.states() as states:
        await asyncio.sleep(0.3)  # the subscription reaches the gateway
        await bridge.halt("news at 14:30")
        halted = (await _take(states, 1))[0]
        await bridge.resume()
        resumed = (await _take(states, 1))[0]
    assert (halted.state, halted.detail) == ("HALTED", "news at 14:30")  # type: ignore[attr-defined]
    assert resumed.state == "RESUMED"  # type: ignore[attr-defined]


async def test_a_stream_survives_a_gateway_restart_and_reports_it(
    tmp_path: Path, secret: str
) -> None:
    gateway = GatewayProcess(tmp_path / "gateway", secret=secret, log_file=tmp_path / "gw.log")
    with gateway:
        async with Bridge(
            gateway.endpoint,
            secret=secret,
            events_endpoint=gateway.events_endpoint,
            heartbeat_interval=0.5,
        ) as bridge:
            gaps: list[object] = []
            async with bridge.ticks("EURUSD", on_gap=gaps.append) as stream:
                before = await _take(stream, 2)
                gateway.stop()
                gateway.start()  # the same ports and data directory, a new run
                after = await _take(stream, 3)  # ZeroMQ reconnected and subscribed again
                assert [gap.restarted for gap in stream.gaps] == [True]
                assert gaps == stream.gaps
                assert stream.gaps[0].topic == "tick.EURUSD;"
    # The new run starts from the symbol's current tick: with ticks seconds apart, that may be
    # the last one the old run sent. Never an older one, and the stream goes on.
    assert after[0].time_msc >= before[-1].time_msc
    assert after[-1].time_msc > before[-1].time_msc


def test_a_subscriber_that_never_reads_does_not_hold_up_orders(
    gateway: GatewayProcess, secret: str
) -> None:
    """Six symbols streamed to a subscriber that never reads, while orders go through."""
    context = zmq.Context.instance()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.RCVBUF, 4096)
    stalled.setsockopt(zmq.LINGER, 0)
    stalled.connect(gateway.events_endpoint)
    for symbol in ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "GER40", "US500"):
        stalled.subscribe(tick_topic(symbol))

    async def trade() -> int:
        async with Bridge(
            gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
        ) as bridge:
            filled = 0
            for _ in range(10):
                fill = await bridge.send_order("EURUSD", "BUY", 0.01)
                await bridge.close_position(fill.ticket)
                filled += 1
                await asyncio.sleep(0.2)  # the feed keeps publishing meanwhile
            return filled

    try:
        assert asyncio.run(trade()) == 10
    finally:
        stalled.close()


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
async def test_what_a_subscriber_that_never_reads_costs_is_bounded() -> None:
    """300,000 events (about 75 MB) to a subscriber that never reads: the publisher keeps at
    most its queue's worth (10,000 messages) and drops the rest, never blocking."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    publisher = EventPublisher("tcp://127.0.0.1:0", run="test", max_topics=16, context=context)
    publisher.start()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 10)
    stalled.setsockopt(zmq.RCVBUF, 4096)
    stalled.connect(publisher.endpoint)
    topic = tick_topic("EURUSD")
    stalled.subscribe(topic)
    try:
        for _ in range(200):  # the subscription reaches the publisher (bounded)
            await asyncio.sleep(0.01)
            if publisher.wanted:
                break
        assert topic in publisher.wanted
        tick = WireTick(
            time=1, bid=1.1, ask=1.2, last=0.0, volume=0, time_msc=1000, flags=6,
            volume_real=0.0, symbol="EURUSD" * 20,
        )  # fmt: skip
        before = _rss_bytes()
        for index in range(300_000):
            publisher.tick("EURUSD", tick, topic)
            if index % 10_000 == 0:
                await asyncio.sleep(0)  # as the feed does: the loop runs between polls
        grown = _rss_bytes() - before
        assert publisher.published == 300_000
        assert grown < 30 * 1024 * 1024, f"grew {grown / 1e6:.1f} MB"
    finally:
        stalled.close(linger=0)
        publisher.close()
        context.term()


def test_a_subscriber_whose_key_is_not_listed_gets_nothing(tmp_path: Path) -> None:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("gateway", "node", "stranger"):
        keygen(keys, name)
    allowed.mkdir()
    (allowed / "node.key").write_bytes((keys / "node.key").read_bytes())
    curve = (keys / "gateway.key_secret", allowed, keys / "node.key_secret")
    server_key, _ = zmq.auth.load_certificate(keys / "gateway.key")
    context = zmq.Context.instance()
    with GatewayProcess(tmp_path / "gateway", curve=curve, log_file=tmp_path / "gw.log") as gw:
        subscribers = []
        for name in ("stranger", "node", None):  # not listed, listed, no CURVE at all
            sub = context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if name is not None:
                sub.curve_publickey, sub.curve_secretkey = zmq.auth.load_certificate(
                    keys / f"{name}.key_secret"
                )
                sub.curve_serverkey = server_key
            sub.connect(gw.events_endpoint)
            sub.subscribe(tick_topic("EURUSD"))
            subscribers.append(sub)
        stranger, node, plain = subscribers
        try:
            assert node.poll(10_000), "the listed subscriber got no event"
            _, body = node.recv_multipart()
            assert decode_event(body).tick is not None
            assert not stranger.poll(1000)  # by then the listed one had several ticks
            assert not plain.poll(100)
        finally:
            for sub in subscribers:
                sub.close()


def test_a_taken_event_port_stops_the_start_and_names_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        result = run_gateway(
            "--data-dir", str(tmp_path / "gw"), "--no-signature-validation", "--events", endpoint
        )
    assert result.returncode == 2
    assert f"cannot bind the event socket {endpoint}" in result.stderr + result.stdout


def test_events_beyond_loopback_without_curve_are_refused(tmp_path: Path) -> None:
    result = run_gateway(
        "--data-dir", str(tmp_path / "gw"), "--no-signature-validation",
        "--events", f"tcp://0.0.0.0:{free_port()}",
    )  # fmt: skip
    assert result.returncode == 2
    assert "([gateway] events) without CURVE" in result.stderr


def test_events_off_publishes_nothing_and_orders_still_work(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw", gateway={"events": "off"}, log_file=tmp_path / "gw.log"
    )
    with gateway:
        reply = _raw_ping(gateway.endpoint)
        assert reply["status"] == "OK"
        log = eventually(
            lambda: "events off" in (text := (tmp_path / "gw.log").read_text()) and text,
            "the ready line",
        )
    assert "gateway ready on" in log


def _raw_ping(endpoint: str) -> dict[str, object]:
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    try:
        dealer.send(b'{"action": "PING", "uuid": "p-1", "timestamp": 1}')
        assert dealer.poll(5000)
        reply: dict[str, object] = json.loads(dealer.recv())
        return reply
    finally:
        dealer.close()


async def test_a_second_subscriber_to_an_unknown_symbol_is_told_too(bridge: Bridge) -> None:
    async with bridge.ticks("NOPE") as first:
        with pytest.raises(RequestRefused):
            await _take(first, 1)
        # Still held by the first (ZeroMQ passes on only the first subscription): the
        # gateway says it again a few seconds later, for whoever joined since.
        async with bridge.ticks("NOPE") as second:
            with pytest.raises(RequestRefused) as refused:
                await _take(second, 1)
    assert refused.value.error_code == "SYMBOL_NOT_FOUND"


async def test_topics_past_max_topics_are_refused_as_busy(tmp_path: Path, secret: str) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, gateway={"max_topics": 1}, log_file=tmp_path / "gw.log"
    )
    with gateway:
        async with (
            Bridge(
                gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
            ) as bridge,
            bridge.ticks("EURUSD") as served,
            bridge.ticks("GBPUSD") as refused,
        ):
            assert len(await _take(served, 2)) == 2
            with pytest.raises(RequestRefused) as busy:
                await _take(refused, 1)
    assert busy.value.error_code == "BUSY"
    assert "past max_topics (1)" in busy.value.message
