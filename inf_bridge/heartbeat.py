"""The heartbeat: a background task that PINGs the gateway and keeps score.

States: ``HEALTHY``; ``DEGRADED`` after a missed beat, a slow one (over ``slow_after``), a
gateway whose terminal is disconnected, or one that did not accept this node's signature;
``FAILED`` after ``failures`` misses in a row, which opens the circuit breaker
(``HEARTBEAT_FAILURE``). ``recovery_beats`` healthy beats in a row close it again.

The Bridge signs its PINGs when it has a secret, and the gateway says whether it accepts them
(``authenticated``; ``auth_error`` when not). ``SIGNATURE_INVALID`` (the gateway has another
secret) opens the breaker with ``SECRET_REFUSED``, which only a human closes: every order
would be refused. ``SIGNATURE_EXPIRED`` (the clocks) is logged, and corrects itself once the
offset below is estimated.

Each PING reply also carries the gateway's clock: the offset between it and ours is
estimated from the fastest recent round trips (where the reply's timestamp is least
uncertain), so that signatures can be stamped in the gateway's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, Literal

from loguru import logger

from inf_bridge.audit import record
from inf_bridge.breaker import HEARTBEAT_FAILURE, SECRET_REFUSED, CircuitBreaker
from inf_bridge.errors import BridgeError
from protocol import AuditEvent, ErrorCode, GatewayInfo, Reply

__all__ = ["HealthState", "HeartbeatMonitor"]

HealthState = Literal["HEALTHY", "DEGRADED", "FAILED"]
_SAMPLES: Final = 1000  # round trips kept for the statistics
_OFFSET_SAMPLES: Final = 16  # recent beats the clock offset is estimated from
_OFFSET_WARNING_S: Final = 1.0


class HeartbeatMonitor:
    """Health of the link to the gateway, kept up to date by ``run()``.

    ``ping`` sends one PING and returns its reply (raising on timeout).
    """

    def __init__(
        self,
        ping: Callable[[float], Awaitable[Reply]],
        breaker: CircuitBreaker,
        *,
        interval: float = 5.0,
        timeout: float = 2.0,
        failures: int = 3,
        recovery_beats: int = 3,
        slow_after: float | None = None,
        on_beat: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0 or timeout <= 0 or failures < 1 or recovery_beats < 1:
            raise ValueError("heartbeat interval and timeout must be positive, counts >= 1")
        self._ping = ping
        self._breaker = breaker
        self.interval = interval
        self.timeout = timeout
        self.failures = failures
        self.recovery_beats = recovery_beats
        self.slow_after = slow_after if slow_after is not None else timeout / 2
        self._on_beat = on_beat
        self._clock = clock
        self.state: HealthState = "HEALTHY"
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.beats = 0
        self.misses = 0
        self.last_rtt: float | None = None
        self.mt5_connected: bool | None = None
        # What the gateway said of itself in the last PING (version, halted, warnings).
        self.gateway: GatewayInfo | None = None
        # Whether the gateway accepted the last PING's signature (None: not signed, or the
        # gateway did not say); if not, why (an ErrorCode) and its sentence.
        self.authenticated: bool | None = None
        self.auth_error: str | None = None
        self.auth_message: str | None = None
        self.clock_offset = 0.0
        self._rtts: deque[float] = deque(maxlen=_SAMPLES)
        self._offsets: deque[tuple[float, float]] = deque(maxlen=_OFFSET_SAMPLES)
        self._warned_offset = False

    # -- metrics ----------------------------------------------------------------------------

    @property
    def avg_rtt(self) -> float | None:
        return sum(self._rtts) / len(self._rtts) if self._rtts else None

    @property
    def min_rtt(self) -> float | None:
        return min(self._rtts) if self._rtts else None

    @property
    def max_rtt(self) -> float | None:
        return max(self._rtts) if self._rtts else None

    @property
    def p99_rtt(self) -> float | None:
        if not self._rtts:
            return None
        ordered = sorted(self._rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    # -- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Beat every ``interval`` until cancelled.

        On a fixed schedule: a beat that waits out its timeout does not push the next one
        back, so ``failures`` misses open the breaker within ``failures`` intervals (plus one
        timeout) of the gateway going silent, not ``failures`` x (interval + timeout).
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self.beat()
            due += self.interval
            now = loop.time()
            due = max(due, now)  # a beat longer than an interval: the next one at once, no burst
            await asyncio.sleep(due - now)

    async def beat(self) -> None:
        """Send one PING and update the state."""
        sent = self._clock()
        started = time.perf_counter()
        try:
            reply = await self._ping(self.timeout)
        except BridgeError as exc:
            self._missed(str(exc))
            return
        rtt = time.perf_counter() - started
        self._succeeded(rtt, reply, sent)
        if self._on_beat is not None:
            with contextlib.suppress(BridgeError):
                await self._on_beat()

    def _missed(self, why: str) -> None:
        self.beats += 1
        self.misses += 1
        self.consecutive_failures += 1
        self.consecutive_successes = 0
        record(
            AuditEvent.HEARTBEAT_FAIL,
            f"{self.consecutive_failures} missed in a row (the breaker opens at "
            f"{self.failures}): {why}",
            level="WARNING",
            consecutive=self.consecutive_failures,
        )
        if self.consecutive_failures >= self.failures:
            self._set_state("FAILED")
            self._breaker.trip(HEARTBEAT_FAILURE)
        else:
            self._set_state("DEGRADED")

    def _succeeded(self, rtt: float, reply: Reply, sent: float) -> None:
        self.beats += 1
        self.consecutive_failures = 0
        self.consecutive_successes += 1
        self.last_rtt = rtt
        self._rtts.append(rtt)
        self.mt5_connected = reply.mt5_connected
        self.gateway = reply.gateway
        self._estimate_offset(rtt, reply.timestamp - (sent + rtt / 2))
        self._authentication(reply)
        healthy = (
            rtt <= self.slow_after
            and reply.mt5_connected is not False
            and reply.authenticated is not False
        )
        self._set_state("HEALTHY" if healthy else "DEGRADED")
        if self.consecutive_successes >= self.recovery_beats:
            self._breaker.recovered()

    def _authentication(self, reply: Reply) -> None:
        """What the gateway said of the PING's signature; a refused secret opens the breaker."""
        changed = reply.auth_error != self.auth_error
        self.authenticated = reply.authenticated
        self.auth_error = reply.auth_error
        self.auth_message = reply.error_msg if reply.auth_error else None
        if reply.auth_error == ErrorCode.SIGNATURE_INVALID:
            if changed:
                logger.error(
                    "the gateway refused this node's secret ({}): no order is sent until the "
                    "secret is fixed and bridge.breaker.reset() is called",
                    reply.error_msg,
                )
            self._breaker.trip(SECRET_REFUSED)
        elif reply.auth_error is not None and changed:
            logger.warning(
                "the gateway did not accept this node's PING signature: {} {}",
                reply.auth_error,
                reply.error_msg,
            )

    def _estimate_offset(self, rtt: float, offset: float) -> None:
        self._offsets.append((rtt, offset))
        self.clock_offset = min(self._offsets)[1]
        large = abs(self.clock_offset) > _OFFSET_WARNING_S
        if large and not self._warned_offset:
            logger.warning(
                "the gateway's clock is {:+.3f} s from ours; signatures are stamped in its "
                "time, but fix the clocks (NTP)",
                self.clock_offset,
            )
        self._warned_offset = large

    def _set_state(self, state: HealthState) -> None:
        if state != self.state:
            logger.info("heartbeat: {} -> {}", self.state, state)
            self.state = state
