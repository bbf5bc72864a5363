"""What the gateway does whenever the terminal answers again: catch up.

- Read the history ledger (``ledger.py``) if it has not been read: until then, new orders
  are refused.
- Reconcile the orders whose outcome became unknown (``OrderExecutor.reconcile``).

``TerminalMonitor`` calls ``upkeep`` while the terminal is idle and ``caught_up`` once it is
back after being lost (a reconnection, a restarted worker).
"""

from __future__ import annotations

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
    ) -> None:
        self._worker = worker
        self._journal = journal
        self._ledger = ledger
        self._executor = executor

    async def upkeep(self) -> None:
        """While the terminal is idle: whatever is left to catch up."""
        if self._executor.needs_reconcile:
            await self.reconcile()
        await self.read_history()

    async def caught_up(self) -> None:
        """The terminal is back after being lost: catch up with all of it."""
        await self.read_history()
        await self.reconcile()

    async def read_history(self) -> None:
        """Load the tags of the terminal's recent history, once."""
        ledger = self._ledger
        if ledger.loaded:
            return
        try:
            tags = await self._worker.call(TAGS, ListTags(since=ledger.since))
            known = self._journal.tags_since(ledger.since)
        except (TerminalError, JournalError) as exc:
            logger.warning("the terminal's history could not be read, orders wait: {}", exc)
            return
        unknown = ledger.load(tags, known)
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
