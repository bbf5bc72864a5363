"""Persistence of the simulated broker in SQLite: one file, one transaction per operation.

The file holds what a trade server would keep: the account, open positions, active orders,
the history of orders and deals, the ticket counters and how far each symbol's ticks were gone
through (so that a restarted terminal executes what they triggered meanwhile). Every trade
operation is one ``Transaction`` written in one SQLite transaction (WAL journal,
``synchronous=OFF``), so a process killed at any instant leaves either all of an operation
or none of it; only a power loss can drop the last commits. The broker applies a transaction to
its in-memory state after the commit succeeds, so memory never runs ahead of the file.

Without a path the same code runs on an in-memory database. Open positions and the account are
also held in memory by the broker for speed; the history is read from here, by indexed
queries, so it can grow without slowing anything down or delaying a start, except the last day
written since the start, which is also kept in memory (``recent.RecentRows``): a trade
watcher reads the last seconds several times a second.

Tables mirror the types they hold: ``history_deals`` has the columns of ``TradeDeal`` in the
same order, so a row *is* a ``TradeDeal``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar, get_type_hints

from gtw_server.terminal.sim.account import Account, Position
from gtw_server.terminal.sim.recent import RecentRows
from protocol.mt5_structs import StructSequence, TradeDeal, TradeOrder

__all__ = [
    "HISTORY_DEALS",
    "HISTORY_ORDERS",
    "SCHEMA_VERSION",
    "History",
    "Snapshot",
    "Store",
    "Transaction",
]

SCHEMA_VERSION: Final = 3  # 2: state.rolled_ms (swaps); 3: prices by time (one tick stream)

S = TypeVar("S", bound=StructSequence)


@dataclass(frozen=True, slots=True)
class History(Generic[S]):
    """A history table: where it is, what its rows are, and which column dates them."""

    table: str
    type: type[S]
    time_column: str
    time_msc_column: str


HISTORY_ORDERS: Final = History("history_orders", TradeOrder, "time_setup", "time_setup_msc")
HISTORY_DEALS: Final = History("history_deals", TradeDeal, "time", "time_msc")

PriceRow = tuple[str, int]  # symbol, time_ms: what PriceFeed.unsaved() returns


class Transaction(NamedTuple):
    """Everything one trade operation changes, committed at once and then applied in memory."""

    balance: float
    next_order: int
    next_deal: int
    put_positions: tuple[Position, ...] = ()
    drop_positions: tuple[int, ...] = ()
    put_orders: tuple[TradeOrder, ...] = ()  # active (pending) orders, new or changed
    drop_orders: tuple[int, ...] = ()
    history_orders: tuple[TradeOrder, ...] = ()
    deals: tuple[TradeDeal, ...] = ()
    rolled_ms: int | None = None  # a rollover it charged (None: unchanged)


class Snapshot(NamedTuple):
    """The broker's state as a terminal loads it at start."""

    account: Account
    next_order: int
    next_deal: int
    positions: list[Position]
    orders: list[TradeOrder]
    prices: dict[str, int]  # how far each symbol's ticks were gone through (ms)
    rolled_ms: int  # the last rollover charged; 0 in a state from before swaps


_SQL_TYPES: Final[Mapping[type, str]] = {
    int: "INTEGER",
    bool: "INTEGER",
    float: "REAL",
    str: "TEXT",
}


def _create_table(table: str, row_type: type[Any], key: str | None = None) -> str:
    """DDL for rows of ``row_type`` (a NamedTuple or struct sequence): its fields, in order."""
    hints = get_type_hints(row_type)
    columns = ", ".join(
        f'"{name}" {_SQL_TYPES[hints[name]]}{" PRIMARY KEY" if name == key else ""} NOT NULL'
        for name in row_type.__match_args__
    )
    return f"CREATE TABLE {table} ({columns})"


def _insert(table: str, row_type: type[Any], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} VALUES ({', '.join('?' * len(row_type.__match_args__))})"


