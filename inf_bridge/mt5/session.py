"""The connection behind ``inf_bridge.mt5``: one ``Bridge``, on an event loop of its own.

The ``MetaTrader5`` package is synchronous and has one connection per process; so has this
module. ``Session`` runs a ``Bridge`` on an event loop in a daemon thread (anyio's blocking
portal) and turns each call of the package's functions into one request to the gateway,
waited for in the caller's thread: any thread may call (frameworks call the package through
``asyncio.to_thread``), and the calls are answered as they come.

What the package reports through ``last_error()`` is kept here, one slot for the process as in
the package. The gateway's own refusals become the package's codes a script already handles:

| what happened | the function returns | ``last_error()`` |
|---|---|---|
| no ``initialize()`` yet, or after ``shutdown()`` | ``None`` | ``(-10004, 'No IPC connection')`` |
| the gateway did not answer in time | ``None`` | ``(-10005, 'IPC timeout')`` |
| the gateway's terminal is not connected | ``None`` | ``(-10004, 'No IPC connection')`` |
| arguments the wire cannot carry (a list, an object) | ``None`` | ``(-2, 'Invalid arguments')`` |
| a reply it cannot read (another build's shape) | ``None`` | ``(-10000, 'IPC call failed')`` |
| more rows than the gateway's ``max_rows`` | ``None`` | ``(-2, 'Terminal: Invalid params')`` |
| the gateway busy for the whole request timeout | ``None`` | ``(-10005, 'IPC timeout')`` |

A connection lives in its process: a forked child starts with none (it must call
``initialize()``, as it would with the package under ``spawn``), and one still open at exit
is closed.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from inf_bridge.client import Bridge, new_uuid
from inf_bridge.config import load_config
from inf_bridge.errors import (
    BadReply,
    BridgeError,
    CircuitOpen,
    GatewayTimeout,
    InvalidRequest,
    OutcomeUnknown,
    RequestRefused,
)
from inf_bridge.mt5.orders import binding_error, send, trade_request
from protocol import STRUCT_KEY
from protocol.mt5_structs import STRUCT_TYPES, OrderSendResult

__all__ = ["Session"]

T = TypeVar("T")

Error = tuple[int, str]
SUCCESS: Final[Error] = (1, "Success")
NO_IPC: Final[Error] = (-10004, "No IPC connection")
IPC_TIMEOUT: Final[Error] = (-10005, "IPC timeout")
INVALID_ARGUMENTS: Final[Error] = (-2, "Invalid arguments")
INVALID_PARAMS: Final[Error] = (-2, "Terminal: Invalid params")
AUTHORIZATION_FAILED: Final[Error] = (-6, "Terminal: Authorization failed")
CALL_FAILED: Final[Error] = (-10000, "IPC call failed")
DEFAULT_TIMEOUT_S: Final = 60.0  # the package's: "0 or absent means 60000" ms
UNKNOWN_KEPT_S: Final = 300.0  # how long an order of untold outcome is matched to a retry
# The exceptions a package function may raise, raised here as the same type.
_RAISED: Final[dict[str, type[Exception]]] = {
    name: getattr(builtins, name) for name in ("TypeError", "ValueError", "OverflowError")
}
_REFUSALS: Final[dict[str, Error]] = {
    "MT5_DISCONNECTED": NO_IPC,
    "BUSY": IPC_TIMEOUT,
    "TOO_LARGE": INVALID_PARAMS,
}
_STRUCTS: Final = {kind.__name__: kind for kind in STRUCT_TYPES}
_forgotten: list[Any] = []  # a forked child's copies of its parent's connection


class Session:
    """The module's connection to the gateway, and its ``last_error()`` slot."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._connecting = threading.RLock()  # one connect or close at a time
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._bridge: Bridge | None = None
        self.error: Error = (0, "")  # before the first call, as the package's
        # Orders whose outcome could not be told, by their request (price and deviation
        # aside: a retry re-reads the quote), oldest first, with when: the same request sent
        # again within UNKNOWN_KEPT_S goes with the same uuid, so the gateway answers it.
        self._unknown: dict[tuple[Any, ...], list[tuple[str, float]]] = {}
        self._unknown_lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._bridge is not None

    def connect(
        self,
        *,
        endpoint: str | None = None,
        secret: str | None = None,
        config: str | None = None,
        timeout_s: float | None = None,
        curve: Mapping[str, str] | None = None,
    ) -> None:
        """Connect to the gateway, closing any connection first; raises ``BridgeError`` (and
        ``ConfigError``) when it cannot. The settings not given come from the client's usual
        configuration (``inf_bridge.config``: the file, ``MT5_BRIDGE_*``); ``curve`` its CURVE
        key files by setting name (``curve_server_key``, ``curve_client_cert``); each call
        waits ``timeout_s`` for the gateway (the package's default, 60 s, when not given)."""
        with self._connecting:
            self.close()
            overrides = {"endpoint": endpoint, "request_timeout": timeout_s or DEFAULT_TIMEOUT_S}
            overrides |= dict(curve or {})
            settings = load_config(config_file=config, overrides=overrides)
            options = settings.bridge_options()
            if secret is not None:
                options["secret"] = secret
            portal_cm = start_blocking_portal("asyncio")
            portal = portal_cm.__enter__()
            bridge = Bridge(settings.endpoint, **options)
            try:
                portal.call(bridge.open)
            except BaseException:
                portal_cm.__exit__(None, None, None)
                raise
            with self._lock:
                self._portal_cm, self._portal, self._bridge = portal_cm, portal, bridge

    def close(self) -> None:
        """Close the connection, if any (idempotent). A call another thread is waiting on
        ends with ``None`` and ``(-10004, 'No IPC connection')``."""
        with self._connecting:
            with self._lock:
                portal_cm, portal, bridge = self._portal_cm, self._portal, self._bridge
                self._portal_cm = self._portal = self._bridge = None
            if portal_cm is None or portal is None or bridge is None:
                return
            try:
                portal.call(bridge.close)
            finally:
                portal_cm.__exit__(None, None, None)

    def forget(self) -> None:
        """Drop the connection without closing it: in a forked child, whose copy of it has
        no loop thread to run on (the parent's is the parent's). The copy is kept, never
        finalized: closing the portal's context would wait for that loop for ever."""
        _forgotten.append((self._portal_cm, self._portal, self._bridge))
        self._lock = threading.RLock()
        self._connecting = threading.RLock()
        self._portal_cm = self._portal = self._bridge = None

    def read(self, function: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """``function(*args, **kwargs)`` of the package, in the gateway's terminal: what it
        returned (structures, tuples and arrays as the package's), ``None`` on failure; raises
        the package's ``TypeError``. ``last_error()`` says what happened."""
        answer = self._ask(
            lambda bridge: bridge.mt5_read(
                function, [_wire(arg) for arg in args], {k: _wire(v) for k, v in kwargs.items()}
            )
        )
        if answer is None:
            return None
        value, array = answer
        self.error = (int(value.error[0]), str(value.error[1]))
        if value.raised is not None:
            raise _RAISED.get(value.raised_type or "", RuntimeError)(value.raised)
        if array is not None:
            return array
        try:
            return _package(value.value)
        except (KeyError, TypeError, ValueError):  # a structure of another build's shape
            self.error = CALL_FAILED
            return None

    def order_send(self, request: Mapping[str, Any]) -> OrderSendResult | None:
        """The package's ``order_send(request)`` through the Bridge (``inf_bridge.mt5.orders``):
        its result, refusals included; ``None`` when the binding refuses the request or the
        gateway could not be asked or could not tell (``last_error()`` says which)."""
        if (refused := binding_error(request)) is not None:
            self.error = refused
            return None
        trade = trade_request(request)
        key = _order_key(trade)
        before = self._unknown_uuid(key)
        uuid = before or new_uuid()
        try:
            result: OrderSendResult | None = self._ask(
                lambda bridge: send(bridge, trade, uuid, asked_before=before is not None)
            )
        except OutcomeUnknown:
            if before is None:  # asked again, it is answered, not executed again
                with self._unknown_lock:
                    self._unknown.setdefault(key, []).append((uuid, time.monotonic()))
            self.error = IPC_TIMEOUT
            return None
        if result is not None:  # told: whatever became of it is known now
            self._told(key, uuid)
            self.error = SUCCESS
        return result

    def _unknown_uuid(self, key: tuple[Any, ...]) -> str | None:
        """The oldest uuid of an order like this one whose outcome is not told, if any."""
        with self._unknown_lock:
            now = time.monotonic()
            for other in list(self._unknown):
                kept = [(u, t) for u, t in self._unknown[other] if now - t < UNKNOWN_KEPT_S]
                if kept:
                    self._unknown[other] = kept
                else:
                    del self._unknown[other]
            waiting = self._unknown.get(key)
            return waiting[0][0] if waiting else None

    def _told(self, key: tuple[Any, ...], uuid: str) -> None:
        with self._unknown_lock:
            waiting = [(u, t) for u, t in self._unknown.get(key, []) if u != uuid]
            if waiting:
                self._unknown[key] = waiting
            else:
                self._unknown.pop(key, None)

    def _ask(self, call: Callable[[Bridge], Any]) -> Any:
        """``call(bridge)`` on the session's loop, waited for here; ``None`` (and the error
        noted) when there is no connection or the gateway did not answer."""
        with self._lock:
            portal, bridge = self._portal, self._bridge
        if portal is None or bridge is None:
            self.error = NO_IPC
            return None
        try:
            return portal.call(call, bridge)
        except InvalidRequest:
            self.error = INVALID_ARGUMENTS
        except RequestRefused as exc:
            self.error = _REFUSALS.get(exc.error_code, INVALID_PARAMS)
        except GatewayTimeout:
            self.error = IPC_TIMEOUT
        except BadReply:
            self.error = CALL_FAILED
        except OutcomeUnknown:
            raise  # an order's: the caller keeps its uuid
        except CircuitOpen:  # the heartbeat lost the gateway: nothing was sent
            self.error = NO_IPC
        # Closed by another thread meanwhile: the portal stopped, the Bridge closed, the
        # request cancelled.
        except (
            BridgeError,
            RuntimeError,
            asyncio.CancelledError,
            concurrent.futures.CancelledError,
        ):
            self.error = NO_IPC
        return None


def _order_key(trade: Any) -> tuple[Any, ...]:
    """What makes a retry the same order: the request but its price and deviation."""
    return tuple(
        v
        for name, v in zip(trade.__match_args__, trade, strict=True)
        if name not in ("price", "deviation")
    )


def _wire(value: Any) -> Any:
    """An argument as the package reads it, in a form the wire carries: a ``datetime`` is
    its ``timestamp()`` in whole seconds (a naive one is local time, as the package has it),
    a numpy number a Python one."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Mapping):
        return {key: _wire(item) for key, item in value.items()}
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _package(value: Any) -> Any:
    """A value as the wire carries it (``protocol.mt5``) as the package returns it."""
    if isinstance(value, dict) and STRUCT_KEY in value:
        kind = _STRUCTS[value[STRUCT_KEY]]
        return kind([_package(field) for field in value["fields"]])
    if isinstance(value, list):
        return tuple(_package(item) for item in value)
    return value
