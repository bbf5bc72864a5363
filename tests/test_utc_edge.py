"""UTC at the bridge's edge, through a real gateway on a simulator that keeps a broker's clock
(EET: UTC+2 in winter, UTC+3 in summer): the wire carries the terminal's times, the Bridge
gives and takes UTC, each record with the offset it was converted by."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import Dealer, server_clock_known

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, DealEvent, InvalidRequest
from protocol import GetOrders, GetTick, Reply, Request, ServerClock, encode

SLACK_S = 90  # a tick or a bar may be this old on a quiet Saturday minute


@pytest.fixture
async def eet(tmp_path: Path, secret: str) -> AsyncIterator[tuple[Bridge, GatewayProcess]]:
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, sim={"server_timezone": "EET"})
    with gateway:
        async with Bridge(
            gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
        ) as bridge:
            await server_clock_known(bridge)  # learned from the first quote that moves
            yield bridge, gateway


async def test_prices_and_bars_are_utc_with_the_server_offset_beside(
    eet: tuple[Bridge, GatewayProcess],
) -> None:
    bridge, gateway = eet
    offset = ServerClock("EET").offset_s(time.time())
    tick = await bridge.tick("EURUSD")
    now = time.time()
    assert now - SLACK_S <= tick.time <= now + 1 and tick.server_offset_s == offset
    assert tick.time_msc // 1000 == tick.time
    raw = await _on_the_wire(gateway, GetTick(uuid="t-1", timestamp=now, symbols=["EURUSD"]))
    assert raw.ticks is not None  # what a raw client reads: the terminal's clock
    assert abs(raw.ticks["EURUSD"].time - (tick.time + offset)) <= SLACK_S
    bars = await bridge.rates("EURUSD", "M1", count=5)
    assert now - 6 * 60 - SLACK_S <= bars["time"][-1] <= now
    assert (bars["time"] % 60 == 0).all()
    hours = await bridge.rates("EURUSD", "H1", count=3)
    assert now - 3600 - SLACK_S <= hours["time"][-1] <= now
    days = await bridge.rates("EURUSD", "D1", count=2)
    # A daily bar opens at the server's midnight: 22:00 or 21:00 UTC the day before.
    assert all((t + offset) % 86_400 == 0 for t in days["time"].tolist())
    back = datetime.fromtimestamp(now, UTC) - timedelta(minutes=10)
    recent = await bridge.ticks_history("EURUSD", back, count=5)
    assert len(recent) and (recent["time"] >= back.timestamp() - 1).all()
    assert (await bridge.symbol("EURUSD")).time <= now + 1


async def test_trades_are_timed_in_utc_and_a_utc_range_finds_exactly_them(
    eet: tuple[Bridge, GatewayProcess],
) -> None:
    bridge, _ = eet
    events = bridge.events()
    await events.start()
    await asyncio.sleep(2.5)  # the new account's deposit (its first deal) out of the range
    before = time.time()
    fill = await bridge.send_order("EURUSD", "BUY", 0.1)
    after = time.time()
    (position,) = [p for p in await bridge.get_positions(fresh=True) if p.ticket == fill.ticket]
    assert before - 1 <= position.time <= after + 1
    start = datetime.fromtimestamp(before - 1, UTC)
    end = datetime.fromtimestamp(after + 1, UTC)
    deals = await bridge.history(start, end)
    assert [deal.order for deal in deals] == [fill.order]  # exactly the deal made in it
    (deal,) = deals
    assert before - 1 <= deal.time <= after + 1 and deal.server_offset_s is not None
    earlier = await bridge.history(start - timedelta(hours=3), start - timedelta(seconds=1))
    assert fill.order not in [d.order for d in earlier]  # the server's hour is not UTC's
    (order,) = await bridge.history_orders(start, end)
    assert before - 1 <= order.time_setup <= after + 1
    async for event in events:
        if isinstance(event, DealEvent) and event.deal.order == fill.order:
            assert before - 1 <= event.deal.time <= after + 1
            break


async def test_an_expiration_given_in_utc_is_the_servers_and_comes_back_in_utc(
    eet: tuple[Bridge, GatewayProcess],
) -> None:
    bridge, gateway = eet
    tick = await bridge.tick("EURUSD")
    at = datetime.fromtimestamp(int(time.time()) + 3600, UTC)  # an hour from now, UTC
    placed = await bridge.place_order(
        "EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 0.005, 5), expiration=at
    )
    (order,) = [o for o in await bridge.orders() if o.ticket == placed.order]
    assert order.time_expiration == int(at.timestamp())
    raw = await _on_the_wire(gateway, GetOrders(uuid="o-1", timestamp=0, ticket=placed.order))
    assert raw.orders is not None
    offset = ServerClock("EET").offset_s(at.timestamp())
    assert raw.orders[0].time_expiration == int(at.timestamp()) + offset
    with pytest.raises(InvalidRequest, match="has no time zone"):
        await bridge.history(datetime(2026, 1, 1), datetime(2026, 1, 2))  # never guessed


async def _on_the_wire(gateway: GatewayProcess, request: Request) -> Reply:
    """The gateway's reply to ``request`` from a plain DEALER: what any client reads."""
    wire = Dealer(gateway.endpoint)
    try:
        await wire.send(encode(request))
        return await wire.recv()
    finally:
        wire.close()


