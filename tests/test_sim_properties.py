"""Property tests: whatever sequence of trades, orders and time steps, the account adds up.

Invariants (issue 3), on hedging and on netting accounts: equity = balance + credit + profit;
profit = the sum of the positions' profit and swap; free margin = equity - margin; volumes are
never negative; realised profit and swap are exactly what moved the balance; a position that
is gone is in the history, and for every position the deals add up to what is open (the
signed volume of its deals is its signed volume, or 0 once closed); an order that left the
active list is in the history in a final state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
BALANCE = 10_000.0
STEPS = {"EURUSD": 0.01, "USDJPY": 0.01, "XAUUSD": 0.01, "US500": 0.1, "GER40": 0.1}
DIGITS = {"EURUSD": 5, "USDJPY": 3, "XAUUSD": 2, "US500": 2, "GER40": 2}
FILLING = {"US500": 1}  # IOC only; FOK (0) elsewhere
FAR_FUTURE = 2**31 - 1
PENDING_TYPES = range(2, 8)
FINAL_STATES = {2, 4, 5, 6}  # canceled, filled, rejected, expired


class TradingAccount(RuleBasedStateMachine):
    margin_mode: Literal["hedging", "netting"] = "hedging"

    def __init__(self) -> None:
        super().__init__()
        config = SimConfig(always_open=True, seed=11, balance=BALANCE, margin_mode=self.margin_mode)
        self.mt5 = SimTerminal(config=config, clock=lambda: T0)
        assert self.mt5.initialize()
        assert self.mt5.symbol_select("GER40", True)
        self.seen_orders: set[int] = set()

    def teardown(self) -> None:
        self.mt5.close()

    def _deal(self, symbol: str, side: int, volume: float, position: int = 0) -> int:
        tick = self.mt5.symbol_info_tick(symbol)
        assert tick is not None
        result = self.mt5.order_send(
            {
                "action": self.mt5.TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": volume,
                "type": side,
                "price": tick.ask if side == 0 else tick.bid,
                "position": position,
                "type_filling": FILLING.get(symbol, 0),
            }
        )
        assert result is not None, self.mt5.last_error()
        return result.retcode

    @rule(
        symbol=st.sampled_from(sorted(STEPS)),
        side=st.sampled_from([0, 1]),
        steps=st.integers(1, 100),
        stops=st.booleans(),
    )
    def trade(self, symbol: str, side: int, steps: int, stops: bool) -> None:
        volume = round(steps * STEPS[symbol], 2)
        tick = self.mt5.symbol_info_tick(symbol)
        assert tick is not None
        retcode = self._deal(symbol, side, volume)
        assert retcode in (self.mt5.TRADE_RETCODE_DONE, self.mt5.TRADE_RETCODE_NO_MONEY)
        positions = self.mt5.positions_get(symbol=symbol) or ()
        if stops and positions and retcode == self.mt5.TRADE_RETCODE_DONE:
            position = positions[-1]  # the new one (hedging), or the symbol's (netting)
            distance = tick.ask * 0.002
            far, near = (-distance, distance) if position.type == 0 else (distance, -distance)
            result = self.mt5.order_send(
                {
                    "action": self.mt5.TRADE_ACTION_SLTP,
                    "symbol": symbol,
                    "position": position.ticket,
                    "sl": round(position.price_current + far, DIGITS[symbol]),
                    "tp": round(position.price_current + near, DIGITS[symbol]),
                }
            )
            assert result is not None and result.retcode in (10009, 10016, 10025)

    @precondition(lambda self: self.mt5.positions_total() > 0)
    @rule(data=st.data(), fraction=st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
    def close_some(self, data: st.DataObject, fraction: float) -> None:
        positions = self.mt5.positions_get() or ()
        position = data.draw(st.sampled_from(positions))
        step = STEPS[position.symbol]
        steps = max(1, round(position.volume / step * fraction))
        volume = round(steps * step, 2)
        retcode = self._deal(position.symbol, 1 - position.type, volume, position.ticket)
        assert retcode == self.mt5.TRADE_RETCODE_DONE

    @rule(
        symbol=st.sampled_from(sorted(STEPS)),
        order_type=st.sampled_from(PENDING_TYPES),
        distance=st.floats(0.0001, 0.003),
        expires=st.booleans(),
    )
    def place_order(self, symbol: str, order_type: int, distance: float, expires: bool) -> None:
        tick = self.mt5.symbol_info_tick(symbol)
        assert tick is not None
        buy = order_type % 2 == 0
        below = order_type in (2, 5, 7)  # buy limit, sell stop, sell stop limit
        base = tick.ask if buy else tick.bid
        price = base * (1 - distance if below else 1 + distance)
        stoplimit = price * (1 - distance if buy else 1 + distance)
        result = self.mt5.order_send(
            {
                "action": self.mt5.TRADE_ACTION_PENDING,
                "symbol": symbol,
                "volume": STEPS[symbol] * 10,
                "type": order_type,
                "price": round(price, DIGITS[symbol]),
                "stoplimit": round(stoplimit, DIGITS[symbol]),
                "type_filling": FILLING.get(symbol, 0),
                "type_time": 2 if expires else 0,
                "expiration": tick.time + 3600,
            }
        )
        assert result is not None, self.mt5.last_error()
        assert result.retcode in (10009, 10015, 10030), result
        if result.retcode == 10009:
            self.seen_orders.add(result.order)

    @precondition(lambda self: self.mt5.orders_total() > 0)
    @rule(data=st.data())
    def remove_order(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.mt5.orders_get() or ()))
        result = self.mt5.order_send(
            {"action": self.mt5.TRADE_ACTION_REMOVE, "order": order.ticket}
        )
        assert result is not None and result.retcode == self.mt5.TRADE_RETCODE_DONE

    # Up to two days at once, so that rollovers (swaps) come up too.
    @rule(
        seconds=st.one_of(
            st.floats(0.0, 120.0), st.floats(0.0, 4 * 3600.0), st.floats(0.0, 2 * 86_400.0)
        )
    )
    def let_time_pass(self, seconds: float) -> None:
        self.mt5.step(seconds)

    @invariant()
    def money_adds_up(self) -> None:
        account = self.mt5.account_info()
        assert account is not None
        assert account.equity == pytest.approx(
            account.balance + account.credit + account.profit, abs=1e-6
        )
        assert account.margin_free == pytest.approx(account.equity - account.margin, abs=1e-6)
        assert account.margin >= 0
        deals = self.mt5.history_deals_get(0, FAR_FUTURE) or ()  # the opening deposit first
        assert deals[0].type == self.mt5.DEAL_TYPE_BALANCE and deals[0].profit == BALANCE
        realised = sum(d.profit + d.swap + d.commission + d.fee for d in deals)
        assert account.balance == pytest.approx(realised, abs=1e-6)
        positions = self.mt5.positions_get() or ()
        floating = sum(p.profit + p.swap for p in positions)
        # Each position's profit is rounded to cents, the account's per symbol.
        assert account.profit == pytest.approx(floating, abs=0.01 * (len(positions) + 1))

    @invariant()
    def volumes_are_never_negative(self) -> None:
        assert all(p.volume > 0 for p in self.mt5.positions_get() or ())
        deals = self.mt5.history_deals_get(0, FAR_FUTURE) or ()
        trades = [d for d in deals if d.type != self.mt5.DEAL_TYPE_BALANCE]  # not the deposit
        assert all(d.volume > 0 for d in trades)
        assert all(o.volume_current > 0 for o in self.mt5.orders_get() or ())

    @invariant()
    def deals_add_up_to_the_positions(self) -> None:
        signed: defaultdict[int, float] = defaultdict(float)
        for deal in self.mt5.history_deals_get(0, FAR_FUTURE) or ():
            signed[deal.position_id] += deal.volume if deal.type == 0 else -deal.volume
        open_ = {
            p.identifier: p.volume if p.type == 0 else -p.volume
            for p in self.mt5.positions_get() or ()
        }
        for identifier, volume in signed.items():
            assert volume == pytest.approx(open_.get(identifier, 0.0), abs=1e-9)
            if identifier not in open_:
                assert self.mt5.positions_get(ticket=identifier) == ()
        assert set(open_) <= set(signed)

    @invariant()
    def orders_that_left_are_history(self) -> None:
        active = {o.ticket for o in self.mt5.orders_get() or ()}
        for ticket in self.seen_orders - active:
            (order,) = self.mt5.history_orders_get(ticket=ticket) or ()
            assert order.state in FINAL_STATES


class NettingAccount(TradingAccount):
    margin_mode = "netting"


SETTINGS = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestTradingAccount = TradingAccount.TestCase
TestTradingAccount.settings = SETTINGS
TestNettingAccount = NettingAccount.TestCase
TestNettingAccount.settings = SETTINGS
