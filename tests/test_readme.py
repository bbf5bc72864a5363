"""The README's ten-line strategy runs, as written, against a real gateway."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gtw_server.testing import GatewayProcess

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_strategy_runs(tmp_path: Path, secret: str) -> None:
    match = re.search(r"## A strategy in ten lines\s+```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the README lost its strategy example"
    code = match.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    with GatewayProcess(tmp_path / "gw", secret=secret) as gateway:
        result = subprocess.run(
            [sys.executable, "-c", code.replace("tcp://127.0.0.1:5555", gateway.endpoint)],
            env={**os.environ, "MT5_BRIDGE_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert re.search(r"FILLED 0\.1 lots at [0-9.]+, position #\d+", result.stdout)
