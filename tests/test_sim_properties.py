"""Property tests: whatever sequence of trades and time steps, the account adds up.

Invariants (issue 3): equity = balance + credit + profit; free margin = equity - margin;
volumes are never negative; a closed position is in ``history_deals_get(position=...)`` and gone
from ``positions_get``; and realised profit is exactly what moved the balance.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gtw_server.terminal import SimConfig, SimTerminal

T0 = 1_700_000_000.0
BALANCE = 10_000.0
STEPS = {"EURUSD": 0.01, "USDJPY": 0.01, "XAUUSD": 0.01, "US500": 0.1, "GER40": 0.1}
FILLING = {"US500": 1}  # IOC only; FOK (0) elsewhere
FAR_FUTURE = 2**31 - 1


class TradingAccount(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mt5 = SimTerminal(config=SimConfig(seed=11, balance=BALANCE), clock=lambda: T0)
        assert self.mt5.initialize()
        assert self.mt5.symbol_select("GER40", True)
        self.closed: set[int] = set()

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
    )
    def open_position(self, symbol: str, side: int, steps: int) -> None:
        retcode = self._deal(symbol, side, round(steps * STEPS[symbol], 2))
        assert retcode in (self.mt5.TRADE_RETCODE_DONE, self.mt5.TRADE_RETCODE_NO_MONEY)

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
        if volume >= position.volume:
            self.closed.add(position.ticket)

    @rule(seconds=st.floats(0.0, 4 * 3600.0))
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
        deals = self.mt5.history_deals_get(0, FAR_FUTURE) or ()
        assert account.balance == pytest.approx(BALANCE + sum(d.profit for d in deals), abs=1e-6)

    @invariant()
    def volumes_are_never_negative(self) -> None:
        assert all(p.volume > 0 for p in self.mt5.positions_get() or ())
        assert all(d.volume > 0 for d in self.mt5.history_deals_get(0, FAR_FUTURE) or ())

    @invariant()
    def closed_positions_are_history(self) -> None:
        for ticket in self.closed:
            assert self.mt5.positions_get(ticket=ticket) == ()
            deals = self.mt5.history_deals_get(position=ticket) or ()
            assert deals[0].entry == self.mt5.DEAL_ENTRY_IN
            assert {d.entry for d in deals[1:]} == {self.mt5.DEAL_ENTRY_OUT}
            assert sum(d.volume for d in deals[1:]) == pytest.approx(deals[0].volume)


TestTradingAccount = TradingAccount.TestCase
TestTradingAccount.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
