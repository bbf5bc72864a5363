"""The targets of issues 7, 15 and 18 read off a report: every one a ratio within the run (no
measuring here: the reports are built by hand)."""

from __future__ import annotations

from bench.results import Latency, LoadResult, Machine, MarketResult, Report, Server
from bench.targets import check_targets, machine_note

MACHINE = Machine(
    cpu_model="test",
    cores=2,
    usable_cores=2,
    load_average=None,
    python="3.11",
    implementation="CPython",
    platform="test",
    event_loop="asyncio",
)


def _latency(p50_us: float) -> Latency:
    return Latency(
        count=100,
        p50_us=p50_us,
        p90_us=p50_us * 1.2,
        p99_us=p50_us * 1.5,
        p999_us=p50_us * 2,
        max_us=p50_us * 3,
        curve=[],
    )


def _load(
    server: Server, mode: str, in_flight: int, throughput: float, p50_us: float
) -> LoadResult:
    latency = _latency(p50_us)
    actions = ("OPEN", "CLOSE") if mode == "open_close" else (mode.upper(),)
    return LoadResult(
        server=server,
        mode=mode,
        clients=1,
        in_flight=in_flight,
        positions=0,
        seconds=2.0,
        requests=int(throughput * 2),
        throughput=throughput,
        latency=latency,
        by_action={action: latency for action in actions},
        errors={},
        client_cpu_us=None,
        server_cpu_us=None,
    )


def _report(
    floor_pipelined: float,
    gateway_pipelined: float,
    open_p50_us: float,
    *,
    unsafe_p50_us: float = 500,
    unsafe_pipelined: float = 4_000,
) -> Report:
    return Report(
        command="test",
        started_at="now",
        machine=MACHINE,
        loads=[
            _load("floor", "ping", 1, 5_000, 200),
            _load("gateway", "ping", 1, 5_000, 210),
            _load("floor", "ping", 16, floor_pipelined, 300),
            _load("gateway", "ping", 16, gateway_pipelined, 320),
            _load("unsafe", "open_close", 1, 2_000, unsafe_p50_us),
            _load("unsafe", "open_close", 16, unsafe_pipelined, unsafe_p50_us * 8),
            _load("gateway", "open_close", 1, 1_500, open_p50_us),
            _load("gateway", "open_close", 16, 4_200, open_p50_us * 8),
        ],
    )


def _results(report: Report) -> dict[str, bool | None]:
    return {t.name: t.passed for t in check_targets(report)}


ORDERS = "orders/s, 16 or more in flight (OPEN, CLOSE)"


def test_targets_pass_and_fail_on_the_measured_figures() -> None:
    results = _results(_report(60_000, 50_000, 600))
    assert results["PING p50, one in flight"] is True  # 210 vs 200 us: 1.05x
    assert results["PING pipelined throughput"] is True
    assert results["OPEN p50, one in flight"] is True  # 600 vs 500 us: 1.2x
    assert results["OPEN p99, one in flight"] is True
    assert results[ORDERS] is True  # 4,200/s vs 4,000/s
    assert results["PING p99 during 300 ms GIL-holding orders"] is None  # not run

    results = _results(_report(60_000, 30_000, 900, unsafe_pipelined=5_000))
    assert results["PING pipelined throughput"] is False
    assert results["OPEN p50, one in flight"] is False  # 1.8x the unsafe design
    assert results["OPEN p99, one in flight"] is False
    assert results[ORDERS] is False  # 0.84x


def test_the_order_targets_compare_with_the_unsafe_design_not_with_a_number() -> None:
    """The same gateway figures pass or fail with the unsafe design of the same run: a slower
    machine is slower for both."""
    slow = _results(_report(20_000, 20_000, 2_400, unsafe_p50_us=2_000, unsafe_pipelined=1_000))
    assert slow["OPEN p50, one in flight"] is True and slow[ORDERS] is True
    fast = _results(_report(20_000, 20_000, 2_400, unsafe_p50_us=500, unsafe_pipelined=9_000))
    assert fast["OPEN p50, one in flight"] is False and fast[ORDERS] is False
    report = _report(60_000, 50_000, 600)
    report.loads = [r for r in report.loads if r.server != "unsafe"]
    assert _results(report)["OPEN p50, one in flight"] is None  # not run: no unsafe design


def test_a_machine_as_fast_as_the_reference_gets_no_note() -> None:
    assert machine_note(_report(60_000, 50_000, 600)) == ""


def test_a_slower_machine_is_named_with_how_much_slower() -> None:
    note = machine_note(_report(12_500, 12_000, 1_400))
    assert "12,500 pipelined PINGs/s" in note
    assert "4.0x under issue 7's reference machine (50,000/s)" in note


def test_no_note_without_a_pipelined_floor_measurement() -> None:
    report = _report(60_000, 50_000, 600)
    report.loads = [r for r in report.loads if not (r.server == "floor" and r.in_flight > 1)]
    assert machine_note(report) == ""


def _market(ping_with: float, open_with: float) -> MarketResult:
    quiet = [_load("gateway", "ping", 1, 5_000, 200), _load("gateway", "open_close", 1, 1_000, 900)]
    streaming = [
        _load("gateway", "ping", 1, 5_000, ping_with),
        _load("gateway", "open_close", 1, 1_000, open_with),
    ]
    return MarketResult(
        poll_interval_ms=50,
        floor_interval_ms=50.0,
        bars=100_000,
        fetch=[],
        ticks=[],
        streaming_subscribers=50,
        quiet=quiet * 2,  # two rounds
        streaming=streaming * 2,
    )


def test_orders_with_subscribers_streaming_are_held_to_within_ten_percent() -> None:
    report = _report(60_000, 50_000, 600)
    results = _results(report)
    assert results["PING p50 with 50 subscribers streaming"] is None  # not run
    assert results["OPEN p50 with 50 subscribers streaming"] is None

    report.market = _market(ping_with=218, open_with=900)  # 1.09x and 1.00x
    checks = {t.name: t for t in check_targets(report)}
    ping, open_ = (
        checks["PING p50 with 50 subscribers streaming"],
        checks["OPEN p50 with 50 subscribers streaming"],
    )
    assert (ping.passed, open_.passed) == (True, True)
    assert ping.measured == "1.09x (218 us vs 200 us)"
    assert ping.target == "<= 1.10x without"

    report.market = _market(ping_with=240, open_with=1_000)  # 1.20x and 1.11x
    results = _results(report)
    assert results["PING p50 with 50 subscribers streaming"] is False
    assert results["OPEN p50 with 50 subscribers streaming"] is False