_CREATE_PRICES: Final = "CREATE TABLE prices (symbol TEXT PRIMARY KEY, time_ms INTEGER NOT NULL)"
_SCHEMA: Final = (
    _create_table("account", Account),
    "CREATE TABLE state (next_order INTEGER NOT NULL, next_deal INTEGER NOT NULL,"
    " rolled_ms INTEGER NOT NULL DEFAULT 0)",
    _CREATE_PRICES,
    _create_table("positions", Position, key="ticket"),
    _create_table("orders", TradeOrder, key="ticket"),
    _create_table("history_orders", TradeOrder, key="ticket"),
    _create_table("history_deals", TradeDeal, key="ticket"),
    "CREATE INDEX history_orders_time ON history_orders (time_setup)",
    "CREATE INDEX history_orders_position ON history_orders (position_id)",
    "CREATE INDEX history_deals_time ON history_deals (time)",
    'CREATE INDEX history_deals_order ON history_deals ("order")',
    "CREATE INDEX history_deals_position ON history_deals (position_id)",
)
_TABLES: Final = (
    "account",
    "state",
    "prices",
    "positions",
    "orders",
    "history_orders",
    "history_deals",
)

_PUT_PRICE: Final = "INSERT OR REPLACE INTO prices VALUES (?, ?)"
_PUT_POSITION: Final = _insert("positions", Position, "INSERT OR REPLACE")
_DROP_POSITION: Final = "DELETE FROM positions WHERE ticket = ?"
_PUT_ORDER: Final = _insert("orders", TradeOrder, "INSERT OR REPLACE")
_DROP_ORDER: Final = "DELETE FROM orders WHERE ticket = ?"
_ADD_HISTORY_ORDER: Final = _insert("history_orders", TradeOrder)
_ADD_DEAL: Final = _insert("history_deals", TradeDeal)
_ADD_ROLLED_MS: Final = "ALTER TABLE state ADD COLUMN rolled_ms INTEGER NOT NULL DEFAULT 0"
# Schema 2 kept a tick number (250 ms each) and a price level per symbol: the time is kept.
_PRICES_BY_TIME: Final = (
    "ALTER TABLE prices RENAME TO prices_2",
    _CREATE_PRICES,
    "INSERT INTO prices SELECT symbol, tick * 250 FROM prices_2",
    "DROP TABLE prices_2",
)


