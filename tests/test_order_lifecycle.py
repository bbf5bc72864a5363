"""The order life cycle through real gateway processes: pending orders placed, changed and
cancelled, stops moved, a position closed by another; each exactly once under a retried uuid
and under kill -9 between the terminal call and the reply; every bad argument refused with its
own code and nothing executed; the kill switch refusing what adds exposure only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support import Dealer, JsonDealer, eventually_async, journaled

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, InvalidOrder, OrderDone, OrderFilled, OrderRejected
from protocol import (
    Cancel,
    CloseBy,
    Command,
    ModifyOrder,
    ModifyPosition,
    PendingType,
    Place,
    Status,
    encode,
    secret_key,
    sign,
)

PIP = 0.0001


@pytest.fixture
async def bridge(gateway: GatewayProcess, secret: str) -> AsyncIterator[Bridge]:
    async with Bridge(gateway.endpoint, secret=secret, retry_not_executed=False) as client:
        yield client


def signed_json(secret: str, action: str, lines: dict[str, str], **fields: Any) -> bytes:
    """A command written by hand as a third-party client would, signed as docs/PROTOCOL.md
    says: the twelve lines, then (the life-cycle commands) stoplimit, expiration and by, then
    ts_ms; ``lines`` gives the non-empty ones by name."""
    uuid = f"hand-{time.monotonic_ns()}"
    ts_ms = int(time.time() * 1000)
    names = ("symbol", "type", "volume", "price", "sl", "tp", "deviation", "ticket")
    extra = ("stoplimit", "expiration", "by")
    text = "\n".join(["v1", uuid, action, *(lines.get(n, "") for n in names + extra), str(ts_ms)])
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    request = {
        "uuid": uuid,
        "action": action,
        "timestamp": ts_ms / 1000,
        **fields,
        "risk_signature": f"RISK_PASS:{digest}:{ts_ms}",
    }
    return json.dumps(request).encode()


def raw_reply(endpoint: str, frame: bytes) -> dict[str, Any]:
    client = JsonDealer(endpoint)
    try:
        client.sock.send(frame)
        reply, rest = client.recv()
        assert rest == []
        return reply
    finally:
        client.close()


async def test_a_pending_order_is_placed_changed_and_cancelled(bridge: Bridge) -> None:
    tick = await bridge.tick("EURUSD")
    price, sl = round(tick.ask - 50 * PIP, 5), round(tick.ask - 100 * PIP, 5)
    placed = await bridge.place_order(
        "EURUSD", "BUY_LIMIT", 0.2, price, sl=sl, expiration="DAY", comment="dip"
    )
    assert placed.action == "PLACE" and placed.order > 0 and not placed.duplicate
    (order,) = await bridge.orders(symbol="EURUSD")
    assert (order.ticket, order.type, order.price_open, order.sl) == (placed.order, 2, price, sl)
    assert order.volume_current == pytest.approx(0.2) and order.comment.endswith(" dip")
    assert order.type_time == 1  # ORDER_TIME_DAY

    moved = round(price - 10 * PIP, 5)
    changed = await bridge.modify_order(placed.order, price=moved, tp=round(tick.ask, 5))
    assert changed.action == "MODIFY_ORDER" and changed.order == placed.order
    (order,) = await bridge.orders()
    assert (order.price_open, order.sl, order.tp) == (moved, sl, round(tick.ask, 5))

    cancelled = await bridge.cancel_order(placed.order)
    assert cancelled.order == placed.order
    assert await bridge.orders() == []
    (record,) = await bridge.history_orders(ticket=placed.order)
    assert record.state == 2  # ORDER_STATE_CANCELED
    assert await bridge.get_positions() == []  # nothing was ever filled


async def test_stops_move_and_a_position_closes_by_its_opposite(bridge: Bridge) -> None:
    tick = await bridge.tick("EURUSD")
    buy = await bridge.send_order("EURUSD", "BUY", 0.3)
    sell = await bridge.send_order("EURUSD", "SELL", 0.1)
    sl = round(tick.bid - 40 * PIP, 5)
    moved = await bridge.modify_position(buy.ticket, sl=sl)
    assert moved.ticket == buy.ticket
    by_ticket = {p.ticket: p for p in await bridge.get_positions(fresh=True)}
    assert (by_ticket[buy.ticket].sl, by_ticket[buy.ticket].tp) == (sl, 0.0)  # tp left alone

    closed = await bridge.close_by(buy.ticket, sell.ticket)
    assert closed.action == "CLOSE_BY" and closed.volume == pytest.approx(0.1)
    (left,) = await bridge.get_positions(fresh=True)
    assert left.ticket == buy.ticket and left.volume == pytest.approx(0.2)
    deals = await bridge.history(position=sell.ticket)
    assert [d.entry for d in deals] == [0, 3]  # in, then out by (DEAL_ENTRY_OUT_BY)


async def test_every_bad_argument_is_refused_precisely_and_nothing_executes(
    gateway: GatewayProcess, bridge: Bridge, secret: str
) -> None:
    tick = await bridge.tick("EURUSD")
    position = await bridge.send_order("EURUSD", "BUY", 0.1, sl=round(tick.bid - 30 * PIP, 5))
    limit = round(tick.bid + 30 * PIP, 5)
    pending = await bridge.place_order("EURUSD", "SELL_LIMIT", 0.1, limit)
    above, below = f"{tick.ask + 20 * PIP:.5f}", f"{tick.bid - 20 * PIP:.5f}"
    past = int(tick.time) - 60

    def place(kind: str, price: str, **extra: Any) -> bytes:
        lines = {"symbol": "EURUSD", "type": kind, "volume": "0.10000000"}
        lines["price"] = f"{float(price):.8f}"
        if "expiration" in extra:
            lines["expiration"] = str(extra["expiration"])
        fields = {"symbol": "EURUSD", "type": kind, "volume": 0.1, "price": float(price)}
        return signed_json(secret, "PLACE", lines, **fields, **extra)

    refusals: dict[str, tuple[bytes, str, str]] = {
        "buy limit above the ask": (place("BUY_LIMIT", above), "INVALID_PRICE", "below the ask"),
        "sell stop above the bid": (place("SELL_STOP", above), "INVALID_PRICE", "below the bid"),
        "buy stop below the ask": (place("BUY_STOP", below), "INVALID_PRICE", "above the ask"),
        "expiration in the past": (
            place("BUY_STOP", above, expiration=past),
            "INVALID_EXPIRATION",
            "not in the future",
        ),
        "cancel a position": (
            signed_json(secret, "CANCEL", {"ticket": str(position.ticket)}, ticket=position.ticket),
            "ORDER_NOT_FOUND",
            "is an open position, not a pending order",
        ),
        "cancel what never was": (
            signed_json(secret, "CANCEL", {"ticket": "424242"}, ticket=424242),
            "ORDER_NOT_FOUND",
            "no pending order 424242",
        ),
        "move a pending order's stops as a position's": (
            signed_json(
                secret,
                "MODIFY_POSITION",
                {"ticket": str(pending.order), "sl": "1.50000000"},
                ticket=pending.order,
                sl=1.5,
            ),
            "POSITION_NOT_FOUND",
            "is a pending order",
        ),
        "modify with nothing changed": (
            signed_json(
                secret,
                "MODIFY_ORDER",
                {"ticket": str(pending.order), "price": f"{limit:.8f}"},
                ticket=pending.order,
                price=limit,
            ),
            "NO_CHANGES",
            "already has these terms",
        ),
        "modify naming nothing": (
            signed_json(secret, "MODIFY_POSITION", {"ticket": "7"}, ticket=7),
            "INVALID_REQUEST",
            "say what to change",
        ),
        "a stop-limit without its limit": (
            place("BUY_STOP_LIMIT", above),
            "INVALID_REQUEST",
            "needs stoplimit",
        ),
        "close by itself": (
            signed_json(secret, "CLOSE_BY", {"ticket": "9", "by": "9"}, ticket=9, by=9),
            "INVALID_REQUEST",
            "closed by itself",
        ),
        "an expiration that is no time": (
            place("BUY_STOP", above, expiration="TOMORROW"),
            "INVALID_REQUEST",
            "expiration",
        ),
    }
    for case, (frame, code, words) in refusals.items():
        reply = raw_reply(gateway.endpoint, frame)
        assert (reply["status"], reply["error_code"]) == ("REJECTED", code), (case, reply)
        assert words in reply["error_msg"], (case, reply["error_msg"])

    # Nothing executed: the same one position and one pending order, untouched.
    (held,) = await bridge.get_positions(fresh=True)
    assert (held.ticket, held.sl) == (position.ticket, round(tick.bid - 30 * PIP, 5))
    assert [o.ticket for o in await bridge.orders()] == [pending.order]

    # The client refuses what the contract does before sending anything.
    with pytest.raises(InvalidOrder, match="needs stoplimit"):
        await bridge.place_order("EURUSD", "SELL_STOP_LIMIT", 0.1, 1.0)
    with pytest.raises(InvalidOrder, match="no time zone"):
        await bridge.place_order("EURUSD", "BUY_STOP", 0.1, 2.0, expiration=_naive_time())
    with pytest.raises(OrderRejected) as refused:
        await bridge.modify_position(position.ticket, sl=held.sl)
    assert refused.value.error_code == "NO_CHANGES"


def _naive_time() -> dt.datetime:
    return dt.datetime(2030, 1, 1)  # the point: no time zone


async def test_a_halt_refuses_new_pending_orders_and_lets_risk_be_reduced(
    bridge: Bridge,
) -> None:
    tick = await bridge.tick("EURUSD")
    buy = await bridge.send_order("EURUSD", "BUY", 0.2)
    sell = await bridge.send_order("EURUSD", "SELL", 0.1)
    waiting = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 40 * PIP, 5))
    assert await bridge.halt("news") is True
    try:
        with pytest.raises(OrderRejected) as refused:
            await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 40 * PIP, 5))
        assert refused.value.error_code == "TRADING_HALTED"
        # What manages or removes risk still works.
        await bridge.modify_position(buy.ticket, sl=round(tick.bid - 50 * PIP, 5))
        await bridge.modify_order(waiting.order, price=round(tick.ask - 60 * PIP, 5))
        await bridge.cancel_order(waiting.order)
        await bridge.close_by(buy.ticket, sell.ticket)
    finally:
        await bridge.resume()
    assert await bridge.orders() == []
    (left,) = await bridge.get_positions(fresh=True)
    assert left.volume == pytest.approx(0.1)


async def test_a_retried_uuid_is_answered_from_the_journal_and_acts_once(
    bridge: Bridge,
) -> None:
    tick = await bridge.tick("EURUSD")
    price = round(tick.ask - 30 * PIP, 5)
    first = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, price, uuid="place-twice")
    again = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, price, uuid="place-twice")
    assert again.duplicate and again.order == first.order
    assert len(await bridge.orders()) == 1

    moved = round(price - 5 * PIP, 5)
    await bridge.modify_order(first.order, price=moved, uuid="move-twice")
    # The same uuid again: the stored OK, not NO_CHANGES (nothing is asked of the terminal).
    assert (await bridge.modify_order(first.order, price=moved, uuid="move-twice")).duplicate
    await bridge.cancel_order(first.order, uuid="cancel-twice")
    assert (await bridge.cancel_order(first.order, uuid="cancel-twice")).duplicate
    # A uuid used for another request is refused, not executed.
    with pytest.raises(OrderRejected) as reused:
        await bridge.place_order("EURUSD", "BUY_LIMIT", 0.2, price, uuid="place-twice")
    assert reused.value.error_code == "DUPLICATE_UUID"
    assert await bridge.orders() == []


async def _place(bridge: Bridge) -> Command:
    tick = await bridge.tick("EURUSD")
    price = round(tick.ask - 30 * PIP, 5)
    return Place(
        uuid="killed-1",
        timestamp=0,
        symbol="EURUSD",
        type=PendingType.BUY_LIMIT,
        volume=0.1,
        price=price,
    )


async def _modify_position(bridge: Bridge) -> Command:
    tick = await bridge.tick("EURUSD")
    fill = await bridge.send_order("EURUSD", "BUY", 0.1)
    return ModifyPosition(
        uuid="killed-1", timestamp=0, ticket=fill.ticket, sl=round(tick.bid - 40 * PIP, 5)
    )


async def _modify_order(bridge: Bridge) -> Command:
    tick = await bridge.tick("EURUSD")
    placed = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 30 * PIP, 5))
    return ModifyOrder(
        uuid="killed-1", timestamp=0, ticket=placed.order, price=round(tick.ask - 45 * PIP, 5)
    )


async def _cancel(bridge: Bridge) -> Command:
    tick = await bridge.tick("EURUSD")
    placed = await bridge.place_order("EURUSD", "BUY_LIMIT", 0.1, round(tick.ask - 30 * PIP, 5))
    return Cancel(uuid="killed-1", timestamp=0, ticket=placed.order)


async def _close_by(bridge: Bridge) -> Command:
    buy = await bridge.send_order("EURUSD", "BUY", 0.2)
    sell = await bridge.send_order("EURUSD", "SELL", 0.1)
    return CloseBy(uuid="killed-1", timestamp=0, ticket=buy.ticket, by=sell.ticket)


async def _terminal_state(bridge: Bridge) -> tuple[Any, ...]:
    positions = sorted((p.ticket, p.volume, p.sl) for p in await bridge.get_positions(fresh=True))
    orders = sorted((o.ticket, o.price_open) for o in await bridge.orders())
    deals = len(await bridge.history(time.time() - 86_400, time.time() + 86_400))
    return positions, orders, deals


@pytest.mark.parametrize(
    "prepare",
    [_place, _modify_position, _modify_order, _cancel, _close_by],
    ids=lambda f: f.__name__[1:],
)
async def test_kill_9_between_the_terminal_and_the_reply_then_the_retry_acts_once(
    tmp_path: Path, secret: str, prepare: Callable[[Bridge], Any]
) -> None:
    data_dir = tmp_path / "gw"
    with GatewayProcess(data_dir, secret=secret) as setup:
        async with Bridge(setup.endpoint, secret=secret) as bridge:
            command = await prepare(bridge)
            before = await _terminal_state(bridge)

    # The terminal carries the command out and commits it, then takes 4 s to answer.
    slow = {"order_latency_ms": 4000, "order_latency_holds_gil": False}
    gateway = GatewayProcess(data_dir, secret=secret, sim=slow, port=setup.port).start()
    client = Dealer(gateway.endpoint)
    try:
        now = time.time()
        signed = sign(secret_key(secret), _stamped(command, now), int(now * 1000))
        await client.send(encode(signed))
        await eventually_async(lambda: journaled(data_dir, "killed-1"), "the command journaled")
        await asyncio.sleep(1.0)  # inside the terminal's 4 s: executed, not answered
        gateway.kill()  # kill -9: the reply is never sent
    finally:
        client.close()

    with GatewayProcess(data_dir, secret=secret, port=gateway.port) as restarted:
        async with Bridge(restarted.endpoint, secret=secret) as bridge:
            after_crash = await _terminal_state(bridge)
            assert after_crash != before  # it did execute before the kill
            retried = await _retry(bridge, command)
            assert retried.uuid == "killed-1"
            assert await _terminal_state(bridge) == after_crash  # and not again
            state = await bridge.get_order("killed-1")
            assert state.status in (Status.OK, Status.FILLED)


def _stamped(command: Command, now: float) -> Command:
    return msgspec.structs.replace(command, timestamp=now)


async def _retry(bridge: Bridge, command: Command) -> OrderDone | OrderFilled:
    """The command sent again with its uuid, as the strategy's retry would."""
    uuid = command.uuid
    if isinstance(command, Place):
        kind = PendingType(command.type)
        return await bridge.place_order(
            command.symbol, kind, command.volume, command.price, uuid=uuid
        )
    if isinstance(command, ModifyPosition):
        return await bridge.modify_position(command.ticket, sl=command.sl, uuid=uuid)
    if isinstance(command, ModifyOrder):
        return await bridge.modify_order(command.ticket, price=command.price, uuid=uuid)
    if isinstance(command, Cancel):
        return await bridge.cancel_order(command.ticket, uuid=uuid)
    assert isinstance(command, CloseBy)
    return await bridge.close_by(command.ticket, command.by, uuid=uuid)
