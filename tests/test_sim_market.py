"""The market and the terminal's switches: trading hours and weekends, symbol trade modes,
Algo Trading off, the Python API disabled, and the stop-out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gtw_server.terminal import OrderSendResult
from gtw_server.terminal.sim import SimConfig, SimTerminal

BUY, SELL = 0, 1
FRIDAY_2130 = datetime(2023, 11, 24, 21, 30, tzinfo=UTC).timestamp()
SATURDAY = datetime(2023, 11, 25, 12, tzinfo=UTC).timestamp()
SUNDAY_2200 = datetime(2023, 11, 26, 22, tzinfo=UTC).timestamp()
WEDNESDAY_1200 = datetime(2023, 11, 22, 12, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def terminal(clock: Clock, **config: Any) -> SimTerminal:
    mt5 = SimTerminal(
        config=SimConfig(server_timezone="UTC", **({"always_open": True} | config)), clock=clock
    )
    assert mt5.initialize()
    return mt5


def market(mt5: SimTerminal, symbol: str, side: int, volume: float, **extra: Any) -> dict[str, Any]:
    mt5.symbol_select(symbol, True)
    tick = mt5.symbol_info_tick(symbol)
    assert tick is not None
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == BUY else tick.bid,
        "deviation": 50,
        "type_filling": 1 if symbol == "US500" else 0,
    }
    return request | extra


def send(mt5: SimTerminal, request: dict[str, Any]) -> OrderSendResult:
    result = mt5.order_send(request)
    assert result is not None, mt5.last_error()
    return result


# -- trading hours -----------------------------------------------------------------------------


def test_fx_closes_on_friday_night_and_reopens_on_sunday_night_with_a_gap() -> None:
    clock = Clock(FRIDAY_2130)
    mt5 = terminal(clock, always_open=False)
    opened = send(mt5, market(mt5, "EURUSD", BUY, 0.1))
    assert opened.retcode == mt5.TRADE_RETCODE_DONE
    clock.now = SATURDAY
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    close_ms = int(FRIDAY_2130 * 1000) + 30 * 60_000
    assert close_ms - 60_000 < tick.time_msc < close_ms  # the last tick, in the last minute
    request = market(mt5, "EURUSD", SELL, 0.1, position=opened.order)
    closed = send(mt5, request)
    assert (closed.retcode, closed.comment) == (10018, "Market closed")
    pending = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "price": 1.0}
    assert send(mt5, pending).retcode == 10018
    check = mt5.order_check(request)  # order_check does not look at the hours
    assert check is not None and check.retcode == 0
    assert mt5.symbol_info_tick("EURUSD") == tick  # no quotes all weekend
    clock.now = SUNDAY_2200 + 60
    reopened = mt5.symbol_info_tick("EURUSD")
    assert reopened is not None and reopened.time_msc >= int(SUNDAY_2200 * 1000)  # a new tick
    assert reopened.bid != tick.bid  # the walk went on: a weekend gap
    assert send(mt5, market(mt5, "EURUSD", SELL, 0.1, position=opened.order)).retcode == 10009


@pytest.mark.parametrize(
    ("symbol", "when", "is_open"),
    [
        ("XAUUSD", datetime(2023, 11, 22, 22, 30, tzinfo=UTC), False),  # the daily break
        ("XAUUSD", datetime(2023, 11, 22, 23, 30, tzinfo=UTC), True),
        ("US500", datetime(2023, 11, 22, 21, 30, tzinfo=UTC), False),
        ("GER40", datetime(2023, 11, 22, 6, 30, tzinfo=UTC), False),
        ("GER40", datetime(2023, 11, 22, 7, 30, tzinfo=UTC), True),
        ("GER40", datetime(2023, 11, 26, 12, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_index_and_gold_sessions(symbol: str, when: datetime, is_open: bool) -> None:
    mt5 = terminal(Clock(when.timestamp()), always_open=False, balance=1e6)
    result = send(mt5, market(mt5, symbol, BUY, 1.0))
    assert result.retcode == (10009 if is_open else 10018)


def test_always_open_trades_on_a_saturday() -> None:
    mt5 = terminal(Clock(SATURDAY))
    assert send(mt5, market(mt5, "EURUSD", BUY, 0.1)).retcode == 10009


# -- trade modes and terminal switches ---------------------------------------------------------


def test_symbol_trade_modes() -> None:
    modes = {"EURUSD": "longonly", "GBPUSD": "shortonly", "USDJPY": "closeonly"}
    mt5 = terminal(Clock(WEDNESDAY_1200), symbol_trade_modes=modes | {"XAUUSD": "disabled"})
    info = mt5.symbol_info("EURUSD")
    assert info is not None and info.trade_mode == mt5.SYMBOL_TRADE_MODE_LONGONLY
    long = send(mt5, market(mt5, "EURUSD", BUY, 0.1))
    assert long.retcode == 10009
    assert send(mt5, market(mt5, "EURUSD", SELL, 0.1)).retcode == 10042
    assert send(mt5, market(mt5, "EURUSD", SELL, 0.1, position=long.order)).retcode == 10009
    assert send(mt5, market(mt5, "GBPUSD", BUY, 0.1)).retcode == 10043
    assert send(mt5, market(mt5, "USDJPY", BUY, 0.1)).retcode == 10044
    disabled = send(mt5, market(mt5, "XAUUSD", BUY, 0.1))
    assert (disabled.retcode, disabled.comment) == (10017, "Trade disabled")


def test_a_closeonly_netting_symbol_reduces_but_never_grows_or_reverses(tmp_path: Path) -> None:
    clock, path = Clock(WEDNESDAY_1200), tmp_path / "sim.sqlite3"
    with SimTerminal(
        state_path=path,
        config=SimConfig(server_timezone="UTC", always_open=True, margin_mode="netting"),
        clock=clock,
    ) as mt5:
        assert mt5.initialize()
        assert send(mt5, market(mt5, "EURUSD", BUY, 1.0)).retcode == 10009
    # The broker turns the symbol close-only: the position stays, and can only shrink.
    config = SimConfig(
        server_timezone="UTC", always_open=True, symbol_trade_modes={"EURUSD": "closeonly"}
    )
    with SimTerminal(state_path=path, config=config, clock=clock) as mt5:
        assert mt5.initialize()
        assert send(mt5, market(mt5, "EURUSD", BUY, 0.1)).retcode == 10044
        assert send(mt5, market(mt5, "EURUSD", SELL, 0.5)).retcode == 10009
        assert send(mt5, market(mt5, "EURUSD", SELL, 1.0)).retcode == 10044
        assert send(mt5, market(mt5, "EURUSD", SELL, 0.5)).retcode == 10009
        assert mt5.positions_total() == 0


@pytest.mark.parametrize("modes", [{"EURUSD": "sometimes"}, {"EURGBP": "full"}])
def test_a_bad_trade_mode_names_the_field(modes: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.symbol_trade_modes`$"):
        SimConfig(server_timezone="UTC", always_open=True, symbol_trade_modes=modes)


def test_algo_trading_off_answers_10027() -> None:
    mt5 = terminal(Clock(WEDNESDAY_1200), algo_trading=False)
    info = mt5.terminal_info()
    assert info is not None and info.trade_allowed is False
    result = send(mt5, market(mt5, "EURUSD", BUY, 0.1))
    assert (result.retcode, result.comment) == (10027, "AutoTrading disabled by client")
    assert (result.deal, result.order) == (0, 0)
    assert mt5.last_error() == (1, "Success")
    assert mt5.positions_total() == 0


def test_python_api_disabled_is_minus_8_for_order_send_only() -> None:
    mt5 = terminal(Clock(WEDNESDAY_1200), tradeapi_disabled=True)
    info = mt5.terminal_info()
    assert info is not None and info.tradeapi_disabled is True
    assert mt5.order_send(market(mt5, "EURUSD", BUY, 0.1)) is None
    assert mt5.last_error() == (-8, "Auto-Trading using Python API disabled in Terminal")
    check = mt5.order_check(market(mt5, "EURUSD", BUY, 0.1))  # no such branch in order_check
    assert check is not None and check.retcode == 0


# -- stop-out ----------------------------------------------------------------------------------


def test_stop_out_closes_the_most_losing_position_first() -> None:
    clock = Clock(WEDNESDAY_1200)
    mt5 = terminal(clock, balance=1000, leverage=1000, seed=3)
    big = send(mt5, market(mt5, "EURUSD", BUY, 7.0))
    small = send(mt5, market(mt5, "USDJPY", SELL, 0.1))
    assert big.retcode == small.retcode == 10009
    for _ in range(24 * 60):
        clock.now += 60
        if mt5.positions_total() != 2:
            break
    deals = [d for d in mt5.history_deals_get(0, 2**31 - 1) or () if d.reason == 6]
    assert deals, "the walk never took the account to the stop-out level"
    first = deals[0]
    assert first.position_id == big.order  # the most losing position goes first
    assert first.entry == mt5.DEAL_ENTRY_OUT
    match = re.fullmatch(r"\[so (\d+\.\d\d)%/(-?\d+\.\d\d)/(\d+\.\d\d)\]", first.comment)
    assert match is not None, first.comment
    level, equity, margin = map(float, match.groups())
    assert level <= 30.0
    assert level == pytest.approx(equity / margin * 100, abs=0.01)
    (order,) = mt5.history_orders_get(ticket=first.order) or ()
    assert (order.reason, order.comment) == (mt5.ORDER_REASON_SO, first.comment)
    account = mt5.account_info()
    assert account is not None
    assert account.margin == 0 or account.margin_level > 30.0
