"""Run a script as ``python SCRIPT ARG...`` would, inside this process (``runpy``): what the
``MetaTrader5`` stand-ins (the simulator's, ``inf_bridge.mt5``) use to run a script written for
the package, unchanged, once their module is in ``sys.modules``."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_script"]


def run_script(script: str, args: Sequence[str]) -> None:
    """Run ``script`` as ``__main__`` with ``sys.argv`` and ``sys.path[0]`` as the interpreter
    would set them for ``python script *args``."""
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)
    runpy.run_path(script, run_name="__main__")
