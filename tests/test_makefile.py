"""`make install` run twice at once (`make demo & make demo` on a fresh clone): one builds the
venv, the other waits for it instead of racing it in the same directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Stands in for python3 and for the venv's python: it runs `-c` programs (the version check,
# the lock) with the real interpreter, and logs each install step's start and end instead of
# running it, slowly enough that two makes without the lock would overlap.
FAKE_PYTHON = """#!{python}
import os, shutil, sys, time

args = sys.argv[1:]
if args[0] == "-c":
    os.execv({python!r}, [{python!r}, *args])
step = f"{{os.getpid()}} {{args[1]}}"
with open(os.environ["FAKE_PYTHON_LOG"], "a") as log:
    log.write(f"start {{step}}\\n")
if args[1] == "venv":
    os.makedirs(os.path.join(args[2], "bin"), exist_ok=True)
    shutil.copy(sys.argv[0], os.path.join(args[2], "bin", "python"))
time.sleep(0.3)  # a slow step, so that makes started together overlap in it
with open(os.environ["FAKE_PYTHON_LOG"], "a") as log:
    log.write(f"end {{step}}\\n")
"""

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("make") is None, reason="make, and POSIX paths"
)


def steps(log: Path) -> list[str]:
    """The install steps in the order they ran, each checked to have ended before the next
    one started."""
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    starts, ends = lines[::2], lines[1::2]
    for start, end in zip(starts, ends, strict=True):
        assert end == start.replace("start", "end", 1), f"steps overlap: {lines}"
    return [start.rsplit(" ", 1)[1] for start in starts]


def test_two_installs_at_once_build_the_venv_once_and_the_stamp_still_counts(
    tmp_path: Path,
) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    log = tmp_path / "steps.log"
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env["FAKE_PYTHON_LOG"] = str(log)
    make = ["make", "-s", "-C", str(tmp_path), f"PYTHON={fake}", "install"]

    def install_at_once(count: int) -> None:
        runs = [subprocess.Popen(make, env=env, stderr=subprocess.PIPE) for _ in range(count)]
        for run in runs:
            _, err = run.communicate(timeout=60)
            assert run.returncode == 0, err.decode()

    install_at_once(2)
    assert steps(log) == ["venv", "pip", "pip"]  # once, and the other make found it fresh
    install_at_once(1)
    assert steps(log) == ["venv", "pip", "pip"]  # nothing changed: nothing reinstalled
    before = time.time() - 10  # constraints.txt changed since the install
    os.utime(tmp_path / ".venv" / ".installed", (before, before))
    install_at_once(2)
    assert steps(log) == ["venv", "pip", "pip"] * 2
