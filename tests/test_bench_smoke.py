"""Short runs of the benchmark, end to end, to keep it working (issue 7, item 4; issue 15).

They start the floors and a gateway like ``make bench`` does, with tiny durations and counts,
and check that every part produced sane JSON. Speed is asserted by ``make bench``, never
here: a test that times things fails on a busy machine for no fault of the code.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import msgspec

from bench.load import MODES
from bench.results import Report
from bench.stages import GATEWAY_STAGES, StageProfile, legs, timelines, whole_trips

ROOT = Path(__file__).resolve().parents[1]


def test_a_short_run_measures_floor_unsafe_design_and_gateway_without_errors(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quiet", "--json", str(out)]
    command += ["--duration", "0.05", "--warmup", "0.01", "--shapes", "1x1,2x2"]
    command += ["--presend-iterations", "200", "--memory-requests", "1000"]
    command += ["--gil-duration", "0.3", "--no-market", "--no-reads", "--terminal-latencies", "5"]
    command += ["--mt5-module-rounds", "1"]
    run = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert run.returncode == 0, run.stderr
    assert "Targets (issues 7, 15, 16 and 18)" in run.stdout
    assert "Against the unsafe design" in run.stdout
    assert "MetaTrader5 on Linux (issue 19" in run.stdout
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert [r.call.split(",")[0] for r in report.mt5_module] == [
        "order_send",
        "copy_rates_from_pos",
        "account_info",
        "symbol_info_tick",
    ]
    assert all(r.through_us > 0 and r.in_process_us > 0 for r in report.mt5_module)
    assert report.machine.cores >= 1
    for server in ("floor", "unsafe", "gateway"):
        measured = {(r.mode, r.shape) for r in report.loads if r.server == server}
        assert measured == {(mode, shape) for mode in MODES for shape in ("1x1", "2x2")}
    for result in report.loads:
        assert result.errors == {}, (result.server, result.mode, result.errors)
        assert result.requests > 0
        assert 0 < result.latency.p50_us <= result.latency.p99_us <= result.latency.max_us
    gateway_runs = [r for r in report.loads if r.server == "gateway"]
    assert len(report.ratios) == len(report.unsafe_ratios) == len(gateway_runs)
    for ratio in [*report.ratios, *report.unsafe_ratios]:
        values = (ratio.p50, ratio.p90, ratio.p99, ratio.p999, ratio.throughput)
        assert all(math.isfinite(v) and v > 0 for v in values)
    assert [p.audit_sink for p in report.presend] == [False, True]
    assert all(p.latency.count == 200 for p in report.presend)
    assert report.memory is not None and report.memory.requests >= 1000
    assert report.gil is not None
    if report.gil.skipped is None:
        assert report.gil.ping is not None and report.gil.ping.errors == {}
    else:
        assert "order_latency_ms" in report.gil.skipped
    (slow,) = report.terminal_latency  # orders taking the terminal 5 ms, both servers
    assert slow.order_latency_ms == 5.0
    assert {(r.server, r.mode, r.shape) for r in slow.loads} == {
        (server, mode, shape)
        for server in ("unsafe", "gateway")
        for mode, shape in (("open_close", "1x1"), ("open_close", "4x16"), ("mixed", "4x16"))
    }
    assert all(r.errors == {} and r.requests > 0 for r in slow.loads)
    assert "Orders that take the terminal N ms" in run.stdout
    assert {t.passed for t in report.targets} <= {True, False, None}
    assert len(report.targets) == 11  # every one a ratio, or memory in MB
    assert report.market is None and report.reads is None
    # The market's and the reads': not run.
    assert [t.passed for t in report.targets[-3:]] == [None, None, None]


def test_a_short_market_run_measures_bars_ticks_and_orders_against_its_floors(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quiet", "--json", str(out), "--only", "market"]
    command += ["--bars", "500", "--bars-rounds", "2", "--subscribers", "1,3"]
    # The simulator ticks as a market does: in the quietest hours (21:00-07:00 UTC) a symbol
    # every 3-7 s, and 4 s of six symbols held none once in 2,500; 8 s never did in 100,000.
    command += ["--stream-duration", "8", "--market-rounds", "1"]
    command += ["--duration", "0.05", "--warmup", "0.01"]
    run = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert "Market data (issue 15)" in run.stdout
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert report.loads == [] and report.memory is None and report.gil is None
    market = report.market
    assert market is not None
    assert market.poll_interval_ms == 50 and market.bars == 500
    fetched = {(f.server, f.client) for f in market.fetch}
    assert fetched == {
        ("gateway", "Bridge.rates"),
        ("floor", "Bridge.rates"),
        ("floor", "bare DEALER"),
    }
    for fetch in market.fetch:
        assert fetch.rows == 500 and fetch.bytes == 500 * 60 and fetch.rounds == 2
        assert 0 < fetch.best_ms <= fetch.p50_ms <= fetch.worst_ms
    timed = {(t.server, t.subscribers, t.during) for t in market.ticks}
    assert timed == {
        ("floor", 1, "streaming only"),
        ("gateway", 1, "streaming only"),
        ("floor", 3, "streaming only"),
        ("gateway", 3, "streaming only"),
        ("gateway", 3, "PING and OPEN one in flight"),
    }
    for ticks in market.ticks:
        assert ticks.symbols == 6 and ticks.gaps == 0
        assert ticks.events > 0 and ticks.events == ticks.latency.count
        assert 0 < ticks.latency.p50_us <= ticks.latency.p99_us <= ticks.latency.max_us
        if ticks.server == "gateway":  # a tick cannot arrive before its time, nor a minute late
            assert ticks.latency.max_us < 60e6
    assert market.streaming_subscribers == 3
    for side in (market.quiet, market.streaming):
        assert [r.mode for r in side] == ["ping", "open_close"]
        assert all(r.errors == {} and r.requests > 0 for r in side)
    checks = {t.name: t for t in report.targets}
    for name in ("PING p50 with 3 subscribers streaming", "OPEN p50 with 3 subscribers streaming"):
        assert checks[name].passed in {True, False}  # measured; the speed is make bench's
        assert checks[name].measured.endswith(" us)")


def test_a_short_reads_run_measures_each_read_quiet_and_beside_orders(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quiet", "--json", str(out), "--only", "reads"]
    command += ["--duration", "0.3", "--warmup", "0.05"]
    run = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert run.returncode == 0, run.stderr
    assert "Reads beside orders (issue 16)" in run.stdout
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert report.loads == [] and report.market is None and report.gil is None
    reads = report.reads
    assert reads is not None and (reads.clients, reads.in_flight) == (4, 16)
    assert reads.orders_answered > 0 and reads.errors == {}
    wanted = {"PING", "GET_ACCOUNT", "GET_POSITIONS", "GET_ACCOUNT fresh"}
    for side in (reads.quiet, reads.loaded):
        assert set(side) == wanted
        for latency in side.values():
            assert latency.count > 0 and 0 < latency.p50_us <= latency.max_us
    check = {t.name: t for t in report.targets}["GET_ACCOUNT p50 beside 64 orders in flight"]
    assert check.passed in {True, False}  # measured; the speed is make bench's


def test_the_stage_profile_times_each_stage_of_an_order_in_both_servers(tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    command = [sys.executable, "-m", "bench.stages", "--orders", "60", "--json", str(out)]
    run = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert run.returncode == 0, run.stderr
    assert "| gateway | hop to the worker |" in run.stdout
    profiles = msgspec.json.decode(out.read_bytes(), type=list[StageProfile])
    assert [p.server for p in profiles] == ["unsafe", "gateway"]
    for profile in profiles:
        assert profile.orders == 60
        # Orders a heartbeat PING cut into are left out: on a busy machine, many of them.
        assert 0 < profile.complete <= profile.orders
        assert all(0 < t.p50_us <= t.p99_us for _, t in profile.stages), profile.stages
        assert 0 < profile.server_span.p50_us < profile.round_trip.p50_us
        legs_p50 = profile.to_server.p50_us + profile.to_client.p50_us
        assert 0 < legs_p50 < profile.round_trip.p50_us - profile.server_span.p50_us
    assert "| gateway | the server's send to the client's first line |" in run.stdout
    gateway = dict(profiles[1].stages)
    assert list(gateway) == [stage for stage, _ in GATEWAY_STAGES]


def test_the_round_trips_profiled_are_those_of_the_orders_whose_marks_are_whole() -> None:
    trips = [(0, 100), (100, 250), (250, 300), (300, 500)]
    lines = [[110, 200], [310, 480]]  # the second and the fourth order; the others cut into
    assert whole_trips(lines, trips) == [0.15, 0.2]
    assert whole_trips([[90, 120]], trips) == []  # across two orders: none of them


def test_an_order_cut_into_by_another_message_is_left_out_of_the_stage_profile() -> None:
    ends = ["admitted", "committed", "reply sent"]
    marks = [
        ("read", 0), ("admitted", 10), ("committed", 15), ("reply sent", 30),  # whole
        ("read", 100), ("admitted", 110), ("read", 120), ("reply sent", 125),  # a PING cut in
        ("read", 200), ("committed", 205), ("admitted", 210), ("reply sent", 230),  # no commit
        ("read", 300), ("admitted", 301), ("committed", 302), ("committed", 303),  # whole, its
        ("reply sent", 304), ("committed", 305),  # first commit after admitted
    ]  # fmt: skip
    assert list(timelines(marks, ends)) == [[0, 10, 15, 30], [300, 301, 302, 304]]


def test_the_client_legs_are_read_from_orders_no_other_message_cut_into() -> None:
    marks = [
        ("client sent", 0), ("read", 40), ("reply sent", 300), ("client read", 350),  # whole
        ("client sent", 400), ("read", 430), ("read", 440), ("reply sent", 500),  # a PING in
        ("client read", 520),
        ("client sent", 600), ("read", 610), ("admitted", 620), ("reply sent", 700),  # whole,
        ("client read", 730),  # stages between
    ]  # fmt: skip
    assert list(legs(marks)) == [(40, 50), (10, 30)]


def test_the_mt5_module_bench_times_each_call_both_ways() -> None:
    command = [sys.executable, "-m", "bench.mt5_module", "--rounds", "1"]
    run = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| order_send, OPEN then CLOSE (two orders, two quotes)",
        "| copy_rates_from_pos, 100,000 M1 bars",
        "| account_info",
        "| symbol_info_tick",
    ]
    for row in rows:  # both sides measured: figures, and a ratio above zero
        through, in_process, ratio = row.split(" | ")[1:4]
        assert float(through.replace(",", "")) > 0 and float(in_process.replace(",", "")) > 0
        assert float(ratio.removesuffix("x |")) > 0
