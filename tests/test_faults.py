"""The gateway's worst days, with the simulator's fault switches: a crash after the fill, a
hung terminal, a lost terminal, a crowd of clients, a shutdown mid-order, a GIL-hogging
terminal. Each must end with every order executed exactly once and reported truthfully.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from support import (
    Dealer,
    eventually_async,
    journal_rows,
    journaled,
    ping,
    signed_open,
    stored_deals,
    terminal_away,
)

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, OrderRejected, OutcomeUnknown
from protocol import (
    Reply,
    Status,
)


async def test_crash_after_the_fill_then_retry_executes_once(tmp_path: Path, secret: str) -> None:
    data_dir = tmp_path / "gw"
    slow = {"order_latency_ms": 4000, "order_latency_holds_gil": False}
    gateway = GatewayProcess(data_dir, secret=secret, sim=slow).start()
    client = Dealer(gateway.endpoint)
    try:
        await client.send(signed_open(secret, "crash-1"))
        # The deal is in the terminal's books; the reply waits out the latency (4 s).
        await eventually_async(
            lambda: stored_deals(data_dir / "sim.sqlite3") == 1, "the fill to be committed"
        )
        gateway.kill()  # kill -9: the reply is never sent
    finally:
        client.close()

    with GatewayProcess(data_dir, secret=secret, port=gateway.port) as restarted:
        async with Bridge(restarted.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="crash-1")  # the retry
            # Settled by reconciliation from the terminal's history, not executed again.
            assert fill.comment == "found in the terminal's history"
            positions = await bridge.get_positions()
            assert [p.ticket for p in positions] == [fill.ticket]
            assert (await bridge.get_order("crash-1")).status == "FILLED"


async def answered_then_killed(
    data_dir: Path, secret: str, *requests: bytes
) -> tuple[list[Reply], int]:
    """Start a gateway on ``data_dir``, send ``requests`` one at a time, each answered, then
    kill -9 it at once: the replies, and the port to start it again on."""
    gateway = GatewayProcess(data_dir, secret=secret).start()
    client = Dealer(gateway.endpoint)
    try:
        replies = []
        for request in requests:
            await client.send(request)
            replies.append(await client.recv())
    finally:
        gateway.kill()  # also when a reply never came: no gateway is left running
        client.close()
    return replies, gateway.port


async def test_crash_after_the_reply_before_its_verdict_is_journaled_then_retry_executes_once(
    tmp_path: Path, secret: str
) -> None:
    data_dir = tmp_path / "gw"
    # Killed at once: the verdict is written once the terminal has another call, or 5 ms later.
    [filled], port = await answered_then_killed(data_dir, secret, signed_open(secret, "behind-1"))
    assert filled.status is Status.FILLED
    written = dict(journal_rows(data_dir / "journal.sqlite3"))["behind-1"] is not None

    with GatewayProcess(data_dir, secret=secret, port=port) as restarted:
        async with Bridge(restarted.endpoint, secret=secret) as bridge:
            again = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="behind-1")  # the retry
            assert again.ticket == filled.ticket  # the same fill, from the journal or history
            if not written:  # the window was hit (it is, nearly always): reconciled
                assert again.comment == "found in the terminal's history"
            positions = await bridge.get_positions()
            assert [p.ticket for p in positions] == [filled.ticket]
    assert stored_deals(data_dir / "sim.sqlite3") == 1


async def test_a_terminal_refusal_is_journaled_before_the_next_request_is_read(
    tmp_path: Path, secret: str
) -> None:
    data_dir = tmp_path / "gw"
    # A valid volume, but 235,000 USD of margin: the terminal's 10019 No money.
    refusal = signed_open(secret, "refused-1", volume=100.0, symbol="XAUUSD")
    # Killed once the next request was read: the refusal was written before it (a refusal
    # leaves no trace in the terminal to reconcile from).
    [refused, _], port = await answered_then_killed(data_dir, secret, refusal, ping())
    assert (refused.status, refused.error_code, refused.retcode) == (
        Status.REJECTED,
        "MT5_REJECTED",
        10019,
    )
    assert dict(journal_rows(data_dir / "journal.sqlite3"))["refused-1"] is not None

    with GatewayProcess(data_dir, secret=secret, port=port) as restarted:
        again = Dealer(restarted.endpoint)
        try:
            await again.send(signed_open(secret, "refused-1", 100.0, "XAUUSD"))  # the retry
            replayed = await again.recv()
        finally:
            again.close()
    assert replayed.duplicate and replayed.error_msg == refused.error_msg  # not run again


async def test_hung_terminal_is_restarted_and_the_order_fills_once(
    tmp_path: Path, secret: str
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        # Counted per terminal object: the 2nd order hangs, the restarted worker's 1st does not.
        sim={"hang_on_order": 2},
        gateway={"terminal_timeout_s": 2.0},
        log_file=tmp_path / "gateway.log",
    )
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret, request_timeout=1.0) as bridge:
            first = await bridge.send_order("EURUSD", "BUY", 0.1)
            order = asyncio.create_task(bridge.send_order("EURUSD", "BUY", 0.3, uuid="hang-1"))
            pinger = Dealer(gateway.endpoint)
            answered: list[bool | None] = []
            try:
                while not order.done():  # PING keeps being answered during the hang
                    await pinger.send(ping())
                    reply = await pinger.recv(timeout=1.0)
                    answered.append(reply.mt5_connected)
                    await asyncio.sleep(0.1)  # the pace of the PINGs: the scenario
            finally:
                pinger.close()
            fill = await order
            assert fill.volume == pytest.approx(0.3)
            assert len(answered) >= 10 and all(a is not None for a in answered)
            assert False in answered  # a hung terminal is not reported connected
            assert (await bridge._ping_reply(2.0)).mt5_connected is True  # and is again
            tickets = sorted(p.ticket for p in await bridge.get_positions())
            assert tickets == sorted([first.ticket, fill.ticket])  # the hung one filled once
            third = await bridge.send_order("EURUSD", "BUY", 0.1)  # the new worker is sane
            assert third.ticket not in tickets
    assert "killing the terminal worker" in (tmp_path / "gateway.log").read_text()


async def test_an_order_lost_before_the_trade_server_is_freed_and_its_retry_fills_once(
    tmp_path: Path, secret: str
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        # The 2nd order hangs before it is sent: the watchdog kills the worker, and
        # reconciliation finds it nowhere in the terminal, so its uuid is free again.
        sim={"hang_before_order": 2},
        gateway={"terminal_timeout_s": 2.0, "reconcile_settle_s": 0.5},
        log_file=tmp_path / "gateway.log",
    )
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret, request_timeout=1.0) as bridge:
            first = await bridge.send_order("EURUSD", "BUY", 0.1)
            fill = None
            for _ in range(20):  # what a strategy does: ask again with the same uuid
                try:
                    fill = await bridge.send_order("EURUSD", "BUY", 0.3, uuid="lost-1")
                    break
                except OutcomeUnknown:
                    await asyncio.sleep(0.5)  # the strategy's pace between its retries
            assert fill is not None and fill.volume == pytest.approx(0.3)
            positions = await bridge.get_positions()
            assert sorted(p.ticket for p in positions) == sorted([first.ticket, fill.ticket])
    audit = (tmp_path / "gw" / "audit.jsonl").read_text()
    assert "not executed; the uuid is free again" in audit


async def test_lost_terminal_refuses_orders_then_recovers(tmp_path: Path, secret: str) -> None:
    sim = {"disconnect_at_s": 1.0, "disconnect_for_s": 2.5}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        # Retries off: this test is about the refusals the gateway gives meanwhile.
        async with Bridge(gateway.endpoint, secret=secret, retry_not_executed=False) as bridge:
            await eventually_async(lambda: terminal_away(bridge), "the terminal to go away")
            refusals = 0
            deadline = time.monotonic() + 30
            while True:  # what a strategy does: retry the same uuid until the terminal is back
                try:
                    fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="offline-1")
                    break
                except OrderRejected as exc:
                    assert exc.error_code == "MT5_DISCONNECTED"
                    refusals += 1
                    if refusals == 1:  # PING tells the truth meanwhile
                        assert (await bridge._ping_reply(2.0)).mt5_connected is False
                assert time.monotonic() < deadline, "the gateway did not reconnect by itself"
                await asyncio.sleep(0.3)  # the strategy's pace between its retries
            assert refusals >= 1
            assert not fill.duplicate  # refused while away, so executed only now
            assert [p.ticket for p in await bridge.get_positions()] == [fill.ticket]


async def test_reply_lost_inside_the_terminal_is_reconciled(tmp_path: Path, secret: str) -> None:
    # The terminal executes the order, then dies before answering (-10002 IPC recv failed).
    with GatewayProcess(tmp_path / "gw", secret=secret, sim={"lose_reply_on_order": 1}) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "SELL", 0.2, uuid="lost-1")
            assert fill.volume == pytest.approx(0.2)  # settled from the terminal's history
            assert [p.ticket for p in await bridge.get_positions()] == [fill.ticket]
            assert (await bridge.send_order("EURUSD", "SELL", 0.2)).ticket != fill.ticket


async def test_ten_clients_fifty_pipelined_orders_each(
    gateway: GatewayProcess, secret: str
) -> None:
    clients = [Dealer(gateway.endpoint) for _ in range(10)]

    async def run(index: int, client: Dealer) -> list[Reply]:
        uuids = [f"crowd-{index}-{n}" for n in range(50)]
        for uuid in uuids:
            await client.send(signed_open(secret, uuid, volume=0.01))
        replies = [await client.recv(timeout=30) for _ in uuids]
        assert sorted(r.uuid or "" for r in replies) == sorted(uuids)  # each answered once
        with pytest.raises(TimeoutError):  # and nothing more
            await client.recv(timeout=0.3)
        return replies

    try:
        results = await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    finally:
        for client in clients:
            client.close()
    replies = [r for per_client in results for r in per_client]
    assert Counter(r.status for r in replies) == {Status.FILLED: 500}
    tickets = {r.ticket for r in replies}
    assert len(tickets) == 500
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        assert {p.ticket for p in await bridge.get_positions()} == tickets


async def test_a_repeat_while_in_flight_is_pending_then_gets_the_one_result(
    tmp_path: Path, secret: str
) -> None:
    slow = {"order_latency_ms": 1500, "order_latency_holds_gil": False}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=slow) as gateway:
        client = Dealer(gateway.endpoint)
        try:
            order = signed_open(secret, "twice-1")
            await client.send(order)
            # Admitted, so in the terminal now (1.5 s there).
            await eventually_async(lambda: journaled(gateway.data_dir, "twice-1"), "admission")
            await client.send(order)  # the same bytes again, as a retry would send them
            repeat = await client.recv(timeout=5)
            assert (repeat.uuid, repeat.status) == ("twice-1", Status.PENDING)
            first = await client.recv(timeout=10)
            assert (first.uuid, first.status) == ("twice-1", Status.FILLED)
            await client.send(order)  # once settled, the stored result, marked duplicate
            again = await client.recv(timeout=5)
            assert again.status is Status.FILLED and again.duplicate
            assert again.ticket == first.ticket
        finally:
            client.close()


async def test_sigterm_lets_the_order_in_flight_finish(tmp_path: Path, secret: str) -> None:
    slow = {"order_latency_ms": 1500, "order_latency_holds_gil": False}
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, sim=slow).start()
    client = Dealer(gateway.endpoint)
    try:
        await client.send(signed_open(secret, "graceful-1"))
        # Admitted, so in flight (1.5 s in the terminal) when the signal comes.
        await eventually_async(lambda: journaled(gateway.data_dir, "graceful-1"), "admission")
        os.kill(gateway.pid, signal.SIGTERM)
        reply = await client.recv(timeout=10)
        assert reply.uuid == "graceful-1" and reply.status is Status.FILLED
        # A new order during the shutdown is refused, not left hanging.
        await client.send(signed_open(secret, "too-late-1"))
        late = await client.recv(timeout=5)
        assert late.status is Status.REJECTED and late.error_code == "BUSY"
    finally:
        client.close()
    assert await asyncio.to_thread(gateway.wait, 20) == 0


async def test_ping_stays_fast_while_gil_holding_orders_run(tmp_path: Path, secret: str) -> None:
    slow = {"order_latency_ms": 300, "order_latency_holds_gil": True}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=slow) as gateway:
        orders, pinger = Dealer(gateway.endpoint), Dealer(gateway.endpoint)
        try:
            for n in range(5):  # 1.5 s of terminal time, the GIL held throughout
                await orders.send(signed_open(secret, f"gil-{n}", volume=0.01))
            rtts = []
            for _ in range(20):
                started = time.perf_counter()
                await pinger.send(ping())
                assert (await pinger.recv(timeout=5)).status is Status.OK
                rtts.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)  # PINGs spread over the orders' run: the scenario
            filled = [await orders.recv(timeout=10) for _ in range(5)]
        finally:
            orders.close()
            pinger.close()
        assert all(r.status is Status.FILLED for r in filled)
        # The loop is never frozen by a terminal call: no PING waits out even half of one.
        # (Speed itself is measured by the benchmark, not here.)
        assert max(rtts) < 0.15


async def test_a_full_queue_says_busy_and_executes_nothing_extra(
    tmp_path: Path, secret: str
) -> None:
    slow = {"order_latency_ms": 100, "order_latency_holds_gil": False}
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, sim=slow, gateway={"max_queue": 3})
    with gateway:
        client = Dealer(gateway.endpoint)
        try:
            for n in range(10):
                await client.send(signed_open(secret, f"queue-{n}", volume=0.01))
            replies = [await client.recv(timeout=10) for _ in range(10)]
        finally:
            client.close()
        by_status = Counter(r.status for r in replies)
        busy = [r for r in replies if r.status is Status.REJECTED]
        assert by_status[Status.FILLED] >= 3 and busy
        assert all(r.error_code == "BUSY" for r in busy)
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            assert len(await bridge.get_positions()) == by_status[Status.FILLED]
            retry = await bridge.send_order("EURUSD", "BUY", 0.01, uuid=busy[0].uuid)
            assert not retry.duplicate  # BUSY did not consume the uuid


async def test_oversized_messages_are_dropped_and_the_gateway_stays_up(
    gateway: GatewayProcess,
) -> None:
    big = Dealer(gateway.endpoint)
    try:
        await big.send(b"{" + b" " * (2 * 1024 * 1024) + b"}")
        with pytest.raises(TimeoutError):
            await big.recv(timeout=1.0)
    finally:
        big.close()
    fresh = Dealer(gateway.endpoint)
    try:
        await fresh.send(ping())
        assert (await fresh.recv()).status is Status.OK
    finally:
        fresh.close()
