"""The gateway server's life: startup, main loop, graceful shutdown with a deadline.

``Gateway(config).run()`` is the whole program. Startup opens the journal, starts the terminal
worker and connects the terminal, binds the ROUTER socket and settles any order a previous
run left unresolved. The main loop is the transport's drain callback: it decodes each
message and answers PING, GET_ORDER and refusals at once, in place; only work that needs the
terminal becomes a task. On SIGINT/SIGTERM (and SIGBREAK on Windows) the gateway stops
taking new orders, lets the ones in flight finish and sends their replies, then closes,
within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final

import msgspec
import zmq
from loguru import logger

from gtw_server.adapter import ListTags, TerminalStatus
from gtw_server.audit import add_gateway_audit_file, audit
from gtw_server.config import Config
from gtw_server.curve import CurveServer
from gtw_server.dirlock import DataDirLock
from gtw_server.errors import GatewayError, JournalError, TerminalError
from gtw_server.executor import OrderExecutor
from gtw_server.journal import Journal
from gtw_server.journal_doctor import (
    JOURNAL_FILE,
    JournalState,
    examine,
    recovered_note,
    survey,
)
from gtw_server.killswitch import KillSwitch
from gtw_server.ledger import HistoryLedger
from gtw_server.metrics import GatewayMetrics
from gtw_server.operations import ACCOUNT, CONNECT, POSITIONS, STATUS, TAGS
from gtw_server.replies import pending, rejected
from gtw_server.runtime import install_reload_handler, install_stop_handlers
from gtw_server.throttle import Throttle
from gtw_server.transport import RouterTransport, split_envelope
from gtw_server.worker import TerminalWorker, WorkerSpec
from plumbing.audit import AuditFile
from plumbing.loop import loop_factory
from protocol import (
    VERSION,
    AnyRequest,
    AuditEvent,
    Close,
    DecodeError,
    ErrorCode,
    GatewayInfo,
    GetAccount,
    GetOrder,
    GetPositions,
    Halt,
    Open,
    Ping,
    Reply,
    Resume,
    SignatureError,
    SignedRequest,
    Status,
    decode_reply,
    decode_request,
    encode,
    verify,
)

__all__ = ["Gateway"]


def _nothing() -> None:
    """Undo nothing (no signal handlers were installed)."""


_STATUS_INTERVAL_S: Final = 1.0
_RECONNECT_MAX_S: Final = 30.0
_PRUNE_INTERVAL_S: Final = 3600.0
# A start that failed has no orders in flight to finish: stop what did start, quickly.
_FAILED_START_DEADLINE_S: Final = 2.0
_WORKER_JOIN_S: Final = 2.0  # for the worker to leave after its pipe closed, before a kill
_UNSETTLED_RETRY_S: Final = 0.5  # how often replies kept in memory are tried again
_JOURNAL_STATE_INTERVAL_S: Final = 10.0  # how often journal-state.json is brought up to date
# A terminal call running longer than this (or half the watchdog's limit, if less) makes the
# terminal count as not connected: a hung terminal answers nothing, whatever it said before.
_UNRESPONSIVE_AFTER_S: Final = 5.0


class Gateway:
    """The trading gateway. ``Gateway(load_config(...)).run()`` serves until signalled."""

    def __init__(self, config: Config, *, sim_reset: bool = False) -> None:
        """``sim_reset`` starts the simulated broker's state afresh (``--reset-sim``)."""
        self.config = config
        self.sim_reset = sim_reset
        self._connect_timeout_s = max(
            config.gateway.terminal_timeout_s, config.mt5.timeout_ms / 1000 + 10
        )
        self.terminal = TerminalStatus(connected=False)
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._transport: RouterTransport | None = None
        self._journal: Journal | None = None
        self._worker: TerminalWorker | None = None
        self._executor: OrderExecutor | None = None
        self._killswitch: KillSwitch | None = None
        self._curve: CurveServer | None = None
        # When a client last proved it holds the secret (a verified signature): what keeps the
        # dead-man's switch from halting. Strangers' frames do not count.
        self._last_client = time.monotonic()
        self._received_at = 0.0  # perf_counter() when the message being handled arrived
        self._opening = 0  # OPEN orders admitted and not yet answered
        self._metrics = GatewayMetrics() if config.gateway.metrics_port is not None else None
        self._audit_file: AuditFile | None = None
        self._dirlock = DataDirLock(config.data_dir)
        self._ledger = HistoryLedger(config.gateway.history_lookback_hours * 3600)
        self._throttle = Throttle()
        info_warnings = []
        if not config.gateway.signature_validation:
            info_warnings.append(
                "signature validation is OFF: anyone who can reach this port can trade"
            )
        if config.gateway.insecure and not config.gateway.curve:
            info_warnings.append("listening without CURVE (--insecure): traffic is not encrypted")
        self._info = GatewayInfo(
            version=VERSION,
            terminal="SIM" if config.gateway.terminal == "sim" else "LIVE",
            signature_validation=config.gateway.signature_validation,
            warnings=info_warnings,
        )

    # -- life ------------------------------------------------------------------------------

    def run(self, *, handle_signals: bool = True) -> int:
        """Serve until a stop signal (or ``stop_threadsafe()``); return the exit code.

        ``handle_signals=False`` when not on the main thread (a Windows service), where
        signal handlers cannot be installed.
        """
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(self.serve(handle_signals=handle_signals))

    async def serve(self, *, handle_signals: bool = True) -> int:
        loop = self._loop = asyncio.get_running_loop()
        remove_handlers = remove_reload = _nothing
        if handle_signals:
            remove_handlers = install_stop_handlers(loop, self._on_signal)
            remove_reload = install_reload_handler(loop, self._reload)
        try:
            try:
                await self.startup()
            except Exception as exc:
                # Whatever failed, the worker must not outlive this (it ignores SIGTERM, and an
                # exit that waited on it would hang with the port held): stop it, exit 2.
                if isinstance(exc, GatewayError):
                    logger.error("the gateway cannot start: {}", exc)
                else:
                    logger.exception("the gateway cannot start: {}", exc)
                await self.shutdown(deadline_s=_FAILED_START_DEADLINE_S)
                return 2
            await self._stop.wait()
            return 0 if await self.shutdown() else 1
        finally:
            remove_handlers()
            remove_reload()

    def stop(self) -> None:
        """Ask the gateway to shut down gracefully (from its own event loop)."""
        self._stop.set()

    def stop_threadsafe(self) -> None:
        """Ask the gateway to shut down gracefully, from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    async def startup(self) -> None:
        gateway = self.config.gateway
        # Before anything in the directory is touched: a second gateway must change nothing.
        self._dirlock.acquire(bind=gateway.bind)
        if not gateway.signature_validation:
            logger.warning(
                "signature validation is OFF: any client that reaches {} can trade. "
                "Use this for tests and demos only.",
                gateway.bind,
            )
        elif self.config.operator_secret is None:
            logger.warning(
                "no operator secret ([gateway] operator_secret_file): the order secret every "
                "strategy node holds can also lift a HALT; give the operators a key of their own"
            )
        data_dir = self.config.data_dir
        self._journal = self._open_journal(data_dir)
        if gateway.audit_file is not None:
            self._audit_file = add_gateway_audit_file(
                data_dir / gateway.audit_file,
                rotation=gateway.audit_rotation,
                retention=gateway.audit_retention,
                retention_size=gateway.audit_retention_size,
            )
        self._killswitch = KillSwitch(data_dir / "halt.json")
        if self._killswitch.halted:
            logger.warning(
                "[HALTED] trading is halted since the last run: {}", self._killswitch.reason
            )
        spec = WorkerSpec(
            terminal=gateway.terminal,
            sim=self.config.sim,
            sim_state=str(data_dir / "sim.sqlite3"),
            sim_reset=self.sim_reset,
            mt5=self.config.mt5,
        )
        self._worker = TerminalWorker(
            spec,
            call_timeout=gateway.terminal_timeout_s,
            on_restart=self._after_restart,
            observe=self._metrics.observe_terminal_call if self._metrics else None,
        )
        await self._worker.start()
        self._executor = OrderExecutor(
            self._journal,
            self._worker,
            ledger=self._ledger,
            secret=self.config.secret if gateway.signature_validation else None,
            operator_secret=self.config.operator_secret,
            signature_ttl_ms=gateway.signature_ttl_ms,
            settle_s=gateway.reconcile_settle_s,
            on_authenticated=self._client_seen,
            throttle=self._throttle,
        )
        if await self._connect():
            if problem := self._account_problem():
                raise GatewayError(problem)
            await self._read_history()
        self._context = zmq.Context()
        if gateway.curve_secret_key is not None and gateway.curve_clients is not None:
            self._curve = CurveServer(
                Path(gateway.curve_secret_key), Path(gateway.curve_clients), self._context
            )
            self._spawn_background(self._curve.watch(), "curve-allow-list")
        elif gateway.insecure:
            logger.warning(
                "listening on {} WITHOUT CURVE (--insecure): orders and replies cross the "
                "network unencrypted, and any client that reaches the port is answered",
                gateway.bind,
            )
        try:
            self._transport = RouterTransport(
                gateway.bind,
                self._on_message,
                max_message_bytes=gateway.max_message_bytes,
                context=self._context,
                setup=self._curve.apply if self._curve else None,
                throttle=self._throttle,
            )
        except zmq.ZMQError as exc:
            raise GatewayError(f"cannot bind {gateway.bind}: {exc}") from None
        self._transport.start()
        if self._metrics is not None and gateway.metrics_port is not None:
            self._serve_metrics(self._metrics, gateway.metrics_host, gateway.metrics_port)
        self._client_seen()
        self._spawn_background(self._watch_terminal(), "terminal-monitor")
        self._spawn_background(self._reconcile(), "startup-reconcile")
        self._spawn_background(self._prune_journal(), "journal-pruning")
        self._spawn_background(self._write_unsettled(), "journal-settles")
        self._spawn_background(self._remember_journal(), "journal-state")
        self._spawn_background(self._sum_up_floods(), "throttle")
        if gateway.halt_after_silence_s is not None:
            self._spawn_background(self._watch_silence(gateway.halt_after_silence_s), "dead-man")
        logger.info(
            "gateway ready on {} | terminal {} ({}) | CURVE {} | signatures {} | journal {} "
            "({} entries)",
            self._transport.endpoint,
            self._info.terminal,
            self._describe_terminal(),
            "on" if self._curve else "off",
            "on" if gateway.signature_validation else "OFF",
            self._journal.path,
            len(self._journal),
        )

    def _open_journal(self, data_dir: Path) -> Journal:
        """Open the journal, and say loudly if it is not the one this directory had."""
        before = survey(data_dir)
        if note := recovered_note(data_dir):
            logger.warning("{}", note)
        journal = Journal(data_dir / JOURNAL_FILE, defer=asyncio.get_running_loop().call_soon)
        if problem := examine(data_dir, before, journal):
            hours = self.config.gateway.history_lookback_hours
            logger.error(
                "{}. Orders the journal does not know are checked against the terminal's "
                "history of the last {:g} h before they execute; retries of older ones are not",
                problem,
                hours,
            )
        JournalState.of(journal).write(data_dir)
        return journal

    async def _read_history(self) -> None:
        """Load the tags of the terminal's recent history (the second ledger); until then,
        new orders are refused."""
        assert self._worker is not None and self._journal is not None
        ledger = self._ledger
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

    async def shutdown(self, *, deadline_s: float | None = None) -> bool:
        """Stop taking orders, finish those in flight (within ``deadline_s``, by default
        ``shutdown_timeout_s``), close. True if nothing was abandoned."""
        self._stopping = True
        deadline = self.config.gateway.shutdown_timeout_s if deadline_s is None else deadline_s
        started = time.monotonic()
        abandoned: set[asyncio.Task[None]] = set()
        if self._tasks:
            logger.info("shutting down: finishing {} request(s) in flight", len(self._tasks))
            _, abandoned = await asyncio.wait(set(self._tasks), timeout=deadline)
            for task in abandoned:
                task.cancel()
            if abandoned:
                logger.error(
                    "{} request(s) did not finish within {} s; they will be reconciled at "
                    "the next start",
                    len(abandoned),
                    deadline,
                )
        for task in self._background:
            task.cancel()
        remaining = max(0.5, deadline - (time.monotonic() - started))
        if self._worker is not None:
            await self._worker.stop(grace_s=remaining, join_s=min(remaining, _WORKER_JOIN_S))
        if self._transport is not None:
            self._transport.close()
        if self._curve is not None:
            self._curve.stop()
        if self._context is not None:
            self._context.term()  # waits (up to LINGER) for the last replies to leave
        if self._journal is not None:
            with contextlib.suppress(JournalError, OSError):
                JournalState.of(self._journal).write(self.config.data_dir)
            self._journal.close()
        logger.info("gateway stopped")
        if self._audit_file is not None:
            self._audit_file.close()
        self._dirlock.release()
        return not abandoned

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            logger.warning("{} again: already shutting down", sig.name)
            return
        logger.info("{} received: shutting down", sig.name)
        self.stop()

    def _serve_metrics(self, metrics: GatewayMetrics, host: str, port: int) -> None:
        worker, journal, killswitch = self._worker, self._journal, self._killswitch
        assert worker is not None and journal is not None and killswitch is not None
        metrics.gauge(
            "mt5_gateway_in_flight", "Requests waiting on the terminal", lambda: len(self._tasks)
        )
        metrics.gauge(
            "mt5_gateway_terminal_queue", "Calls sent to the worker", lambda: worker.in_flight
        )
        metrics.gauge("mt5_gateway_journal_entries", "uuids remembered", lambda: len(journal))
        metrics.gauge(
            "mt5_gateway_journal_unsettled",
            "Replies kept in memory because the journal could not be written",
            lambda: journal.unsettled,
        )
        metrics.gauge(
            "mt5_gateway_mt5_connected",
            "1 when the terminal is connected",
            lambda: float(self._terminal_connected()),
        )
        metrics.gauge(
            "mt5_gateway_halted", "1 when the kill switch is on", lambda: float(killswitch.halted)
        )
        metrics.gauge(
            "mt5_gateway_worker_restarts", "Terminal worker restarts", lambda: worker.restarts
        )
        try:
            metrics.serve(port, host)
        except OSError as exc:
            raise GatewayError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        logger.info("metrics on http://{}:{}/metrics", host, port)

    def _reload(self) -> None:
        if self._curve is None:
            logger.info("SIGHUP received: nothing to reload (CURVE is off)")
            return
        logger.info("SIGHUP received: reloading the CURVE allow-list")
        self._curve.reload()

    def _spawn_background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._background.append(asyncio.create_task(coro, name=name))

    # -- the terminal's health ---------------------------------------------------------------

    async def _connect(self) -> bool:
        assert self._worker is not None
        try:
            # initialize() may wait for the terminal's own timeout ([mt5] timeout_ms).
            self.terminal = await self._worker.call(CONNECT, None, timeout=self._connect_timeout_s)
        except TerminalError as exc:
            self.terminal = TerminalStatus(connected=False, error=str(exc))
        if not self.terminal.connected:
            logger.warning("terminal not connected: {}", self.terminal.error)
        elif problem := self._account_problem():
            logger.error("orders are refused: {}", problem)
        elif trouble := self._terminal_trouble():
            logger.warning("{}", trouble)
        return self.terminal.connected

    async def _watch_terminal(self) -> None:
        """Keep ``self.terminal`` true, and reconnect a lost terminal with capped backoff."""
        assert self._worker is not None
        backoff = _STATUS_INTERVAL_S
        while True:
            await asyncio.sleep(backoff if not self.terminal.connected else _STATUS_INTERVAL_S)
            if not self._worker.alive:
                self.terminal = TerminalStatus(connected=False, error="worker restarting")
                continue
            if self.terminal.connected:
                if self._worker.in_flight:
                    continue  # busy with orders; their results tell us it is alive
                assert self._executor is not None
                if self._executor.needs_reconcile:
                    await self._reconcile()
                if not self._ledger.loaded:
                    await self._read_history()
                try:
                    self.terminal = await self._worker.call(STATUS, None)
                except TerminalError as exc:
                    self.terminal = TerminalStatus(connected=False, error=str(exc))
                if not self.terminal.connected:
                    logger.error("terminal connection lost: {}", self.terminal.error)
                backoff = _STATUS_INTERVAL_S
            elif await self._connect():
                logger.info("terminal reconnected: {}", self._describe_terminal())
                if not self._ledger.loaded:
                    await self._read_history()
                await self._reconcile()
            else:
                backoff = min(backoff * 2, _RECONNECT_MAX_S)

    async def _after_restart(self) -> None:
        if await self._connect():
            if not self._ledger.loaded:
                await self._read_history()
            await self._reconcile()

    async def _reconcile(self) -> None:
        assert self._executor is not None
        try:
            settled = await self._executor.reconcile()
        except TerminalError as exc:
            logger.warning("reconciliation postponed until the terminal is back: {}", exc)
            return
        if settled:
            logger.info("reconciled {} order(s) left unresolved", settled)

    async def _prune_journal(self) -> None:
        """Forget uuids older than the retention, a small batch at a time between requests."""
        assert self._journal is not None
        retention_s = self.config.gateway.journal_retention_days * 86_400
        while True:
            pruned = 0
            try:
                while batch := self._journal.prune_batch(retention_s):
                    pruned += batch
                    await asyncio.sleep(0)  # let requests through between batches
            except JournalError as exc:
                logger.warning("journal pruning postponed: {}", exc)
            if pruned:
                logger.info("journal: forgot {} entries older than the retention", pruned)
            self._ledger.prune()
            await asyncio.sleep(_PRUNE_INTERVAL_S)

    async def _sum_up_floods(self) -> None:
        """Once a window, one line for each kind of line the throttle held back."""
        while True:
            await asyncio.sleep(self._throttle.window_s)
            for key, held in self._throttle.summaries():
                audit(
                    AuditEvent.THROTTLED,
                    f"{held:,} more {key} in the last {self._throttle.window_s:g} s, not "
                    "logged one by one",
                    level="WARNING",
                    kind=str(key),
                    count=held,
                )

    async def _remember_journal(self) -> None:
        """Keep the directory's record of its journal current, so that a journal that lost
        its last commits is noticed at the next start."""
        assert self._journal is not None
        while True:
            await asyncio.sleep(_JOURNAL_STATE_INTERVAL_S)
            try:
                state = JournalState.of(self._journal)
                await asyncio.to_thread(state.write, self.config.data_dir)
            except (JournalError, OSError) as exc:
                logger.warning("the journal's record in the data directory is stale: {}", exc)

    async def _write_unsettled(self) -> None:
        """Write the replies the journal had to keep in memory, once it can be written again:
        the orders they answer settle without a restart."""
        assert self._journal is not None
        waiting = 0
        while True:
            await asyncio.sleep(_UNSETTLED_RETRY_S)
            unsettled = self._journal.unsettled
            if unsettled != waiting:
                if unsettled == 0:
                    logger.info("journal: the replies it kept in memory are written")
                else:
                    logger.warning("journal: {} reply(s) kept in memory, to be written", unsettled)
            waiting = unsettled
            if unsettled:
                self._journal.flush()  # committed at the end of this loop turn

    async def _watch_silence(self, limit_s: float) -> None:
        """The dead-man's switch: halt new orders after ``limit_s`` without any request."""
        assert self._killswitch is not None
        while True:
            await asyncio.sleep(min(1.0, limit_s / 4))
            silent_s = time.monotonic() - self._last_client
            if silent_s > limit_s and not self._killswitch.halted:
                self._killswitch.halt(
                    f"DEAD_MAN: no authenticated request from any client for {limit_s:g} s"
                )

    def _describe_terminal(self) -> str:
        t = self.terminal
        if not t.connected:
            return f"not connected: {t.error}"
        return (
            f"login {t.login} on {t.server}, {t.trade_mode}, balance {t.balance:,.2f} {t.currency}"
        )

    def _terminal_stuck(self) -> bool:
        """Whether the call now running has run too long for a terminal that answers."""
        assert self._worker is not None
        limit = min(_UNRESPONSIVE_AFTER_S, self.config.gateway.terminal_timeout_s / 2)
        return self._worker.running_for >= limit

    def _terminal_connected(self) -> bool:
        """Connected at the last look, and not stuck in a call since."""
        assert self._worker is not None
        return self._worker.alive and self.terminal.connected and not self._terminal_stuck()

    def _terminal_trouble(self) -> str | None:
        """A terminal setting that will make every order fail, said before an order does;
        or a call that has run too long."""
        worker = self._worker
        if worker is not None and self._terminal_stuck():
            return (
                f"a terminal call has run for {worker.running_for:.1f} s; the worker is "
                f"restarted at {self.config.gateway.terminal_timeout_s:g} s"
            )
        t = self.terminal
        if t.connected and t.tradeapi_disabled:
            return (
                "the terminal disables trading through the Python API (Options > Expert Advisors)"
            )
        if t.connected and not t.trade_allowed:
            return "Algo Trading is off in the terminal: orders will be refused (10027)"
        return None

    def _account_problem(self) -> str | None:
        """Why the connected account must not be traded, if it must not."""
        gateway, t = self.config.gateway, self.terminal
        if gateway.expect_login is not None and t.login != gateway.expect_login:
            return (
                f"the terminal is logged in to account {t.login}, not {gateway.expect_login} "
                "([gateway] expect_login)"
            )
        if gateway.expect_server is not None and t.server != gateway.expect_server:
            return (
                f"the terminal is connected to {t.server!r}, not {gateway.expect_server!r} "
                "([gateway] expect_server)"
            )
        if t.trade_mode == "REAL" and not gateway.allow_real:
            return (
                f"account {t.login} on {t.server} is a REAL account; set [gateway] "
                "allow_real = true to trade it"
            )
        return None

    # -- requests ----------------------------------------------------------------------------

    def _on_message(self, frames: list[bytes]) -> None:
        self._received_at = time.perf_counter()
        envelope, body = split_envelope(frames)
        if len(body) != 1:
            self._send(
                envelope,
                rejected(
                    None,
                    None,
                    ErrorCode.INVALID_REQUEST,
                    f"a request is exactly one frame after the envelope; got {len(body)}",
                ),
            )
            return
        try:
            request = decode_request(body[0])
        except DecodeError as exc:
            self._send(envelope, rejected(exc.uuid, exc.action, exc.code, exc.message))
            return
        if not self.config.gateway.signature_validation:
            self._client_seen()  # nothing is authenticated: any readable request counts
        try:
            self._dispatch(envelope, request)
        except Exception:
            logger.exception("failed to handle {} {}", request.action, request.uuid)
            self._send(
                envelope,
                rejected(request.uuid, request.action, ErrorCode.INTERNAL, "internal error"),
            )

    def _dispatch(self, envelope: list[bytes], request: AnyRequest) -> None:
        if isinstance(request, Ping):
            self._send(envelope, self._pong(request))
        elif isinstance(request, GetOrder):
            self._send(envelope, self._order_status(request))
        elif isinstance(request, Open | Close):
            assert self._executor is not None
            reply = self._executor.admit(request, self._gate)
            if reply is not None:
                self._send(envelope, reply)
            else:
                # Counted once admitted and journaled (admit may raise after the gate passed);
                # nothing awaits in between, so the next request's gate sees it.
                if isinstance(request, Open):
                    self._opening += 1
                self._spawn(envelope, request, self._execute(request))
        elif isinstance(request, Halt | Resume):
            assert self._executor is not None
            reply = self._executor.admit(request)
            if reply is None:
                reply = self._executor.complete(request, self._switch(request))
            elif isinstance(request, Halt) and reply.error_code == ErrorCode.JOURNAL_UNAVAILABLE:
                # A HALT is never refused for want of a journal: it only makes things safer,
                # and a replay of it halts again, harmlessly.
                reply = self._switch(request)
            self._send(envelope, reply)
        elif len(self._tasks) >= self.config.gateway.max_queue:
            self._send(envelope, self._busy(request))
        else:
            self._spawn(envelope, request, self._query(request))

    def _switch(self, request: Halt | Resume) -> Reply:
        assert self._killswitch is not None
        if isinstance(request, Halt):
            self._killswitch.halt(request.reason or "HALT from a client")
        else:
            self._killswitch.resume()
        return Reply(
            uuid=request.uuid,
            action=request.action,
            status=Status.OK,
            timestamp=time.time(),
            halted=self._killswitch.halted,
        )

    def _gate(self, request: SignedRequest) -> Reply | None:
        """The gateway's own reasons to refuse a new order before it reaches the terminal."""
        assert self._worker is not None
        if isinstance(request, Open) and (refusal := self._backstop(request)):
            return refusal
        if self._stopping:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.BUSY,
                "the gateway is shutting down; retry with the same uuid once it is back",
            )
        if self.terminal.connected and (problem := self._account_problem()):
            return rejected(request.uuid, request.action, ErrorCode.RISK_REJECTED, problem)
        if not (self._worker.alive and self.terminal.connected):
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.MT5_DISCONNECTED,
                "the terminal is not connected; nothing was executed",
            )
        if not self._ledger.loaded:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.MT5_DISCONNECTED,
                "the terminal's recent history has not been read yet (it is how an order the "
                "journal lost is recognised); nothing was executed",
            )
        if len(self._tasks) >= self.config.gateway.max_queue:
            return self._busy(request)
        return None

    def _backstop(self, request: Open) -> Reply | None:
        """The kill switch and ``[gateway.limits]``, for a new OPEN."""
        assert self._killswitch is not None
        if self._killswitch.halted:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.TRADING_HALTED,
                f"trading is halted ({self._killswitch.reason}); CLOSE still works",
            )
        limits = self.config.gateway.limits
        problem = None
        if limits.symbols is not None and request.symbol not in limits.symbols:
            problem = f"{request.symbol} is not in the gateway's allowed symbols"
        elif limits.max_order_volume is not None and request.volume > limits.max_order_volume:
            problem = f"volume {request.volume:g} is over the limit of {limits.max_order_volume:g}"
        elif (
            limits.max_positions is not None
            and self.terminal.positions + self._opening >= limits.max_positions
        ):
            problem = f"the gateway's limit of {limits.max_positions} open positions is reached"
        if problem is None:
            return None
        return rejected(request.uuid, request.action, ErrorCode.RISK_REJECTED, problem)

    def _busy(self, request: AnyRequest) -> Reply:
        return rejected(
            request.uuid,
            request.action,
            ErrorCode.BUSY,
            "the gateway's queue is full; retry shortly with the same uuid",
        )

    def _pong(self, request: Ping) -> Reply:
        assert self._worker is not None and self._killswitch is not None
        info = self._info
        if self._killswitch.halted:
            info = msgspec.structs.replace(info, halted=True, halt_reason=self._killswitch.reason)
        if trouble := self._terminal_trouble():
            info = msgspec.structs.replace(info, warnings=[*info.warnings, trouble])
        reply = Reply(
            uuid=request.uuid,
            action=request.action,
            status=Status.OK,
            timestamp=time.time(),
            mt5_connected=self._terminal_connected(),
            gateway=info,
        )
        return self._with_authentication(request, reply)

    def _with_authentication(self, request: Ping, reply: Reply) -> Reply:
        """Say whether a signed PING's signature verified: a node learns at its first beat
        whether the gateway takes its secret, not at its first order."""
        secret = self.config.secret
        if request.risk_signature is None or secret is None:
            return reply
        now_ms = int(time.time() * 1000)
        try:
            verify(secret, request, now_ms=now_ms, ttl_ms=self.config.gateway.signature_ttl_ms)
        except SignatureError as exc:
            return msgspec.structs.replace(
                reply, authenticated=False, auth_error=exc.code.value, error_msg=exc.message
            )
        self._client_seen()
        return msgspec.structs.replace(reply, authenticated=True)

    def _client_seen(self) -> None:
        self._last_client = time.monotonic()

    def _order_status(self, request: GetOrder) -> Reply:
        assert self._journal is not None
        entry = self._journal.get(request.order_uuid)
        if entry is None:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.ORDER_NOT_FOUND,
                f"no order (OPEN, CLOSE, HALT or RESUME) with uuid {request.order_uuid} is known",
            )
        base = Reply(
            uuid=request.uuid,
            action=request.action,
            status=Status.PENDING,
            timestamp=time.time(),
            order_uuid=entry.uuid,
            order_action=entry.action,
        )
        if entry.reply is None:
            return msgspec.structs.replace(
                base, error_msg="this order is in flight or being reconciled"
            )
        stored = decode_reply(entry.reply)
        return msgspec.structs.replace(
            stored,
            uuid=base.uuid,
            action=base.action,
            timestamp=base.timestamp,
            order_uuid=base.order_uuid,
            order_action=base.order_action,
        )

    async def _execute(self, request: Open | Close) -> Reply:
        assert self._executor is not None
        try:
            reply = await self._executor.execute(request)
        finally:
            if isinstance(request, Open):
                self._opening -= 1
        if reply.error_code == ErrorCode.MT5_DISCONNECTED:
            self.terminal = TerminalStatus(connected=False, error=reply.error_msg or "")
        elif isinstance(request, Open) and reply.status is Status.FILLED:
            # Count it until the next status poll; over-counting errs on the safe side.
            self.terminal = msgspec.structs.replace(
                self.terminal, positions=self.terminal.positions + 1
            )
        return reply

    async def _query(self, request: GetAccount | GetPositions) -> Reply:
        assert self._worker is not None
        try:
            if isinstance(request, GetAccount):
                account = await self._worker.call(ACCOUNT, None)
                return Reply(
                    uuid=request.uuid,
                    action=request.action,
                    status=Status.OK,
                    timestamp=time.time(),
                    account=account,
                )
            positions = await self._worker.call(POSITIONS, request.symbol)
            return Reply(
                uuid=request.uuid,
                action=request.action,
                status=Status.OK,
                timestamp=time.time(),
                positions=positions,
            )
        except TerminalError as exc:
            logger.warning("{} {} failed: {}", request.action, request.uuid, exc)
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.MT5_DISCONNECTED,
                "the terminal could not answer; try again shortly",
            )

    def _spawn(
        self, envelope: list[bytes], request: AnyRequest, work: Coroutine[Any, Any, Reply]
    ) -> None:
        task = asyncio.create_task(
            self._reply_when_done(envelope, request, work, self._received_at)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply_when_done(
        self,
        envelope: list[bytes],
        request: AnyRequest,
        work: Coroutine[Any, Any, Reply],
        received_at: float,
    ) -> None:
        try:
            reply = await work
        except Exception:
            logger.exception("failed to handle {} {}", request.action, request.uuid)
            if isinstance(request, Open | Close):
                # It may have executed: never call that a rejection. Reconciliation settles it.
                assert self._executor is not None
                self._executor.needs_reconcile = True
                reply = pending(request, "internal error; the outcome is being reconciled")
            else:
                reply = rejected(request.uuid, request.action, ErrorCode.INTERNAL, "internal error")
        self._send(envelope, reply, received_at)
        if isinstance(request, Open | Close):
            assert self._executor is not None
            self._executor.record(request.uuid)

    def _send(self, envelope: list[bytes], reply: Reply, received_at: float | None = None) -> None:
        """Send ``reply``; ``received_at`` defaults to the arrival of the message being handled."""
        if self._transport is not None:
            self._transport.send([*envelope, encode(reply)])
        if self._metrics is not None:
            started = self._received_at if received_at is None else received_at
            self._metrics.observe_reply(
                reply.action, reply.status.value, time.perf_counter() - started
            )