async def test_times_stay_utc_across_a_daylight_saving_change(tmp_path: Path, secret: str) -> None:
    # The simulator starts two minutes before EET's spring change (01:00 UTC, 29 March 2026)
    # and runs a minute a second; the gateway's zone converts across it. The gateway learns
    # nothing from quotes here (their clock is months from this machine's), so it names it.
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    start, speed = change - 120, 60.0
    sim = {"server_timezone": "EET", "replay_from": start, "replay_speed": speed}
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, sim=sim, gateway={"server_timezone": "EET"}
    )
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            began = time.time()

            def sim_now() -> float:
                return start + (time.time() - began) * speed

            winter = await bridge.send_order("EURUSD", "BUY", 0.1)
            winter_at = sim_now()
            seen: list[tuple[float, int, int]] = []  # (tick UTC, its offset, sim's UTC now)
            while time.time() - began < 30 and (not seen or seen[-1][1] == 7200):
                tick = await bridge.tick("EURUSD")
                assert tick.server_offset_s is not None
                seen.append((tick.time_msc / 1000, tick.server_offset_s, int(sim_now())))
                await asyncio.sleep(0.5)
            summer = await bridge.send_order("EURUSD", "BUY", 0.1)
            summer_at = sim_now()
            positions = {p.ticket: p for p in await bridge.get_positions(fresh=True)}
            bars = await bridge.rates("EURUSD", "M1", count=3)
            bars_at = sim_now()
            deals = await bridge.history(position=winter.ticket)
    # Orders on both sides of the change, timed in UTC by the simulator's clock.
    for fill, at in ((winter, winter_at), (summer, summer_at)):
        assert at - 600 <= positions[fill.ticket].time <= at + 1800
    # Minutes apart in UTC; on the server's clock the change put an hour more between them.
    assert 0 < positions[summer.ticket].time - positions[winter.ticket].time < 1800
    assert deals[0].server_offset_s == 7200 and deals[0].time == positions[winter.ticket].time
    assert bars_at - 600 - 120 <= bars["time"][-1] <= bars_at + 1800
    offsets = [offset for _, offset, _ in seen]
    assert offsets[0] == 7200 and offsets[-1] == 10_800  # the change, seen live
    for tick_utc, _, sim_now in seen:
        # Near the simulator's UTC clock (estimated from when the test began: its clock ran
        # from its start, a few real seconds, so minutes of its own, earlier), never an hour
        # (or two, or three) off as a server time taken for UTC would be.
        assert sim_now - 600 <= tick_utc <= sim_now + 1800
    times = [tick_utc for tick_utc, _, _ in seen]
    assert times == sorted(times)  # UTC runs on through the server's skipped hour
