"""The worker pipe's places (``gtw_server.lanes``): orders before market data, whatever waits.

The end-to-end form (an OPEN overtaking a queue of GET_RATES in a real gateway) is in
``test_market_requests.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from gtw_server.lanes import Lanes


async def _enter(lanes: Lanes, background: bool, log: list[str], name: str) -> None:
    await lanes.acquire(background)
    log.append(name)


async def test_foreground_waiters_go_before_background_ones() -> None:
    lanes = Lanes(1)
    await lanes.acquire(False)  # the worker is busy
    log: list[str] = []
    waiting = [
        asyncio.create_task(_enter(lanes, True, log, "data-1")),
        asyncio.create_task(_enter(lanes, True, log, "data-2")),
        asyncio.create_task(_enter(lanes, False, log, "order-1")),
        asyncio.create_task(_enter(lanes, False, log, "order-2")),
    ]
    await asyncio.sleep(0)
    assert lanes.waiting == 4
    for _ in range(4):
        lanes.release(background=log[-1].startswith("data") if log else False)
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)
    assert log == ["order-1", "order-2", "data-1", "data-2"]


async def test_at_most_one_background_call_is_in_the_pipe() -> None:
    lanes = Lanes(4)
    log: list[str] = []
    await lanes.acquire(True)
    second = asyncio.create_task(_enter(lanes, True, log, "data-2"))
    order = asyncio.create_task(_enter(lanes, False, log, "order"))
    await asyncio.sleep(0)
    assert log == ["order"]  # free places, but the background lane has its one call in
    lanes.release(True)
    await asyncio.wait_for(second, 1)
    assert log == ["order", "data-2"]
    await order


async def test_a_background_call_does_not_pass_a_waiting_order() -> None:
    lanes = Lanes(1)
    await lanes.acquire(False)
    log: list[str] = []
    order = asyncio.create_task(_enter(lanes, False, log, "order"))
    await asyncio.sleep(0)
    lanes.release(False)  # the place goes to the waiting order at once...
    newcomer = asyncio.create_task(_enter(lanes, True, log, "data"))
    await asyncio.sleep(0)
    assert log == ["order"]  # ...not to a newcomer, which waits its turn
    lanes.release(False)
    await asyncio.wait_for(newcomer, 1)
    assert log == ["order", "data"]
    await order


async def test_a_cancelled_waiter_gives_its_place_on() -> None:
    lanes = Lanes(1)
    await lanes.acquire(False)
    log: list[str] = []
    cancelled = asyncio.create_task(_enter(lanes, False, log, "cancelled"))
    after = asyncio.create_task(_enter(lanes, True, log, "data"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    lanes.release(False)
    await asyncio.wait_for(after, 1)
    assert log == ["data"]
    lanes.release(True)
    assert lanes.waiting == 0


async def test_cancelled_just_as_its_place_came_the_place_is_not_lost() -> None:
    lanes = Lanes(1)
    await lanes.acquire(False)
    log: list[str] = []
    unlucky = asyncio.create_task(_enter(lanes, False, log, "unlucky"))
    await asyncio.sleep(0)
    lanes.release(False)  # the place is handed to it...
    unlucky.cancel()  # ...and it is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await unlucky
    await asyncio.wait_for(lanes.acquire(False), 1)  # the place came back


async def test_a_background_call_that_waited_its_patience_goes_next() -> None:
    # Orders that never stop must not freeze prices and trade events: the background call
    # goes ahead of the orders waiting once it has waited ``patience_s``, and only then.
    now = [0.0]
    lanes = Lanes(1, patience_s=0.1, clock=lambda: now[0])
    await lanes.acquire(False)
    log: list[str] = []
    data = asyncio.create_task(_enter(lanes, True, log, "data"))
    orders = [asyncio.create_task(_enter(lanes, False, log, f"order-{i}")) for i in range(3)]
    await asyncio.sleep(0)
    now[0] = 0.05
    lanes.release(False)
    await asyncio.sleep(0)
    assert log == ["order-0"]  # not yet overdue: orders first
    now[0] = 0.1
    lanes.release(False)
    await asyncio.sleep(0)
    assert log == ["order-0", "data"]  # overdue: ahead of order-1 and order-2
    for _ in range(2):
        lanes.release(log[-1] == "data")
        await asyncio.sleep(0)
    await asyncio.gather(data, *orders)
    assert log == ["order-0", "data", "order-1", "order-2"]


async def test_an_overdue_background_call_still_waits_for_the_one_in_the_pipe() -> None:
    now = [0.0]
    lanes = Lanes(2, patience_s=0.1, clock=lambda: now[0])
    await lanes.acquire(True)  # a look is running
    await lanes.acquire(False)
    log: list[str] = []
    data = asyncio.create_task(_enter(lanes, True, log, "data"))
    await asyncio.sleep(0)
    now[0] = 1.0
    lanes.release(False)  # a free place, but the background lane has its one call in
    await asyncio.sleep(0)
    assert log == []
    lanes.release(True)
    await asyncio.wait_for(data, 1)
    assert log == ["data"]
