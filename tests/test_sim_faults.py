"""The fault switches of ``SimConfig``: latency, hangs, lost replies, outages, requotes, rejects.

Each test shows one switch from the outside, as the gateway's worker sees it: what
``order_send`` returns, what ``last_error()`` says, and what the state file holds meanwhile.
"""

from __future__ import annotations

import bisect
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import eventually, stored_deals

from gtw_server.terminal import OrderSendResult
from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
SUCCESS = (1, "Success")
NO_IPC = (-10004, "No IPC connection")
SEND_FAILED = (-10001, "IPC send failed")
RECV_FAILED = (-10002, "IPC recv failed")
NOT_FOUND = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")


class Clock:
    """A terminal clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def terminal(
    path: Path | None = None, clock: Callable[[], float] = lambda: T0, **switches: Any
) -> SimTerminal:
    mt5 = SimTerminal(
        state_path=path, config=SimConfig(**({"always_open": True} | switches)), clock=clock
    )
    assert mt5.initialize()
    return mt5


def buy(symbol: str = "EURUSD", volume: float = 0.1) -> dict[str, Any]:
    """A market buy with a deviation wide enough for any price the walk reaches in a test."""
    return {
        "action": 1,
        "symbol": symbol,
        "volume": volume,
        "type": 0,
        "price": 1.1 if symbol == "EURUSD" else 0.0,
        "deviation": 100_000,
    }


def send_in_thread(mt5: SimTerminal, request: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(mt5.order_send(request)), daemon=True, name="order_send"
    )
    thread.start()
    return thread, results


# -- order_latency_ms ----------------------------------------------------------------------------


def test_latency_comes_after_the_fill_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    mt5 = terminal(path, order_latency_ms=400, order_latency_holds_gil=False)
    started = time.monotonic()
    thread, results = send_in_thread(mt5, buy())
    eventually(lambda: stored_deals(path) == 1, "the fill to be committed")
    assert thread.is_alive() and results == []  # filled, and still not answered
    thread.join()
    assert time.monotonic() - started >= 0.4
    (result,) = results
    assert result.retcode == 10009
    assert mt5.last_error() == SUCCESS


def test_latency_applies_to_refusals_but_not_to_argument_errors() -> None:
    mt5 = terminal(order_latency_ms=100)
    started = time.perf_counter()
    assert mt5.order_send(buy() | {"sl": 0}) is None  # the binding's own check: no round trip
    assert time.perf_counter() - started < 0.05
    refused = mt5.order_send(buy(volume=0.001))
    assert refused is not None and refused.retcode == 10014
    assert time.perf_counter() - started >= 0.1
    started = time.perf_counter()
    assert mt5.order_check(buy()) is not None  # order_check is not delayed
    assert time.perf_counter() - started < 0.05


def _largest_stall(holds_gil: bool, latency_ms: float) -> float:
    """The longest time another Python thread made no progress during a delayed order_send.

    A counter thread stamps the time in a loop; a stall is a gap between two of its stamps. A
    stall is only seen once the counter has stamped again after it, and nothing says that
    happens before order_send returns: once the GIL is free again, any waiting thread may take
    it (a third thread, say an HTTP server's ``serve_forever`` waking from its ``select``),
    and the caller may get it back and run on for a whole switch interval. Stopping the counter
    then would lose the stall, so the counter is stopped only once it has stamped after the
    call, and only the stamps from just before the call to just after it are measured.
    """
    mt5 = terminal(order_latency_ms=latency_ms, order_latency_holds_gil=holds_gil)
    stamps: list[float] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            stamps.append(time.monotonic())

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    eventually(lambda: len(stamps) > 100, "the counter to run")
    sent = time.monotonic()
    result = mt5.order_send(buy())
    returned = time.monotonic()
    eventually(lambda: stamps[-1] > returned, "a stamp after the call")  # progress since
    done.set()
    counter.join()
    assert result is not None and result.retcode == 10009
    first = bisect.bisect_right(stamps, sent) - 1  # the last stamp before the call
    last = bisect.bisect_right(stamps, returned)  # the first stamp after it
    assert 0 <= first < last < len(stamps)
    return max(b - a for a, b in itertools.pairwise(stamps[first : last + 1]))


def test_latency_holding_the_gil_freezes_every_other_thread() -> None:
    assert _largest_stall(holds_gil=True, latency_ms=250) >= 0.24


def test_latency_without_the_gil_lets_other_threads_run() -> None:
    assert _largest_stall(holds_gil=False, latency_ms=250) < 0.1


# -- hang_on_order -------------------------------------------------------------------------------


def test_the_nth_order_commits_and_never_returns(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    mt5 = terminal(path, hang_on_order=2)
    assert mt5.order_send(buy(volume=0.01) | {"sl": 0}) is None  # not an order: not counted
    first = mt5.order_send(buy())
    assert first is not None and first.retcode == 10009
    thread, results = send_in_thread(mt5, buy())
    eventually(lambda: stored_deals(path) == 2, "the second fill to be committed")
    cpu = time.process_time()
    thread.join(0.3)
    assert thread.is_alive() and results == []
    assert time.process_time() - cpu < 0.1  # it blocks; it does not spin


def test_a_hung_terminal_dies_on_sigkill_with_its_fill_kept(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    child = textwrap.dedent(
        f"""
        from gtw_server.terminal.sim import SimConfig, SimTerminal
        config = SimConfig(always_open=True, hang_on_order=1)
        mt5 = SimTerminal(state_path={str(path)!r}, config=config)
        mt5.initialize()
        mt5.order_send({buy()!r})
        print("returned", flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        eventually(lambda: stored_deals(path) == 1, "the fill to be committed", timeout=30)
        assert process.poll() is None
    finally:
        os.kill(process.pid, signal.SIGKILL)
    stdout, _ = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert stdout == ""
    with SimTerminal(
        config=SimConfig(always_open=True), state_path=path
    ) as restarted:  # a new worker: it counts from 1 again
        assert restarted.initialize()
        assert restarted.positions_total() == 1


# -- lose_reply_on_order -------------------------------------------------------------------------


def test_a_lost_reply_is_a_recv_failure_after_the_fill() -> None:
    mt5 = terminal(lose_reply_on_order=1)
    assert mt5.order_send(buy()) is None
    assert mt5.last_error() == RECV_FAILED
    assert mt5.positions_total() is None
    assert mt5.last_error() == NO_IPC
    assert mt5.initialize()  # the terminal is back at once; the order did execute
    assert mt5.positions_total() == 1
    second = mt5.order_send(buy())
    assert second is not None and second.retcode == 10009


# -- disconnect_at_s / disconnect_for_s ----------------------------------------------------------


def test_the_terminal_goes_away_and_comes_back() -> None:
    clock = Clock()
    mt5 = terminal(clock=clock, disconnect_at_s=10, disconnect_for_s=5)
    clock.now = T0 + 9.999
    assert mt5.terminal_info() is not None
    clock.now = T0 + 10
    assert mt5.terminal_info() is None  # the pipe is broken: the write fails
    assert mt5.last_error() == SEND_FAILED
    for call in (mt5.terminal_info, mt5.account_info, lambda: mt5.order_send(buy())):
        assert call() is None
        assert mt5.last_error() == NO_IPC  # the binding closed its handle
    assert mt5.initialize() is False
    assert mt5.last_error() == NOT_FOUND
    clock.now = T0 + 14.999
    assert mt5.initialize() is False
    clock.now = T0 + 15
    assert mt5.terminal_info() is None  # no reconnection by itself
    assert mt5.last_error() == NO_IPC
    assert mt5.initialize() is True
    info = mt5.terminal_info()
    assert info is not None and info.connected
    assert mt5.positions_total() == 0  # nothing was executed while it was away
    clock.now = T0 + 1000
    assert mt5.terminal_info() is not None  # once per terminal object


def test_the_first_failure_executes_nothing() -> None:
    clock = Clock()
    mt5 = terminal(clock=clock, disconnect_at_s=1, disconnect_for_s=0)
    clock.now = T0 + 1
    assert mt5.order_send(buy()) is None
    assert mt5.last_error() == SEND_FAILED
    assert mt5.initialize()  # a zero-length outage: the terminal restarted at once
    assert mt5.positions_total() == 0


def test_an_order_in_flight_when_the_terminal_dies_is_filled_and_unanswered() -> None:
    start = time.monotonic()
    mt5 = terminal(
        clock=lambda: T0 + time.monotonic() - start,
        disconnect_at_s=0.05,
        disconnect_for_s=0.0,
        order_latency_ms=200,
        order_latency_holds_gil=False,
    )
    assert mt5.order_send(buy()) is None
    assert mt5.last_error() == RECV_FAILED
    assert mt5.initialize()
    assert mt5.positions_total() == 1


# -- requote_rate / reject_rate ------------------------------------------------------------------


def results_of(mt5: SimTerminal, count: int, symbol: str = "EURUSD") -> list[OrderSendResult]:
    results = [mt5.order_send(buy(symbol)) for _ in range(count)]
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def test_a_reject_is_10006_and_changes_nothing() -> None:
    mt5 = terminal(reject_rate=1.0)
    (result,) = results_of(mt5, 1)
    assert (result.retcode, result.comment) == (10006, "Request rejected")
    assert (result.deal, result.order, result.volume, result.price) == (0, 0, 0.0, 0.0)
    assert mt5.positions_total() == 0
    refused = mt5.order_send(buy(volume=0.001))  # the server's own refusals come first
    assert refused is not None and refused.retcode == 10014


def test_a_requote_carries_the_current_quotes() -> None:
    mt5 = terminal(requote_rate=1.0)
    (result,) = results_of(mt5, 1)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    assert (result.retcode, result.comment) == (10004, "Requote")
    assert (result.deal, result.order, result.volume, result.price) == (0, 0, 0.0, 0.0)
    assert (result.bid, result.ask) == (tick.bid, tick.ask)
    assert mt5.positions_total() == 0
    (gold,) = results_of(mt5, 1, "XAUUSD")  # Market execution never requotes
    assert gold.retcode == 10009


def test_rates_are_shares_and_the_seed_fixes_the_sequence() -> None:
    def retcodes(seed: int) -> list[int]:
        mt5 = terminal(seed=seed, balance=1e9, requote_rate=0.2, reject_rate=0.1)
        return [result.retcode for result in results_of(mt5, 300)]

    first = retcodes(5)
    assert first == retcodes(5)
    assert first != retcodes(6)
    assert 0.05 < first.count(10006) / 300 < 0.15
    assert 0.14 < first.count(10004) / 300 < 0.26
    assert first.count(10009) == 300 - first.count(10006) - first.count(10004)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signals_do_not_let_other_threads_in_during_a_gil_holding_latency() -> None:
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    # A separate process signals us every 20 ms: each would cut a bare nanosleep short.
    pinger = subprocess.Popen(
        ["sh", "-c", f"for i in $(seq 20); do kill -USR1 {os.getpid()}; sleep 0.02; done"]
    )
    try:
        assert _largest_stall(holds_gil=True, latency_ms=250) >= 0.24
    finally:
        pinger.wait(10)
        signal.signal(signal.SIGUSR1, previous)
