"""The terminal worker: one child process that owns the terminal connection.

The ``MetaTrader5`` binary never releases the GIL, so a terminal call made in the gateway's
process would freeze its event loop for the whole call (docs/ARCHITECTURE.md, "A worker process,
not a thread"). Every terminal call is therefore made here, in a separate process, one at a time
(the package has one global connection and one ``last_error`` slot). The parent talks to it over
two one-way pipes with msgpack frames (cheaper than pickling), and a reader thread hands results
back to the event loop. A call that outlives its deadline gets the process killed and a fresh
one started.

The child ignores SIGINT and SIGTERM: on Ctrl+C or a service stop the whole process group
is signalled, and the parent must be the one to decide when its in-flight calls are done.
It exits when the parent closes the pipe, or dies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final, Literal, TypeVar

import msgspec
from loguru import logger
from msgspec import Struct

from gtw_server.adapter import TerminalAdapter, load_metatrader5
from gtw_server.config import Mt5Config
from gtw_server.errors import (
    TerminalDisconnected,
    TerminalError,
    TerminalRefused,
    TerminalUnavailable,
    WorkerCrashed,
    WorkerUnavailable,
)
from gtw_server.lanes import Lanes
from gtw_server.operations import OPERATIONS, Op
from gtw_server.terminal.sim import SimConfig

__all__ = ["TerminalWorker", "WorkerSpec"]

A = TypeVar("A")
R = TypeVar("R")
_encoder: Final = msgspec.msgpack.Encoder()
_NO_VALUE: Final = msgspec.Raw(msgspec.msgpack.encode(None))
_READY_ID: Final = 0  # the child's first message: its terminal was built (or why not)
_START_TIMEOUT_S: Final = 60.0
_RESPAWN_MIN_S: Final = 0.5
_RESPAWN_MAX_S: Final = 30.0
_PIPE_DEPTH: Final = 4  # calls queued in the pipe ahead of the worker; the rest wait here
_WATCHDOG_TICK_S: Final = 0.25
_STOP_JOIN_S: Final = 2.0


class WorkerSpec(Struct, frozen=True, kw_only=True):
    """What the worker process needs to build its terminal; sent to it when it starts."""

    terminal: Literal["sim", "mt5"] = "sim"
    sim: SimConfig = msgspec.field(default_factory=SimConfig)
    sim_state: str | None = None
    # Start the simulated broker afresh (the first start only: a restarted worker must find
    # the fills its predecessor made, to reconcile them).
    sim_reset: bool = False
    mt5: Mt5Config = msgspec.field(default_factory=Mt5Config)
    symbols: dict[str, str] = msgspec.field(default_factory=dict)  # [gateway] symbols


class _Call(Struct, array_like=True):
    id: int
    op: str
    arg: msgspec.Raw


class _Result(Struct, array_like=True):
    id: int
    # ("disconnected" | "error" | "refused:<ErrorCode>", message) when the call failed
    error: tuple[str, str] | None
    value: msgspec.Raw


# -- the child process ---------------------------------------------------------------------


def _build_adapter(spec: WorkerSpec) -> TerminalAdapter:
    if spec.terminal == "sim":
        from gtw_server.terminal.sim import SimTerminal  # noqa: PLC0415 (only in the child)

        terminal = SimTerminal(state_path=spec.sim_state, config=spec.sim, reset=spec.sim_reset)
        return TerminalAdapter(terminal, symbols=spec.symbols)
    module = load_metatrader5()
    kwargs: dict[str, Any] = {"timeout": spec.mt5.timeout_ms, "portable": spec.mt5.portable}
    if spec.mt5.path:
        kwargs["path"] = spec.mt5.path
    if spec.mt5.login:
        kwargs["login"] = spec.mt5.login
        kwargs["password"] = os.environ.get(spec.mt5.password_env, "")
    if spec.mt5.server:
        kwargs["server"] = spec.mt5.server
    return TerminalAdapter(module, kwargs, spec.symbols)


# How a call that raised in the worker is reported to the parent, and raised again there.
_ERRORS: Final[dict[str, type[TerminalError]]] = {
    "disconnected": TerminalDisconnected,  # nothing was done: the terminal is not reachable
    "error": TerminalError,
}


_REFUSED: Final = "refused:"  # and the ErrorCode: a read that cannot be answered as asked


def _raised(kind: str, message: str) -> TerminalError:
    """The exception a call that failed in the worker raises in the parent."""
    if kind.startswith(_REFUSED):
        return TerminalRefused(kind.removeprefix(_REFUSED), message)
    return _ERRORS[kind](message)


def _exit_with_parent() -> None:
    """Leave as soon as the parent is gone, even in the middle of a call."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _serve(calls: Connection, results: Connection, adapter: TerminalAdapter) -> None:
    while True:
        try:
            call = msgspec.msgpack.decode(calls.recv_bytes(), type=_Call)
        except (EOFError, OSError):
            return
        op = OPERATIONS[call.op]
        arg = msgspec.msgpack.decode(call.arg, type=op.argument) if op.argument else None
        error: tuple[str, str] | None = None
        value: Any = None
        try:
            value = op.run(adapter, arg)
        except TerminalDisconnected as exc:
            error = ("disconnected", str(exc))
        except TerminalRefused as exc:
            error = (f"{_REFUSED}{exc.code}", str(exc))
        except Exception as exc:  # reported to the parent, which keeps running
            error = ("error", f"{type(exc).__name__}: {exc}")
        raw = msgspec.Raw(_encoder.encode(value))
        results.send_bytes(_encoder.encode(_Result(call.id, error, raw)))


