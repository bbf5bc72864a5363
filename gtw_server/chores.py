"""The gateway's housekeeping, each a task that runs until cancelled at shutdown.

- ``prune``: forget journal entries (and history tags) older than their retention, in small
  batches between requests.
- ``prune_events``: drop trade events older than the event log's retention, on a thread.
- ``write_unsettled``: write the replies the journal had to keep in memory, once it can be
  written again, so the orders they answer settle without a restart.
- ``remember_journal``: keep the data directory's record of its journal current, so that a
  journal that lost its last commits is noticed at the next start.
- ``sum_up_floods``: once a window, one audit line for each kind the throttle held back.
- ``count_unshown``: once a window, one log line with the count of order outcomes not shown
  on the console one by one (each is in the audit trail).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import anyio
from loguru import logger

from gtw_server.audit import audit
from gtw_server.errors import EventLogError, JournalError
from gtw_server.event_log import EventLog
from gtw_server.journal import Journal
from gtw_server.journal_doctor import JournalState
from gtw_server.ledger import HistoryLedger
from gtw_server.throttle import Throttle
from protocol import AuditEvent

__all__ = [
    "count_unshown",
    "prune",
    "prune_events",
    "remember_journal",
    "sum_up",
    "sum_up_floods",
    "tell_unshown",
    "write_unsettled",
]

_PRUNE_INTERVAL_S: Final = 3600.0
_UNSETTLED_RETRY_S: Final = 0.5
_JOURNAL_STATE_INTERVAL_S: Final = 10.0


async def prune(journal: Journal, ledger: HistoryLedger, retention_s: float) -> None:
    while True:
        pruned = 0
        try:
            while batch := journal.prune_batch(retention_s):
                pruned += batch
                await asyncio.sleep(0)  # let requests through between batches
        except JournalError as exc:
            logger.warning("journal pruning postponed: {}", exc)
        if pruned:
            logger.info("journal: forgot {} entries older than the retention", pruned)
        ledger.prune()
        await asyncio.sleep(_PRUNE_INTERVAL_S)


async def prune_events(log: EventLog) -> None:
    while True:
        try:
            pruned = await anyio.to_thread.run_sync(log.prune)
        except EventLogError as exc:
            logger.warning("event log pruning postponed: {}", exc)
        else:
            if pruned:
                logger.info("event log: dropped {} events older than the retention", pruned)
        await asyncio.sleep(_PRUNE_INTERVAL_S)


async def write_unsettled(journal: Journal) -> None:
    waiting = 0
    while True:
        await asyncio.sleep(_UNSETTLED_RETRY_S)
        unsettled = journal.unsettled
        if unsettled != waiting:
            if unsettled == 0:
                logger.info("journal: the replies it kept in memory are written")
            else:
                logger.warning("journal: {} reply(s) kept in memory, to be written", unsettled)
        waiting = unsettled
        if unsettled:
            journal.flush()  # committed at the end of this loop turn


async def remember_journal(journal: Journal, data_dir: Path) -> None:
    while True:
        await asyncio.sleep(_JOURNAL_STATE_INTERVAL_S)
        try:
            state = JournalState.of(journal)
            await asyncio.to_thread(state.write, data_dir)
        except (JournalError, OSError) as exc:
            logger.warning("the journal's record in the data directory is stale: {}", exc)


async def sum_up_floods(throttle: Throttle) -> None:
    while True:
        await asyncio.sleep(throttle.window_s)
        sum_up(throttle)


async def count_unshown(shown: Throttle) -> None:
    while True:
        await asyncio.sleep(shown.window_s)
        tell_unshown(shown)


def tell_unshown(shown: Throttle) -> None:
    """One log line for each kind of line not shown since the last time (also at shutdown)."""
    for key, held in shown.summaries():
        logger.info(
            "{:,} more {} in the last {:g} s or less: in the audit trail, not shown one by one",
            held,
            key,
            shown.window_s,
        )


def sum_up(throttle: Throttle) -> None:
    """One audit line for each kind of line held back since the last time (also at shutdown,
    so that no count is lost)."""
    for key, held in throttle.summaries():
        audit(
            AuditEvent.THROTTLED,
            f"{held:,} more {key} in the last {throttle.window_s:g} s or less, not logged one "
            "by one",
            level="WARNING",
            kind=str(key),
            count=held,
        )
