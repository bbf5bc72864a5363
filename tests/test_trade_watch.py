"""The trade watcher, one look at a time: what each difference between two looks becomes
(deal, order and account events), in which order, committed with the watcher's place in a
real event log, and resumed from that place by a restarted watcher or after a failed commit.

The worker is a ``Terminal``: its state is set by each test, and ``call(WATCH, watch)``
answers from it the way ``TradeReader.watch`` does (deals after ``after_deal``, the history's
record of each ``known`` order no longer active, the pending orders after ``after_order`` that
came and went), so the ``Watch`` the watcher sends decides what it is told, as with a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from support import LockHolder

from gtw_server import trade_watch
from gtw_server.errors import EventLogError
from gtw_server.event_log import EventLog
from gtw_server.operations import WATCH
from gtw_server.tagging import order_tag, terminal_comment
from gtw_server.trade_watch import TradeWatcher
from gtw_server.trades import Watch, Watched
from protocol import Account, Deal, Event, Order, Position, Side

# ORDER_TYPE_* and ORDER_STATE_*
BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BUY_STOP_LIMIT = 2, 3, 4, 5, 6
PLACED, CANCELED, FILLED, REJECTED, EXPIRED = 1, 2, 4, 5, 6

NOW = 1_700_000_000.25  # the gateway's wall clock during these tests
DAY_BEFORE = (int(NOW) - 86_400) // 3600 * 3600  # the hour the history is read from
REQUESTS = ("ord-1", "ord-2", "plc-1", "plc-2")
OWNERS = {order_tag(uuid): uuid for uuid in REQUESTS}  # the journal's tags


def tagged(uuid: str, comment: str | None = None) -> str:
    return terminal_comment(order_tag(uuid), comment)


def order(
    ticket: int,
    *,
    type: int = BUY_LIMIT,
    state: int = PLACED,
    price: float = 1.08,
    stoplimit: float = 0.0,
    sl: float = 0.0,
    tp: float = 0.0,
    volume: float = 0.1,
    volume_current: float | None = None,
    price_current: float = 1.0850,
    expiration: int = 0,
    comment: str = "",
    symbol: str = "EURUSD",
) -> Order:
    done = state not in (0, PLACED)
    return Order(
        ticket=ticket,
        time_setup=1_699_999_000,
        time_setup_msc=1_699_999_000_250,
        time_done=1_699_999_500 if done else 0,
        time_done_msc=1_699_999_500_750 if done else 0,
        time_expiration=expiration,
        type=type,
        type_time=2 if expiration else 0,  # ORDER_TIME_SPECIFIED, ORDER_TIME_GTC
        type_filling=2,
        state=state,
        magic=42,
        position_id=ticket if state == FILLED else 0,
        position_by_id=0,
        reason=3,  # ORDER_REASON_EXPERT
        volume_initial=volume,
        volume_current=volume if volume_current is None else volume_current,
        price_open=price,
        sl=sl,
        tp=tp,
        price_current=price_current,
        price_stoplimit=stoplimit,
        symbol=symbol,
        comment=comment,
        external_id="",
    )


def deal(ticket: int, *, order: int = 0, comment: str = "", volume: float = 0.1) -> Deal:
    return Deal(
        ticket=ticket,
        order=order or ticket + 10_000,
        time=1_699_999_600,
        time_msc=1_699_999_600_125,
        type=0,  # DEAL_TYPE_BUY
        entry=0,  # DEAL_ENTRY_IN
        magic=42,
        position_id=order or ticket + 10_000,
        reason=3,  # DEAL_REASON_EXPERT
        volume=volume,
        price=1.08512,
        commission=-0.35,
        swap=0.0,
        profit=0.0,
        fee=0.0,
        symbol="EURUSD",
        comment=comment,
        external_id="",
    )


def account(
    balance: float = 10_000.0,
    equity: float = 10_000.0,
    margin: float = 0.0,
    margin_level: float = 0.0,
    credit: float = 0.0,
) -> Account:
    return Account(
        login=5_001_234,
        server="Demo-Server",
        currency="USD",
        leverage=100,
        balance=balance,
        equity=equity,
        margin=margin,
        margin_free=equity - margin,
        margin_level=margin_level,
        profit=equity - balance,
        trade_mode="DEMO",
        trade_allowed=True,
        credit=credit,
        name="Test Trader",
        company="Test Broker Ltd",
        margin_mode="HEDGING",
    )


def position(ticket: int, volume: float = 0.1) -> Position:
    return Position(
        ticket=ticket,
        symbol="EURUSD",
        type=Side.BUY,
        volume=volume,
        price_open=1.08512,
        price_current=1.08600,
        sl=0.0,
        tp=0.0,
        profit=8.8,
        swap=0.0,
        magic=42,
        comment=tagged("ord-1"),
        time=1_699_999_600,
    )


class Terminal:
    """The worker, as the trade watcher sees it: the terminal's state, and every ``Watch``
    it was asked."""

    def __init__(self) -> None:
        self.account = account()
        self.positions: list[Position] = []
        self.orders: list[Order] = []  # the pending orders, active
        self.deals: list[Deal] = []  # the history's deals
        self.history: dict[int, Order] = {}  # the history's orders, by ticket
        self.asked: list[Watch] = []

    async def call(self, op: object, argument: object) -> Watched:
        assert op is WATCH and isinstance(argument, Watch)
        self.asked.append(argument)
        active = {o.ticket for o in self.orders}
        new = [o for o in self.history.values() if o.ticket > argument.after_order]
        return Watched(
            account=self.account,
            positions=list(self.positions),
            orders=list(self.orders),
            deals=sorted(
                (d for d in self.deals if d.ticket > argument.after_deal), key=lambda d: d.ticket
            ),
            ended=[
                self.history[t] for t in argument.known if t not in active and t in self.history
            ],
            brief=sorted(
                (o for o in new if 2 <= o.type <= 7 and o.ticket not in active),
                key=lambda o: o.ticket,
            ),
            last_order=max(
                [argument.after_order, *(o.ticket for o in new), *(o.ticket for o in self.orders)]
            ),
        )

    def fill(self, pending: Order, deal_ticket: int) -> None:
        """``pending`` filled: gone from the active orders, into the history, with its deal."""
        self.orders = [o for o in self.orders if o.ticket != pending.ticket]
        self.history[pending.ticket] = msgspec.structs.replace(pending, state=FILLED)
        self.deals.append(deal(deal_ticket, order=pending.ticket, comment=pending.comment))


class Published:
    """The event socket: what the watcher published, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def trade(self, event: Event) -> None:
        self.events.append(event)


