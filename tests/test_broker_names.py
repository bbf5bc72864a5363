"""A strategy names the instrument, the broker its symbol: ``EURUSD`` trades ``EURUSD.m`` on a
broker whose names carry a suffix, through real gateway processes on a suffixed simulator that
keeps a broker's clock (EET); a name two of the broker's symbols carry is refused with both,
and ``[gateway] symbols`` settles it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import JsonDealer

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, OrderRejected, RequestRefused

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
# A second EURUSD on the same broker: the project's sample bars, listed as EURUSD.ecn (.m).
SECOND_EURUSD = {"EURUSD.ecn": {"file": str(SAMPLES / "EURUSD_M1.csv"), "like": "EURUSD"}}


@pytest.fixture
async def suffixed(tmp_path: Path, secret: str) -> AsyncIterator[Bridge]:
    sim = {"seed": 1, "symbol_suffix": ".m", "server_timezone": "EET"}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        async with Bridge(
            gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
        ) as bridge:
            yield bridge


async def test_a_strategy_naming_eurusd_trades_eurusd_m(suffixed: Bridge) -> None:
    tick = await suffixed.tick("EURUSD")
    assert tick.symbol == "EURUSD.m" and tick.bid > 0  # replies name the broker's symbol
    info = await suffixed.symbol("EURUSD")
    assert info.name == "EURUSD.m"
    bars = await suffixed.rates("EURUSD", "M1", count=10)
    assert len(bars) == 10
    fill = await suffixed.send_order("EURUSD", "BUY", 0.1, sl=round(tick.bid - 0.005, 5))
    assert fill.symbol == "EURUSD.m"
    placed = await suffixed.place_order("EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 0.005, 5))
    assert placed.symbol == "EURUSD.m"
    (position,) = await suffixed.get_positions(fresh=True)
    assert (position.symbol, position.ticket) == ("EURUSD.m", fill.ticket)
    assert [p.ticket for p in await suffixed.get_positions("EURUSD", fresh=True)] == [fill.ticket]
    assert [o.ticket for o in await suffixed.orders("EURUSD")] == [placed.order]
    exact = await suffixed.send_order("EURUSD.m", "BUY", 0.1)  # the broker's name: as it is
    assert exact.symbol is None
    closed = await suffixed.close_position(fill.ticket)
    assert closed.volume == 0.1
    since = datetime.now(UTC) - timedelta(hours=1)
    deals = await suffixed.history(since, datetime.now(UTC) + timedelta(days=1), symbol="EURUSD")
    assert [deal.order for deal in deals] == [fill.order, exact.order, closed.order]
    assert {deal.symbol for deal in deals} == {"EURUSD.m"}
    with pytest.raises(OrderRejected) as unknown:
        await suffixed.send_order("EURUSDX", "BUY", 0.1)
    assert "did you mean EURUSD.m?" in unknown.value.message


async def test_two_symbols_that_carry_the_name_are_refused_with_both_until_mapped(
    tmp_path: Path, secret: str
) -> None:
    sim = {"symbol_suffix": ".m", "replay": SECOND_EURUSD, "server_timezone": "EET"}
    both = "2 are it with a suffix: EURUSD.m, EURUSD.ecn.m"
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        events = gateway.events_endpoint
        async with Bridge(gateway.endpoint, secret=secret, events_endpoint=events) as bridge:
            with pytest.raises(OrderRejected) as order:
                await bridge.send_order("EURUSD", "BUY", 0.1)
            assert order.value.error_code == "SYMBOL_AMBIGUOUS" and both in order.value.message
            with pytest.raises(RequestRefused) as read:
                await bridge.tick("EURUSD")
            assert read.value.error_code == "SYMBOL_AMBIGUOUS" and both in read.value.message
            async with bridge.ticks("EURUSD") as stream:
                with pytest.raises(RequestRefused) as streamed:
                    await asyncio.wait_for(anext(aiter(stream)), 30)
            assert streamed.value.error_code == "SYMBOL_AMBIGUOUS"
            assert both in streamed.value.message
            assert await bridge.get_positions(fresh=True) == []
    mapped = {"symbols": {"EURUSD": "EURUSD.ecn.m"}}
    log_file = tmp_path / "gw2.log"
    second = GatewayProcess(
        tmp_path / "gw2", secret=secret, sim=sim, gateway=mapped, log_file=log_file
    )
    with second:
        async with Bridge(second.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1)
            assert fill.symbol == "EURUSD.ecn.m"
            assert (await bridge.tick("EURUSD")).symbol == "EURUSD.ecn.m"
    log = log_file.read_text(encoding="utf-8")
    assert "symbol names ([gateway] symbols): EURUSD is EURUSD.ecn.m" in log
    assert "symbol EURUSD is EURUSD.ecn.m on this broker (by [gateway] symbols)" in log


async def test_positions_of_the_bare_name_from_the_last_look(tmp_path: Path, secret: str) -> None:
    """GET_POSITIONS answered from the trade watcher's last look (not ``fresh``) selects by
    the broker's name too: a name not resolved by that look is asked of the terminal, which
    resolves it (or finds no symbol by it); the looks after it answer it at once."""
    sim = {"seed": 1, "symbol_suffix": ".m", "server_timezone": "EET"}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD.m", "BUY", 0.1)  # no name resolved
        raw = JsonDealer(gateway.endpoint)
        try:

            async def from_a_look(symbol: str) -> list[dict[str, Any]]:
                first = raw.ok("GET_POSITIONS", symbol=symbol)
                assert first["age_ms"] == 0  # the terminal's answer: the look knew no such name
                deadline = time.monotonic() + 30
                while (cached := raw.ok("GET_POSITIONS", symbol=symbol))["age_ms"] == 0:
                    assert time.monotonic() < deadline, f"no look answered {symbol} in 30 s"
                    await asyncio.sleep(0.1)
                tickets = [position["ticket"] for position in first["positions"]]
                assert [position["ticket"] for position in cached["positions"]] == tickets
                return list(cached["positions"])

            euro = await from_a_look("EURUSD")
            assert [(p["ticket"], p["symbol"]) for p in euro] == [(fill.ticket, "EURUSD.m")]
            assert await from_a_look("GBPUSD") == []
            assert await from_a_look("NOPE") == []
        finally:
            raw.close()
