"""The rest of the package's surface: ``login``, the market book, the ``copy_*`` history
functions (numpy arrays, or None with a clear error without numpy), and the package's own
pure-Python ``Buy``/``Sell``/``Close``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
SUCCESS = (1, "Success")


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0
    ) as terminal:
        assert terminal.initialize()
        yield terminal


# -- login --------------------------------------------------------------------------------------


def test_login_takes_login_password_server_in_that_order(mt5: SimTerminal) -> None:
    assert mt5.login(5_000_001, "any password", "SimBroker-Demo") is True
    assert mt5.last_error() == SUCCESS
    assert mt5.login(5_000_001, password="x", server="SimBroker-Demo", timeout=1000) is True
    assert mt5.login(5_000_001, server="Broker-Live") is False  # known on another server
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.account_info() is not None  # a failed login leaves the connection open
    assert mt5.login("5000001") is False  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, "Invalid 1st unnamed argument")
    mt5.shutdown()
    assert mt5.login(5_000_001) is False
    assert mt5.last_error() == (-10004, "No IPC connection")


# -- market book --------------------------------------------------------------------------------


def test_the_market_book_after_market_book_add(mt5: SimTerminal) -> None:
    assert mt5.market_book_get("EURUSD") is None
    assert mt5.last_error() == (-4, "Terminal: Not found")
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    tick = mt5.symbol_info_tick("EURUSD")
    assert book is not None and tick is not None
    assert [level.type for level in book] == [mt5.BOOK_TYPE_SELL] * 5 + [mt5.BOOK_TYPE_BUY] * 5
    prices = [level.price for level in book]
    assert prices == sorted(prices, reverse=True)
    assert (book[4].price, book[5].price) == (tick.ask, tick.bid)
    assert all(level.volume >= 1 and level.volume_dbl == level.volume for level in book)
    assert mt5.market_book_release("EURUSD") is True
    assert mt5.market_book_release("EURUSD") is False
    assert mt5.last_error() == SUCCESS  # a plain failure leaves last_error alone
    assert mt5.market_book_add("GER40") is False  # not in the Market Watch
    assert mt5.last_error() == SUCCESS
    assert mt5.market_book_add(1) is None  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, "Invalid 1st unnamed argument")
    with pytest.raises(TypeError):
        mt5.market_book_add(symbol="EURUSD")  # type: ignore[call-arg]


# -- copy_rates / copy_ticks --------------------------------------------------------------------


COPY_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("copy_rates_from", ("EURUSD", 1, T0, 10)),
    ("copy_rates_from_pos", ("EURUSD", 1, 0, 10)),
    ("copy_rates_range", ("EURUSD", 1, T0 - 600, T0)),
    ("copy_ticks_from", ("EURUSD", T0 - 10, 10, 1)),
    ("copy_ticks_range", ("EURUSD", T0 - 10, T0, 1)),
]


def test_rates_are_bars_that_end_at_the_live_price(mt5: SimTerminal) -> None:
    np = pytest.importorskip("numpy")
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 10)
    tick = mt5.symbol_info_tick("EURUSD")
    assert rates is not None and tick is not None
    assert rates.dtype.names == (
        "time",
        "open",
        "high",
        "low",
        "close",
        "tick_volume",
        "spread",
        "real_volume",
    )
    assert rates.dtype.itemsize == 60
    assert len(rates) == 10
    assert list(np.diff(rates["time"])) == [60] * 9
    assert rates["time"][-1] == int(T0) // 60 * 60
    assert rates["close"][-1] == tick.bid
    assert (rates["high"] >= np.maximum(rates["open"], rates["close"])).all()
    assert (rates["low"] <= np.minimum(rates["open"], rates["close"])).all()
    assert (rates["open"][1:] == rates["close"][:-1]).all()
    again = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 10)
    assert again is not None and (again == rates).all()
    older = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 3, 5)
    assert older is not None and (older == rates[2:7]).all()


def test_rates_by_date_and_range(mt5: SimTerminal) -> None:
    pytest.importorskip("numpy")
    hourly = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, T0 - 3600, 3)
    assert hourly is not None
    assert list(hourly["time"]) == [
        (int(T0) - 3600) // 3600 * 3600 - 7200 + 3600 * k for k in range(3)
    ]
    daily = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_D1, T0 - 5 * 86_400, T0)
    assert daily is not None and len(daily) == 5
    assert mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, T0 + 60, T0 + 600) is not None
    assert mt5.copy_rates_from_pos("EURUSD", 7, 0, 1) is None  # no such timeframe
    assert mt5.last_error() == (-2, "Invalid 2nd unnamed argument")
    assert mt5.copy_rates_from_pos("GER40", 1, 0, 1) is None  # not in the Market Watch
    assert mt5.last_error() == (-4, "Terminal: Not found")


def test_ticks_and_an_empty_window(mt5: SimTerminal) -> None:
    np = pytest.importorskip("numpy")
    ticks = mt5.copy_ticks_range("EURUSD", T0 - 60, T0, mt5.COPY_TICKS_ALL)
    tick = mt5.symbol_info_tick("EURUSD")
    assert ticks is not None and tick is not None
    assert ticks.dtype.itemsize == 60
    assert ticks.dtype.names == (
        "time",
        "bid",
        "ask",
        "last",
        "volume",
        "time_msc",
        "flags",
        "volume_real",
    )
    times = ticks["time_msc"]
    assert len(ticks) and (int(T0 * 1000) - 60_000 <= times).all() and (times <= T0 * 1000).all()
    assert (np.diff(times) > 0).all()
    assert (ticks["bid"][-1], ticks["ask"][-1], times[-1]) == (tick.bid, tick.ask, tick.time_msc)
    assert (ticks["ask"] > ticks["bid"]).all()
    first = mt5.copy_ticks_from("EURUSD", T0 - 60, 3, mt5.COPY_TICKS_INFO)
    assert first is not None and (first == ticks[:3]).all()
    before = datetime(1999, 12, 1, tzinfo=UTC)  # the history starts on 2000-01-01
    empty = mt5.copy_ticks_range("EURUSD", before, before + timedelta(days=1), 1)
    assert empty is not None and len(empty) == 0
    assert mt5.last_error() == SUCCESS
    trades = mt5.copy_ticks_from("EURUSD", T0 - 2, 3, mt5.COPY_TICKS_TRADE)
    assert trades is not None and len(trades) == 0  # bid/ask quotes only, no trades


def test_history_follows_market_hours() -> None:
    np = pytest.importorskip("numpy")
    monday = 1_701_043_200.0  # 2023-11-27 00:00 UTC
    mt5 = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=False), clock=lambda: monday
    )
    assert mt5.initialize()
    hours = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_H1, monday - 3 * 86_400, monday)
    assert hours is not None
    weekend = (hours["time"] >= monday - 2 * 3600 - 2 * 86_400) & (hours["time"] < monday - 7200)
    assert not weekend.any()  # Friday 22:00 to Sunday 22:00 has no bars
    assert np.diff(hours["time"]).max() == 48 * 3600 + 3600


# -- Buy, Sell, Close -----------------------------------------------------------------------------


def test_buy_sell_and_close_as_the_package_writes_them(mt5: SimTerminal) -> None:
    bought = mt5.Buy("EURUSD", 0.5, comment="helper")
    assert bought is not None and bought.retcode == mt5.TRADE_RETCODE_DONE
    assert (bought.request.deviation, bought.request.type_filling) == (10, 0)
    assert bought.request.comment == "helper"
    sold = mt5.Sell("EURUSD", 0.2)
    assert sold is not None and sold.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.Close("EURUSD") is True
    assert mt5.positions_total() == 0
    assert mt5.Close("EURUSD") is False  # nothing to close
    assert mt5.Buy("EURUSD", 1) is None  # an int volume, as order_send refuses it
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    refused = mt5.Buy("US500", 1.0)  # no type_filling: FOK, which US500 does not allow
    assert refused is not None and refused.retcode == mt5.TRADE_RETCODE_INVALID_FILL
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    stale = mt5.Buy("EURUSD", 0.1, tick.ask - 0.01)  # with a price: sent once, as it is
    assert stale is not None and stale.retcode == mt5.TRADE_RETCODE_REQUOTE


def test_close_by_ticket_and_partially() -> None:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True, reject_rate=0.5, seed=1),
        clock=lambda: T0,
    ) as mt5:
        assert mt5.initialize()
        tickets = []
        while len(tickets) < 6:
            result = mt5.Buy("EURUSD", 0.1)
            if result is not None and result.retcode == mt5.TRADE_RETCODE_DONE:
                tickets.append(result.order)
        assert mt5.Close("EURUSD", ticket=tickets[0]) in (True, False)
        assert mt5.Close("EURUSD") in ("Partially", True)