class Clock:
    """``time`` as the watcher module sees it: the wall clock still, ``monotonic`` moved by
    the test."""

    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 500.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(trade_watch, "time", fake)  # only the watcher's module sees it
    return fake


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite3"


@pytest.fixture
def logs(log_path: Path) -> Iterator[list[EventLog]]:
    """The event logs opened on ``log_path``; the first is opened here, all closed after."""
    opened = [EventLog(log_path, retention_s=86_400.0, busy_timeout_ms=50)]
    yield opened
    for log in opened:
        log.close()


@pytest.fixture
def log(logs: list[EventLog]) -> EventLog:
    return logs[0]


def watcher(
    terminal: Terminal,
    log: EventLog,
    publisher: Published | None = None,
    *,
    account_interval_s: float = 1e9,
) -> TradeWatcher:
    return TradeWatcher(
        cast(Any, terminal),
        log,
        cast(Any, publisher),
        run="run-1",
        owner=OWNERS.get,
        interval_s=1.0,
        account_interval_s=account_interval_s,
    )


def told(events: list[Event]) -> list[tuple[str, int | None, str | None, str | None]]:
    """(kind, ticket, change, uuid) of each event; an account event's ticket is ``None``."""
    said = []
    for e in events:
        ticket = e.deal.ticket if e.deal else e.order.ticket if e.order else None
        said.append((e.kind, ticket, e.change, e.uuid))
    return said


def trades(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind != "account"]