class Store:
    """The broker's state in one SQLite database (a file, or memory when ``path`` is None).

    ``reset=True`` wipes whatever state the file held. One terminal at a time per file.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, reset: bool = False) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), never implicit.
        self._db = sqlite3.connect(
            ":memory:" if path is None else os.fspath(path),
            isolation_level=None,
            check_same_thread=False,  # the terminal serialises calls itself
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            # OFF: a commit survives the process being killed (the data is in the OS), which is
            # all a simulator needs; no fsync, so no WAL checkpoint stalls an order_send.
            self._db.execute("PRAGMA synchronous = OFF")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version in (1, 2) and not reset:
            with self._transaction():
                if version == 1:  # before swaps: nothing was ever rolled over
                    self._db.execute(_ADD_ROLLED_MS)
                for statement in _PRICES_BY_TIME:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            version = SCHEMA_VERSION
        if version not in (0, SCHEMA_VERSION) and not reset:
            self._db.close()
            raise RuntimeError(
                f"{path}: simulator state schema {version}, expected {SCHEMA_VERSION}; reset it"
            )
        if reset or version == 0:
            with self._transaction():
                for table in _TABLES:
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # Complete from the second after the newest row stored: what is written from now on.
        self._recent: dict[str, RecentRows[Any]] = {
            kind.table: RecentRows(kind.time_column, kind.time_msc_column, self._newest(kind) + 1)
            for kind in (HISTORY_ORDERS, HISTORY_DEALS)
        }

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def load(self) -> Snapshot | None:
        """The stored state, or None when the store is new."""
        db = self._db
        account = db.execute("SELECT * FROM account").fetchone()
        if account is None:
            return None
        next_order, next_deal, rolled_ms = db.execute(
            "SELECT next_order, next_deal, rolled_ms FROM state"
        ).fetchone()
        return Snapshot(
            account=Account(*account),
            next_order=next_order,
            next_deal=next_deal,
            positions=[Position(*row) for row in db.execute("SELECT * FROM positions")],
            orders=[TradeOrder(row) for row in db.execute("SELECT * FROM orders")],
            prices=dict(db.execute("SELECT * FROM prices")),
            rolled_ms=rolled_ms,
        )

    def create(
        self,
        account: Account,
        *,
        next_order: int,
        next_deal: int,
        deposit: TradeDeal,
        rolled_ms: int,
    ) -> Snapshot:
        """Stores a new account with its opening ``deposit`` (a balance deal), and no
        positions, orders, other history or prices; ``rolled_ms``: the last rollover before
        it, which it does not pay."""
        with self._transaction() as db:
            db.execute(_insert("account", Account), account)
            db.execute("INSERT INTO state VALUES (?, ?, ?)", (next_order, next_deal, rolled_ms))
            db.execute(_ADD_DEAL, deposit)
        self._recent[HISTORY_DEALS.table].add([deposit])
        return Snapshot(account, next_order, next_deal, [], [], {}, rolled_ms)

    def commit(self, tx: Transaction, prices: Sequence[PriceRow]) -> None:
        """Writes one operation, with the prices it saw, atomically."""
        with self._transaction() as db:
            db.execute("UPDATE account SET balance = ?", (tx.balance,))
            db.execute(
                "UPDATE state SET next_order = ?, next_deal = ?,"
                " rolled_ms = COALESCE(?, rolled_ms)",
                (tx.next_order, tx.next_deal, tx.rolled_ms),
            )
            db.executemany(_PUT_PRICE, prices)
            # Most operations touch two or three tables: skip the others (a few us each).
            for statement, rows in (
                (_PUT_POSITION, tx.put_positions),
                (_DROP_POSITION, [(ticket,) for ticket in tx.drop_positions]),
                (_PUT_ORDER, tx.put_orders),
                (_DROP_ORDER, [(ticket,) for ticket in tx.drop_orders]),
                (_ADD_HISTORY_ORDER, tx.history_orders),
                (_ADD_DEAL, tx.deals),
            ):
                if rows:
                    db.executemany(statement, rows)
        self._recent[HISTORY_ORDERS.table].add(tx.history_orders)
        self._recent[HISTORY_DEALS.table].add(tx.deals)

    def save_prices(self, prices: Sequence[PriceRow]) -> None:
        with self._transaction() as db:
            db.executemany(_PUT_PRICE, prices)

    def history_between(self, kind: History[S], date_from: int, date_to: int) -> list[S]:
        """Rows dated from ``date_from`` to ``date_to`` (seconds, both included), oldest first."""
        recent = self._recent[kind.table]
        if recent.covers(date_from):
            return recent.between(date_from, date_to)
        rows = self._db.execute(
            f"SELECT * FROM {kind.table} WHERE {kind.time_column} BETWEEN ? AND ?"
            f" ORDER BY {kind.time_msc_column}, ticket",
            (date_from, date_to),
        )
        return [kind.type(row) for row in rows]

    def history_where(
        self, kind: History[S], column: Literal["ticket", "order", "position_id"], value: int
    ) -> list[S]:
        rows = self._db.execute(
            f'SELECT * FROM {kind.table} WHERE "{column}" = ?'
            f" ORDER BY {kind.time_msc_column}, ticket",
            (value,),
        )
        return [kind.type(row) for row in rows]

    def history_count(self, kind: History[Any], date_from: int, date_to: int) -> int:
        recent = self._recent[kind.table]
        if recent.covers(date_from):
            return recent.count(date_from, date_to)
        count: int = self._db.execute(
            f"SELECT COUNT(*) FROM {kind.table} WHERE {kind.time_column} BETWEEN ? AND ?",
            (date_from, date_to),
        ).fetchone()[0]
        return count

    def _newest(self, kind: History[Any]) -> int:
        """The date (seconds) of the newest row of ``kind``'s table; -1 when it is empty."""
        newest = self._db.execute(f"SELECT MAX({kind.time_column}) FROM {kind.table}").fetchone()
        return -1 if newest[0] is None else int(newest[0])

    def close(self) -> None:
        self._db.close()
