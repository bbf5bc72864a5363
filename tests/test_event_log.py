"""The trade event log: gap-free numbers that never go back, pages, the watcher's state
committed with its events, pruning, and the files it refuses or starts again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from support import LockHolder

from gtw_server.errors import EventLogError
from gtw_server.event_log import EventLog, Page
from protocol import Deal, Event

OpenLog = Callable[..., EventLog]


@pytest.fixture
def open_log() -> Iterator[OpenLog]:
    """``EventLog(...)``, each closed after the test."""
    opened: list[EventLog] = []

    def _open(path: Path, **kwargs: Any) -> EventLog:
        kwargs.setdefault("retention_s", 86_400.0)
        opened.append(EventLog(path, **kwargs))
        return opened[-1]

    yield _open
    for log in opened:
        log.close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def deal(ticket: int) -> Deal:
    return Deal(
        ticket=ticket,
        order=ticket + 1000,
        time=1_700_000_000,
        time_msc=1_700_000_000_123,
        type=0,
        entry=0,
        magic=7,
        position_id=ticket + 1000,
        reason=3,
        volume=0.1,
        price=1.08512,
        commission=-0.7,
        swap=0.0,
        profit=0.0,
        fee=0.0,
        symbol="EURUSD",
        comment="#nma4grg3 breakout",
        external_id="",
    )


def event(ticket: int, at: float = 1_700_000_000.0) -> Event:
    """A deal event as the watcher hands it over: not numbered yet (``seq`` 0, no ``log``)."""
    return Event(
        run="run-1", seq=0, kind="deal", time=at, symbol="EURUSD", deal=deal(ticket), uuid="u"
    )


def tickets(page: Page) -> list[int]:
    return [e.deal.ticket for e in page.events if e.deal is not None]


def test_numbers_are_gap_free_and_continue_after_a_reopening(
    tmp_path: Path, open_log: OpenLog
) -> None:
    path = tmp_path / "events.sqlite3"
    log = open_log(path)
    first = log.append([event(1), event(2), event(3)], {})
    assert [e.seq for e in first] == [1, 2, 3]
    assert all(e.log == log.id for e in first)  # numbered in this log
    assert log.append([], {}) == []  # nothing to tell uses no number
    assert [e.seq for e in log.append([event(4)], {})] == [4]
    log_id = log.id
    log.close()

    reopened = open_log(path)
    assert (reopened.id, reopened.last_seq) == (log_id, 4)
    assert [e.seq for e in reopened.append([event(5), event(6)], {})] == [5, 6]
    page = reopened.since(0, 100)
    assert [e.seq for e in page.events] == [1, 2, 3, 4, 5, 6]
    assert tickets(page) == [1, 2, 3, 4, 5, 6]  # each kept under its own number


def test_since_pages_in_order_within_the_kept_bounds(tmp_path: Path, open_log: OpenLog) -> None:
    log = open_log(tmp_path / "events.sqlite3")
    assert log.since(0, 10) == Page(events=[], first_seq=0, last_seq=0)  # an empty log
    numbered = log.append([event(t) for t in range(101, 108)], {})

    pages = [log.since(after, 3) for after in (0, 3, 6, 7)]
    assert [[e.seq for e in page.events] for page in pages] == [[1, 2, 3], [4, 5, 6], [7], []]
    assert all((page.first_seq, page.last_seq) == (1, 7) for page in pages)
    # Read back as they were numbered, every field.
    assert [e for page in pages for e in page.events] == numbered
    assert log.since(2, 1000).events == numbered[2:]


def test_a_held_write_lock_fails_the_append_and_keeps_nothing(
    tmp_path: Path, open_log: OpenLog, lock_holders: list[LockHolder]
) -> None:
    path = tmp_path / "events.sqlite3"
    log = open_log(path, busy_timeout_ms=50)
    log.append([event(1), event(2)], {"after_deal": b"2"})

    lock_holders.append(holder := LockHolder.sqlite(path))  # a backup tool, a shell
    with pytest.raises(EventLogError) as failed:
        log.append([event(3), event(4)], {"after_deal": b"4"})
    assert str(path) in str(failed.value)
    # Nothing of it is kept, and reading goes on meanwhile.
    assert log.last_seq == 2
    assert log.state("after_deal") == b"2"
    assert tickets(log.since(0, 100)) == [1, 2]

    holder.release()
    again = log.append([event(3), event(4)], {"after_deal": b"4"})
    assert [e.seq for e in again] == [3, 4]  # the numbers it would have had: no gap
    assert log.state("after_deal") == b"4"
    assert [(e.seq, e.deal.ticket if e.deal else None) for e in log.since(0, 100).events] == [
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
    ]


def test_the_state_is_committed_with_the_events_or_not_at_all(
    tmp_path: Path, open_log: OpenLog
) -> None:
    path = tmp_path / "events.sqlite3"
    log = open_log(path)
    assert log.state("after_deal") is None  # nothing committed yet
    log.append([event(1)], {"after_deal": b"1", "orders": b"[]"})
    log.append([], {"after_deal": b"5"})  # a place that moved without an event
    assert (log.state("after_deal"), log.state("orders")) == (b"5", b"[]")  # others kept

    # A failure after the events were written, before the commit (a value SQLite cannot
    # store): the events written in the same transaction go with it.
    unstorable = cast(bytes, object())
    with pytest.raises(EventLogError):
        log.append([event(2), event(3)], {"after_deal": b"3", "orders": unstorable})
    assert (log.state("after_deal"), log.state("orders")) == (b"5", b"[]")
    assert log.last_seq == 1 and tickets(log.since(0, 100)) == [1]

    assert [e.seq for e in log.append([event(2)], {"after_deal": b"2"})] == [2]
    log.close()
    reopened = open_log(path)  # and what was committed is what another opening reads
    assert (reopened.state("after_deal"), reopened.state("orders")) == (b"2", b"[]")
    assert tickets(reopened.since(0, 100)) == [1, 2]


def test_prune_drops_old_events_only_and_numbers_never_go_back(
    tmp_path: Path, open_log: OpenLog
) -> None:
    path = tmp_path / "events.sqlite3"
    clock = Clock(10_000.0)
    log = open_log(path, retention_s=1_000.0, clock=clock)
    log.append([event(1, at=8_000.0), event(2, at=8_999.0)], {})
    log.append([event(3, at=9_000.0), event(4, at=9_500.0)], {})  # 9000: exactly the cutoff

    assert log.prune() == 2
    page = log.since(0, 100)
    assert tickets(page) == [3, 4]
    assert (page.first_seq, page.last_seq) == (3, 4)
    assert log.prune() == 0  # nothing older left

    clock.now = 1_000_000.0
    assert log.prune() == 2  # the table is empty now
    assert log.since(0, 100) == Page(events=[], first_seq=0, last_seq=4)
    assert [e.seq for e in log.append([event(5, at=clock.now)], {})] == [5]

    clock.now += 10_000.0
    assert log.prune() == 1
    log.close()
    reopened = open_log(path, retention_s=1_000.0, clock=clock)  # emptied, then reopened
    assert reopened.last_seq == 5
    assert [e.seq for e in reopened.append([event(6, at=clock.now)], {})] == [6]


def test_prune_goes_through_more_than_one_batch(tmp_path: Path, open_log: OpenLog) -> None:
    clock = Clock(100_000.0)
    log = open_log(tmp_path / "events.sqlite3", retention_s=10.0, clock=clock)
    log.append([event(t, at=1.0) for t in range(2500)], {})
    log.append([event(9999, at=clock.now)], {})
    assert log.prune() == 2500
    page = log.since(0, 1000)
    assert tickets(page) == [9999] and (page.first_seq, page.last_seq) == (2501, 2501)


def test_a_deleted_log_is_a_new_log_with_another_id(tmp_path: Path, open_log: OpenLog) -> None:
    path = tmp_path / "events.sqlite3"
    log = open_log(path)
    log.append([event(1), event(2), event(3)], {"after_deal": b"3"})
    old_id = log.id
    log.close()
    for name in ("events.sqlite3", "events.sqlite3-wal", "events.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)  # a careless operator

    new = open_log(path)
    assert new.id != old_id
    assert new.last_seq == 0 and new.state("after_deal") is None
    (first,) = new.append([event(4)], {})
    assert (first.seq, first.log) == (1, new.id)
    assert new.since(0, 10) == Page(events=[first], first_seq=1, last_seq=1)


def test_a_file_that_is_not_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    junk = b"this is a text file where the event log should be\n" * 20
    path.write_bytes(junk)
    with pytest.raises(EventLogError) as refused:
        EventLog(path, retention_s=60.0)
    assert str(path) in str(refused.value)
    assert path.read_bytes() == junk  # refused, not overwritten
