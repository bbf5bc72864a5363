"""An example strategy: ping the gateway, read the market, open a few positions, look at the
account, close.

Run it against any gateway:

    MT5_BRIDGE_SECRET=... python examples/strategy.py tcp://127.0.0.1:5555 [EVENTS_ENDPOINT]

(`make demo` starts a gateway on the simulator and runs this for you.)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from inf_bridge import Bridge, OrderFilled

ORDERS = [  # symbol, side, lots, comment
    ("EURUSD", "BUY", 0.10, "trend"),
    ("GBPUSD", "SELL", 0.20, "mean-revert"),
    ("USDJPY", "BUY", 0.05, "carry"),
    ("XAUUSD", "BUY", 0.02, "hedge"),
]


def show_fill(what: str, fill: OrderFilled) -> None:
    print(
        f"  {what:<34} FILLED  {fill.volume:5.2f} lots at {fill.price:<10g} "
        f"position #{fill.ticket}  deal #{fill.deal}"
    )


async def show_market(bridge: Bridge) -> None:
    """The latest quotes, the last closed M1 bar, and a live tick from the event stream."""
    quotes = await bridge.quotes(*dict.fromkeys(symbol for symbol, *_ in ORDERS))
    print("   quotes: " + ", ".join(f"{s} {t.bid:g}/{t.ask:g}" for s, t in quotes.items()))
    closed = (await bridge.rates("EURUSD", "M1", count=1, start=1))[0]  # 0 is still forming
    print(
        f"   EURUSD M1 bar of {time.strftime('%H:%M', time.gmtime(int(closed['time'])))}: "
        f"open {closed['open']:g} high {closed['high']:g} low {closed['low']:g} "
        f"close {closed['close']:g}, {closed['tick_volume']} ticks"
    )
    async with bridge.ticks("EURUSD") as ticks, asyncio.timeout(5):
        tick = await anext(ticks)
    print(f"   live tick from the event stream: EURUSD {tick.bid:g}/{tick.ask:g}")


async def run(
    endpoint: str, secret: str | None, events_endpoint: str | None = None
) -> list[OrderFilled]:
    """Trade a little; return the opening fills. ``events_endpoint``: where the gateway
    publishes ticks (by default the port after ``endpoint``'s)."""
    async with Bridge(endpoint, secret=secret, events_endpoint=events_endpoint) as bridge:
        rtt = await bridge.ping()
        print(f"1. PING: the gateway answered in {rtt * 1000:.2f} ms")
        await show_market(bridge)

        print(f"2. OPEN {len(ORDERS)} positions at once (one Bridge, concurrent coroutines):")
        fills = await asyncio.gather(
            *(bridge.send_order(sym, side, lots, comment=note) for sym, side, lots, note in ORDERS)
        )
        for (symbol, side, lots, _), fill in zip(ORDERS, fills, strict=True):
            show_fill(f"{side} {lots:.2f} {symbol}", fill)

        account = await bridge.get_account(fresh=True)  # after our own orders: read now
        print(
            f"3. ACCOUNT #{account.login} on {account.server} ({account.trade_mode}): "
            f"balance {account.balance:,.2f} {account.currency}, equity {account.equity:,.2f}, "
            f"margin {account.margin:,.2f}, free {account.margin_free:,.2f}"
        )

        positions = await bridge.get_positions(fresh=True)
        print(f"4. POSITIONS ({len(positions)} open):")
        for p in positions:
            print(
                f"  #{p.ticket:<8} {p.type:<4} {p.volume:5.2f} {p.symbol:<7} "
                f"open {p.price_open:<10g} now {p.price_current:<10g} "
                f"profit {p.profit:+9.2f}  {p.comment!r}"
            )

        first = fills[0]
        half = round(first.volume / 2, 2)
        partial = await bridge.close_position(first.ticket, half)
        print("5. CLOSE part, then all the rest:")
        show_fill(f"partial close of #{first.ticket}", partial)
        for fill in fills:
            show_fill(f"close #{fill.ticket}", await bridge.close_position(fill.ticket))

        state = await bridge.get_order(first.uuid)
        print(f"6. GET_ORDER {first.uuid}: {state.status} (position #{state.ticket})")
        account = await bridge.get_account(fresh=True)  # after our own orders: read now
        left = await bridge.get_positions(fresh=True)
        print(
            f"7. DONE: {len(left)} positions open, balance {account.balance:,.2f} "
            f"{account.currency} (realised P&L and spreads included)"
        )
        return fills


if __name__ == "__main__":
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
    events = sys.argv[2] if len(sys.argv) > 2 else None  # default: the port after endpoint's
    asyncio.run(run(endpoint, os.environ.get("MT5_BRIDGE_SECRET"), events))
