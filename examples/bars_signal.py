"""An example strategy on market data: a moving-average cross on M1 bars, then an order whose
stop sits a fixed number of points from the current price, then its close.

Run it against any gateway:

    MT5_BRIDGE_SECRET=... python examples/bars_signal.py tcp://127.0.0.1:5555

The bars come as the numpy array ``copy_rates_from_pos`` returns (``bridge.rates``); the stop
is placed from the latest tick (``bridge.tick``) and the symbol's point size
(``bridge.symbol``), so the same code works for EURUSD (5 digits), USDJPY (3) or XAUUSD (2).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from inf_bridge import Bridge, OrderFilled

SYMBOL = "EURUSD"
FAST, SLOW = 10, 30  # moving averages, in bars
STOP_POINTS = 150  # the stop's distance from the price, in points (15 pips at 5 digits)
LOTS = 0.10


def moving_average(values: npt.NDArray[np.float64], length: int) -> npt.NDArray[np.float64]:
    """The simple moving average of ``values`` over ``length``, one per full window."""
    return np.convolve(values, np.ones(length) / length, mode="valid")


def signal(bars: npt.NDArray[Any]) -> tuple[str, int | None]:
    """``("BUY" | "SELL", bars since the last cross or None)``: BUY while the fast average is
    above the slow one."""
    close = bars["close"]
    fast = moving_average(close, FAST)[-(len(close) - SLOW + 1) :]  # aligned with slow
    slow = moving_average(close, SLOW)
    above = fast > slow
    crosses = np.flatnonzero(above[1:] != above[:-1])
    since = len(above) - 1 - int(crosses[-1]) - 1 if len(crosses) else None
    return ("BUY" if above[-1] else "SELL"), since


async def run(endpoint: str, secret: str | None) -> OrderFilled:
    """Read bars, decide, trade once and close; return the opening fill."""
    async with Bridge(endpoint, secret=secret) as bridge:
        # SLOW + 20 closed bars (start=1 leaves out the bar still forming), oldest first.
        bars = await bridge.rates(SYMBOL, "M1", count=SLOW + 20, start=1)
        last = datetime.fromtimestamp(int(bars["time"][-1]), UTC)
        print(
            f"1. BARS: {len(bars)} closed M1 bars of {SYMBOL}, the last opened "
            f"{last:%H:%M} (server time): close {bars['close'][-1]}"
        )

        side, since = signal(bars)
        crossed = f"crossed {since} bar(s) ago" if since is not None else "no cross in view"
        print(f"2. SIGNAL: MA{FAST} {'>' if side == 'BUY' else '<='} MA{SLOW} ({crossed}): {side}")

        info = await bridge.symbol(SYMBOL)
        tick = await bridge.tick(SYMBOL)
        # At least the broker's minimum distance for stops (trade_stops_level, in points).
        distance = max(STOP_POINTS, info.trade_stops_level) * info.point
        # A BUY closes at the bid, a SELL at the ask: its stop is measured from that price.
        sl = tick.bid - distance if side == "BUY" else tick.ask + distance
        sl = round(sl, info.digits)
        print(
            f"3. PRICE: bid {tick.bid} ask {tick.ask}; stop {STOP_POINTS} points "
            f"({distance:.{info.digits}f}) away: sl {sl}"
        )

        fill = await bridge.send_order(SYMBOL, side, LOTS, sl=sl, comment="ma-cross")
        print(f"4. OPEN: {side} {fill.volume} lots at {fill.price}, position #{fill.ticket}")
        closed = await bridge.close_position(fill.ticket)
        print(f"5. CLOSE: #{fill.ticket} closed at {closed.price}")
        return fill


if __name__ == "__main__":
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
    asyncio.run(run(endpoint, os.environ.get("MT5_BRIDGE_SECRET")))
