"""``inf_bridge.mt5`` against the package's own place: the same calls made in-process on the
simulator (issue 19). What a script pays for running on Linux through the gateway.

A gateway on the simulator (seed 1, markets open) and an in-process ``SimTerminal`` of the
same settings; each call is timed in turn on both, round after round, so a slower moment of
the machine falls on both sides alike:

- ``order_send``: a market BUY of 0.01 lots and the DEAL that closes it, timed together
  (through the module each is risk-checked, signed, journaled and executed once);
- ``copy_rates_from_pos("EURUSD", TIMEFRAME_M1, 0, 100_000)``: 100,000 bars, 6 MB;
- ``account_info()`` and ``symbol_info_tick("EURUSD")``: one small structure.

Each figure is printed with its ratio to the in-process call.

    python -m bench.mt5_module --rounds 20        # ~30 s
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from loguru import logger

import inf_bridge.mt5
from bench.results import Mt5CallResult
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import GatewayProcess

__all__ = ["CALLS", "main", "measure", "render"]

_SIM: Final = {"seed": 1, "always_open": True}  # the in-process SimTerminal's settings too
_SECRET: Final = "bench-mt5-module-" + "0" * 32


def _open_and_close(mt5: Any) -> Any:
    """A market BUY and the DEAL that closes it; the close's result (None if either failed)."""
    ask = mt5.symbol_info_tick("EURUSD").ask
    # A deviation, as a script gives one: a tick between the quote and the order is no requote.
    deal = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.01, "deviation": 50}
    opened = mt5.order_send(deal | {"type": mt5.ORDER_TYPE_BUY, "price": ask})
    if opened is None or opened.retcode != mt5.TRADE_RETCODE_DONE:
        return None
    bid = mt5.symbol_info_tick("EURUSD").bid
    closed = mt5.order_send(deal | {"type": 1, "position": opened.order, "price": bid})
    return closed if closed is not None and closed.retcode == mt5.TRADE_RETCODE_DONE else None


# (name, the call on a module, how many times a round)
CALLS: Final[tuple[tuple[str, Callable[[Any], Any], int], ...]] = (
    ("order_send, OPEN then CLOSE (two orders, two quotes)", _open_and_close, 10),
    (
        "copy_rates_from_pos, 100,000 M1 bars",
        lambda mt5: mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 100_000),
        1,
    ),
    ("account_info", lambda mt5: mt5.account_info(), 50),
    ("symbol_info_tick", lambda mt5: mt5.symbol_info_tick("EURUSD"), 50),
)


def _timed(call: Callable[[Any], Any], mt5: Any, times: int) -> list[float]:
    """``times`` calls' durations (µs); each must answer."""
    spans = []
    for _ in range(times):
        started = time.perf_counter()
        if call(mt5) is None:
            raise RuntimeError(f"a call failed: {mt5.last_error()}")
        spans.append((time.perf_counter() - started) * 1e6)
    return spans


def measure(rounds: int) -> list[Mt5CallResult]:
    """Per call: its p50 through the gateway and in-process, in µs."""
    through: dict[str, list[float]] = {name: [] for name, _, _ in CALLS}
    in_process: dict[str, list[float]] = {name: [] for name, _, _ in CALLS}
    with tempfile.TemporaryDirectory(prefix="bench-mt5-") as work:
        gateway = GatewayProcess(Path(work) / "gw", secret=_SECRET, sim=_SIM)
        with gateway, SimTerminal(config=SimConfig(seed=1, always_open=True)) as terminal:
            module: Any = inf_bridge.mt5
            if not module.initialize(endpoint=gateway.endpoint, secret=_SECRET):
                raise RuntimeError(f"initialize() failed: {module.last_error()}")
            terminal.initialize()
            terminal.symbol_select("EURUSD", True)
            try:
                for _ in range(rounds):
                    for name, call, times in CALLS:
                        through[name] += _timed(call, module, times)
                        in_process[name] += _timed(call, terminal, times)
            finally:
                module.shutdown()
    return [
        Mt5CallResult(
            call=name,
            through_us=statistics.median(through[name]),
            in_process_us=statistics.median(in_process[name]),
        )
        for name, _, _ in CALLS
    ]


def render(results: Sequence[Mt5CallResult]) -> str:
    lines = [
        "| call | through the gateway, p50 µs | in-process on the simulator, p50 µs | ratio |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.call} | {r.through_us:,.0f} | {r.in_process_us:,.0f} | {r.ratio:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mt5_module", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of every call")
    args = parser.parse_args(argv)
    logger.remove()  # the client's log lines would time the terminal
    print(render(measure(args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
