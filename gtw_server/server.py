"""The gateway server's life: startup, main loop, graceful shutdown with a deadline.

``Gateway(config).run()`` is the whole program. ``startup`` builds the parts in order, each
one registering how it is undone (an ``AsyncExitStack``): the data directory's lock, the
journal, the audit file, the kill switch, the terminal worker and its ``TerminalMonitor``, the
``OrderExecutor`` and its ``OrderGate``, the history ledger, the trade event log and its
``TradeWatcher``, then the ROUTER socket with the ``RequestRouter`` that answers it, and the
background chores. The main loop is the transport's
drain callback (``dispatch.py``). On SIGINT/SIGTERM (and SIGBREAK on Windows) the gateway stops
taking new orders, lets the ones in flight finish and sends their replies, then undoes the
parts in reverse, within ``shutdown_timeout_s``. A start that fails undoes what it had built
and exits 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final, NamedTuple

import zmq
from loguru import logger

from gtw_server import chores
from gtw_server.audit import add_gateway_audit_file
from gtw_server.config import Config
from gtw_server.curve import CurveServer
from gtw_server.deadman import DeadMansSwitch
from gtw_server.dirlock import DataDirLock
from gtw_server.dispatch import RequestRouter
from gtw_server.errors import GatewayError, JournalError
from gtw_server.event_log import EventLog
from gtw_server.events import EventPublisher
from gtw_server.executor import OrderExecutor
from gtw_server.feed import MarketFeed
from gtw_server.gate import OrderGate
from gtw_server.health import TerminalMonitor
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
from gtw_server.reads import Reads
from gtw_server.recovery import Recovery
from gtw_server.runtime import install_reload_handler, install_stop_handlers
from gtw_server.server_offset import OFFSET_FILE, ServerOffset
from gtw_server.throttle import Throttle
from gtw_server.trade_watch import TradeWatcher
from gtw_server.transport import RouterTransport
from gtw_server.worker import TerminalWorker, WorkerSpec
from plumbing.loop import loop_factory
from protocol import VERSION, GatewayInfo

__all__ = ["Gateway"]

# A start that failed has no orders in flight to finish: stop what did start, quickly.
_FAILED_START_DEADLINE_S: Final = 2.0
EVENT_LOG_FILE: Final = "events.sqlite3"


def _nothing() -> None:
    """Undo nothing (no signal handlers were installed)."""


class _Running(NamedTuple):
    """What a started gateway has, for the shutdown and the signals."""

    router: RequestRouter
    gate: OrderGate
    curve: CurveServer | None


class Gateway:
    """The trading gateway. ``Gateway(load_config(...)).run()`` serves until signalled."""

    def __init__(self, config: Config, *, sim_reset: bool = False) -> None:
        """``sim_reset`` starts the simulated broker's state afresh (``--reset-sim``)."""
        self.config = config
        self.sim_reset = sim_reset
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack = contextlib.AsyncExitStack()  # how to undo what startup built, in reverse
        self._running: _Running | None = None
        self._deadline_s = config.gateway.shutdown_timeout_s
        self.run_id = uuid.uuid4().hex[:16]  # names this run in every event

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
        starting = asyncio.ensure_future(self.startup())
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                # Asked to stop while starting (a terminal may take a minute to initialize):
                # stop now rather than at the end of the start.
                starting.cancel()
                await asyncio.wait({starting})
                logger.info("stopped while starting")
                await self.shutdown(deadline_s=_FAILED_START_DEADLINE_S)
                return 0
            if (exc := starting.exception()) is not None:
                # Whatever failed, the worker must not outlive this (it ignores SIGTERM, and an
                # exit that waited on it would hang with the port held): stop it, exit 2.
                if isinstance(exc, GatewayError):
                    logger.error("the gateway cannot start: {}", exc)
                else:
                    logger.opt(exception=exc).error("the gateway cannot start: {}", exc)
                await self.shutdown(deadline_s=_FAILED_START_DEADLINE_S)
                return 2
            await stopped
            return 0 if await self.shutdown() else 1
        finally:
            stopped.cancel()
            remove_handlers()
            remove_reload()

    def stop(self) -> None:
        """Ask the gateway to shut down gracefully (from its own event loop)."""
        self._stop.set()

    def stop_threadsafe(self) -> None:
        """Ask the gateway to shut down gracefully, from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    async def shutdown(self, *, deadline_s: float | None = None) -> bool:
        """Stop taking orders, finish those in flight (within ``deadline_s``, by default
        ``shutdown_timeout_s``), undo the rest. True if nothing was abandoned."""
        started = time.monotonic()
        self._deadline_s = (
            self.config.gateway.shutdown_timeout_s if deadline_s is None else deadline_s
        )
        finished = True
        if self._running is not None:
            self._running.gate.stopping = True
            finished = await self._running.router.drain(self._deadline_s)
        self._deadline_s = max(0.5, self._deadline_s - (time.monotonic() - started))
        await self._stack.aclose()
        return finished

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            logger.warning("{} again: already shutting down", sig.name)
            return
        logger.info("{} received: shutting down", sig.name)
        self.stop()

    def _reload(self) -> None:
        curve = self._running.curve if self._running is not None else None
        if curve is None:
            logger.info("SIGHUP received: nothing to reload (CURVE is off)")
            return
        logger.info("SIGHUP received: reloading the CURVE allow-list")
        curve.reload()

    # -- startup ---------------------------------------------------------------------------

    async def startup(self) -> None:
        config, gateway, stack = self.config, self.config.gateway, self._stack
        data_dir = config.data_dir
        # Before anything in the directory is touched: a second gateway must change nothing.
        lock = DataDirLock(data_dir)
        lock.acquire(bind=gateway.bind, alternative="give this one another --data-dir")
        stack.callback(lock.release)
        stack.callback(logger.info, "gateway stopped")
        self._warn_of_unsafe_settings()
        journal = self._open_journal(data_dir)
        stack.callback(journal.close)
        stack.callback(self._remember, journal)
        event_log = EventLog(
            data_dir / EVENT_LOG_FILE, retention_s=gateway.events_retention_days * 86_400
        )
        stack.callback(event_log.close)
        if gateway.audit_file is not None:
            audit_file = add_gateway_audit_file(
                data_dir / gateway.audit_file,
                rotation=gateway.audit_rotation,
                retention=gateway.audit_retention,
                retention_size=gateway.audit_retention_size,
            )
            stack.callback(audit_file.close)
        throttle = Throttle()
        stack.callback(chores.sum_up, throttle)  # the last counts, before the file closes
        # The order outcomes logged one by one; the rest are counted, if an audit file has them.
        shown = Throttle() if gateway.audit_file is not None else None
        if shown is not None:
            stack.callback(chores.tell_unshown, shown)
        killswitch = KillSwitch(data_dir / "halt.json")
        if killswitch.halted:
            logger.warning("[HALTED] trading is halted since the last run: {}", killswitch.reason)
        metrics = GatewayMetrics() if gateway.metrics_port is not None else None
        ledger = HistoryLedger(gateway.history_lookback_hours * 3600)
        deadman = DeadMansSwitch(killswitch, gateway.halt_after_silence_s or 0.0)

        # Bound before the worker starts (a taken port fails at once) and read only once the
        # router is ready; closed after the worker stopped, so a late request still gets BUSY.
        transport, publisher, curve = self._bind(throttle)
        worker = TerminalWorker(
            WorkerSpec(
                terminal=gateway.terminal,
                sim=config.sim,
                sim_state=str(data_dir / "sim.sqlite3"),
                sim_reset=self.sim_reset,
                mt5=config.mt5,
                symbols=gateway.symbols,
            ),
            call_timeout=gateway.terminal_timeout_s,
            observe=metrics.observe_terminal_call if metrics else None,
        )
        stack.push_async_callback(self._stop_worker, worker)
        await worker.start()
        executor = OrderExecutor(
            journal,
            worker,
            ledger=ledger,
            secret=config.secret if gateway.signature_validation else None,
            operator_secret=config.operator_secret,
            signature_ttl_ms=gateway.signature_ttl_ms,
            settle_s=gateway.reconcile_settle_s,
            on_authenticated=deadman.seen,
            throttle=throttle,
            shown=shown,
            symbols=gateway.symbols,
        )
        worker.on_busy = executor.flush  # the terminal works, the loop writes the records
        stack.callback(executor.flush)  # the last ones, before the journal and audit close

        recovery = Recovery(worker, journal, ledger, executor, settle_s=gateway.reconcile_settle_s)
        monitor = TerminalMonitor(
            worker,
            gateway,
            connect_timeout_s=max(gateway.terminal_timeout_s, config.mt5.timeout_ms / 1000 + 10),
            upkeep=recovery.upkeep,
            on_reconnected=recovery.caught_up,
            offset=ServerOffset(data_dir / OFFSET_FILE, gateway.server_timezone),
        )
        worker.on_restart = monitor.restarted
        if await monitor.connect():
            if problem := monitor.account_problem():
                raise GatewayError(problem)
            await recovery.read_history()

        watcher = TradeWatcher(
            worker,
            event_log,
            publisher,
            run=self.run_id,
            owner=ledger.owner,
            interval_s=gateway.trade_poll_ms / 1000,
            account_interval_s=gateway.account_event_interval_ms / 1000,
            throttle=throttle,
        )
        tasks: set[asyncio.Task[None]] = set()
        gate = OrderGate(gateway, monitor, killswitch, ledger, queued=lambda: len(tasks))
        router = RequestRouter(
            config,
            transport=transport,
            executor=executor,
            gate=gate,
            monitor=monitor,
            journal=journal,
            ledger=ledger,
            killswitch=killswitch,
            worker=worker,
            reads=Reads(worker, max_rows=gateway.max_rows),
            watcher=watcher,
            event_log=event_log,
            info=self._info(),
            seen=deadman.seen,
            tasks=tasks,
            metrics=metrics,
        )
        transport.start(router.on_message)
        feed = None
        if publisher is not None:
            publisher.start()
            feed = MarketFeed(
                worker,
                publisher,
                monitor,
                killswitch,
                interval_s=gateway.poll_interval_ms / 1000,
                throttle=throttle,
            )
        if metrics is not None and gateway.metrics_port is not None:
            metrics.expose(
                in_flight=lambda: len(tasks),
                terminal_queue=lambda: worker.in_flight,
                journal=journal,
                connected=lambda: monitor.connected,
                halted=lambda: killswitch.halted,
                worker_restarts=lambda: worker.restarts,
                replies_dropped=lambda: transport.dropped_replies,
                server_offset=lambda: _or_nan(monitor.offset.offset_s if monitor.offset else None),
            )
            self._serve_metrics(metrics, gateway.metrics_port)
        deadman.seen()
        self._start_chores(
            ("terminal-monitor", monitor.watch()),
            ("startup-reconcile", recovery.reconcile()),
            (
                "journal-pruning",
                chores.prune(journal, ledger, gateway.journal_retention_days * 86_400),
            ),
            ("journal-settles", chores.write_unsettled(journal)),
            ("trade-watcher", watcher.run()),
            ("event-log-pruning", chores.prune_events(event_log)),
            ("journal-state", chores.remember_journal(journal, data_dir)),
            ("throttle", chores.sum_up_floods(throttle)),
            *([("outcomes-shown", chores.count_unshown(shown))] if shown is not None else []),
            *([("curve-allow-list", curve.watch())] if curve is not None else []),
            *([("dead-man", deadman.watch())] if gateway.halt_after_silence_s else []),
            *([("market-feed", feed.run())] if feed is not None else []),
        )
        self._running = _Running(router=router, gate=gate, curve=curve)
        logger.info(
            "gateway ready on {} | events {} | terminal {} ({}) | CURVE {} | signatures {} | "
            "journal {} ({} entries)",
            transport.endpoint,
            publisher.endpoint if publisher else "off",
            router.info.terminal,
            monitor.describe(),
            "on" if curve else "off",
            "on" if gateway.signature_validation else "OFF",
            journal.path,
            len(journal),
        )
        if gateway.symbols:
            names = ", ".join(f"{asked} is {name}" for asked, name in gateway.symbols.items())
            logger.info("symbol names ([gateway] symbols): {}", names)

    def _bind(
        self, throttle: Throttle
    ) -> tuple[RouterTransport, EventPublisher | None, CurveServer | None]:
        """The ROUTER socket and the event socket, bound (with CURVE when configured), not
        yet read."""
        gateway, stack = self.config.gateway, self._stack
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        stack.callback(context.term)  # waits (up to LINGER) for the last replies to leave
        curve = None
        if gateway.curve_secret_key is not None and gateway.curve_clients is not None:
            keys, clients = Path(gateway.curve_secret_key), Path(gateway.curve_clients)
            curve = CurveServer(keys, clients, context)
            stack.callback(curve.stop)
        elif gateway.insecure:
            logger.warning(
                "listening on {} WITHOUT CURVE (--insecure): orders and replies cross the "
                "network unencrypted, and any client that reaches the port is answered",
                gateway.bind,
            )
        try:
            transport = RouterTransport(
                gateway.bind,
                max_message_bytes=gateway.max_message_bytes,
                context=context,
                setup=curve.apply if curve else None,
                throttle=throttle,
            )
        except zmq.ZMQError as exc:
            raise GatewayError(f"cannot bind {gateway.bind}: {exc}") from None
        stack.callback(transport.close)
        publisher = None
        if (events := gateway.events_endpoint) is not None:
            try:
                publisher = EventPublisher(
                    events,
                    run=self.run_id,
                    max_topics=gateway.max_topics,
                    context=context,
                    setup=curve.apply if curve else None,
                    throttle=throttle,
                )
            except zmq.ZMQError as exc:
                raise GatewayError(
                    f'cannot bind the event socket {events}: {exc} (--events ENDPOINT, or "off")'
                ) from None
            stack.callback(publisher.close)
            stack.callback(publisher.state, "STOPPING")
        return transport, publisher, curve

    def _serve_metrics(self, metrics: GatewayMetrics, port: int) -> None:
        host = self.config.gateway.metrics_host
        where = f"{host}:{port}"
        try:
            metrics.serve(port, host)
        except OSError as exc:
            raise GatewayError(f"cannot serve metrics on {where}: {exc.strerror}") from None
        logger.info("metrics on http://{}/metrics", where)

    def _start_chores(self, *chores: tuple[str, Coroutine[Any, Any, None]]) -> None:
        """Run each chore as a task, cancelled at shutdown."""
        for name, chore in chores:
            self._stack.callback(asyncio.create_task(chore, name=name).cancel)

    def _warn_of_unsafe_settings(self) -> None:
        gateway = self.config.gateway
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

    def _info(self) -> GatewayInfo:
        """What PING says of this gateway."""
        gateway = self.config.gateway
        warnings = []
        if not gateway.signature_validation:
            warnings.append("signature validation is OFF: anyone who can reach this port can trade")
        if gateway.insecure and not gateway.curve:
            warnings.append("listening without CURVE (--insecure): traffic is not encrypted")
        return GatewayInfo(
            version=VERSION,
            terminal="SIM" if gateway.terminal == "sim" else "LIVE",
            signature_validation=gateway.signature_validation,
            warnings=warnings,
        )

    def _open_journal(self, data_dir: Path) -> Journal:
        """Open the journal, and say loudly if it is not the one this directory had."""
        before = survey(data_dir)
        if note := recovered_note(data_dir):
            logger.warning("{}", note)
        journal = Journal(data_dir / JOURNAL_FILE, defer=asyncio.get_running_loop().call_soon)
        if problem := examine(data_dir, before, journal):
            logger.error(
                "{}. Orders the journal does not know are checked against the terminal's "
                "history of the last {:g} h before they execute; retries of older ones are not",
                problem,
                self.config.gateway.history_lookback_hours,
            )
        JournalState.of(journal).write(data_dir)
        return journal

    def _remember(self, journal: Journal) -> None:
        with contextlib.suppress(JournalError, OSError):
            JournalState.of(journal).write(self.config.data_dir)

    async def _stop_worker(self, worker: TerminalWorker) -> None:
        await worker.stop(grace_s=self._deadline_s)


def _or_nan(value: float | None) -> float:
    """A gauge's value: NaN for one not known (Prometheus shows it as such, not as 0)."""
    return math.nan if value is None else value
