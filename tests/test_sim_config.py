"""``SimConfig``: the ``[sim]`` fields, their checks, and what the terminal does with them."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0


def test_the_defaults_are_a_usd_hedging_demo_keeping_market_hours_with_every_fault_off() -> None:
    assert msgspec.structs.asdict(SimConfig()) == {
        "seed": 0,
        "login": 5_000_001,
        "server": "SimBroker-Demo",
        "balance": 10_000.0,
        "currency": "USD",
        "leverage": 100,
        "margin_mode": "hedging",
        "trade_mode": "demo",
        "always_open": False,
        "order_latency_ms": 0.0,
        "order_latency_holds_gil": True,
        "hang_on_order": 0,
        "hang_before_order": 0,
        "lose_reply_on_order": 0,
        "disconnect_at_s": None,
        "disconnect_for_s": 0.0,
        "requote_rate": 0.0,
        "reject_rate": 0.0,
        "symbol_trade_modes": {},
        "algo_trading": True,
        "tradeapi_disabled": False,
        "pending_retcode": 10009,
        "profile": "ideal",
        "commission_per_lot": None,
        "slippage_points": None,
        "execution_ms": None,
        "rollover_spread": None,
        "maxbars": 100_000,
        "server_timezone": "EET",  # a broker's clock, UTC+2/+3: the trap is there by default
        "symbol_suffix": "",
        "replay": {},
        "replay_from": None,
        "replay_speed": 1.0,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("leverage", 0),
        ("balance", -1.0),
        ("currency", "CHF"),
        ("margin_mode", "hedge"),
        ("trade_mode", "live"),
        ("requote_rate", 1.5),
        ("disconnect_at_s", -1.0),
        ("seed", -1),
        ("login", True),
        ("server_timezone", "Mars/Olympus"),
        ("server_timezone", "Asia/Kolkata"),  # +5:30: bars are built from whole hours
    ],
)
def test_a_bad_value_names_its_field_in_code_and_from_toml(field: str, value: Any) -> None:
    with pytest.raises(msgspec.ValidationError, match=rf"\$\.{field}`$"):
        SimConfig(**{field: value})
    with pytest.raises(msgspec.ValidationError, match=rf"\$\.{field}`$"):
        msgspec.convert({field: value}, SimConfig)


def test_it_loads_from_a_toml_table_and_refuses_unknown_keys() -> None:
    config = msgspec.toml.decode(b'seed = 3\nleverage = 500\ncurrency = "EUR"', type=SimConfig)
    assert (config.seed, config.leverage, config.currency) == (3, 500, "EUR")
    with pytest.raises(msgspec.ValidationError, match="unknown field `sede`"):
        msgspec.toml.decode(b"sede = 3", type=SimConfig)


def test_it_is_immutable() -> None:
    with pytest.raises(AttributeError):
        SimConfig().seed = 1  # type: ignore[misc]


def test_the_account_follows_the_config() -> None:
    config = SimConfig(login=42, server="X-Live", balance=500, leverage=30, trade_mode="contest")
    mt5 = SimTerminal(config=config, clock=lambda: T0)
    assert mt5.initialize(login=42, server="X-Live")
    account = mt5.account_info()
    assert account is not None
    assert (account.login, account.server, account.balance, account.leverage) == (
        42,
        "X-Live",
        500,
        30,
    )
    assert account.trade_mode == mt5.ACCOUNT_TRADE_MODE_CONTEST


def test_a_eur_account_converts_usd_profit_through_eurusd() -> None:
    mt5 = SimTerminal(config=SimConfig(currency="EUR"), clock=lambda: T0)
    assert mt5.initialize()
    eurusd = mt5.symbol_info_tick("EURUSD")
    assert eurusd is not None
    profit = mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "GBPUSD", 1.0, 1.27, 1.28)
    assert profit == round(1000 / eurusd.ask, 2)  # USD to EUR: divide by EURUSD's ask
    # EURUSD's own margin is in EUR already: lots * contract / leverage.
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1) == 1000.0
    usdjpy = mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "USDJPY", 1.0, 150.0, 151.0)
    assert usdjpy == round(100_000 / 151.0 / eurusd.ask, 2)  # JPY -> USD -> EUR