async def test_new_deals_are_told_once_with_the_uuid_of_their_tag(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    terminal.deals = [
        deal(100, comment=tagged("ord-1", "breakout [sl 1.08]")),  # the broker appended
        deal(101, comment="by hand"),
        deal(102, comment=order_tag("someone-else")),  # a tag this gateway never sent
        deal(103, comment=""),
    ]
    published = Published()
    watching = watcher(terminal, log, published)

    first = await watching.look()
    assert terminal.asked[0] == Watch(
        after_deal=0, deals_from=int(NOW), after_order=0, known=[], day_from=DAY_BEFORE
    )  # nothing tallied yet: the history since then is read whole
    assert told(trades(first)) == [
        ("deal", 100, None, "ord-1"),
        ("deal", 101, None, None),
        ("deal", 102, None, None),
        ("deal", 103, None, None),
    ]
    assert [e.deal for e in trades(first)] == terminal.deals  # every field, as the terminal's
    assert all(e.symbol == "EURUSD" and e.run == "run-1" for e in trades(first))

    terminal.deals.append(deal(104, comment=tagged("ord-2")))
    second = await watching.look()
    assert terminal.asked[1].after_deal == 103  # only the deals after the last one seen
    assert told(second) == [("deal", 104, None, "ord-2")]

    assert await watching.look() == []
    assert terminal.asked[2].after_deal == 104
    # Numbered without gaps, published as numbered, and kept in the log.
    assert [e.seq for e in published.events] == list(range(1, len(published.events) + 1))
    assert published.events == [*first, *second]
    assert log.since(0, 100).events == published.events


async def test_pending_orders_placed_modified_and_triggered(clock: Clock, log: EventLog) -> None:
    terminal = Terminal()
    limit = order(20, type=BUY_LIMIT, price=1.0800, comment=tagged("plc-1"))
    stop_limit = order(21, type=BUY_STOP_LIMIT, price=1.0900, stoplimit=1.0890)
    terminal.orders = [limit, stop_limit]
    watching = watcher(terminal, log)
    assert told(trades(await watching.look())) == [
        ("order", 20, "PLACED", "plc-1"),
        ("order", 21, "PLACED", None),
    ]
    assert await watching.look() == []  # nothing changed

    new = order(22, type=SELL_STOP, price=1.0700, comment=tagged("plc-2"))
    terminal.orders = [limit, stop_limit, new]
    assert told(await watching.look()) == [("order", 22, "PLACED", "plc-2")]
    assert terminal.asked[-1].known == [20, 21]

    moved = msgspec.structs.replace(limit, price_open=1.0790, sl=1.0750)
    terminal.orders = [moved, msgspec.structs.replace(stop_limit, price_current=1.0870), new]
    (modified,) = await watching.look()  # the market moving is no modification
    assert told([modified]) == [("order", 20, "MODIFIED", "plc-1")]
    assert modified.order == moved

    partly = msgspec.structs.replace(new, volume_current=0.04)  # a partial fill
    expiring = msgspec.structs.replace(moved, time_expiration=1_700_086_400, type_time=2)
    terminal.orders = [expiring, stop_limit, partly]
    assert told(await watching.look()) == [
        ("order", 20, "MODIFIED", "plc-1"),
        ("order", 22, "MODIFIED", "plc-2"),
    ]

    # The stop price is reached: the stop-limit order becomes its limit order (same ticket).
    limit_of = msgspec.structs.replace(stop_limit, type=BUY_LIMIT, price_open=1.0890)
    terminal.orders = [expiring, limit_of, partly]
    (triggered,) = await watching.look()
    assert told([triggered]) == [("order", 21, "TRIGGERED", None)]
    assert triggered.order == limit_of and triggered.symbol == "EURUSD"
    assert await watching.look() == []


@pytest.mark.parametrize(
    ("state", "change"),
    [(CANCELED, "CANCELLED"), (FILLED, "FILLED"), (EXPIRED, "EXPIRED"), (REJECTED, "REJECTED")],
)
async def test_an_order_gone_is_told_by_its_history_state(
    clock: Clock, log: EventLog, state: int, change: str
) -> None:
    terminal = Terminal()
    pending = order(30, type=SELL_LIMIT, price=1.0950, comment=tagged("plc-1"))
    terminal.orders = [pending]
    watching = watcher(terminal, log)
    assert told(trades(await watching.look())) == [("order", 30, "PLACED", "plc-1")]

    terminal.orders = []
    record = msgspec.structs.replace(pending, state=state, time_done=1_700_000_000)
    terminal.history[30] = record
    (gone,) = await watching.look()
    assert terminal.asked[-1].known == [30]  # what became of it was asked
    assert told([gone]) == [("order", 30, change, "plc-1")]
    assert gone.order == record  # the history's record, with its state

    assert await watching.look() == []  # told once
    assert terminal.asked[-1].known == []


async def test_an_order_gone_without_a_record_is_told_cancelled_as_last_seen(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    pending = order(31, type=BUY_STOP, price=1.0950)
    terminal.orders = [pending]
    watching = watcher(terminal, log)
    await watching.look()
    terminal.orders = []  # and no history record of it
    (gone,) = await watching.look()
    assert told([gone]) == [("order", 31, "CANCELLED", None)]
    assert gone.order == pending


async def test_an_order_placed_and_gone_between_two_looks_is_told_once(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    terminal.orders = [order(40, type=BUY_LIMIT, price=1.07)]
    watching = watcher(terminal, log)
    await watching.look()
    assert terminal.asked[-1].after_order == 0

    quick = order(41, type=BUY_STOP, price=1.0860, comment=tagged("plc-2"))
    terminal.fill(quick, deal_ticket=500)  # placed, triggered and filled between two looks
    terminal.history[42] = order(42, type=SELL_LIMIT, state=CANCELED)  # placed, cancelled
    events = await watching.look()
    assert told(events) == [
        ("order", 41, "PLACED", "plc-2"),
        ("order", 42, "PLACED", None),
        ("deal", 500, None, "plc-2"),
        ("order", 41, "FILLED", "plc-2"),
        ("order", 42, "CANCELLED", None),
    ]
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 5))

    assert await watching.look() == []  # not told twice
    assert terminal.asked[-1].after_order == 42
    assert terminal.asked[-1].known == [40]


async def test_one_looks_events_come_in_the_order_they_happen(clock: Clock, log: EventLog) -> None:
    terminal = Terminal()
    resting = order(50, type=BUY_LIMIT, price=1.0800, comment=tagged("plc-1"))
    terminal.orders = [resting]
    watching = watcher(terminal, log)
    await watching.look()

    # Between two looks: a new order, the resting one filled (its deal), the balance moved.
    terminal.orders = [order(51, type=SELL_STOP, price=1.07, comment=tagged("plc-2"))]
    terminal.fill(resting, deal_ticket=600)
    terminal.account = account(balance=9_999.65, equity=9_999.65)
    events = await watching.look()
    assert told(events) == [
        ("order", 51, "PLACED", "plc-2"),  # orders placed or changed
        ("deal", 600, None, "plc-1"),  # deals
        ("order", 50, "FILLED", "plc-1"),  # orders gone
        ("account", None, None, None),  # the account
    ]
    assert events[-1].account == terminal.account


async def test_account_events_the_first_look_and_balance_credit_margin_at_once(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    watching = watcher(terminal, log, account_interval_s=1e9)
    (first,) = await watching.look()  # the first look of a run tells the account
    assert first.kind == "account" and first.account == terminal.account
    assert first.symbol is None

    assert await watching.look() == []
    terminal.account = account(equity=10_050.0, margin_level=2_000.0)
    assert await watching.look() == []  # equity only: not before the interval
    for changed in (
        account(balance=10_100.0, equity=10_050.0),
        account(balance=10_100.0, equity=10_050.0, credit=500.0),
        account(balance=10_100.0, equity=10_050.0, credit=500.0, margin=108.5),
    ):
        terminal.account = changed
        (event,) = await watching.look()  # at once, the interval notwithstanding
        assert event.kind == "account" and event.account == changed
    assert await watching.look() == []


async def test_equity_changes_are_told_at_most_once_per_interval(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    watching = watcher(terminal, log, account_interval_s=60.0)
    assert len(await watching.look()) == 1  # at 500 s
    start = clock.mono

    async def equity(value: float, at: float, margin_level: float = 0.0) -> list[Event]:
        clock.mono = start + at
        terminal.account = account(equity=value, margin_level=margin_level)
        return await watching.look()

    assert await equity(10_010.0, at=10.0) == []
    assert await equity(10_020.0, at=59.9) == []
    (told_at_60,) = await equity(10_030.0, at=60.0)
    assert told_at_60.account == terminal.account
    assert await equity(10_040.0, at=61.0) == []
    assert await equity(10_040.0, at=119.0) == []
    (told_at_120,) = await equity(10_040.0, at=120.0)
    assert told_at_120.account is not None and told_at_120.account.equity == 10_040.0
    # Margin level alike; and nothing is told when nothing drifted, however long it was.
    (level,) = await equity(10_040.0, at=180.0, margin_level=950.0)
    assert level.account is not None and level.account.margin_level == 950.0
    assert await equity(10_040.0, at=10_000.0, margin_level=950.0) == []


async def test_with_no_interval_every_equity_change_is_told(clock: Clock, log: EventLog) -> None:
    terminal = Terminal()
    watching = watcher(terminal, log, account_interval_s=0.0)
    await watching.look()
    for value in (10_001.0, 10_002.0, 9_990.0):
        terminal.account = account(equity=value)
        (event,) = await watching.look()
        assert event.account == terminal.account
    assert await watching.look() == []  # unchanged: nothing


async def test_a_restarted_watcher_resumes_from_the_committed_place(
    clock: Clock, log: EventLog, logs: list[EventLog], log_path: Path
) -> None:
    terminal = Terminal()
    resting = order(70, type=BUY_LIMIT, price=1.08, comment=tagged("plc-1"))
    terminal.orders = [resting]
    terminal.deals = [deal(300, comment=tagged("ord-1")), deal(301)]
    terminal.history[69] = order(69, type=0, state=FILLED)  # a market order's record
    before = await watcher(terminal, log).look()
    last = before[-1].seq
    log.close()  # the gateway stops

    clock.wall = NOW + 3600
    logs.append(reopened := EventLog(log_path, retention_s=86_400.0))
    restarted = watcher(terminal, reopened)
    after = await restarted.look()
    # From where the committed look ended: the last deal, the orders, the day of the look.
    assert terminal.asked[-1] == Watch(
        after_deal=301, deals_from=int(NOW), after_order=70, known=[70], day_from=DAY_BEFORE
    )
    assert told(after) == [("account", None, None, None)]  # the first of this run, only
    assert after[0].seq == last + 1

    terminal.fill(resting, deal_ticket=302)
    terminal.deals.append(deal(303, comment=tagged("ord-2")))
    events = await restarted.look()
    assert told(events) == [
        ("deal", 302, None, "plc-1"),
        ("deal", 303, None, "ord-2"),
        ("order", 70, "FILLED", "plc-1"),
    ]
    kept = reopened.since(0, 100).events
    assert [e.seq for e in kept] == list(range(1, len(kept) + 1))
    deals = [e.deal.ticket for e in kept if e.deal is not None]
    assert deals == [300, 301, 302, 303]  # each once, across the restart


async def test_a_failed_commit_leaves_the_place_so_the_next_look_tells_it_once(
    clock: Clock, log: EventLog, log_path: Path, lock_holders: list[LockHolder]
) -> None:
    terminal = Terminal()
    terminal.deals = [deal(400)]
    published = Published()
    watching = watcher(terminal, log, published)
    await watching.look()
    committed = list(published.events)

    terminal.deals.append(deal(401, comment=tagged("ord-1")))
    terminal.orders = [order(80, type=SELL_LIMIT, price=1.09, comment=tagged("plc-1"))]
    lock_holders.append(holder := LockHolder.sqlite(log_path))
    with pytest.raises(EventLogError):
        await watching.look()
    assert published.events == committed  # nothing published that was not committed
    failed = terminal.asked[-1]
    assert failed.after_deal == 400 and failed.known == []
    holder.release()

    events = await watching.look()
    assert terminal.asked[-1] == failed  # asked from the same place again
    assert told(events) == [("order", 80, "PLACED", "plc-1"), ("deal", 401, None, "ord-1")]
    assert [e.seq for e in events] == [committed[-1].seq + 1, committed[-1].seq + 2]
    assert published.events == [*committed, *events]
    assert await watching.look() == []
    assert terminal.asked[-1].after_deal == 401 and terminal.asked[-1].known == [80]
    kept = [told([e])[0] for e in log.since(0, 100).events if e.kind != "account"]
    assert kept == [
        ("deal", 400, None, None),
        ("order", 80, "PLACED", "plc-1"),
        ("deal", 401, None, "ord-1"),
    ]


async def test_the_snapshot_is_the_last_looks_account_and_positions(
    clock: Clock, log: EventLog
) -> None:
    terminal = Terminal()
    watching = watcher(terminal, log)
    before = watching.snapshot
    assert before is None  # before the first look
    terminal.positions = [position(900), position(901, volume=0.3)]
    await watching.look()
    snapshot = watching.snapshot
    assert snapshot is not None
    assert snapshot.account == terminal.account
    assert snapshot.positions == terminal.positions
    assert snapshot.age_ms() == 0.0
    clock.mono += 1.5
    assert snapshot.age_ms() == pytest.approx(1500.0)

    terminal.positions = [position(901, volume=0.3)]
    terminal.account = account(equity=9_900.0)
    await watching.look()
    assert watching.snapshot is not None
    assert watching.snapshot.positions == terminal.positions
    assert watching.snapshot.account == terminal.account
    assert watching.snapshot.age_ms() == 0.0
    assert watching.looks == 2
