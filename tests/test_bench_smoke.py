"""A short run of the benchmark, end to end, to keep it working (issue 7, item 4).

It starts the floor and a gateway like ``make bench`` does, with tiny durations and counts,
and checks that every part produced sane JSON. Speed is asserted by ``make bench``, never
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

ROOT = Path(__file__).resolve().parents[1]


def test_a_short_run_measures_floor_and_gateway_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quiet", "--json", str(out)]
    command += ["--duration", "0.05", "--warmup", "0.01", "--shapes", "1x1,2x2"]
    command += ["--presend-iterations", "200", "--memory-requests", "1000"]
    command += ["--gil-duration", "0.3"]
    run = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert run.returncode == 0, run.stderr
    assert "Targets (issue 7)" in run.stdout
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert report.machine.cores >= 1
    for server in ("floor", "gateway"):
        measured = {(r.mode, r.shape) for r in report.loads if r.server == server}
        assert measured == {(mode, shape) for mode in MODES for shape in ("1x1", "2x2")}
    for result in report.loads:
        assert result.errors == {}, (result.server, result.mode, result.errors)
        assert result.requests > 0
        assert 0 < result.latency.p50_us <= result.latency.p99_us <= result.latency.max_us
    gateway_runs = [r for r in report.loads if r.server == "gateway"]
    assert len(report.ratios) == len(gateway_runs)
    for ratio in report.ratios:
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
    assert {t.passed for t in report.targets} <= {True, False, None}
    assert len(report.targets) == 11
