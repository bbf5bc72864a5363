"""What the gateway does whenever the terminal answers again: catch up.

- Read the history ledger (``ledger.py``) if it has not been read: until then, new orders
  are refused. Read it again ``settle_s`` later (an order a previous run left in the terminal
  may land after the first read), then every ``refresh_s``, so it stays current.
- Reconcile the orders whose outcome became unknown (``OrderExecutor.reconcile``).

``TerminalMonitor`` calls ``upkeep`` while the terminal is idle and ``caught_up`` once it is
back after being lost (a reconnection, a restarted worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from gtw_server.adapter import ListTags
from gtw_server.errors import JournalError, TerminalError
from gtw_server.executor import OrderExecutor
from gtw_server.journal import Journal
from gtw_server.ledger import HistoryLedger
from gtw_server.operations import TAGS
from gtw_server.worker import TerminalWorker

__all__ = ["Recovery"]


class Recovery:
    """Catching up with the terminal: the history ledger and reconciliation."""

    def __init__(
        self,
        worker: TerminalWorker,
        journal: Journal,
        ledger: HistoryLedger,
        executor: OrderExecutor,
        *,
        settle_s: float,
        refresh_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._worker = worker
        self._journal = journal
        self._ledger = ledger
        self._executor = executor
        self._settle_s = settle_s
        self._refresh_s = refresh_s
        self._clock = clock
        self._reads = 0

    async def upkeep(self) -> None:
        """While the terminal is idle: whatever is left to catch up."""
        if self._executor.needs_reconcile:
            await self.reconcile()
        loaded_at = self._ledger.loaded_at
        wait_s = self._settle_s if self._reads == 1 else self._refresh_s
        if loaded_at is None or self._clock() - loaded_at >= wait_s:
            await self._read()

    async def caught_up(self) -> None:
        """The terminal is back after being lost: catch up with all of it."""
        await self.read_history()
        await self.reconcile()

    async def read_history(self) -> None:
        """Load the tags of the terminal's recent history, if it has not been read."""
        if not self._ledger.loaded:
            await self._read()

    async def _read(self) -> None:
        ledger = self._ledger
        try:
            tags = await self._worker.call(TAGS, ListTags(since=ledger.since))
            # The journal's owners matter for the first read; a later one only adds what
            # landed since (which the journal, if it knows it, answers first anyway), and
            # scanning the journal every minute would stall the loop on a big one.
            known = self._journal.tags_since(ledger.since) if not ledger.loaded else {}
        except (TerminalError, JournalError) as exc:
            logger.warning("the terminal's history could not be read, orders wait: {}", exc)
            return
        ledger.load(tags, known)
        self._reads += 1
        if self._reads > 1:
            return  # the first read is what an operator needs to see; later ones keep it current
        unknown = ledger.unowned()
        logger.log(
            "WARNING" if unknown else "INFO",
            "history ledger: {} tagged order(s) in the terminal's last {:g} h, {} of them not "
            "in the journal",
            len(tags),
            ledger.lookback_s / 3600,
            unknown,
        )

    async def reconcile(self) -> None:
        try:
            settled = await self._executor.reconcile()
        except TerminalError as exc:
            logger.warning("reconciliation postponed until the terminal is back: {}", exc)
            return
        if settled:
            logger.info("reconciled {} order(s) left unresolved", settled)