def worker_main(calls: Connection, results: Connection, spec: WorkerSpec) -> None:
    """Entry point of the worker process."""
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True, name="parent-watch").start()
    try:
        adapter = _build_adapter(spec)
    except Exception as exc:  # reported to the parent, which refuses to start
        error = ("unavailable", f"{exc}")
        results.send_bytes(_encoder.encode(_Result(_READY_ID, error, _NO_VALUE)))
        return
    results.send_bytes(_encoder.encode(_Result(_READY_ID, None, _NO_VALUE)))
    _serve(calls, results, adapter)


# -- the parent side -----------------------------------------------------------------------

_running: set[BaseProcess] = set()  # worker processes this interpreter started and not reaped


def _kill_left_behind() -> None:
    """At exit, kill any worker still running. multiprocessing's own exit handler would send it
    SIGTERM, which it ignores, and then wait for it forever: a process that failed to stop
    cleanly would never exit, its port held. Registered after that handler, so it runs first."""
    for process in list(_running):
        if process.is_alive():
            process.kill()
            process.join(_STOP_JOIN_S)


class TerminalWorker:
    """The parent's handle on the worker process: start it, call it, watch it, stop it.

    Calls are queued here and at most ``_PIPE_DEPTH`` of them sit in the pipe, so the worker
    never starves and a crash leaves no doubt about what it had read: it runs calls in order,
    so only the oldest unanswered call can have been running. A call that has been running for
    longer than ``call_timeout`` gets the process killed (the watchdog); a process that exits
    for any reason is started again with a capped backoff, and ``on_restart`` is awaited once
    it is back (the server reconnects the terminal and reconciles there).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        call_timeout: float = 30.0,
        on_restart: Callable[[], Awaitable[None]] | None = None,
        observe: Callable[[str, float], None] | None = None,
        platform: str = sys.platform,
    ) -> None:
        """``observe(op, seconds)`` is told how long each answered call took. ``on_busy``,
        when set, runs each time a call has been handed to the process: the loop is free
        until it answers (the executor writes its records then); it must not raise."""
        self.spec = spec
        self.on_busy: Callable[[], None] | None = None
        self._platform = platform
        self._observe = observe
        self.call_timeout = call_timeout
        self.on_restart = on_restart
        self.restarts = 0
        self._ids = itertools.count(_READY_ID + 1)
        # Sent and unanswered calls, oldest first (dicts keep insertion order).
        self._sent: dict[int, asyncio.Future[_Result]] = {}
        self._timeouts: dict[int, float] = {}  # calls allowed longer than call_timeout
        self._head_since = 0.0  # when the oldest unanswered call started running
        self._lanes = Lanes(_PIPE_DEPTH)  # orders first; market data behind them
        self._process: BaseProcess | None = None
        self._calls: Connection | None = None
        self._stopping = False
        self._respawning: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[_Result] | None = None  # the child's first message
        self._watchdog: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        """Whether the worker is running and taking calls."""
        return self._calls is not None

    @property
    def in_flight(self) -> int:
        """Calls sent to the worker and not yet answered."""
        return len(self._sent)

    @property
    def running_for(self) -> float:
        """How long the call now running has been at it, in seconds (0 when none is)."""
        if not self._sent or self._loop is None:
            return 0.0
        return self._loop.time() - self._head_since

    async def start(self) -> None:
        """Start the worker process and wait until it has built its terminal.

        Raises ``TerminalUnavailable`` when it cannot (e.g. no MetaTrader5 package). The
        terminal connection itself is made by a ``connect`` call.
        """
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[_Result] = self._loop.create_future()
        self._ready = ready
        ctx = multiprocessing.get_context("spawn")  # the only start method on Windows
        calls_reader, calls_writer = ctx.Pipe(duplex=False)
        results_reader, results_writer = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=worker_main,
            args=(calls_reader, results_writer, self.spec),
            name="mt5-terminal-worker",
            daemon=True,
        )
        if not _running:  # the first start: multiprocessing's exit handler is in place by now
            atexit.unregister(_kill_left_behind)
            atexit.register(_kill_left_behind)
        # Known before it starts: a start cancelled meanwhile still leaves it to be killed.
        _running.add(process)
        try:
            await asyncio.to_thread(process.start)
        finally:
            calls_reader.close()
            results_writer.close()
        self._process = process
        self._watch_results(results_reader, process)
        try:
            result = await asyncio.wait_for(ready, _START_TIMEOUT_S)
        except (TimeoutError, TerminalError) as exc:
            process.kill()
            raise TerminalUnavailable(f"the terminal worker did not start: {exc}") from None
        finally:
            self._ready = None
        if result.error is not None:
            calls_writer.close()
            raise TerminalUnavailable(result.error[1])
        self._calls = calls_writer
        self.spec = msgspec.structs.replace(self.spec, sim_reset=False)
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="worker-watchdog")
        logger.debug("terminal worker started (pid {})", process.pid)

    async def call(self, op: Op[A, R], arg: A, *, timeout: float | None = None) -> R:
        """Run ``op`` (``gtw_server.operations``) with ``arg`` in the worker; return its result.

        ``timeout`` replaces ``call_timeout`` for this call (a terminal's ``initialize`` may
        legitimately wait for its own, longer, timeout).

        A ``background`` op (market data) waits behind every other waiting call.

        Raises ``TerminalDisconnected`` when the terminal is unreachable (nothing done),
        ``TerminalRefused`` when it cannot answer a read as asked,
        ``WorkerUnavailable`` when the call could not be sent (nothing done),
        ``WorkerCrashed`` when the worker died or hung while running it (outcome unknown),
        and ``TerminalError`` for anything else the terminal raised.
        """
        arg_bytes = msgspec.Raw(_encoder.encode(arg))
        await self._lanes.acquire(op.background)
        try:
            calls = self._calls
            if calls is None or self._stopping:
                state = "stopping" if self._stopping else "restarting"
                raise WorkerUnavailable(f"the terminal worker is {state}")
            assert self._loop is not None
            call_id = next(self._ids)
            future: asyncio.Future[_Result] = self._loop.create_future()
            if not self._sent:
                self._head_since = self._loop.time()
            self._sent[call_id] = future
            if timeout is not None:
                self._timeouts[call_id] = timeout
            started = time.perf_counter()
            try:
                calls.send_bytes(_encoder.encode(_Call(call_id, op.name, arg_bytes)))
            except OSError:
                self._sent.pop(call_id, None)
                raise WorkerUnavailable("the terminal worker is gone") from None
            if self.on_busy is not None:
                try:
                    self.on_busy()
                except Exception:  # the call is sent: nothing may make it look failed
                    logger.exception("while the terminal worker is busy")
            try:
                result = await future
            finally:
                self._sent.pop(call_id, None)
                self._timeouts.pop(call_id, None)
        finally:
            self._lanes.release(op.background)
        if self._observe is not None:
            self._observe(op.name, time.perf_counter() - started)
        if result.error is not None:
            raise _raised(*result.error)
        value: R = msgspec.msgpack.decode(result.value, type=op.result)
        return value

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the calls in flight finish (up to ``grace_s``), then end the process: it leaves
        when its pipe closes, or is killed after ``grace_s`` (2 s at most)."""
        self._stopping = True
        for task in (self._respawning, self._watchdog):
            if task is not None:
                task.cancel()
        if self._sent:
            await asyncio.wait(list(self._sent.values()), timeout=grace_s)
        process, calls = self._process, self._calls
        self._calls = None
        if calls is not None:
            calls.close()  # the child sees EOF and leaves its loop
        if process is not None:
            await asyncio.to_thread(process.join, min(grace_s, _STOP_JOIN_S))
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, _STOP_JOIN_S)

    async def _watch(self) -> None:
        """Kill the worker when its current call has run for longer than ``call_timeout``."""
        assert self._loop is not None
        while True:
            await asyncio.sleep(_WATCHDOG_TICK_S)
            if not self._sent:
                continue
            limit = self._timeouts.get(next(iter(self._sent)), self.call_timeout)
            if self._loop.time() - self._head_since > limit:
                self._kill(f"a terminal call has run for more than {limit:g} s")

    def _kill(self, reason: str) -> None:
        """Kill the process; its reader thread then reports the exit, which respawns it."""
        if self._process is not None and self._process.is_alive():
            logger.warning("killing the terminal worker (pid {}): {}", self._process.pid, reason)
            self._process.kill()

    def _watch_results(self, results: Connection, process: BaseProcess) -> None:
        """Hand each result to the event loop as it comes; report the worker's exit.

        On POSIX the pipe is a file descriptor the loop can watch, which saves a thread hop
        per result; Windows pipes are not selectable, so a thread reads them there.
        """
        assert self._loop is not None
        if self._platform == "win32":
            threading.Thread(
                target=self._read_results, args=(results, process), daemon=True, name="results"
            ).start()
            return
        loop = self._loop
        # Connection.poll() builds a selector at each call: one poll object, asked again.
        pending = select.poll()
        pending.register(results.fileno(), select.POLLIN)

        def readable() -> None:
            try:
                while pending.poll(0):  # everything already in the pipe, then back to the loop
                    self._resolve(msgspec.msgpack.decode(results.recv_bytes(), type=_Result))
            except (EOFError, OSError):
                loop.remove_reader(results.fileno())
                results.close()
                self._on_exit(process)

        loop.add_reader(results.fileno(), readable)
        # uvloop (libuv) makes a watched descriptor non-blocking; a result larger than the
        # pipe's buffer must still be read whole once it starts arriving.
        os.set_blocking(results.fileno(), True)

    def _read_results(self, results: Connection, process: BaseProcess) -> None:
        """Reader thread (Windows): hand each result to the event loop; report the exit."""
        assert self._loop is not None
        loop = self._loop
        try:
            while True:
                result = msgspec.msgpack.decode(results.recv_bytes(), type=_Result)
                loop.call_soon_threadsafe(self._resolve, result)
        except (EOFError, OSError):
            pass
        finally:
            results.close()
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(self._on_exit, process)

    def _resolve(self, result: _Result) -> None:
        # Answered calls leave ``_sent`` at once: it must hold only unanswered ones, the
        # oldest of which is the one running (see ``_on_exit`` and the watchdog).
        future = self._ready if result.id == _READY_ID else self._sent.pop(result.id, None)
        if future is not None and not future.done():
            future.set_result(result)
        assert self._loop is not None
        self._head_since = self._loop.time()  # the next call starts running now

    def _on_exit(self, process: BaseProcess) -> None:
        _running.discard(process)
        if process is not self._process:
            return  # a process we already replaced
        was_serving = self._calls is not None  # not a start that failed
        self._process = self._calls = None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(WorkerCrashed(f"exit code {process.exitcode}"))
        # Calls run in order and leave ``_sent`` when answered, so the first one in it was
        # running (even if its caller has since given up on it) and the rest never started.
        for index, future in enumerate(self._sent.values()):
            if not future.done():
                future.set_exception(
                    WorkerCrashed("the terminal worker died while running this call")
                    if index == 0
                    else WorkerUnavailable("the terminal worker died before running this call")
                )
        if was_serving and not self._stopping and self._respawning is None:
            logger.error("the terminal worker exited (code {})", process.exitcode)
            self._respawning = asyncio.ensure_future(self._respawn())

    async def _respawn(self) -> None:
        delay = 0.0
        try:
            while not self._stopping:
                await asyncio.sleep(delay)
                try:
                    await self.start()
                except TerminalUnavailable as exc:
                    delay = min(max(delay * 2, _RESPAWN_MIN_S), _RESPAWN_MAX_S)
                    logger.error(
                        "terminal worker restart failed ({}); retrying in {} s", exc, delay
                    )
                    continue
                self.restarts += 1
                logger.info("terminal worker restarted (pid {})", self.pid)
                if self.on_restart is not None:
                    await self.on_restart()
                return
        finally:
            self._respawning = None
