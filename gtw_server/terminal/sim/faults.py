"""Fault injection: the ``SimConfig`` switches that make the simulated terminal misbehave.

The terminal asks ``Faults`` at three points: when a call needs the connection (has the terminal
gone away?), when ``initialize()`` looks for the terminal, and when ``order_send`` reaches the
trade server (the order's number, the dealer's verdict, and what happens after the commit).

- **Times** are on the terminal's clock (``clock`` plus whatever ``step()`` added; wall time by
  default), counted from the construction of the ``SimTerminal``.
- **Counts** are per ``SimTerminal`` object, so per worker process: a restarted worker builds a
  new terminal, which counts its orders from 1 again and has its own outage schedule.
- **An order** is an ``order_send`` call that reaches the trade server: connected, and past the
  binding's own argument checks (a ``-2`` error is answered locally, and counts for nothing).
- **The dealer's verdict** is one uniform draw per order from a generator seeded by ``seed``,
  so the n-th order of every run with the same seed gets the same verdict. A draw below
  ``reject_rate`` rejects (10006) a request the server would have accepted; a draw in the
  next ``requote_rate`` requotes (10004, with the current quotes) a market deal on a symbol with
  Request or Instant execution. Market execution has no requotes in MetaTrader 5, so there the
  draw lets the deal through. Refusals the server makes itself (10014, 10019...) come first.
"""

from __future__ import annotations

import ctypes
import functools
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Final, NamedTuple, NoReturn

from gtw_server.terminal.sim.config import SimConfig
from protocol import mt5_constants as c

__all__ = ["Faults", "OrderFaults", "hang_forever", "sleep_holding_gil"]


class OrderFaults(NamedTuple):
    """What the fault switches do to one order."""

    dealer: int | None  # TRADE_RETCODE_REJECT or TRADE_RETCODE_REQUOTE, or None to let it be
    hang: bool  # never return, once the fill is committed
    hang_before: bool  # never return, and never reach the trade server: nothing executed
    lose_reply: bool  # the terminal dies once the fill is committed: the reply never arrives


_NO_FAULTS: Final = OrderFaults(dealer=None, hang=False, hang_before=False, lose_reply=False)


class Faults:
    """The fault switches of one ``SimTerminal``; ``started_ms`` is its construction time."""

    def __init__(self, config: SimConfig, *, started_ms: int) -> None:
        self._config = config
        self._orders = 0
        self._dealer = random.Random(f"sim-dealer/{config.seed}")
        self._outage: tuple[int, int] | None = None
        if config.disconnect_at_s is not None:
            start = started_ms + round(config.disconnect_at_s * 1000)
            self._outage = (start, start + round(config.disconnect_for_s * 1000))

    # -- the connection ---------------------------------------------------------------------

    def away(self, now_ms: int) -> bool:
        """Whether the terminal is gone at ``now_ms`` (``initialize()`` cannot find it)."""
        return self._outage is not None and self._outage[0] <= now_ms < self._outage[1]

    @property
    def may_go_away(self) -> bool:
        """Whether an outage is scheduled at all (callers skip reading the clock if not)."""
        return self._outage is not None

    def went_away(self, since_ms: int, now_ms: int) -> bool:
        """Whether the terminal went away after ``since_ms`` and by ``now_ms``: a connection
        made at ``since_ms`` is broken then, even if the terminal is back by now."""
        return self._outage is not None and since_ms < self._outage[0] <= now_ms

    # -- orders -----------------------------------------------------------------------------

    def order_sent(self) -> OrderFaults:
        """Counts one order and says what happens to it."""
        self._orders += 1
        config = self._config
        if not (config.reject_rate or config.requote_rate or config.hang_on_order) and not (
            config.lose_reply_on_order or config.hang_before_order
        ):
            return _NO_FAULTS  # the usual case, kept cheap: order_send is the hot path
        draw = self._dealer.random()
        dealer = None
        if draw < config.reject_rate:
            dealer = c.TRADE_RETCODE_REJECT
        elif draw < config.reject_rate + config.requote_rate:
            dealer = c.TRADE_RETCODE_REQUOTE
        return OrderFaults(
            dealer=dealer,
            hang=self._orders == config.hang_on_order,
            hang_before=self._orders == config.hang_before_order,
            lose_reply=self._orders == config.lose_reply_on_order,
        )

    def latency(self) -> None:
        """Spends ``order_latency_ms``, holding the GIL unless the config says otherwise."""
        seconds = self._config.order_latency_ms / 1000
        if seconds <= 0:
            return
        if self._config.order_latency_holds_gil:
            sleep_holding_gil(seconds)
        else:
            time.sleep(seconds)


def hang_forever() -> NoReturn:
    """Blocks the calling thread for good, without burning CPU.

    It waits on a lock, which releases the GIL: the process's other threads go on (the
    gateway's worker keeps watching its parent), only this call never returns. SIGKILL ends
    the process as always; so does a signal whose handler raises, in the main thread.
    """
    never = threading.Event()
    while True:
        never.wait()


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


@functools.cache  # the C function is looked up once, on first use
def _gil_holding_sleep() -> Callable[[float], None]:
    """A sleep that keeps the GIL, as the ``MetaTrader5`` binary does while it waits on its pipe.

    ``time.sleep`` releases the GIL, and a Python busy loop hands it over every switch
    interval, so neither would freeze the process's other threads as the real call does. A C
    function called through ``ctypes.PyDLL`` (unlike ``CDLL``) runs with the GIL held, so the
    C library's own sleep, called that way, blocks every thread without using the CPU.
    """
    if sys.platform == "win32":
        sleep_ms = ctypes.PyDLL("kernel32").Sleep
        sleep_ms.argtypes = (ctypes.c_uint32,)

        def sleep_windows(seconds: float) -> None:
            sleep_ms(max(1, round(seconds * 1000)))

        return sleep_windows
    nanosleep = ctypes.PyDLL(None).nanosleep
    nanosleep.argtypes = (ctypes.POINTER(_Timespec), ctypes.POINTER(_Timespec))

    def sleep_posix(seconds: float) -> None:
        whole = int(seconds)
        # Signals held back meanwhile: one would cut the sleep short, and between two sleeps
        # the interpreter hands the GIL to a waiting thread, which the real binary never does.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            nanosleep(ctypes.byref(_Timespec(whole, int((seconds - whole) * 1e9))), None)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    return sleep_posix


_MIN_SLEEP_S: Final = 1e-6


def sleep_holding_gil(seconds: float) -> None:
    """Sleeps ``seconds`` without releasing the GIL: no other thread of the process runs."""
    sleep = _gil_holding_sleep()
    deadline = time.monotonic() + seconds
    # A signal cuts nanosleep short; sleep again for what is left.
    while (left := deadline - time.monotonic()) > _MIN_SLEEP_S:
        sleep(left)
