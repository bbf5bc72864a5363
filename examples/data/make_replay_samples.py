"""Writes the replay samples beside this file, in the format a MetaTrader 5 terminal exports.

    python examples/data/make_replay_samples.py

``EURUSD_M1.csv`` (M1 bars, a Monday's London morning) and ``EURUSD_ticks.csv`` (its first
ten minutes of ticks) are the simulator's own made-up history (seed 2024), written as the
terminal's Bars and Ticks export writes them: tab-separated, a ``<...>`` header, server time.
The simulator replays them with ``[sim] replay = {EURUSD = "examples/data/EURUSD_M1.csv"}``
(docs/SIMULATOR.md). They are made, not recorded, so the project can ship them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gtw_server.terminal.sim import SimConfig, SimTerminal

HERE = Path(__file__).resolve().parent
START = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)  # a Monday, London's open
HOURS = 3


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y.%m.%d\t%H:%M:%S")


def main() -> None:
    end_s = START.timestamp() + HOURS * 3600
    config = SimConfig(seed=2024, always_open=False)
    with SimTerminal(config=config, clock=lambda: end_s + 60) as mt5:
        assert mt5.initialize(), mt5.last_error()
        bars = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, START, end_s - 60)
        ticks = mt5.copy_ticks_range("EURUSD", START, START.timestamp() + 599, mt5.COPY_TICKS_ALL)
        assert bars is not None and ticks is not None, mt5.last_error()
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for bar in bars:
        moment = datetime.fromtimestamp(int(bar["time"]), UTC)
        prices = "\t".join(f"{bar[field]:.5f}" for field in ("open", "high", "low", "close"))
        lines.append(f"{_clock(moment)}\t{prices}\t{bar['tick_volume']}\t0\t{bar['spread']}")
    (HERE / "EURUSD_M1.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"]
    bid = ask = None
    for tick in ticks:
        moment = datetime.fromtimestamp(int(tick["time_msc"]) / 1000, UTC)
        stamp = f"{_clock(moment)}.{int(tick['time_msc']) % 1000:03d}"
        # As the terminal writes them: a price that did not change is left empty.
        bid_text = "" if tick["bid"] == bid else f"{tick['bid']:.5f}"
        ask_text = "" if tick["ask"] == ask else f"{tick['ask']:.5f}"
        bid, ask = tick["bid"], tick["ask"]
        lines.append(f"{stamp}\t{bid_text}\t{ask_text}\t\t\t{tick['flags']}")
    (HERE / "EURUSD_ticks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(bars)} bars and {len(ticks)} ticks to {HERE}")


if __name__ == "__main__":
    main()
