"""Nothing doubled when storage or operators misbehave: a second gateway on the same data
directory, a journal deleted, truncated or stripped of its WAL, a start that fails, a journal
locked by another process, a disk that fills. Real gateway processes, real files, real locks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import (
    Dealer,
    LockHolder,
    eventually,
    eventually_async,
    journal_rows,
    ping,
    request,
    run_gateway,
    signed_open,
)

from gtw_server.config import load_config
from gtw_server.recovery import Recovery
from gtw_server.server import Gateway
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, OrderRejected
from protocol import GetOrder, encode

# Orders that stay in flight a while (the simulator fills them one at a time).
SLOW = {"seed": 5, "order_latency_ms": 300, "order_latency_holds_gil": False}


async def journal_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m gtw_server journal ARGS``, as an operator runs it."""
    command = [sys.executable, "-m", "gtw_server", "journal", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )


# -- 1. one gateway per data directory ---------------------------------------------------------


async def test_a_second_gateway_on_the_same_directory_exits_2_and_frees_nothing(
    tmp_path: Path, secret: str
) -> None:
    data = tmp_path / "gw"
    with GatewayProcess(data, secret=secret, sim=SLOW) as first:
        client = Dealer(first.endpoint)
        uuids = [f"busy-{n}" for n in range(6)]
        try:
            for uuid in uuids:
                await client.send(signed_open(secret, uuid))
            journal = data / "journal.sqlite3"
            eventually(lambda: len(journal_rows(journal)) == 6, "the orders journaled")
            started = time.monotonic()
            # while all six are in flight:
            second = run_gateway("--data-dir", str(data), env={"MT5_BRIDGE_SECRET": secret})
            assert time.monotonic() - started < 20  # at once: no terminal, no reconciliation
            assert second.returncode == 2, second.stderr
            assert f"{data} is in use by another gateway (pid {first.pid}" in second.stderr
            assert first.endpoint in second.stderr
            replies = await client.replies(6)
        finally:
            client.close()
        assert {r["status"] for r in replies.values()} == {"FILLED"}
        async with Bridge(first.endpoint, secret=secret) as bridge:
            for uuid in uuids:  # every retry gets the stored fill
                fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid=uuid)
                assert fill.duplicate and fill.ticket == replies[uuid]["ticket"]
            assert len(await bridge.get_positions()) == 6

        # The record of who holds it is only for the message: without it, still refused.
        (data / "gateway.pid").unlink()
        second = run_gateway("--data-dir", str(data), env={"MT5_BRIDGE_SECRET": secret})
        assert second.returncode == 2
        if sys.platform == "linux":  # /proc/locks names the holder
            assert f"pid {first.pid}" in second.stderr


def test_a_killed_gateways_lock_goes_with_it(tmp_path: Path, secret: str) -> None:
    data = tmp_path / "gw"
    first = GatewayProcess(data, secret=secret).start()
    first.kill()  # SIGKILL: no shutdown ran
    with GatewayProcess(data, secret=secret) as again:
        assert request(again.endpoint, ping())["status"] == "OK"


# -- 2. a lost or damaged journal cannot double an order ---------------------------------------


def remove(data: Path, *suffixes: str) -> None:
    for suffix in suffixes:
        (data / f"journal.sqlite3{suffix}").unlink(missing_ok=True)


async def fill(endpoint: str, secret: str, uuids: list[str]) -> list[int]:
    async with Bridge(endpoint, secret=secret) as bridge:
        return [(await bridge.send_order("EURUSD", "BUY", 0.1, uuid=u)).ticket for u in uuids]


async def retried_once(endpoint: str, secret: str, uuids: list[str], tickets: list[int]) -> None:
    """Every retry answered from the history with its first fill; nothing executed again."""
    async with Bridge(endpoint, secret=secret) as bridge:
        for uuid, ticket in zip(uuids, tickets, strict=True):
            again = await bridge.send_order("EURUSD", "BUY", 0.1, uuid=uuid)
            assert again.duplicate and again.ticket == ticket, uuid
            assert (await bridge.get_order(uuid)).status == "FILLED"
        assert sorted(p.ticket for p in await bridge.get_positions()) == sorted(tickets)
        fresh = await bridge.send_order("EURUSD", "BUY", 0.1)  # a new uuid still executes
        assert not fresh.duplicate and fresh.ticket not in tickets


