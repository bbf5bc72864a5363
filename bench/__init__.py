"""The benchmark of issue 7: the gateway against its floor, measured in the same run.

    python -m bench                       # the standard run (``make bench``): table + targets
    python -m bench --modes ping --shapes 1x1,4x16 --duration 5 --json out.json --plot out.png

``bench.floor`` is the bare echo server the gateway is compared with, ``bench.load`` the load
generator (real ``inf_bridge.Bridge`` clients), ``bench.presend`` the client's own cost per
order, ``bench.memory`` and ``bench.gil`` the memory and frozen-loop checks, ``bench.targets``
the issue's targets, ``bench.report`` and ``bench.plot`` the output, ``bench.suite`` the order
in which it all runs. docs/PERFORMANCE.md has the results and how to read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.suite import Options, run_suite

__all__ = ["Options", "run_suite"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``python -m bench.floor`` imports this package first, and the
    # floor's child process should not load the whole benchmark (nor have runpy warn that
    # bench.floor was imported before it ran).
    if name in __all__:
        from bench import suite  # noqa: PLC0415

        return getattr(suite, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
