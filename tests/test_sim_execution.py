"""Execution profiles (issue 17, item 4): the deterministic default, and the costs a real broker
adds when asked for: commission on every deal, slippage in Market execution, and time before
the server executes, during which the price moves (a requote in Instant execution)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.terminal.sim import terminal as terminal_module
from gtw_server.terminal.sim.config import Execution

T0 = 1_700_000_000.0
BUY, SELL = 0, 1


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def opened(**settings: Any) -> SimTerminal:
    terminal = SimTerminal(config=SimConfig(**({"always_open": True} | settings)), clock=lambda: T0)
    assert terminal.initialize()
    return terminal


def deal(mt5: SimTerminal, symbol: str, side: int, volume: float, **extra: Any) -> Any:
    mt5.symbol_select(symbol, True)
    tick = mt5.symbol_info_tick(symbol)
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == BUY else tick.bid,
        "deviation": 10,
        **extra,
    }
    result = mt5.order_send(request)
    assert result is not None, mt5.last_error()
    return result


def test_the_default_is_ideal_and_each_knob_overrides_the_profile() -> None:
    assert SimConfig(always_open=True).execution() == Execution(0.0, 0, (0.0, 0.0), 1.0)
    realistic = SimConfig(always_open=True, profile="realistic")
    assert realistic.execution() == Execution(3.5, 3, (20.0, 120.0), 3.0)
    tuned = SimConfig(profile="realistic", commission_per_lot=0.0, execution_ms=(1.0, 2.0))
    assert tuned.execution() == Execution(0.0, 3, (1.0, 2.0), 3.0)
    with pytest.raises(msgspec.ValidationError, match=r"runs backwards - at `\$.execution_ms`"):
        SimConfig(execution_ms=(5.0, 1.0))
    with pytest.raises(msgspec.ValidationError, match=r"at `\$.profile`"):
        msgspec.convert({"profile": "harsh"}, SimConfig)
    from_toml = msgspec.convert({"execution_ms": [10, 20], "slippage_points": 2}, SimConfig)
    assert from_toml.execution() == Execution(0.0, 2, (10.0, 20.0), 1.0)


def test_commission_is_charged_on_every_deal_and_taken_from_the_balance() -> None:
    with opened(commission_per_lot=3.5) as mt5:
        start = mt5.account_info().balance
        opened_deal = deal(mt5, "EURUSD", BUY, 2.0)
        assert opened_deal.retcode == mt5.TRADE_RETCODE_DONE
        assert mt5.account_info().balance == pytest.approx(start - 7.0)
        (position,) = mt5.positions_get()
        closing = deal(mt5, "EURUSD", SELL, 2.0, position=position.ticket)
        assert closing.retcode == mt5.TRADE_RETCODE_DONE
        deals = [d for d in mt5.history_deals_get(0, 2**31 - 1) if d.type != 2]
        assert [d.commission for d in deals] == [-7.0, -7.0]
        profit = sum(d.profit for d in deals)
        assert mt5.account_info().balance == pytest.approx(start + profit - 14.0)


def test_slippage_is_in_market_execution_only_worse_and_the_same_for_a_seed() -> None:
    def fills(symbol: str) -> list[tuple[float, float]]:
        with opened(slippage_points=50, seed=3) as mt5:
            out = []
            for _ in range(20):
                ask = mt5.symbol_info_tick(symbol).ask
                result = deal(mt5, symbol, BUY, 0.1)
                assert result.retcode == mt5.TRADE_RETCODE_DONE, result
                out.append((ask, result.price))
            return out

    gold = fills("XAUUSD")  # Market execution
    point = 0.01
    slips = [round((price - ask) / point) for ask, price in gold]
    assert all(0 <= slip <= 50 for slip in slips) and any(slips)  # never better, some worse
    assert fills("XAUUSD") == gold  # one draw per deal, from the seed
    assert all(price == ask for ask, price in fills("EURUSD"))  # Instant: the quoted price


def test_time_before_execution_moves_the_price_into_a_requote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # the terminal's clock moves on instead of this test
        waited.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(terminal_module.time, "sleep", sleep)
    config = SimConfig(execution_ms=(60_000.0, 60_000.0))
    with SimTerminal(config=config, clock=clock) as mt5:
        assert mt5.initialize()
        result = deal(mt5, "EURUSD", BUY, 0.1, deviation=0)  # Instant execution
        assert waited == [60.0]
        assert result.retcode == mt5.TRADE_RETCODE_REQUOTE  # a minute later, another price
        assert (result.bid, result.ask) != (0.0, 0.0)  # the requote carries the new quotes
        assert mt5.positions_total() == 0


def test_the_ideal_profile_waits_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s")

    monkeypatch.setattr(terminal_module.time, "sleep", sleep)
    with opened() as mt5:
        assert deal(mt5, "EURUSD", BUY, 0.1).retcode == mt5.TRADE_RETCODE_DONE


@pytest.mark.parametrize(("minute", "wider"), [("21:50", False), ("21:58", True), ("22:20", False)])
def test_the_spread_widens_around_the_daily_rollover(minute: str, wider: bool) -> None:
    hour, mins = (int(part) for part in minute.split(":"))
    thursday = 1_700_092_800 + hour * 3600 + mins * 60  # 2023-11-16 00:00 UTC, a Thursday
    spreads = []
    for factor in (1.0, 3.0):
        config = SimConfig(always_open=True, rollover_spread=factor, seed=5)
        with SimTerminal(config=config, clock=lambda: float(thursday)) as mt5:
            assert mt5.initialize()
            tick = mt5.symbol_info_tick("EURUSD")
            spreads.append(round((tick.ask - tick.bid) / 0.00001))
    plain, widened = spreads
    # The minute's narrowest spread is three times wider; a tick adds a little to it.
    assert widened > 2 * plain if wider else widened == plain
