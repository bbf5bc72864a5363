"""Persistence: the broker's state survives a restart, a reset wipes it, a kill -9 loses nothing
committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0


def opened(path: Path, **kwargs: Any) -> SimTerminal:
    kwargs.setdefault("config", SimConfig(server_timezone="UTC", always_open=True))
    mt5 = SimTerminal(state_path=path, clock=lambda: T0, **kwargs)
    assert mt5.initialize()
    return mt5


def buy(mt5: SimTerminal, volume: float = 0.1) -> int:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    result = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": volume, "type": 0, "price": tick.ask}
    )
    assert result is not None and result.retcode == 10009, result
    return result.order


def test_a_second_terminal_on_the_file_sees_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sim.sqlite3"
    with opened(
        path, config=SimConfig(server_timezone="UTC", always_open=True, balance=5_000)
    ) as first:
        kept = buy(first, 0.2)
        closed = buy(first)
        tick = first.symbol_info_tick("EURUSD")
        assert tick is not None
        first.order_send(
            {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "price": tick.bid}
            | {"position": closed}
        )
        positions = first.positions_get()
        account = first.account_info()
        deals = first.history_deals_get(0, T0 + 1)
    with opened(
        path, config=SimConfig(server_timezone="UTC", always_open=True, balance=1)
    ) as second:  # the stored account wins
        assert second.positions_get() == positions
        assert [p.ticket for p in second.positions_get() or ()] == [kept]
        assert second.account_info() == account
        assert second.history_deals_get(0, T0 + 1) == deals
        assert second.history_orders_total(0, T0 + 1) == 3
        assert second.symbol_info_tick("EURUSD") == tick  # prices continue from the stored ones
        later = buy(second)
        assert later > closed  # ticket counters continue


def test_a_restart_executes_what_the_prices_triggered_while_it_was_down(tmp_path: Path) -> None:
    """The trade server does not stop with the terminal: a take profit that the price reached
    while no terminal ran is filled at the tick that reached it, found in the tick history."""
    path = tmp_path / "sim.sqlite3"
    with opened(path) as first:
        ticket = buy(first)
        eurusd = first.symbol_info_tick("EURUSD")
        assert eurusd is not None
        target = round(eurusd.bid + 0.0005, 5)
        change = {"action": 6, "symbol": "EURUSD", "position": ticket, "tp": target, "sl": 0.0}
        assert first.order_send(change).retcode == 10009  # type: ignore[union-attr]
    later = T0 + 7 * 86_400
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: later,
    ) as second:
        assert second.initialize()
        assert second.positions_total() == 0
        (closing,) = [d for d in second.history_deals_get(position=ticket) or () if d.entry]
        ticks = second.copy_ticks_range("EURUSD", T0, later, second.COPY_TICKS_ALL)
        assert ticks is not None
        after = ticks[ticks["time_msc"] > T0 * 1000]
        reached = after[after["bid"] >= target][0]
        assert (closing.time_msc, closing.price, closing.reason) == (
            reached["time_msc"],
            reached["bid"],
            second.DEAL_REASON_TP,
        )
        now = second.symbol_info_tick("XAUUSD")
        assert now is not None and later * 1000 - 60_000 < now.time_msc <= later * 1000


def test_the_stored_margin_mode_wins_over_the_config(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    opened(
        path, config=SimConfig(server_timezone="UTC", always_open=True, margin_mode="netting")
    ).close()
    with opened(
        path, config=SimConfig(server_timezone="UTC", always_open=True, margin_mode="hedging")
    ) as again:
        account = again.account_info()
        assert account is not None
        assert account.margin_mode == again.ACCOUNT_MARGIN_MODE_RETAIL_NETTING


def test_reset_starts_the_file_afresh(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    with opened(path) as first:
        buy(first)
    with opened(
        path, reset=True, config=SimConfig(server_timezone="UTC", always_open=True, balance=777)
    ) as second:
        assert second.positions_get() == ()
        (deposit,) = second.history_deals_get(0, T0 + 1) or ()  # only the new opening deposit
        assert (deposit.type, deposit.profit) == (second.DEAL_TYPE_BALANCE, 777)
        account = second.account_info()
        assert account is not None and account.balance == 777


def test_the_file_uses_wal_and_in_memory_terminals_are_separate(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    opened(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    one, two = (
        SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True)),
        SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True)),
    )
    one.initialize()
    two.initialize()
    buy(one)
    assert (one.positions_total(), two.positions_total()) == (1, 0)


def test_a_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="schema 99"):
        SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True), state_path=path)
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), state_path=path, reset=True
    ) as mt5:  # unless it is to be reset
        assert mt5.initialize()
        assert mt5.positions_total() == 0


def test_a_file_from_before_swaps_is_upgraded_and_pays_from_the_next_rollover(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.sqlite3"
    with opened(path) as first:  # T0 is a Tuesday, 22:13 UTC
        ticket = buy(first)
    with sqlite3.connect(path) as db:  # as schema 1 left it: no rollover column, price levels
        db.execute("ALTER TABLE state DROP COLUMN rolled_ms")
        db.execute("DROP TABLE prices")
        db.execute("CREATE TABLE prices (symbol TEXT PRIMARY KEY, tick INTEGER, level REAL)")
        db.execute("INSERT INTO prices VALUES ('EURUSD', ?, 0.1)", (int(T0 * 4),))  # 250 ms
        db.execute("PRAGMA user_version = 1")
    day = 86_400.0
    # Back a day later: Wednesday's rollover, missed while it ran the old schema, is not charged.
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: T0 + day,
    ) as upgraded:
        assert upgraded.initialize()
        (position,) = upgraded.positions_get(ticket=ticket) or ()
        assert position.swap == 0.0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)
        # EURUSD's ticks were gone through to the old tick; the terminal went on to now.
        (seen_ms,) = db.execute("SELECT time_ms FROM prices WHERE symbol = 'EURUSD'").fetchone()
        assert seen_ms >= T0 * 1000
    # Thursday's rollover is: one night of EURUSD's -7 points on 0.1 lot.
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: T0 + 2 * day,
    ) as later:
        assert later.initialize()
        (position,) = later.positions_get(ticket=ticket) or ()
        assert position.swap == -0.7


def test_kill_9_loses_nothing_that_was_committed(tmp_path: Path) -> None:
    """A child trades in a loop and reports each fill only after order_send returned (the
    commit is before the return); it is killed mid-stream. Every reported fill survives."""
    path = tmp_path / "sim.sqlite3"
    child = textwrap.dedent(
        f"""
        import sys
        from gtw_server.terminal.sim import SimConfig, SimTerminal
        mt5 = SimTerminal(state_path={str(path)!r}, config=SimConfig(always_open=True, balance=1e9))
        mt5.initialize()
        while True:
            tick = mt5.symbol_info_tick("EURUSD")
            result = mt5.order_send({{"action": 1, "symbol": "EURUSD", "volume": 0.01,
                                      "type": 0, "price": tick.ask, "deviation": 100}})
            print(result.order, flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    reported = [int(process.stdout.readline()) for _ in range(300)]
    process.send_signal(signal.SIGKILL)
    process.wait()
    with opened(path) as after:
        tickets = {p.ticket for p in after.positions_get() or ()}
        assert set(reported) <= tickets
        assert after.history_deals_total(0, 2**31 - 1) == len(tickets) + 1  # and the deposit


def test_pending_orders_and_stops_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    with opened(path) as first:
        tick = first.symbol_info_tick("EURUSD")
        assert tick is not None
        request = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2}
        placed = first.order_send(request | {"price": round(tick.ask - 0.01, 5)})
        assert placed is not None and placed.retcode == 10009
        kept = buy(first)
        stops = {"action": 6, "position": kept, "sl": round(tick.bid - 0.01, 5), "tp": 0.0}
        result = first.order_send(stops)
        assert result is not None and result.retcode == 10009
        orders, positions = first.orders_get(), first.positions_get()
    with opened(path) as second:
        assert second.orders_get() == orders
        assert second.positions_get() == positions
        assert second.order_send({"action": 8, "order": placed.order}) is not None
        assert second.orders_total() == 0


def test_tickets_are_unique_across_resets_and_continue_across_restarts(tmp_path: Path) -> None:
    # A client that keys its records by ticket must never see one twice: a reset (a new
    # state) starts past every ticket of the state it replaces, as a real server's never repeat.
    path = tmp_path / "sim.sqlite3"
    with opened(path) as first:
        before = [buy(first) for _ in range(3)]
        deposit = first.history_deals_get(0, 2**31 - 1)[0].ticket
    with opened(path) as restarted:  # the same state: its numbering goes on
        assert buy(restarted) == before[-1] + 1
    later = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: T0 + 0.5,
        reset=True,
    )
    with later:
        assert later.initialize()
        after = buy(later)
        (new_deposit, *_) = later.history_deals_get(0, 2**31 - 1)
    assert after > before[-1] + 1 and new_deposit.ticket > deposit
