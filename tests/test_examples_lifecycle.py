"""The order-life-cycle example runs, as written, against a real gateway: a pending order
placed, moved and cancelled, a trailed stop, and the trade events told once each, resumed
from the last number a previous run printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gtw_server.testing import GatewayProcess

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pending_and_events.py"


def run(*args: str, secret: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env={**os.environ, "MT5_BRIDGE_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def events(out: str) -> list[tuple[int, str]]:
    return [(int(seq), what) for seq, what in re.findall(r"^ +(\d+)  (.*)$", out, re.M)]


def test_the_life_cycle_example_tells_what_it_did_and_resumes_where_it_stopped(
    gateway: GatewayProcess, secret: str
) -> None:
    first = run(gateway.endpoint, secret=secret)
    order = re.search(r"^1\. PLACE: BUY_LIMIT 0\.1 EURUSD at [0-9.]+, order #(\d+)$", first, re.M)
    position = re.search(r"^4\. OPEN: BUY 0\.1 at [0-9.]+, position #(\d+)$", first, re.M)
    assert order and position, first
    assert re.search(rf"^5\. TRAIL: the stop of #{position[1]} is at \d\.\d+$", first, re.M)
    told = events(first)
    seqs = [seq for seq, _ in told]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # once each, in order
    whats = [what for _, what in told]
    assert f"order #{order[1]} PLACED" in " ".join(whats)
    assert any(w.startswith(f"order #{order[1]} CANCELLED") for w in whats)
    deals = [w for w in whats if w.startswith("deal #") and f"position #{position[1]}" in w]
    assert [d.split()[2] for d in deals] == ["BUY", "SELL"]  # the open, then the close
    last = int(re.findall(r"^8\. LAST EVENT: (\d+)", first, re.M)[0])
    assert last == seqs[-1]

    again = run(gateway.endpoint, str(last - 2), secret=secret)  # resumed two events back
    resumed = events(again)
    assert [seq for seq, _ in resumed][:2] == [last - 1, last]  # the last two, told again
    assert dict(resumed)[last] == dict(told)[last]
