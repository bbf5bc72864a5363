"""The terminal's health: whether it is connected, to which account, and keeping it so.

``TerminalMonitor`` holds the last ``TerminalStatus`` the worker reported and is the only one
that changes it. ``watch()`` polls the status once a second while the terminal is idle, and
reconnects a lost one with a capped backoff; the request path tells it what orders showed
(``lost``, ``filled_open``). What it knows is read through ``connected``, ``trouble()`` and
``account_problem()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import msgspec
from loguru import logger

from gtw_server.adapter import TerminalStatus
from gtw_server.config import GatewayConfig
from gtw_server.errors import TerminalError
from gtw_server.operations import CONNECT, STATUS
from gtw_server.server_offset import ServerOffset
from gtw_server.worker import TerminalWorker

__all__ = ["TerminalMonitor"]

_STATUS_INTERVAL_S: Final = 1.0
_RECONNECT_MAX_S: Final = 30.0
# A terminal call running longer than this (or half the watchdog's limit, if less) makes the
# terminal count as not connected: a hung terminal answers nothing, whatever it said before.
_UNRESPONSIVE_AFTER_S: Final = 5.0


async def _nothing() -> None:
    """No upkeep."""


class TerminalMonitor:
    """The terminal's state as the gateway knows it, kept up to date by ``watch()``.

    ``connect_timeout_s`` bounds ``initialize()``, which may wait for the terminal's own
    timeout. ``upkeep`` runs while the terminal is connected and idle, before each status poll;
    ``on_reconnected`` once the terminal is back after being lost. ``offset`` learns the trade
    server's clock from the freshest quote each status carries.
    """

    def __init__(
        self,
        worker: TerminalWorker,
        config: GatewayConfig,
        *,
        connect_timeout_s: float,
        upkeep: Callable[[], Awaitable[None]] = _nothing,
        on_reconnected: Callable[[], Awaitable[None]] = _nothing,
        offset: ServerOffset | None = None,
    ) -> None:
        self.status = TerminalStatus(connected=False)
        self.offset = offset
        self._worker = worker
        self._config = config
        self._connect_timeout_s = connect_timeout_s
        self._upkeep = upkeep
        self._on_reconnected = on_reconnected

    # -- what is known -------------------------------------------------------------------

    @property
    def stuck(self) -> bool:
        """Whether the call now running has run too long for a terminal that answers."""
        limit = min(_UNRESPONSIVE_AFTER_S, self._config.terminal_timeout_s / 2)
        return self._worker.running_for >= limit

    @property
    def connected(self) -> bool:
        """Connected at the last look, and not stuck in a call since (what PING reports)."""
        return self._worker.alive and self.status.connected and not self.stuck

    @property
    def reachable(self) -> bool:
        """Whether an order may be sent to it now (a call running long does not stop one)."""
        return self._worker.alive and self.status.connected

    def trouble(self) -> str | None:
        """A terminal setting that will make every order fail, said before an order does; or
        a call that has run too long."""
        if self.stuck:
            return (
                f"a terminal call has run for {self._worker.running_for:.1f} s; the worker is "
                f"restarted at {self._config.terminal_timeout_s:g} s"
            )
        status = self.status
        if status.connected and status.tradeapi_disabled:
            return (
                "the terminal disables trading through the Python API (Options > Expert Advisors)"
            )
        if status.connected and not status.trade_allowed:
            return "Algo Trading is off in the terminal: orders will be refused (10027)"
        return None

    def account_problem(self) -> str | None:
        """Why the connected account must not be traded, if it must not."""
        config, status = self._config, self.status
        if config.expect_login is not None and status.login != config.expect_login:
            return (
                f"the terminal is logged in to account {status.login}, not {config.expect_login} "
                "([gateway] expect_login)"
            )
        if config.expect_server is not None and status.server != config.expect_server:
            return (
                f"the terminal is connected to {status.server!r}, not {config.expect_server!r} "
                "([gateway] expect_server)"
            )
        if status.trade_mode == "REAL" and not config.allow_real:
            return (
                f"account {status.login} on {status.server} is a REAL account; set [gateway] "
                "allow_real = true to trade it"
            )
        return None

    def describe(self) -> str:
        status = self.status
        if not status.connected:
            return f"not connected: {status.error}"
        return (
            f"login {status.login} on {status.server}, {status.trade_mode}, balance "
            f"{status.balance:,.2f} {status.currency}"
        )

    # -- what orders showed --------------------------------------------------------------

    def lost(self, why: str) -> None:
        """An order found the terminal gone."""
        self.status = TerminalStatus(connected=False, error=why)

    def filled_open(self) -> None:
        """An OPEN filled: count its position until the next status poll (over-counting errs
        on the safe side of ``max_positions``)."""
        self.status = msgspec.structs.replace(self.status, positions=self.status.positions + 1)

    # -- keeping it up to date -----------------------------------------------------------

    async def restarted(self) -> None:
        """The worker process was restarted: connect its terminal, and catch up."""
        if await self.connect():
            await self._on_reconnected()

    async def connect(self) -> bool:
        """(Re)connect the terminal; say what is wrong with it, if anything. Whether it is
        connected."""
        try:
            await self._took(
                await self._worker.call(CONNECT, None, timeout=self._connect_timeout_s)
            )
        except TerminalError as exc:
            self.status = TerminalStatus(connected=False, error=str(exc))
        if not self.status.connected:
            logger.warning("terminal not connected: {}", self.status.error)
        elif problem := self.account_problem():
            logger.error("orders are refused: {}", problem)
        elif trouble := self.trouble():
            logger.warning("{}", trouble)
        return self.status.connected

    async def _took(self, status: TerminalStatus) -> None:
        """Keep ``status``; its freshest quote tells the trade server's clock (a change is
        said, and kept in the data directory, off the event loop)."""
        self.status = status
        offset = self.offset
        if offset is None or not status.quote_msc:
            return
        news = offset.learn(status.quote_msc / 1000, time.time())
        if news is None:
            return
        if offset.zone:  # the zone is the truth: a quote that disagrees is the news
            logger.warning("{}", news)
            return
        logger.info("{}", news)
        try:
            await anyio.to_thread.run_sync(offset.save)
        except OSError as exc:
            logger.warning("the trade server's offset could not be kept: {}", exc)

    async def watch(self) -> None:
        """Keep ``status`` true, and reconnect a lost terminal with capped backoff."""
        backoff = _STATUS_INTERVAL_S
        while True:
            await asyncio.sleep(backoff if not self.status.connected else _STATUS_INTERVAL_S)
            if not self._worker.alive:
                self.status = TerminalStatus(connected=False, error="worker restarting")
                continue
            if self.status.connected:
                if self._worker.in_flight:
                    continue  # busy with orders; their results tell us it is alive
                await self._upkeep()
                try:
                    await self._took(await self._worker.call(STATUS, None))
                except TerminalError as exc:
                    self.status = TerminalStatus(connected=False, error=str(exc))
                if not self.status.connected:
                    logger.error("terminal connection lost: {}", self.status.error)
                backoff = _STATUS_INTERVAL_S
            elif await self.connect():
                logger.info("terminal reconnected: {}", self.describe())
                await self._on_reconnected()
            else:
                backoff = min(backoff * 2, _RECONNECT_MAX_S)
