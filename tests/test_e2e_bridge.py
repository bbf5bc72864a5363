"""End to end through the public client: a real gateway process, the simulated terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gtw_server.tagging import order_tag
from gtw_server.terminal.sim import install_as_metatrader5, uninstall_metatrader5
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, CircuitOpen, OrderRejected
from protocol import Filling


async def test_ping_measures_a_round_trip(bridge: Bridge) -> None:
    rtt = await bridge.ping()
    assert 0 < rtt < 2.0


async def test_open_fills_and_the_position_is_listed(bridge: Bridge) -> None:
    fill = await bridge.send_order("EURUSD", "BUY", 0.10, comment="e2e")

    assert fill.action == "OPEN"
    assert fill.ticket > 0 and fill.deal > 0
    assert fill.volume == pytest.approx(0.10)
    assert 0.5 < fill.price < 2.0
    assert not fill.duplicate
    positions = await bridge.get_positions("EURUSD")
    (position,) = [p for p in positions if p.ticket == fill.ticket]
    assert position.type == "BUY"
    assert position.volume == pytest.approx(0.10)
    assert position.price_open == pytest.approx(fill.price)
    # The terminal comment starts with the uuid's tag, then the trader's comment.
    assert position.comment == f"{order_tag(fill.uuid)} e2e"


async def test_partial_then_full_close(bridge: Bridge) -> None:
    fill = await bridge.send_order("GBPUSD", "SELL", 0.10)

    partial = await bridge.close_position(fill.ticket, 0.04)
    assert partial.action == "CLOSE"
    assert partial.ticket == fill.ticket
    assert partial.volume == pytest.approx(0.04)
    (left,) = [p for p in await bridge.get_positions() if p.ticket == fill.ticket]
    assert left.volume == pytest.approx(0.06)

    rest = await bridge.close_position(fill.ticket)
    assert rest.volume == pytest.approx(0.06)
    assert fill.ticket not in {p.ticket for p in await bridge.get_positions()}


async def test_account_reflects_positions(bridge: Bridge) -> None:
    before = await bridge.get_account()
    assert before.trade_mode == "DEMO"
    assert before.currency == "USD"
    assert before.margin == 0

    fill = await bridge.send_order("EURUSD", "BUY", 1.0)
    during = await bridge.get_account()
    assert during.margin > 0
    assert during.equity == pytest.approx(during.balance + during.profit)
    assert during.margin_free == pytest.approx(during.equity - during.margin)

    await bridge.close_position(fill.ticket)
    after = await bridge.get_account()
    assert after.margin == 0
    assert after.balance != before.balance  # the spread, at least, was paid


async def test_concurrent_orders_resolve_independently(bridge: Bridge) -> None:
    fills = await asyncio.gather(*(bridge.send_order("EURUSD", "BUY", 0.01) for _ in range(20)))

    assert len({f.ticket for f in fills}) == 20
    assert len({f.uuid for f in fills}) == 20
    open_tickets = {p.ticket for p in await bridge.get_positions("EURUSD")}
    assert {f.ticket for f in fills} <= open_tickets


async def test_get_order_returns_the_stored_outcome(bridge: Bridge) -> None:
    fill = await bridge.send_order("USDJPY", "BUY", 0.05)

    state = await bridge.get_order(fill.uuid)
    assert state.status == "FILLED"
    assert state.uuid == fill.uuid
    assert state.action == "OPEN"
    assert state.ticket == fill.ticket

    with pytest.raises(OrderRejected) as excinfo:
        await bridge.get_order("never-sent")
    assert excinfo.value.error_code == "ORDER_NOT_FOUND"


async def test_the_filling_policy_the_closes_magic_and_the_terminals_whole_answer(
    bridge: Bridge,
) -> None:
    # US500 takes IOC only: the gateway picks it unless told; told FOK, the terminal refuses.
    with pytest.raises(OrderRejected) as excinfo:
        await bridge.send_order("US500", "BUY", 1.0, type_filling="fok")
    refused = excinfo.value
    assert (refused.retcode, refused.error_code) == (10030, "MT5_REJECTED")
    assert refused.request_id is not None and refused.request_id > 0
    fill = await bridge.send_order("US500", "BUY", 1.0, magic=5)
    told = await bridge.send_order("US500", "BUY", 1.0, type_filling=Filling.IOC, magic=8)
    assert fill.bid is not None and fill.ask is not None and 0 < fill.bid < fill.ask
    assert fill.price == fill.ask and fill.retcode_external == 0
    assert fill.request_id is not None and told.request_id is not None
    assert refused.request_id < fill.request_id < told.request_id  # the terminal's counter
    closed = await bridge.close_position(fill.ticket, magic=6, comment="stop")
    kept = await bridge.close_position(told.ticket)  # the position's magic, no comment
    assert closed.price == closed.bid
    deals = {deal.ticket: deal for deal in await bridge.history(position=fill.ticket)}
    stop = deals[closed.deal]
    assert (stop.magic, stop.comment) == (6, f"{order_tag(closed.uuid)} stop")
    (out,) = [d for d in await bridge.history(position=told.ticket) if d.ticket == kept.deal]
    assert (out.magic, out.comment) == (8, order_tag(kept.uuid))
    state = await bridge.get_order(fill.uuid)  # the journal keeps the whole answer
    assert (state.bid, state.ask, state.request_id) == (fill.bid, fill.ask, fill.request_id)


async def test_repeated_uuid_executes_once(bridge: Bridge) -> None:
    first = await bridge.send_order("EURUSD", "SELL", 0.02, uuid="once-only-1")
    again = await bridge.send_order("EURUSD", "SELL", 0.02, uuid="once-only-1")

    assert again.duplicate
    assert (again.ticket, again.deal) == (first.ticket, first.deal)
    mine = [p for p in await bridge.get_positions() if p.ticket == first.ticket]
    assert len(mine) == 1

    with pytest.raises(OrderRejected) as excinfo:
        await bridge.send_order("EURUSD", "SELL", 0.03, uuid="once-only-1")
    assert excinfo.value.error_code == "DUPLICATE_UUID"


async def test_terminal_refusals_carry_the_retcode(bridge: Bridge) -> None:
    tick = await bridge.tick("EURUSD")
    with pytest.raises(OrderRejected) as excinfo:
        await bridge.send_order("EURUSD", "BUY", 0.1, sl=round(tick.ask + 0.01, 5))  # above
    assert excinfo.value.error_code == "MT5_REJECTED"
    assert excinfo.value.retcode == 10016

    with pytest.raises(OrderRejected) as excinfo:
        await bridge.close_position(999_999_999)
    assert excinfo.value.error_code == "POSITION_NOT_FOUND"

    with pytest.raises(OrderRejected) as excinfo:
        await bridge.send_order("NOSUCH", "BUY", 0.1)
    assert excinfo.value.error_code == "MT5_REJECTED"


async def test_the_gateway_accepts_this_nodes_secret_at_the_first_beat(bridge: Bridge) -> None:
    assert bridge.health.authenticated is True and bridge.health.auth_error is None
    assert bridge.health.state == "HEALTHY" and not bridge.breaker.is_open


async def test_unsigned_and_wrongly_signed_orders_are_refused(gateway: GatewayProcess) -> None:
    async with Bridge(gateway.endpoint, secret=None) as unsigned:
        with pytest.raises(OrderRejected) as excinfo:
            await unsigned.send_order("EURUSD", "BUY", 0.1)
        assert excinfo.value.error_code == "SIGNATURE_MISSING"
        assert unsigned.health.authenticated is None  # nothing signed, nothing to check
    async with Bridge(gateway.endpoint, secret="not-the-secret-at-all") as impostor:
        # The gateway refused the secret at the first, signed, PING: no order leaves with it.
        assert impostor.breaker.reason == "SECRET_REFUSED"
        assert impostor.health.auth_error == "SIGNATURE_INVALID"
        assert impostor.health.state == "DEGRADED"
        with pytest.raises(CircuitOpen) as opened:
            await impostor.send_order("EURUSD", "BUY", 0.1)
        assert opened.value.reason == "SECRET_REFUSED"
        impostor.breaker.reset()  # a careless human: the gateway still refuses the order
        with pytest.raises(OrderRejected) as excinfo:
            await impostor.send_order("EURUSD", "BUY", 0.1)
        assert excinfo.value.error_code == "SIGNATURE_INVALID"
        assert await impostor.get_positions() == []  # nothing executed


async def test_positions_and_journal_survive_a_restart(tmp_path: Path, secret: str) -> None:
    data_dir = tmp_path / "gateway"
    with GatewayProcess(data_dir, secret=secret) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.3, uuid="survivor-1")
    with GatewayProcess(data_dir, secret=secret) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            assert fill.ticket in {p.ticket for p in await bridge.get_positions()}
            again = await bridge.send_order("EURUSD", "BUY", 0.3, uuid="survivor-1")
            assert again.duplicate and again.ticket == fill.ticket
            assert (await bridge.get_order("survivor-1")).status == "FILLED"


async def test_a_netting_account_reports_the_symbols_one_position(
    tmp_path: Path, secret: str
) -> None:
    sim = {"margin_mode": "netting"}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            first = await bridge.send_order("EURUSD", "BUY", 0.1)
            added = await bridge.send_order("EURUSD", "BUY", 0.1)
            assert added.ticket == first.ticket  # the same position grew
            (position,) = await bridge.get_positions("EURUSD")
            assert (position.ticket, position.volume) == (first.ticket, pytest.approx(0.2))
            reversed_ = await bridge.send_order("EURUSD", "SELL", 0.5)
            (position,) = await bridge.get_positions("EURUSD")
            assert position.type == "SELL" and position.volume == pytest.approx(0.3)
            assert reversed_.ticket == position.ticket  # the ticket a CLOSE needs
            closed = await bridge.close_position(reversed_.ticket)
            assert closed.volume == pytest.approx(0.3)
            assert await bridge.get_positions() == []
            assert (await bridge.get_account()).margin_mode == "NETTING"


async def test_reset_sim_starts_the_broker_afresh(tmp_path: Path, secret: str) -> None:
    data_dir = tmp_path / "gw"
    with GatewayProcess(data_dir, secret=secret) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            await bridge.send_order("EURUSD", "BUY", 0.1)
    with GatewayProcess(data_dir, secret=secret, args=["--reset-sim"]) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            assert await bridge.get_positions() == []
            assert (await bridge.get_account()).balance == 10_000


async def test_float_noise_fills_where_the_terminal_refuses_it_and_volumes_are_never_guessed(
    bridge: Bridge,
) -> None:
    direct = install_as_metatrader5(always_open=True)  # a terminal, with nothing between
    try:
        assert direct.initialize()
        quote = direct.symbol_info_tick("EURUSD")
        order = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": quote.ask}
        meant = round(quote.bid - 0.005, 5)
        refused = direct.order_send(order | {"sl": meant - 1e-10})  # 1.0849999999 for 1.085
        assert refused.retcode == direct.TRADE_RETCODE_INVALID_STOPS
        assert direct.order_send(order | {"sl": meant}).retcode == direct.TRADE_RETCODE_DONE
    finally:
        uninstall_metatrader5()
    tick = await bridge.tick("EURUSD")
    noisy_sl = round(tick.bid - 0.005, 5) - 1e-10
    fill = await bridge.send_order("EURUSD", "BUY", 0.1, sl=noisy_sl)
    (position,) = [p for p in await bridge.get_positions() if p.ticket == fill.ticket]
    assert position.sl == round(noisy_sl, 5)
    moved = round(tick.bid - 0.004, 5) + 2e-10
    await bridge.modify_position(fill.ticket, sl=moved)
    (position,) = [p for p in await bridge.get_positions() if p.ticket == fill.ticket]
    assert position.sl == round(moved, 5)
    limit = round(tick.ask - 0.006, 5) - 3e-10
    placed = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, limit)
    (pending,) = [o for o in await bridge.orders() if o.ticket == placed.order]
    assert pending.price_open == round(limit, 5)
    # A volume off the step is refused before the terminal, with what the symbol takes.
    with pytest.raises(OrderRejected) as excinfo:
        await bridge.send_order("EURUSD", "BUY", 0.123)
    assert excinfo.value.error_code == "INVALID_VOLUME" and excinfo.value.retcode is None
    assert "send 0.12 or 0.13" in excinfo.value.message
    assert "EURUSD takes 0.01 to 500 lots in steps of 0.01" in excinfo.value.message
    rounded = await bridge.send_order("EURUSD", "BUY", 0.123, volume_rounding="down")
    assert (rounded.volume, rounded.volume_requested) == (0.12, 0.123)
    assert fill.volume_requested is None  # nothing was rounded
    tickets = {p.ticket for p in await bridge.get_positions()}
    assert tickets == {fill.ticket, rounded.ticket}  # the refused order never traded
