"""Swaps: charged to open positions at each rollover (22:00 UTC, Monday to Friday, three
nights on Wednesday), realised by the deals that close them, and stored with the account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gtw_server.terminal import TradePosition
from gtw_server.terminal.sim import SimConfig, SimTerminal
from tests.test_sim_trading import BUY, SELL, filled, market, send

MONDAY_NOON = 1_699_876_800.0  # 2023-11-13 12:00 UTC
HOUR = 3600.0
DAY = 24 * HOUR
# EURUSD: swap_long -7 and swap_short +2 points per lot and night; one point of one lot is
# 1 USD (0.00001 * 100,000), and the account is in USD.
LONG_NIGHT, SHORT_NIGHT = -7.0, 2.0


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: MONDAY_NOON
    ) as terminal:
        assert terminal.initialize()
        yield terminal


def held(mt5: SimTerminal, ticket: int) -> TradePosition:
    (position,) = mt5.positions_get(ticket=ticket) or ()
    return position


def balance_from_deals(mt5: SimTerminal) -> float:
    deals = mt5.history_deals_get(0, 2_000_000_000) or ()
    return round(sum(d.profit + d.swap + d.commission + d.fee for d in deals), 2)


def test_a_position_held_over_the_rollover_pays_its_swap(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    mt5.step(9 * HOUR)  # 21:00, before the rollover
    assert held(mt5, opened.order).swap == 0.0
    mt5.step(2 * HOUR)  # 23:00
    position = held(mt5, opened.order)
    assert position.swap == LONG_NIGHT
    account = mt5.account_info()
    assert account is not None
    assert account.profit == pytest.approx(position.profit + position.swap, abs=1e-9)
    assert account.equity == pytest.approx(account.balance + account.profit, abs=1e-9)
    assert account.balance == balance_from_deals(mt5)  # nothing realised yet


def test_a_week_charges_seven_nights_three_of_them_on_wednesday(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", SELL, 0.5)
    mt5.step(2 * DAY + 11 * HOUR)  # Wednesday 23:00: Monday, Tuesday and Wednesday's three
    assert held(mt5, opened.order).swap == pytest.approx(5 * SHORT_NIGHT * 0.5)
    mt5.step(2 * DAY)  # Friday 23:00
    assert held(mt5, opened.order).swap == pytest.approx(7 * SHORT_NIGHT * 0.5)
    mt5.step(2 * DAY + 12 * HOUR)  # Monday 11:00: no rollover at the weekend
    assert held(mt5, opened.order).swap == pytest.approx(7 * SHORT_NIGHT * 0.5)


def test_a_position_opened_after_the_rollover_does_not_pay_it(mt5: SimTerminal) -> None:
    mt5.step(10 * HOUR + 30 * 60)  # 22:30
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    mt5.step(12 * HOUR)  # Tuesday 10:30
    assert held(mt5, opened.order).swap == 0.0


def test_closing_realises_the_swap_share_by_share(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    mt5.step(12 * HOUR)
    first = send(mt5, market(mt5, "EURUSD", SELL, 0.4, position=opened.order))
    (deal,) = mt5.history_deals_get(ticket=first.order) or ()  # ticket= is the order's
    assert deal.swap == pytest.approx(0.4 * LONG_NIGHT)
    assert held(mt5, opened.order).swap == pytest.approx(0.6 * LONG_NIGHT)
    rest = send(mt5, market(mt5, "EURUSD", SELL, 0.6, position=opened.order))
    (deal,) = mt5.history_deals_get(ticket=rest.order) or ()
    assert deal.swap == pytest.approx(0.6 * LONG_NIGHT)
    account = mt5.account_info()
    assert account is not None and account.profit == 0.0
    assert account.balance == balance_from_deals(mt5)  # swaps moved the balance


def test_a_netting_position_keeps_its_swap_when_added_to_and_pays_it_when_reversed() -> None:
    config = SimConfig(server_timezone="UTC", always_open=True, margin_mode="netting")
    with SimTerminal(config=config, clock=lambda: MONDAY_NOON) as mt5:
        assert mt5.initialize()
        opened = filled(mt5, "EURUSD", BUY, 1.0)
        mt5.step(12 * HOUR)
        filled(mt5, "EURUSD", BUY, 1.0)  # adds: the swap stays with the position
        assert held(mt5, opened.order).swap == LONG_NIGHT
        reversal = filled(mt5, "EURUSD", SELL, 3.0)
        (deal,) = mt5.history_deals_get(ticket=reversal.order) or ()
        assert deal.swap == LONG_NIGHT
        (position,) = mt5.positions_get() or ()
        assert position.type == SELL and position.volume == 1.0 and position.swap == 0.0
        account = mt5.account_info()
        assert account is not None and account.balance == balance_from_deals(mt5)


def test_swaps_are_stored_charged_once_and_caught_up_after_downtime(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite3"
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: MONDAY_NOON,
    ) as first:
        assert first.initialize()
        opened = filled(first, "EURUSD", BUY, 1.0)
        first.step(12 * HOUR)
        assert held(first, opened.order).swap == LONG_NIGHT
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: MONDAY_NOON + 12 * HOUR,
    ) as again:
        assert again.initialize()
        assert held(again, opened.order).swap == LONG_NIGHT  # not charged a second time
    # Down over Tuesday's rollover: charged once the terminal is back.
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True),
        state_path=path,
        clock=lambda: MONDAY_NOON + DAY + 12 * HOUR,
    ) as later:
        assert later.initialize()
        assert held(later, opened.order).swap == 2 * LONG_NIGHT


def test_a_rollover_that_charges_nothing_is_still_not_charged_again(tmp_path: Path) -> None:
    """US500's swap on 0.1 lot rounds to nothing; the netting position then grows. A restart
    must not charge the past rollover again, at the new volume."""
    path, config = (
        tmp_path / "sim.sqlite3",
        SimConfig(server_timezone="UTC", always_open=True, margin_mode="netting"),
    )
    with SimTerminal(state_path=path, config=config, clock=lambda: MONDAY_NOON) as first:
        assert first.initialize()
        filled(first, "US500", SELL, 0.1)
        first.step(DAY)  # Tuesday noon: Monday's rollover charged 0.00
        filled(first, "US500", SELL, 9.9)
        (position,) = first.positions_get() or ()
        assert position.volume == 10.0 and position.swap == 0.0
    with SimTerminal(state_path=path, config=config, clock=lambda: MONDAY_NOON + DAY) as again:
        assert again.initialize()
        (position,) = again.positions_get() or ()
        assert position.swap == 0.0


def test_swaps_can_stop_the_account_out_at_the_rollover() -> None:
    """Gold held on thin margin: its nightly swap (-45 points per lot) wears the margin level
    down until a rollover takes it under the stop-out level, and the position is closed then."""
    # Seed 1: a week in which gold's price drifts less than the swaps take.
    config = SimConfig(
        server_timezone="UTC", always_open=True, balance=1_000.0, leverage=1000, seed=1
    )
    with SimTerminal(config=config, clock=lambda: MONDAY_NOON) as mt5:
        assert mt5.initialize()
        tick = mt5.symbol_info_tick("XAUUSD")
        per_lot = mt5.order_calc_margin(BUY, "XAUUSD", 1.0, tick.ask) if tick else None
        assert per_lot is not None
        filled(mt5, "XAUUSD", BUY, round(0.8 * 1_000.0 / per_lot, 2))
        mt5.step(7 * DAY)
        deals = mt5.history_deals_get(0, 2_000_000_000) or ()
        (stop_out,) = [d for d in deals if d.reason == mt5.DEAL_REASON_SO]
        assert stop_out.time_msc % int(DAY * 1000) == 22 * 3_600_000  # at a rollover
        assert stop_out.swap < 0
        assert mt5.positions_total() == 0
