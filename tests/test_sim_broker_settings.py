"""A broker's own settings: symbol names with a suffix, and the terminal's bar limit."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0


def opened(state: Path | None = None, **settings: object) -> SimTerminal:
    config = SimConfig(server_timezone="UTC", always_open=True, **settings)  # type: ignore[arg-type]
    mt5 = SimTerminal(config=config, clock=lambda: T0, state_path=state)
    assert mt5.initialize(), mt5.last_error()
    return mt5


def test_a_suffix_names_every_symbol_and_keeps_the_prices() -> None:
    plain, suffixed = opened(), opened(symbol_suffix=".m")
    names = [s.name for s in suffixed.symbols_get() or ()]
    assert names == [s.name + ".m" for s in plain.symbols_get() or ()]
    info = suffixed.symbol_info("EURUSD.m")
    assert info is not None and (info.name, info.path) == ("EURUSD.m", "Forex\\EURUSD.m")
    assert suffixed.symbol_info_tick("EURUSD") is None  # the bare name is not listed
    assert suffixed.last_error() == (-4, "Terminal: Not found")
    tick, same = suffixed.symbol_info_tick("EURUSD.m"), plain.symbol_info_tick("EURUSD")
    assert tick is not None and same is not None and (tick.bid, tick.ask) == (same.bid, same.ask)
    request = {"action": 1, "symbol": "EURUSD.m", "volume": 0.1, "type": 0, "price": tick.ask}
    result = suffixed.order_send(request)
    assert result is not None and result.retcode == 10009
    (position,) = suffixed.positions_get(symbol="EURUSD.m") or ()
    (deal,) = [d for d in suffixed.history_deals_get(position=result.order) or ()]
    assert position.symbol == deal.symbol == "EURUSD.m"
    bars = suffixed.copy_rates_from_pos("GBPUSD.m", suffixed.TIMEFRAME_M1, 0, 5)
    assert bars is not None and len(bars) == 5


def test_settings_name_symbols_without_the_suffix() -> None:
    mt5 = opened(symbol_suffix="pro", symbol_trade_modes={"GER40": "disabled"})
    mt5.symbol_select("GER40pro", True)
    tick = mt5.symbol_info_tick("GER40pro")
    assert tick is not None
    result = mt5.order_send(
        {"action": 1, "symbol": "GER40pro", "volume": 1.0, "type": 0, "price": tick.ask}
    )
    assert result is not None and result.retcode == 10017  # trade disabled
    with pytest.raises(msgspec.ValidationError, match="symbol_suffix"):
        SimConfig(server_timezone="UTC", symbol_suffix="a b")


def test_a_state_file_of_another_suffix_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite3"
    with opened(state) as mt5:
        tick = mt5.symbol_info_tick("EURUSD")
        assert tick is not None
        mt5.order_send(
            {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask}
        )
    with pytest.raises(RuntimeError, match=r"EURUSD, which this broker does not list"):
        SimTerminal(config=SimConfig(server_timezone="UTC", symbol_suffix=".m"), state_path=state)


def test_the_terminal_keeps_maxbars_bars_not_a_span_of_time() -> None:
    """A chart holds ``maxbars`` bars however far back they go: a weekend with no bars, or a
    minute whose first tick has not come yet, take the oldest kept bar further back instead of
    leaving the chart short."""
    monday = 1_701_043_260.0  # 2023-11-27 00:01 UTC: 5,000 minutes back cross the weekend
    mt5 = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=False, maxbars=5_000),
        clock=lambda: monday,
    )
    assert mt5.initialize()
    kept = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 5_000)
    assert kept is not None and len(kept) == 5_000
    assert kept["time"][0] <= monday - 5_000 * 60 - 2 * 86_400  # the weekend's 48 hours further
    assert (mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, 0, monday) == kept).all()
    oldest = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 4_999, 10)
    assert oldest is not None and (oldest == kept[:1]).all()
    hours = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 5_000)
    assert hours is not None and len(hours) == 5_000
    # A symbol that trades 14 hours of a weekday (GER40): its kept bars reach further back
    # still, and every call reads the same chart.
    assert mt5.symbol_select("GER40", True)
    m1 = mt5.TIMEFRAME_M1
    chart = mt5.copy_rates_range("GER40", m1, 0, monday)
    assert chart is not None and len(chart) == 5_000
    assert (mt5.copy_rates_from_pos("GER40", m1, 0, 5_000) == chart).all()
    assert (mt5.copy_rates_from("GER40", m1, monday, 5_000) == chart).all()
    middle = int(chart["time"][2_500])
    assert (mt5.copy_rates_from("GER40", m1, middle, 1_000) == chart[1_501:2_501]).all()
    assert (mt5.copy_rates_from_pos("GER40", m1, 4_000, 10) == chart[990:1_000]).all()

    start = T0 // 60 * 60  # a minute's start: its first tick comes a moment later
    fresh = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True, maxbars=5_000),
        clock=lambda: start + 0.001,
    )
    assert fresh.initialize()
    assert len(fresh.copy_ticks_range("EURUSD", start, start, fresh.COPY_TICKS_ALL)) == 0
    bars = fresh.copy_rates_from_pos("EURUSD", fresh.TIMEFRAME_M1, 0, 5_000)
    assert bars is not None and len(bars) == 5_000
    assert bars["time"][-1] == start - 60  # the minute before: this one has no bar yet


def test_asking_for_more_bars_than_the_terminal_keeps_is_invalid_params() -> None:
    mt5 = opened(maxbars=5_000)
    info = mt5.terminal_info()
    assert info is not None and info.maxbars == 5_000
    assert mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 5_001) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, T0, 5_001) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    every = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 5_000)
    assert every is not None and len(every) == 5_000
    # The bars past the limit are not kept: a range reaching further back gets the kept ones.
    ranged = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, T0 - 10_000 * 60, T0)
    assert ranged is not None and len(ranged) == 5_000
    deeper = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 4_000, 2_000)
    assert deeper is not None and len(deeper) == 1_000
