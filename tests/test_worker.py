"""The terminal worker process: calls, the watchdog, restarts, and both ways of reading it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import eventually_async

from gtw_server.adapter import (
    CloseOrder,
    FindOrders,
    OpenOrder,
    TerminalAdapter,
)
from gtw_server.errors import TerminalDisconnected, WorkerCrashed, WorkerUnavailable
from gtw_server.operations import ACCOUNT, CONNECT, OPEN, POSITIONS
from gtw_server.terminal import OrderSendResult
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.worker import TerminalWorker, WorkerSpec
from plumbing.loop import loop_factory
from protocol import Side
from protocol.mt5_structs import replaced

ORDER = OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="#test")


def worker(tmp_path: Path, platform: str, **sim: object) -> TerminalWorker:
    spec = WorkerSpec(
        sim=SimConfig(**({"always_open": True} | sim)), sim_state=str(tmp_path / "sim.sqlite3")
    )  # type: ignore[arg-type]
    return TerminalWorker(spec, call_timeout=1.0, platform=platform)


@pytest.mark.parametrize("platform", ["linux", "win32"], ids=["fd-on-the-loop", "thread"])
async def test_calls_and_a_restart_after_a_crash(tmp_path: Path, platform: str) -> None:
    restarted = asyncio.Event()
    terminal = worker(tmp_path, platform)

    async def on_restart() -> None:
        restarted.set()

    terminal.on_restart = on_restart
    await terminal.start()
    try:
        assert (await terminal.call(CONNECT, None)).connected
        assert (await terminal.call(ACCOUNT, None)).balance == 10_000
        results = await asyncio.gather(*(terminal.call(OPEN, ORDER) for _ in range(10)))
        assert len({r.ticket for r in results}) == 10

        pid = terminal.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(restarted.wait(), 30)
        assert terminal.restarts == 1 and terminal.pid != pid
        await terminal.call(CONNECT, None)
        positions = await terminal.call(POSITIONS, None)
        assert len(positions) == 10  # the new worker sees the same broker state
    finally:
        await terminal.stop()


@pytest.mark.parametrize("platform", ["linux", "win32"], ids=["fd-on-the-loop", "thread"])
async def test_a_crash_blames_the_running_call_even_behind_an_unread_answer(
    tmp_path: Path, platform: str
) -> None:
    # The worker answers A, starts B, and dies, all while the loop is busy: A's answer and the
    # exit then reach the loop together. B ran (it may have filled): it must be reported as
    # crashed (outcome unknown), never as "not run", or its uuid would be freed for a retry.
    terminal = worker(tmp_path, platform, order_latency_ms=3000, order_latency_holds_gil=False)
    await terminal.start()
    try:
        await terminal.call(CONNECT, None)
        a = asyncio.ensure_future(terminal.call(ACCOUNT, None))
        b = asyncio.ensure_future(terminal.call(OPEN, ORDER))
        for _ in range(5):  # both calls written to the pipe
            await asyncio.sleep(0)
        time.sleep(1.0)  # noqa: ASYNC251 - blocks the loop on purpose: the worker answers A, enters B
        pid = terminal.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)  # noqa: ASYNC251 - still blocked: the exit queues behind A's answer
        assert (await a).balance == 10_000
        with pytest.raises(WorkerCrashed):
            await b
    finally:
        await terminal.stop()


async def test_the_watchdog_kills_a_hung_call_and_says_which_ran(tmp_path: Path) -> None:
    terminal = worker(tmp_path, "linux", hang_on_order=1)
    await terminal.start()
    try:
        await terminal.call(CONNECT, None)
        hung = asyncio.ensure_future(terminal.call(OPEN, ORDER))
        queued = asyncio.ensure_future(terminal.call(ACCOUNT, None))
        with pytest.raises(WorkerCrashed):  # it may have executed: reconcile
            await asyncio.wait_for(hung, 10)
        with pytest.raises(WorkerUnavailable):  # it never ran
            await queued
        await eventually_async(lambda: terminal.alive, "the worker restarted", timeout=20)
        assert terminal.restarts == 1
    finally:
        await terminal.stop()


async def test_stop_lets_the_call_in_flight_finish(tmp_path: Path) -> None:
    terminal = worker(tmp_path, "linux", order_latency_ms=300, order_latency_holds_gil=False)
    await terminal.start()
    await terminal.call(CONNECT, None)
    slow = asyncio.ensure_future(terminal.call(OPEN, ORDER))
    await eventually_async(lambda: terminal.in_flight == 1, "the OPEN sent to the worker")
    await terminal.stop(grace_s=5)
    assert (await slow).status == "FILLED"
    with pytest.raises(WorkerUnavailable):
        await terminal.call(ACCOUNT, None)


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop")
def test_results_larger_than_the_pipe_buffer_arrive_whole_under_uvloop(tmp_path: Path) -> None:
    async def run() -> int:
        terminal = worker(tmp_path, "linux")
        await terminal.start()
        try:
            await terminal.call(CONNECT, None)
            small = OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.01, comment="#test")
            await asyncio.gather(*(terminal.call(OPEN, small) for _ in range(600)))
            positions = await terminal.call(POSITIONS, None)  # > 64 KiB
            return len(positions)
        finally:
            await terminal.stop()

    with asyncio.Runner(loop_factory=loop_factory("linux")) as runner:  # uvloop, as the gateway
        assert runner.run(run()) == 600


def test_find_tells_executed_from_still_active_from_absent() -> None:
    # Reconciliation's one question to the terminal: FILLED (a deal carries the tag), DONE (a
    # pending order does, active or in the history: it was placed), UNKNOWN (an active market
    # order does: not executed yet), or absent (none of these).
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    filled = adapter.open(
        OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="#fillaaaa")
    )
    ask = mt5.symbol_info_tick("EURUSD").ask
    placed, cancelled = (
        mt5.order_send(
            action=mt5.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=mt5.ORDER_TYPE_BUY_LIMIT,
            price=round(ask - 0.01, 5),
            comment=comment,
        )
        for comment in ("#waitaaaa limit", "#goneaaaa")
    )
    assert placed.retcode == cancelled.retcode == mt5.TRADE_RETCODE_DONE
    removed = mt5.order_send(action=mt5.TRADE_ACTION_REMOVE, order=cancelled.order)
    assert removed.retcode == mt5.TRADE_RETCODE_DONE
    in_flight = _market_order_in_flight(mt5, "#flyaaaaa")
    since = time.time() - 60
    tags = ["#fillaaaa", "#waitaaaa", "#goneaaaa", "#flyaaaaa", "#noneaaaa"]
    found = adapter.find(FindOrders(tags=tags, since=since))
    assert found["#fillaaaa"].status == "FILLED" and found["#fillaaaa"].ticket == filled.ticket
    for tag, order in (("#waitaaaa", placed.order), ("#goneaaaa", cancelled.order)):
        assert (found[tag].status, found[tag].action, found[tag].order) == ("DONE", "PLACE", order)
    assert found["#flyaaaaa"].status == "UNKNOWN" and found["#flyaaaaa"].order == in_flight
    assert "#noneaaaa" not in found


def _market_order_in_flight(mt5: SimTerminal, comment: str) -> int:
    """Make ``mt5.orders_get()`` also list a market order on its way to the trade server (the
    simulator fills market orders at once, so it never has one); return its ticket."""
    real = mt5.orders_get
    ticket = 999_999

    def orders_get(*args: Any, **kwargs: Any) -> Any:
        active = real(*args, **kwargs)
        if args or kwargs:
            return active
        flying = replaced(active[0], ticket=ticket, type=mt5.ORDER_TYPE_BUY, comment=comment)
        return (*active, flying)

    mt5.orders_get = orders_get  # type: ignore[method-assign]
    return ticket


def test_a_symbol_outside_the_market_watch_is_selected_then_traded() -> None:
    mt5 = SimTerminal(
        config=SimConfig(always_open=True)
    )  # GER40 starts unselected: symbol_info gives None and -4
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    assert mt5.symbol_info("GER40") is None
    outcome = adapter.open(OpenOrder(symbol="GER40", side=Side.BUY, volume=0.1, comment="#g"))
    assert outcome.status == "FILLED"
    assert mt5.symbol_info("GER40") is not None  # selected now
    unknown = adapter.open(OpenOrder(symbol="NOPE", side=Side.BUY, volume=0.1, comment="#n"))
    assert (unknown.status, unknown.error_code) == ("REJECTED", "MT5_REJECTED")


def test_a_terminal_lost_while_selecting_a_symbol_is_a_disconnection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    asked_for_info = mt5.last_error  # -4 for GER40's symbol_info, before the select
    selected: list[str] = []

    def select(symbol: str, enable: object = True) -> bool:
        selected.append(symbol)
        return False  # the pipe broke in the call

    monkeypatch.setattr(mt5, "symbol_select", select)
    monkeypatch.setattr(
        mt5, "last_error", lambda: (-10001, "IPC send failed") if selected else asked_for_info()
    )
    with pytest.raises(TerminalDisconnected):
        adapter.open(OpenOrder(symbol="GER40", side=Side.BUY, volume=0.1, comment="#g"))


def test_a_symbol_without_a_specification_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Selected, yet still no info: refused (nothing sent), not an outcome to reconcile.
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    monkeypatch.setattr(mt5, "symbol_info", lambda symbol: None)
    outcome = adapter.open(OpenOrder(symbol="GER40", side=Side.BUY, volume=0.1, comment="#g"))
    assert (outcome.status, outcome.error_code) == ("REJECTED", "MT5_REJECTED")
    assert mt5.positions_total() == 0 and mt5.orders_total() == 0


@pytest.mark.parametrize("call", ["positions_get", "symbol_info_tick"])
def test_a_failed_look_up_before_order_send_refuses_a_close(
    monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    # The terminal answered the look-up with an error: nothing was sent, so the CLOSE is
    # refused outright, not left as an outcome for reconciliation to settle.
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    opened = adapter.open(OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="#o"))
    assert opened.ticket is not None
    monkeypatch.setattr(mt5, call, lambda *args, **kwargs: None)
    monkeypatch.setattr(mt5, "last_error", lambda: (-1, "Terminal: Call failed"))
    outcome = adapter.close(CloseOrder(ticket=opened.ticket, comment="#c"))
    assert (outcome.status, outcome.error_code) == ("REJECTED", "MT5_REJECTED")
    assert outcome.error_msg is not None and "nothing was sent" in outcome.error_msg
    monkeypatch.setattr(mt5, "last_error", lambda: (-10001, "IPC send failed"))
    with pytest.raises(TerminalDisconnected):
        adapter.close(CloseOrder(ticket=opened.ticket, comment="#c"))
    monkeypatch.undo()
    assert mt5.positions_total() == 1  # still open: nothing reached the terminal


def test_no_trade_server_is_a_disconnection_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10031 means the request never left the terminal: retry shortly, as for any lost link.
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected

    def offline(request: dict[str, object]) -> OrderSendResult:
        return OrderSendResult((10031, 0, 0, 0.0, 0.0, 0.0, 0.0, "No connection", 1, 0, request))

    monkeypatch.setattr(mt5, "order_send", offline)
    outcome = adapter.open(OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="#x"))
    assert (outcome.status, outcome.error_code, outcome.retcode) == (
        "REJECTED",
        "MT5_DISCONNECTED",
        10031,
    )
