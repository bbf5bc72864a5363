"""The latency distribution plot (``--plot FILE.png``), drawn with matplotlib.

matplotlib is the optional extra ``plot`` (``pip install -e '.[plot]'``), imported only when a
plot is asked for. One panel per mode, two to a row; each line is one server and shape,
latency against percentile on an "HDR" axis where 90%, 99%, 99.9% ... are evenly spaced, so
the tail is seen.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Final

from bench.results import Report

__all__ = ["PlotUnavailable", "require_matplotlib", "write_plot"]

INSTALL_HINT: Final = "pip install -e '.[plot]'   (or: pip install 'matplotlib>=3.8,<4')"
_TICKS: Final = (50.0, 90.0, 99.0, 99.9, 99.99)
_COLUMNS: Final = 2
_TOP_PERCENTILE: Final = 99.99  # 100% is the maximum: infinitely far on this axis


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _nines(percentile: float) -> float:
    """Where ``percentile`` sits on the HDR axis: 1 / (1 - p)."""
    return 1.0 / (1.0 - percentile / 100.0)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot``, set up to write files; ``PlotUnavailable`` when missing."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailable(f"--plot needs matplotlib: {INSTALL_HINT}") from None
    matplotlib.use("Agg")  # files only: no display needed
    return importlib.import_module("matplotlib.pyplot")


def write_plot(report: Report, path: Path) -> None:
    """Draw the latency distributions of ``report.loads`` into the PNG ``path``."""
    plt = require_matplotlib()
    modes = list(dict.fromkeys(r.mode for r in report.loads))
    if not modes:
        raise ValueError("nothing to plot: the run measured no load")
    cols = min(len(modes), _COLUMNS)
    rows = -(-len(modes) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.0 * cols, 4.2 * rows), squeeze=False, sharey=True
    )
    shapes = list(dict.fromkeys((r.shape, r.positions) for r in report.loads))
    colors = plt.get_cmap("tab10")
    panels = [ax for row in axes for ax in row]
    for ax in panels[len(modes) :]:
        ax.set_visible(False)
    for ax, mode in zip(panels, modes, strict=False):
        for result in (r for r in report.loads if r.mode == mode):
            points = [(p, us) for p, us in result.latency.curve if 0 < p <= _TOP_PERCENTILE]
            shape = (result.shape, result.positions)
            label = f"{result.server} {result.shape}"
            if result.positions:
                label += f" ({result.positions} pos.)"
            ax.plot(
                [_nines(p) for p, _ in points],
                [us for _, us in points],
                linestyle="--" if result.server == "floor" else "-",
                marker=".",
                color=colors(shapes.index(shape) % 10),
                label=label,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([_nines(p) for p in _TICKS], [f"{p:g}%" for p in _TICKS])
        ax.minorticks_off()
        ax.set_title(mode)
        ax.set_xlabel("percentile")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    for row in axes:
        row[0].set_ylabel("round trip (us)")
    machine = report.machine
    fig.suptitle(
        f"gateway (solid) vs floor (dashed); {machine.cores} cores {machine.cpu_model}, "
        f"Python {machine.python}",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