@pytest.mark.parametrize("harm", ["deleted", "wal lost after kill -9"])
async def test_a_lost_journal_cannot_double_an_order(
    tmp_path: Path, secret: str, harm: str
) -> None:
    data, log = tmp_path / "gw", tmp_path / "gateway.log"
    uuids = [f"lost-{n}" for n in range(5)]
    first = GatewayProcess(data, secret=secret, sim={"seed": 3}, log_file=log).start()
    try:
        tickets = await fill(first.endpoint, secret, uuids)
    finally:
        if harm == "deleted":
            first.stop()
            remove(data, "", "-wal", "-shm")
        else:
            first.kill()
            assert (data / "journal.sqlite3-wal").exists()
            remove(data, "-wal", "-shm")

    with GatewayProcess(data, secret=secret, sim={"seed": 3}, log_file=log) as second:
        await retried_once(second.endpoint, secret, uuids, tickets)
    text = log.read_text(encoding="utf-8")
    assert "history ledger: " in text and "5 of them not in the journal" in text
    if harm == "deleted":
        error = next(line for line in text.splitlines() if "| ERROR" in line)
        assert "journal" in error and "is missing" in error and "sim.sqlite3" in error


async def test_a_damaged_journal_stops_the_start_and_recover_moves_it_aside(
    tmp_path: Path, secret: str
) -> None:
    data, log = tmp_path / "gw", tmp_path / "gateway.log"
    uuids = [f"torn-{n}" for n in range(5)]
    with GatewayProcess(data, secret=secret, sim={"seed": 4}) as first:
        tickets = await fill(first.endpoint, secret, uuids)
    journal = data / "journal.sqlite3"
    os.truncate(journal, journal.stat().st_size // 2)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code 2"):
        GatewayProcess(data, secret=secret, sim={"seed": 4}, log_file=log).start(wait=30)
    assert time.monotonic() - started < 30
    text = log.read_text(encoding="utf-8")
    assert f"the journal {journal} is damaged" in text
    assert f"python -m gtw_server journal recover --data-dir {data}" in text

    check = await journal_command("check", "--data-dir", str(data))
    assert check.returncode == 1 and "DAMAGED" in check.stdout
    recover = await journal_command("recover", "--data-dir", str(data))
    assert recover.returncode == 0, recover.stderr
    assert len(list(data.glob("journal-damaged-*.sqlite3"))) == 1
    check = await journal_command("--data-dir", str(data), "check")  # flags before, too
    assert check.returncode == 0 and "0 entries" in check.stdout

    with GatewayProcess(data, secret=secret, sim={"seed": 4}, log_file=log) as second:
        await retried_once(second.endpoint, secret, uuids, tickets)
        # recover refuses to run beside a gateway.
        busy = await journal_command("recover", "--force", "--data-dir", str(data))
        assert busy.returncode == 2 and f"pid {second.pid}" in busy.stderr
    assert "started afresh by `journal recover`" in log.read_text(encoding="utf-8")


# -- 3. start-up never hangs -------------------------------------------------------------------


def processes_with(mark: str) -> list[int]:
    """The pids whose environment carries ``mark`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads other processes' /proc/PID/environ")
def test_a_start_that_fails_after_the_worker_started_exits_2_and_kills_it(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = f"MT5_TEST_MARK_{os.getpid()}_{time.monotonic_ns()}"
    monkeypatch.setenv(mark, "1")  # inherited by the gateway, and by its worker
    log = tmp_path / "gateway.log"
    # The account pin fails once the worker has connected the terminal.
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, gateway={"expect_login": 1}, log_file=log
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code 2"):
        gateway.start(wait=30)
    assert time.monotonic() - started < 20
    assert "is logged in to account" in log.read_text(encoding="utf-8")
    eventually(lambda: processes_with(mark) == [], "no gateway or worker left", timeout=5)


async def test_an_unexpected_failure_at_start_still_stops_the_worker(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        env={"MT5_BRIDGE_SECRET": secret},
        overrides={"bind": f"tcp://127.0.0.1:{free_port()}", "data_dir": str(tmp_path / "gw")},
    )
    workers: list[multiprocessing.process.BaseProcess] = []

    async def broken(recovery: Recovery) -> None:
        workers.extend(multiprocessing.active_children())  # the worker, started by now
        raise RuntimeError("a bug after the worker started")

    monkeypatch.setattr(Recovery, "read_history", broken)
    started = time.monotonic()
    assert await Gateway(config).serve(handle_signals=False) == 2
    assert time.monotonic() - started < 20
    assert [w.name for w in workers] == ["mt5-terminal-worker"]
    assert not workers[0].is_alive()
    assert not (tmp_path / "gw" / "gateway.pid").exists()  # and the directory is free


# -- 4. the event loop never waits on the journal ----------------------------------------------


async def test_a_journal_locked_by_another_process_never_stalls_the_gateway(
    tmp_path: Path, secret: str, lock_holders: list[LockHolder]
) -> None:
    data = tmp_path / "gw"
    with GatewayProcess(data, secret=secret, sim={"seed": 6}) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            first = await bridge.send_order("EURUSD", "BUY", 0.1)
            lock_holders.append(holder := LockHolder.sqlite(data / "journal.sqlite3"))

            client = Dealer(gateway.endpoint)
            rtts: list[float] = []
            try:
                for n in range(40):  # orders and PINGs interleaved, bounded
                    await client.send(signed_open(secret, f"locked-{n}"))
                    sent = time.perf_counter()
                    await client.send(ping(f"p-{n}"))
                    replies = await client.replies(2, timeout=10)
                    rtts.append(time.perf_counter() - sent)
                    refused = replies[f"locked-{n}"]
                    assert refused["status"] == "REJECTED", refused
                    assert refused["error_code"] == "JOURNAL_UNAVAILABLE"
                    assert "nothing was executed" in refused["error_msg"]
                    await asyncio.sleep(0.02)  # the pace of the traffic: the scenario
            finally:
                client.close()
            rtts.sort()
            print(
                f"PING p99 {rtts[int(len(rtts) * 0.99) - 1] * 1000:.2f} ms with the journal locked"
            )
            assert rtts[-1] < 1.0  # SQLite's busy timeout would hold each one 5 s

            assert await bridge.halt("journal locked") is True  # a HALT is never refused
            with pytest.raises(OrderRejected) as refused_resume:
                await bridge.resume()  # a RESUME is: it must be journaled first
            assert refused_resume.value.error_code == "JOURNAL_UNAVAILABLE"
            holder.release()

            async def resumed() -> bool:
                try:
                    return await bridge.resume() is False
                except OrderRejected as exc:
                    assert exc.error_code == "JOURNAL_UNAVAILABLE"
                    return False

            # The journal is tried again a moment after its last refusal.
            await eventually_async(resumed, "a RESUME journaled once the lock is gone")
            second = await bridge.send_order("EURUSD", "BUY", 0.1)
            tickets = sorted(p.ticket for p in await bridge.get_positions())
            assert tickets == sorted([first.ticket, second.ticket])  # nothing else executed


# -- 5. a failed reply commit settles without a restart ----------------------------------------


async def fills_kept_in_memory(
    gateway: GatewayProcess, secret: str, uuids: list[str], break_journal: Any, mend: Any
) -> None:
    """Orders in flight when the journal stops taking writes: filled and answered, their
    replies kept in memory (GET_ORDER says FILLED, not PENDING), then written once it is
    back, with the gateway still running."""
    journal = gateway.data_dir / "journal.sqlite3"
    client = Dealer(gateway.endpoint)
    try:
        for uuid in uuids:
            await client.send(signed_open(secret, uuid))
        await eventually_async(lambda: len(journal_rows(journal)) >= len(uuids), "journaled")
        break_journal()
        replies = await client.replies(len(uuids))
    finally:
        client.close()
    assert {r["status"] for r in replies.values()} == {"FILLED"}
    unwritten = [uuid for uuid, reply in journal_rows(journal) if reply is None]
    assert unwritten  # the journal did miss replies
    for uuid in uuids:
        status = request(
            gateway.endpoint, encode(GetOrder(uuid=f"q-{uuid}", timestamp=0, order_uuid=uuid))
        )
        assert status["status"] == "FILLED" and status["ticket"] == replies[uuid]["ticket"]
    refused = request(gateway.endpoint, signed_open(secret, "while-broken"))
    assert refused["error_code"] == "JOURNAL_UNAVAILABLE"
    mend()
    await eventually_async(
        lambda: all(reply is not None for _, reply in journal_rows(journal)),
        "every reply written, without a restart",
    )
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        assert len(await bridge.get_positions()) == len(uuids)  # nothing else executed
        assert (await bridge.send_order("EURUSD", "BUY", 0.1, uuid="while-broken")).ticket


@pytest.mark.skipif(sys.platform != "linux", reason="prlimit on another process is Linux's")
async def test_with_the_disk_full_filled_orders_settle_without_a_restart(
    tmp_path: Path, secret: str
) -> None:
    log = tmp_path / "gateway.log"
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=SLOW, log_file=log) as gateway:
        soft, hard = resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE)

        def disk_full() -> None:
            # The gateway process (not its terminal worker) can no longer grow any file:
            # writes fail as on a full disk (EFBIG; Python ignores SIGXFSZ).
            resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE, (1, hard))

        def disk_freed() -> None:
            resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE, (soft, hard))

        await fills_kept_in_memory(
            gateway, secret, [f"full-{n}" for n in range(10)], disk_full, disk_freed
        )
        assert gateway.returncode is None


async def test_with_the_journal_locked_filled_orders_settle_without_a_restart(
    tmp_path: Path, secret: str, lock_holders: list[LockHolder]
) -> None:
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=SLOW) as gateway:

        def lock() -> None:
            lock_holders.append(LockHolder.sqlite(gateway.data_dir / "journal.sqlite3"))

        def release_all() -> None:
            for holder in lock_holders:
                holder.release()

        await fills_kept_in_memory(
            gateway, secret, [f"held-{n}" for n in range(10)], lock, release_all
        )


async def test_get_order_answers_from_the_history_what_a_lost_journal_forgot(
    tmp_path: Path, secret: str
) -> None:
    """ "Not found" must never be a guess: a uuid the journal lost is looked up in the terminal's
    history, so neither GET_ORDER nor the client says "nothing was executed" for an order that
    was."""
    data = tmp_path / "gw"
    with GatewayProcess(data, secret=secret, sim={"seed": 9}) as first:
        [ticket] = await fill(first.endpoint, secret, ["forgotten-1"])
        async with Bridge(first.endpoint, secret=secret) as bridge:
            closed = await bridge.close_position(ticket, uuid="forgotten-2")
    remove(data, "", "-wal", "-shm")
    with GatewayProcess(data, secret=secret, sim={"seed": 9}) as second:
        frame = encode(GetOrder(uuid="ask-1", timestamp=time.time(), order_uuid="forgotten-1"))
        reply = request(second.endpoint, frame)
        assert reply["status"] == "FILLED" and reply["ticket"] == ticket
        assert (reply["order_uuid"], reply["order_action"]) == ("forgotten-1", "OPEN")
        async with Bridge(second.endpoint, secret=secret) as bridge:
            state = await bridge.get_order("forgotten-2")
            assert state.status == "FILLED" and state.action == "CLOSE"
            assert state.deal == closed.deal
            with pytest.raises(OrderRejected) as never:
                await bridge.get_order("never-sent")
            assert never.value.error_code == "ORDER_NOT_FOUND"
            assert "nor in the terminal's history of the last 24 h" in never.value.message
