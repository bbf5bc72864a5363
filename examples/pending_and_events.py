"""An example of the order's whole life: a pending order placed, moved and cancelled; a
position whose stop trails the price; and the trade events that tell all of it, replayed from
where the strategy last stopped reading.

Run it against any gateway:

    MT5_BRIDGE_SECRET=... python examples/pending_and_events.py tcp://127.0.0.1:5555 [SEQ]

``SEQ`` is the last event number a previous run printed: the events after it are read again
first (the gateway keeps a week of them), each once, so a strategy that keeps its last
``seq`` misses nothing across a restart.
"""

from __future__ import annotations

import asyncio
import os
import sys

from inf_bridge import AccountEvent, Bridge, DealEvent, OrderEvent, TradeEvent

SYMBOL = "EURUSD"
LOTS = 0.10
POINTS_AWAY = 300  # the pending order's distance from the market, in points
TRAIL_POINTS = 100  # the stop's distance behind the price, in points
TRAILS = 3


def describe(event: TradeEvent) -> str:
    if isinstance(event, DealEvent):
        deal = event.deal
        side = "BUY" if deal.type == 0 else "SELL" if deal.type == 1 else f"type {deal.type}"
        return (
            f"deal #{deal.ticket} {side} {deal.volume:g} {deal.symbol or '-'} at {deal.price:g}"
            f" ({event.reason}), position #{deal.position_id}"
        )
    if isinstance(event, OrderEvent):
        return f"order #{event.order.ticket} {event.change} at {event.order.price_open:g}"
    assert isinstance(event, AccountEvent)
    return f"account balance {event.account.balance:,.2f}, equity {event.account.equity:,.2f}"


async def run(endpoint: str, secret: str | None, since: int | None) -> int:
    """Trade through a pending order's and a position's life; print the events; return the
    last event number seen."""
    async with Bridge(endpoint, secret=secret) as bridge:
        events = bridge.events(since=since)
        start = await events.start()  # without SEQ: from here on, all this run causes
        info = await bridge.symbol(SYMBOL)
        tick = await bridge.tick(SYMBOL)
        away = POINTS_AWAY * info.point

        below = round(tick.ask - away, info.digits)
        placed = await bridge.place_order(SYMBOL, "BUY_LIMIT", LOTS, below, expiration="DAY")
        print(f"1. PLACE: BUY_LIMIT {LOTS} {SYMBOL} at {below}, order #{placed.order}")
        lower = round(below - away, info.digits)
        await bridge.modify_order(placed.order, price=lower)
        print(f"2. MODIFY: order #{placed.order} moved to {lower}")
        await bridge.cancel_order(placed.order)
        print(f"3. CANCEL: order #{placed.order}")

        fill = await bridge.send_order(SYMBOL, "BUY", LOTS, comment="trailed")
        print(f"4. OPEN: BUY {fill.volume} at {fill.price}, position #{fill.ticket}")
        stop = 0.0
        for _ in range(TRAILS):
            tick = await bridge.tick(SYMBOL)
            trailed = round(tick.bid - TRAIL_POINTS * info.point, info.digits)
            if trailed > stop:  # a trailing stop only ever moves up, for a buy
                await bridge.modify_position(fill.ticket, sl=trailed)
                stop = trailed
            await asyncio.sleep(0.5)
        print(f"5. TRAIL: the stop of #{fill.ticket} is at {stop}")
        closed = await bridge.close_position(fill.ticket)
        print(f"6. CLOSE: #{fill.ticket} at {closed.price}")

        print(f"7. EVENTS after #{start}:")
        last = start
        async with events:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), timeout=2.0)
                except TimeoutError:
                    break  # caught up: nothing new for 2 s
                print(f"  {event.seq:>5}  {describe(event)}")
                last = event.seq
                closing = isinstance(event, DealEvent) and event.deal.entry == 1
                if closing and event.deal.position_id == fill.ticket:
                    break  # the close: everything of this run is told
        print(f"8. LAST EVENT: {last} (run again with it to read only what comes after)")
        return last


if __name__ == "__main__":
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
    since = int(sys.argv[2]) if len(sys.argv) > 2 else None
    asyncio.run(run(endpoint, os.environ.get("MT5_BRIDGE_SECRET"), since))
