"""The targets of issues 7, 15, 16 and 18, checked against one run's results.

Every target is a ratio between figures of the same run (issue 18): the gateway against the
bare floor (PING), against the unsafe design (OPEN, CLOSE: the same simulator called inline,
none of the guarantees), or against itself without a disturbance (subscribers, slow orders).
Machines differ by 2-5x from one session to the next, and a ratio does not; absolute
microseconds are printed, never checked. Memory growth is checked in MB.

A target whose measurement was not part of the run (a mode or check left out) is reported
"not run", and one whose scenario was skipped says why; neither counts as a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from bench.results import Latency, LoadResult, MarketResult, Report, TargetCheck

__all__ = ["check_targets", "machine_note"]

_MB: Final = 1024 * 1024

PING_P50_RATIO: Final = 1.15  # issue 18: to the bare floor, one in flight
PING_THROUGHPUT_RATIO: Final = 0.6
OPEN_P50_RATIO: Final = 1.25  # issue 18: to the unsafe design, one in flight
OPEN_P99_RATIO: Final = 1.5
ORDERS_RATIO: Final = 1.0  # issue 18: orders/s with 16 or more in flight, to the unsafe design
GIL_PING_P99_RATIO: Final = 2.0  # issue 18: PING p99 beside slow orders, to PING p99 without
_MANY_IN_FLIGHT: Final = 16
MEMORY_GROWTH: Final = 10 * _MB
REFERENCE_FLOOR_PING_PER_S: Final = 50_000.0  # the slow end of issue 7's reference machine
STREAMING_RATIO: Final = 1.10  # issue 15: orders within 10 % while subscribers stream
READS_RATIO: Final = 2.0  # issue 16: GET_ACCOUNT under 2x PING while 64 orders are in flight
_STREAMING_SUBSCRIBERS: Final = 50  # named when the scenario did not run


def _not_run(name: str, target: str, note: str = "not run") -> TargetCheck:
    return TargetCheck(name=name, target=target, measured="-", passed=None, note=note)


def _one_in_flight(loads: Iterable[LoadResult], server: str, mode: str) -> LoadResult | None:
    """The first one-in-flight (1x1) result of ``server`` in ``mode``, on the fewest positions."""
    found = [
        r
        for r in loads
        if r.server == server and r.mode == mode and r.clients == 1 and r.in_flight == 1
    ]
    return min(found, key=lambda r: r.positions) if found else None


def _best_pipelined(loads: Iterable[LoadResult], server: str, modes: tuple[str, ...]) -> float:
    """The highest throughput of ``server`` with more than one request in flight."""
    rates = [
        r.throughput
        for r in loads
        if r.server == server and r.mode in modes and r.clients * r.in_flight > 1
    ]
    return max(rates, default=0.0)


def _us(value: float) -> str:
    return f"{value:,.0f} us" if value >= 100 else f"{value:.1f} us"


def _ping_checks(report: Report) -> list[TargetCheck]:
    floor = _one_in_flight(report.loads, "floor", "ping")
    gateway = _one_in_flight(report.loads, "gateway", "ping")
    checks = []
    name, target = "PING p50, one in flight", f"<= {PING_P50_RATIO}x the floor's"
    if floor is None or gateway is None:
        checks.append(_not_run(name, target))
    else:
        ratio = gateway.latency.p50_us / floor.latency.p50_us
        checks.append(
            TargetCheck(
                name=name,
                target=target,
                measured=f"{ratio:.2f}x ({_us(gateway.latency.p50_us)} vs "
                f"{_us(floor.latency.p50_us)})",
                passed=ratio <= PING_P50_RATIO,
            )
        )
    name, target = "PING pipelined throughput", f">= {PING_THROUGHPUT_RATIO}x the floor's"
    floor_rate = _best_pipelined(report.loads, "floor", ("ping",))
    gateway_rate = _best_pipelined(report.loads, "gateway", ("ping",))
    if not floor_rate or not gateway_rate:
        checks.append(_not_run(name, target))
    else:
        ratio = gateway_rate / floor_rate
        checks.append(
            TargetCheck(
                name=name,
                target=target,
                measured=f"{ratio:.2f}x ({gateway_rate:,.0f}/s vs {floor_rate:,.0f}/s)",
                passed=ratio >= PING_THROUGHPUT_RATIO,
                note="both are bound by the one load process; compare server CPU per request",
            )
        )
    return checks


def _open_latencies(report: Report) -> tuple[Latency, Latency] | None:
    """OPEN one in flight through the gateway and through the unsafe design, in the same mode:
    OPEN then CLOSE first, where both books stay flat."""
    for mode in ("open_close", "open"):
        gateway = _one_in_flight(report.loads, "gateway", mode)
        unsafe = _one_in_flight(report.loads, "unsafe", mode)
        if gateway is not None and unsafe is not None:
            ours, theirs = gateway.by_action.get("OPEN"), unsafe.by_action.get("OPEN")
            if ours is not None and theirs is not None:
                return ours, theirs
    return None


def _open_checks(report: Report) -> list[TargetCheck]:
    latencies = _open_latencies(report)
    checks = []
    for name, limit, percentile in (
        ("OPEN p50, one in flight", OPEN_P50_RATIO, "p50_us"),
        ("OPEN p99, one in flight", OPEN_P99_RATIO, "p99_us"),
    ):
        target = f"<= {limit}x the unsafe design's"
        if latencies is None:
            checks.append(_not_run(name, target))
            continue
        ours, theirs = (getattr(latency, percentile) for latency in latencies)
        checks.append(_ratio_check(name, target, ours, theirs, passed=ours <= limit * theirs))
    checks.append(_orders_check(report))
    return checks


def _orders_check(report: Report) -> TargetCheck:
    """The gateway's best orders/s with many in flight, against the unsafe design's in the
    same mode and shape."""
    name = f"orders/s, {_MANY_IN_FLIGHT} or more in flight (OPEN, CLOSE)"
    target = f">= {ORDERS_RATIO}x the unsafe design's"
    pairs = [
        (gateway, unsafe)
        for gateway in report.loads
        if gateway.server == "gateway"
        and gateway.mode in ("open", "open_close")
        and gateway.clients * gateway.in_flight >= _MANY_IN_FLIGHT
        for unsafe in report.loads
        if unsafe.server == "unsafe"
        and (unsafe.mode, unsafe.clients, unsafe.in_flight)
        == (gateway.mode, gateway.clients, gateway.in_flight)
    ]
    if not pairs:
        return _not_run(name, target)
    gateway, unsafe = max(pairs, key=lambda pair: pair[0].throughput / pair[1].throughput)
    ratio = gateway.throughput / unsafe.throughput
    return TargetCheck(
        name=name,
        target=target,
        measured=f"{ratio:.2f}x ({gateway.throughput:,.0f}/s vs {unsafe.throughput:,.0f}/s)",
        passed=ratio >= ORDERS_RATIO,
        note=f"{gateway.mode} {gateway.shape}",
    )


def _ratio_check(
    name: str, target: str, ours: float, theirs: float, *, passed: bool
) -> TargetCheck:
    ratio = ours / theirs if theirs > 0 else float("inf")
    return TargetCheck(
        name=name,
        target=target,
        measured=f"{ratio:.2f}x ({_us(ours)} vs {_us(theirs)})",
        passed=passed,
    )


def _gil_check(report: Report) -> TargetCheck:
    name = "PING p99 during 300 ms GIL-holding orders"
    target = f"<= {GIL_PING_P99_RATIO}x PING p99 without them"
    gil = report.gil
    quiet = _one_in_flight(report.loads, "gateway", "ping")
    if gil is None or quiet is None:
        return _not_run(name, target)
    if gil.skipped is not None or gil.ping is None:
        return _not_run(name, target, gil.skipped or "skipped")
    ours, theirs = gil.ping.latency.p99_us, quiet.latency.p99_us
    return _ratio_check(name, target, ours, theirs, passed=ours <= GIL_PING_P99_RATIO * theirs)


def _memory_checks(report: Report) -> list[TargetCheck]:
    memory = report.memory
    target = f"grows <= {MEMORY_GROWTH // _MB} MB"
    if memory is None:
        return [_not_run(f"{who} resident size", target) for who in ("gateway", "client")]
    checks = []
    for who, growth in (("gateway", memory.gateway_growth), ("client", memory.client_growth)):
        name = f"{who} resident size over {memory.requests:,} {memory.mode.upper()}"
        if growth is None:
            checks.append(_not_run(name, target, "no /proc on this platform"))
        else:
            checks.append(
                TargetCheck(
                    name=name,
                    target=target,
                    measured=f"{growth / _MB:+.1f} MB",
                    passed=growth <= MEMORY_GROWTH,
                )
            )
    return checks


def _p50s(loads: Iterable[LoadResult], mode: str, action: str) -> list[float]:
    return [r.by_action[action].p50_us for r in loads if r.mode == mode and action in r.by_action]


def _market_checks(report: Report) -> list[TargetCheck]:
    """Issue 15: PING and OPEN, one in flight, while subscribers stream every symbol, against
    the same without them in the same run (the mean of the rounds' p50s on each side)."""
    market: MarketResult | None = report.market
    count = (market.streaming_subscribers if market else 0) or _STREAMING_SUBSCRIBERS
    checks = []
    for action, mode in (("PING", "ping"), ("OPEN", "open_close")):
        name = f"{action} p50 with {count} subscribers streaming"
        target = f"<= {STREAMING_RATIO:.2f}x without"
        quiet = _p50s(market.quiet, mode, action) if market else []
        busy = _p50s(market.streaming, mode, action) if market else []
        if not quiet or not busy:
            checks.append(_not_run(name, target))
            continue
        with_, without = sum(busy) / len(busy), sum(quiet) / len(quiet)
        ratio = with_ / without
        beside = _p50s(market.elsewhere, mode, action) if market else []
        control = (
            f"; {sum(beside) / len(beside) / without:.2f}x with them streaming from the floor "
            "instead (the machine's share)"
            if beside
            else ""
        )
        checks.append(
            TargetCheck(
                name=name,
                target=target,
                measured=f"{ratio:.2f}x ({_us(with_)} vs {_us(without)})",
                passed=ratio <= STREAMING_RATIO,
                note=f"one in flight; mean of {len(busy)} round(s)' p50s on each side{control}",
            )
        )
    return checks


def check_targets(report: Report) -> list[TargetCheck]:
    """Every target of issues 7, 15, 16 and 18 with what this run measured for it."""
    return [
        *_ping_checks(report),
        *_open_checks(report),
        _gil_check(report),
        *_memory_checks(report),
        *_market_checks(report),
        _reads_check(report),
    ]


def _reads_check(report: Report) -> TargetCheck:
    """Issue 16: GET_ACCOUNT, as a strategy asks it (the watcher's last look), beside 64
    orders in flight, against PING in the same window."""
    name = "GET_ACCOUNT p50 beside 64 orders in flight"
    target = f"<= {READS_RATIO:.1f}x PING's"
    reads = report.reads
    account = reads.loaded.get("GET_ACCOUNT") if reads else None
    ping = reads.loaded.get("PING") if reads else None
    if account is None or ping is None or not ping.p50_us:
        return _not_run(name, target)
    ratio = account.p50_us / ping.p50_us
    return TargetCheck(
        name=name,
        target=target,
        measured=f"{ratio:.2f}x ({_us(account.p50_us)} vs {_us(ping.p50_us)})",
        passed=ratio <= READS_RATIO,
        note="one probe, in turn with PING, beside 4x16 OPEN/CLOSE",
    )


def machine_note(report: Report) -> str:
    """How fast this machine's floor was, when slower than issue 7's reference machine: its
    absolute figures are then not comparable with that machine's (no target depends on it)."""
    rate = _best_pipelined(report.loads, "floor", ("ping",))
    if not rate or rate >= REFERENCE_FLOOR_PING_PER_S:
        return ""
    return (
        f"This machine's floor answered {rate:,.0f} pipelined PINGs/s, "
        f"{REFERENCE_FLOOR_PING_PER_S / rate:.1f}x under issue 7's reference machine "
        f"({REFERENCE_FLOOR_PING_PER_S:,.0f}/s): its microseconds are its own. Every target "
        f"is a ratio within this run."
    )
