"""The simulator's recent history in memory (``gtw_server.terminal.sim.recent``): every answer
it gives is SQLite's, whatever order rows come in, across a restart, and once rows are let go."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gtw_server.terminal.sim.recent import RecentRows
from gtw_server.terminal.sim.store import HISTORY_DEALS, Store, Transaction
from protocol.mt5_structs import TradeDeal, build

T0 = 1_700_000_000


def deal(ticket: int, msc: int, seconds: int | None = None) -> TradeDeal:
    fields: dict[str, Any] = dict.fromkeys(TradeDeal.__match_args__, 0)
    fields |= {"ticket": ticket, "time": msc // 1000 if seconds is None else seconds}
    fields |= {"time_msc": msc, "symbol": "EURUSD", "comment": "", "external_id": ""}
    for name in ("volume", "price", "commission", "swap", "profit", "fee"):
        fields[name] = 0.0
    return build(TradeDeal, fields)


def add(store: Store, *deals: TradeDeal) -> None:
    store.commit(Transaction(balance=0.0, next_order=1, next_deal=1, deals=deals), [])


def sql(path: Path, date_from: int, date_to: int) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(
            db.execute(
                "SELECT * FROM history_deals WHERE time BETWEEN ? AND ? ORDER BY time_msc, ticket",
                (date_from, date_to),
            )
        )


def test_ranges_are_sqlites_whatever_order_rows_come_in(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    store = Store(path)
    chance = random.Random(7)
    tickets = iter(range(1, 10_000))
    for _ in range(300):  # mostly in time order, some late (a trigger executed at its time)
        late = chance.random() < 0.2
        msc = T0 * 1000 + chance.randrange(0, 60_000 if late else 600_000)
        add(store, *(deal(next(tickets), msc + i) for i in range(chance.randrange(1, 4))))
    recent = store._recent[HISTORY_DEALS.table]
    assert recent.covers(T0 - 10) and len(recent) > 300
    for _ in range(200):
        start = T0 + chance.randrange(-5, 700)
        end = start + chance.randrange(-2, 120)
        answer = store.history_between(HISTORY_DEALS, start, end)
        assert [tuple(row) for row in answer] == sql(path, start, end)
        assert store.history_count(HISTORY_DEALS, start, end) == len(answer)
    store.close()


def test_after_a_restart_older_rows_come_from_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    store = Store(path)
    add(store, deal(1, T0 * 1000), deal(2, (T0 + 10) * 1000 + 500))
    store.close()
    store = Store(path)
    recent = store._recent[HISTORY_DEALS.table]
    assert recent.complete_from == T0 + 11  # the second after the newest stored row
    add(store, deal(3, (T0 + 20) * 1000), deal(4, (T0 + 5) * 1000))  # 4: executed late
    assert [row.ticket for row in recent.between(T0 + 11, T0 + 30)] == [3]
    assert [row.ticket for row in store.history_between(HISTORY_DEALS, T0, T0 + 30)] == [
        1,
        4,
        2,
        3,
    ]
    assert store.history_count(HISTORY_DEALS, T0 + 5, T0 + 20) == 3
    store.close()


def test_rows_older_than_a_day_are_let_go_and_still_answered(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    store = Store(path)
    recent = store._recent[HISTORY_DEALS.table]
    old = [deal(ticket, (T0 + ticket) * 1000) for ticket in range(1, 5_001)]
    add(store, *old)
    add(store, deal(9_999, (T0 + 30 * 3600) * 1000))  # 30 h later: the old ones go
    assert recent.complete_from == T0 + 4 * 3600 and len(recent) == 1
    with pytest.raises(ValueError, match="not kept"):
        recent.between(T0, T0 + 10)
    assert len(store.history_between(HISTORY_DEALS, T0, T0 + 30 * 3600)) == 5_001
    store.close()


def test_a_row_whose_times_disagree_is_never_answered_from_memory() -> None:
    rows: RecentRows[TradeDeal] = RecentRows("time", "time_msc", 0)
    rows.add([deal(1, T0 * 1000), deal(2, (T0 + 5) * 1000, seconds=T0 + 9)])
    assert not rows.covers(T0 + 9) and rows.covers(T0 + 10)
