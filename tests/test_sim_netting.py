"""Netting accounts: one position per symbol that deals open, add to, reduce, close and reverse.

The position keeps the ticket of the order that opened it and, after a reversal, takes the
ticket of the order that reversed it; its ``identifier`` never changes, and every deal of its
life carries that identifier as ``position_id`` (MetaQuotes' position properties).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gtw_server.terminal import OrderSendResult, TradePosition
from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
BUY, SELL = 0, 1


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True, margin_mode="netting"),
        clock=lambda: T0,
    ) as terminal:
        assert terminal.initialize()
        yield terminal


def deal(mt5: SimTerminal, side: int, volume: float, **extra: Any) -> OrderSendResult:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    result = mt5.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": volume,
            "type": side,
            "price": tick.ask if side == BUY else tick.bid,
            "deviation": 20,
        }
        | extra
    )
    assert result is not None, mt5.last_error()
    return result


def the_position(mt5: SimTerminal) -> TradePosition:
    (position,) = mt5.positions_get(symbol="EURUSD") or ()
    return position


def test_the_account_is_netting(mt5: SimTerminal) -> None:
    account = mt5.account_info()
    assert account is not None
    assert account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING


def test_open_add_reduce_reverse_and_close(mt5: SimTerminal) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    below, above = round(tick.bid - 0.01, 5), round(tick.bid + 0.1, 5)  # far from the price
    opened = deal(mt5, BUY, 1.0, sl=below, comment="first")
    assert opened.retcode == mt5.TRADE_RETCODE_DONE
    position = the_position(mt5)
    assert (position.ticket, position.identifier) == (opened.order, opened.order)
    assert (position.volume, position.price_open, position.sl) == (1.0, opened.price, below)

    mt5.step(60)
    added = deal(mt5, BUY, 0.5, tp=above)
    position = the_position(mt5)
    assert mt5.positions_total() == 1  # netting: one position, bigger
    assert position.ticket == opened.order  # it keeps its opening order's ticket
    assert position.volume == 1.5
    assert position.price_open == pytest.approx((opened.price + 0.5 * added.price) / 1.5)
    assert (position.sl, position.tp) == (below, above)  # a level the order sets replaces
    assert position.time_update == int(T0) + 60

    mt5.step(60)
    reduced = deal(mt5, SELL, 0.4)
    position = the_position(mt5)
    assert (position.ticket, position.volume) == (opened.order, 1.1)
    reduce_profit = round((reduced.price - position.price_open) * 100_000 * 0.4, 2)

    reversed_ = deal(mt5, SELL, 2.0, sl=above)
    position = the_position(mt5)
    assert position.ticket == reversed_.order  # the ticket of the order that reversed it
    assert position.identifier == opened.order  # the identifier never changes
    assert (position.type, position.volume) == (mt5.POSITION_TYPE_SELL, 0.9)
    assert (position.price_open, position.sl, position.tp) == (reversed_.price, above, 0.0)

    closed = deal(mt5, BUY, 0.9)
    assert mt5.positions_get() == ()
    deals = mt5.history_deals_get(position=opened.order) or ()
    assert [(d.order, d.entry, d.volume) for d in deals] == [
        (opened.order, mt5.DEAL_ENTRY_IN, 1.0),
        (added.order, mt5.DEAL_ENTRY_IN, 0.5),
        (reduced.order, mt5.DEAL_ENTRY_OUT, 0.4),
        (reversed_.order, mt5.DEAL_ENTRY_INOUT, 2.0),
        (closed.order, mt5.DEAL_ENTRY_OUT, 0.9),
    ]
    assert deals[2].profit == reduce_profit
    account = mt5.account_info()
    assert account is not None
    assert account.balance == round(10_000 + sum(d.profit for d in deals), 2)
    orders = mt5.history_orders_get(position=opened.order) or ()
    assert [o.ticket for o in orders] == [d.order for d in deals]


def test_the_reversal_realises_the_closed_part_only(mt5: SimTerminal) -> None:
    opened = deal(mt5, BUY, 1.0)
    mt5.step(120)
    reversed_ = deal(mt5, SELL, 1.5)
    (inout,) = mt5.history_deals_get(ticket=reversed_.order) or ()
    assert inout.profit == round((reversed_.price - opened.price) * 100_000, 2)
    account = mt5.account_info()
    assert account is not None
    assert account.margin == pytest.approx(0.5 * 100_000 / 100 * reversed_.bid, abs=0.01)


def test_position_is_optional_and_checked_when_given(mt5: SimTerminal) -> None:
    opened = deal(mt5, BUY, 1.0)
    assert deal(mt5, SELL, 0.3, position=opened.order).retcode == mt5.TRADE_RETCODE_DONE
    assert deal(mt5, SELL, 0.3, position=123).retcode == mt5.TRADE_RETCODE_POSITION_CLOSED
    assert deal(mt5, BUY, 0.3, position=opened.order).retcode == mt5.TRADE_RETCODE_INVALID
    too_much = deal(mt5, SELL, 0.8, position=opened.order)  # position= closes, never reverses
    assert too_much.retcode == mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME
    assert deal(mt5, SELL, 0.7, position=opened.order).retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.positions_total() == 0


def test_sltp_without_a_position_ticket_uses_the_symbol(mt5: SimTerminal) -> None:
    deal(mt5, BUY, 1.0)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {"action": mt5.TRADE_ACTION_SLTP, "symbol": "EURUSD", "sl": round(tick.bid - 0.01, 5)}
    result = mt5.order_send(request | {"tp": 0.0})
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    assert the_position(mt5).sl == round(tick.bid - 0.01, 5)


def test_close_by_is_for_hedging_accounts_only(mt5: SimTerminal) -> None:
    opened = deal(mt5, BUY, 1.0)
    result = mt5.order_send(
        {"action": mt5.TRADE_ACTION_CLOSE_BY, "position": opened.order, "position_by": 1}
    )
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_INVALID_ORDER


def test_reducing_never_needs_money_but_growing_does(mt5: SimTerminal) -> None:
    assert deal(mt5, BUY, 8.0).retcode == mt5.TRADE_RETCODE_DONE  # 8 800 of 10 000 margin
    assert deal(mt5, BUY, 2.0).retcode == mt5.TRADE_RETCODE_NO_MONEY
    assert deal(mt5, SELL, 16.0).retcode == mt5.TRADE_RETCODE_DONE  # reverse to 8 lots short
    assert deal(mt5, SELL, 2.0).retcode == mt5.TRADE_RETCODE_NO_MONEY
    assert deal(mt5, BUY, 5.0).retcode == mt5.TRADE_RETCODE_DONE
