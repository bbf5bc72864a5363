"""The simulator keeps a broker's clock: ``[sim] server_timezone`` (EET by default, UTC+2 in
winter and UTC+3 in summer) for every time it gives and every date it takes, daily bars from
the server's midnight, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal
from protocol.server_time import ServerClock

WINTER = datetime(2026, 1, 14, 10, 0, tzinfo=UTC).timestamp()  # a Wednesday, UTC+2
SUMMER = datetime(2026, 7, 15, 10, 0, tzinfo=UTC).timestamp()  # a Wednesday, UTC+3
# EET leaves UTC+2 for UTC+3 at 01:00 UTC on the last Sunday of March.
SPRING_CHANGE = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
DAY = 86_400


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def terminal(clock: Clock, zone: str = "EET") -> SimTerminal:
    mt5 = SimTerminal(config=SimConfig(always_open=True, server_timezone=zone), clock=clock)
    assert mt5.initialize()
    return mt5


@pytest.mark.parametrize(("now", "offset"), [(WINTER, 7200), (SUMMER, 10800)])
def test_every_time_given_is_on_the_servers_clock(now: float, offset: int) -> None:
    mt5 = terminal(Clock(now))
    tick = mt5.symbol_info_tick("EURUSD")
    assert now + offset - 60 < tick.time <= now + offset  # the last tick, in server time
    assert tick.time_msc // 1000 == tick.time
    assert mt5.symbol_info("EURUSD").time == tick.time
    sent = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask}
    )
    assert sent.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = mt5.positions_get()
    (deal,) = mt5.history_deals_get(position=position.ticket)
    (order,) = mt5.history_orders_get(ticket=sent.order)
    assert position.time == deal.time == order.time_setup == int(now) + offset
    assert position.time_msc == deal.time_msc == order.time_done_msc
    # Dates taken are the server's too: the UTC hour of the deal finds nothing, as on a real
    # terminal (the trap issue 20 is about); the server's hour finds it.
    assert mt5.history_deals_get(now - 60, now + 60) == ()
    found = mt5.history_deals_get(now + offset - 60, now + offset + 60)
    assert deal.ticket in {d.ticket for d in found}  # with the account's opening deposit
    ticks = mt5.copy_ticks_range("EURUSD", now + offset - 60, now + offset, mt5.COPY_TICKS_ALL)
    assert len(ticks) and ticks["time"].min() >= now + offset - 60
    assert ticks["time_msc"][-1] == tick.time_msc  # the live tick is the history's last
    utc = terminal(Clock(now), "UTC").symbol_info_tick("EURUSD")
    assert (tick.time - utc.time, tick.bid) == (offset, utc.bid)  # the same market


def test_daily_bars_start_at_the_servers_midnight_and_hold_its_hours() -> None:
    mt5 = terminal(Clock(WINTER))
    days = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_D1, 1, 5)
    hours = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 24 * 7)
    assert (days["time"] % DAY == 0).all()  # 00:00 server time, 22:00 UTC the day before
    for day in days[-3:]:
        inside = hours[(hours["time"] >= day["time"]) & (hours["time"] < day["time"] + DAY)]
        assert len(inside) == 24
        assert (day["open"], day["close"]) == (inside["open"][0], inside["close"][-1])
        assert (day["high"], day["low"]) == (inside["high"].max(), inside["low"].min())
        assert day["tick_volume"] == inside["tick_volume"].sum()
    weeks = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_W1, 0, 3)
    starts = [datetime.fromtimestamp(int(t), UTC) for t in weeks["time"]]
    assert all((s.weekday(), s.hour) == (6, 0) for s in starts)  # Sunday 00:00, server


def test_a_day_with_a_daylight_saving_change_has_23_hours() -> None:
    mt5 = terminal(Clock(SPRING_CHANGE + 2 * DAY))
    days = mt5.copy_rates_range(
        "EURUSD", mt5.TIMEFRAME_D1, SPRING_CHANGE - DAY, SPRING_CHANGE + DAY
    )
    hours = mt5.copy_rates_range(
        "EURUSD", mt5.TIMEFRAME_H1, SPRING_CHANGE - DAY, SPRING_CHANGE + 2 * DAY
    )
    (sunday,) = [d for d in days if d["time"] <= SPRING_CHANGE + 7200 < d["time"] + DAY]
    inside = hours[(hours["time"] >= sunday["time"]) & (hours["time"] < sunday["time"] + DAY)]
    assert len(inside) == 23  # 03:00 became 04:00: that hour never was
    assert sunday["tick_volume"] == inside["tick_volume"].sum()
    assert sunday["high"] == inside["high"].max()
    gaps = np.diff(inside["time"])
    assert sorted(set(gaps.tolist())) == [3600, 7200]  # one hour missing on the server's clock
    # The live offset moved with it.
    before, after = (
        ServerClock("EET").offset_s(SPRING_CHANGE - 1),
        ServerClock("EET").offset_s(SPRING_CHANGE),
    )
    assert (before, after) == (7200, 10800)


def test_expirations_are_read_and_given_on_the_servers_clock() -> None:
    mt5 = terminal(Clock(WINTER))
    tick = mt5.symbol_info_tick("EURUSD")
    pending = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2}
    pending |= {"price": round(tick.ask - 0.005, 5), "type_time": mt5.ORDER_TIME_SPECIFIED}
    at = tick.time + 3600  # an hour from now, as the server tells the time
    assert mt5.order_send(pending | {"expiration": at}).retcode == 10009
    day = mt5.order_send(pending | {"type_time": mt5.ORDER_TIME_DAY})
    assert day.retcode == 10009
    specified, today = mt5.orders_get()
    assert specified.time_expiration == at
    assert today.time_expiration == (tick.time // DAY + 1) * DAY  # the server's midnight
    past = mt5.order_send(pending | {"expiration": int(WINTER) + 60})  # a UTC time: past
    assert past.retcode == mt5.TRADE_RETCODE_INVALID_EXPIRATION


def test_the_hour_the_clock_repeats_is_one_bar_of_both_hours() -> None:
    autumn = datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()  # 04:00 EEST is 03:00 EET
    mt5 = terminal(Clock(autumn + DAY))
    utc = terminal(Clock(autumn + DAY), "UTC")
    server_hour = autumn + 7200  # 03:00 on the server's clock, twice
    hours = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_H1, server_hour - 7200, server_hour + 7200)
    assert (np.diff(hours["time"]) > 0).all()  # still in order, one bar an hour
    (repeated,) = hours[hours["time"] == server_hour]
    both = utc.copy_rates_range("EURUSD", utc.TIMEFRAME_H1, autumn - 3600, autumn)
    assert len(both) == 2  # 00:00 and 01:00 UTC
    assert (repeated["open"], repeated["close"]) == (both["open"][0], both["close"][1])
    assert repeated["tick_volume"] == both["tick_volume"].sum()
    days = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_D1, server_hour - DAY, server_hour)
    (sunday,) = days[days["time"] == server_hour - 3 * 3600]
    hours_of_day = utc.copy_rates_range(
        "EURUSD", utc.TIMEFRAME_H1, autumn - 3 * 3600, autumn + 22 * 3600 - 1
    )
    assert len(hours_of_day) == 25 and sunday["tick_volume"] == hours_of_day["tick_volume"].sum()


def test_minute_bars_across_the_repeated_hour_are_in_order_and_lose_no_tick() -> None:
    autumn = datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()
    mt5, utc = terminal(Clock(autumn + 3 * 3600)), terminal(Clock(autumn + 3 * 3600), "UTC")
    # 22:00 to 02:00 UTC is 01:00 to 04:00 on the server's clock: four hours in three.
    same = utc.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, autumn - 7200, autumn + 7199)
    minutes = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, autumn + 3600, autumn + 14_399)
    assert (np.diff(minutes["time"]) > 0).all() and len(same) == 240
    assert len(minutes) == 180  # the repeated hour's minutes folded into one hour's
    assert minutes["tick_volume"].sum() == same["tick_volume"].sum()
