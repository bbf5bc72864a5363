"""What the benchmark ran on. On a shared 2-core VM, the gateway, its terminal worker and the
load generator compete for the same cores: the report says so next to every figure."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from bench.results import Machine

__all__ = ["describe_machine"]


def describe_machine() -> Machine:
    cores = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        usable = cores
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return Machine(
        cpu_model=_cpu_model(),
        cores=cores,
        usable_cores=usable,
        load_average=None if load is None else (load[0], load[1], load[2]),
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        event_loop=_event_loop(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _event_loop() -> str:
    """The loop the gateway, the floor and the load all run on (``gtw_server.runtime``)."""
    if sys.platform == "win32":
        return "asyncio selector"
    try:
        return f"uvloop {metadata.version('uvloop')}"
    except metadata.PackageNotFoundError:
        return "asyncio"
