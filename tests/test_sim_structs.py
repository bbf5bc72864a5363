"""The result types behave like the package's struct sequences, in the binary's field order."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from gtw_server import terminal
from gtw_server.terminal import BookInfo, OrderSendResult, TradeRequest, constants, sim
from gtw_server.terminal.sim import SimConfig, SimTerminal
from protocol.mt5_structs import STRUCT_TYPES, StructSequence

# docs/MT5_API.md section 2, copied by hand: the order is the binary's descriptor order.
EXPECTED_FIELDS: dict[str, list[str]] = {
    "AccountInfo": [
        "login",
        "trade_mode",
        "leverage",
        "limit_orders",
        "margin_so_mode",
        "trade_allowed",
        "trade_expert",
        "margin_mode",
        "currency_digits",
        "fifo_close",
        "balance",
        "credit",
        "profit",
        "equity",
        "margin",
        "margin_free",
        "margin_level",
        "margin_so_call",
        "margin_so_so",
        "margin_initial",
        "margin_maintenance",
        "assets",
        "liabilities",
        "commission_blocked",
        "name",
        "server",
        "currency",
        "company",
    ],
    "TerminalInfo": [
        "community_account",
        "community_connection",
        "connected",
        "dlls_allowed",
        "trade_allowed",
        "tradeapi_disabled",
        "email_enabled",
        "ftp_enabled",
        "notifications_enabled",
        "mqid",
        "build",
        "maxbars",
        "codepage",
        "ping_last",
        "community_balance",
        "retransmission",
        "company",
        "name",
        "language",
        "path",
        "data_path",
        "commondata_path",
    ],
    "SymbolInfo": [
        "custom",
        "chart_mode",
        "select",
        "visible",
        "session_deals",
        "session_buy_orders",
        "session_sell_orders",
        "volume",
        "volumehigh",
        "volumelow",
        "time",
        "digits",
        "spread",
        "spread_float",
        "ticks_bookdepth",
        "trade_calc_mode",
        "trade_mode",
        "start_time",
        "expiration_time",
        "trade_stops_level",
        "trade_freeze_level",
        "trade_exemode",
        "swap_mode",
        "swap_rollover3days",
        "margin_hedged_use_leg",
        "expiration_mode",
        "filling_mode",
        "order_mode",
        "order_gtc_mode",
        "option_mode",
        "option_right",
        "bid",
        "bidhigh",
        "bidlow",
        "ask",
        "askhigh",
        "asklow",
        "last",
        "lasthigh",
        "lastlow",
        "volume_real",
        "volumehigh_real",
        "volumelow_real",
        "option_strike",
        "point",
        "trade_tick_value",
        "trade_tick_value_profit",
        "trade_tick_value_loss",
        "trade_tick_size",
        "trade_contract_size",
        "trade_accrued_interest",
        "trade_face_value",
        "trade_liquidity_rate",
        "volume_min",
        "volume_max",
        "volume_step",
        "volume_limit",
        "swap_long",
        "swap_short",
        "margin_initial",
        "margin_maintenance",
        "session_volume",
        "session_turnover",
        "session_interest",
        "session_buy_orders_volume",
        "session_sell_orders_volume",
        "session_open",
        "session_close",
        "session_aw",
        "session_price_settlement",
        "session_price_limit_min",
        "session_price_limit_max",
        "margin_hedged",
        "price_change",
        "price_volatility",
        "price_theoretical",
        "price_greeks_delta",
        "price_greeks_theta",
        "price_greeks_gamma",
        "price_greeks_vega",
        "price_greeks_rho",
        "price_greeks_omega",
        "price_sensitivity",
        "basis",
        "category",
        "currency_base",
        "currency_profit",
        "currency_margin",
        "bank",
        "description",
        "exchange",
        "formula",
        "isin",
        "name",
        "page",
        "path",
    ],
    "Tick": ["time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real"],
    "TradePosition": [
        "ticket",
        "time",
        "time_msc",
        "time_update",
        "time_update_msc",
        "type",
        "magic",
        "identifier",
        "reason",
        "volume",
        "price_open",
        "sl",
        "tp",
        "price_current",
        "swap",
        "profit",
        "symbol",
        "comment",
        "external_id",
    ],
    "TradeOrder": [
        "ticket",
        "time_setup",
        "time_setup_msc",
        "time_done",
        "time_done_msc",
        "time_expiration",
        "type",
        "type_time",
        "type_filling",
        "state",
        "magic",
        "position_id",
        "position_by_id",
        "reason",
        "volume_initial",
        "volume_current",
        "price_open",
        "sl",
        "tp",
        "price_current",
        "price_stoplimit",
        "symbol",
        "comment",
        "external_id",
    ],
    "TradeDeal": [
        "ticket",
        "order",
        "time",
        "time_msc",
        "type",
        "entry",
        "magic",
        "position_id",
        "reason",
        "volume",
        "price",
        "commission",
        "swap",
        "profit",
        "fee",
        "symbol",
        "comment",
        "external_id",
    ],
    "TradeRequest": [
        "action",
        "magic",
        "order",
        "symbol",
        "volume",
        "price",
        "stoplimit",
        "sl",
        "tp",
        "deviation",
        "type",
        "type_filling",
        "type_time",
        "expiration",
        "comment",
        "position",
        "position_by",
    ],
    "OrderSendResult": [
        "retcode",
        "deal",
        "order",
        "volume",
        "price",
        "bid",
        "ask",
        "comment",
        "request_id",
        "retcode_external",
        "request",
    ],
    "OrderCheckResult": [
        "retcode",
        "balance",
        "equity",
        "profit",
        "margin",
        "margin_free",
        "margin_level",
        "comment",
        "request",
    ],
    "BookInfo": ["type", "price", "volume", "volume_dbl"],
}
TYPES: dict[str, type[StructSequence]] = {cls.__name__: cls for cls in STRUCT_TYPES}


def _request() -> TradeRequest:
    return TradeRequest((1, 7, 0, "EURUSD", 0.1, 1.1, 0.0, 0.0, 0.0, 10, 0, 0, 0, 0, "hi", 0, 0))


def _send_result() -> OrderSendResult:
    return OrderSendResult((10009, 2, 1, 0.1, 1.1, 1.09, 1.1, "Request executed", 3, 0, _request()))


@pytest.mark.parametrize("name", EXPECTED_FIELDS)
def test_field_names_and_order_match_the_binary(name: str) -> None:
    cls = TYPES[name]
    assert list(cls.__match_args__) == EXPECTED_FIELDS[name]
    assert cls.n_fields == cls.n_sequence_fields == len(EXPECTED_FIELDS[name])
    assert cls.n_unnamed_fields == 0
    values = tuple(range(cls.n_fields))
    item = cls(values)
    assert [getattr(item, field) for field in EXPECTED_FIELDS[name]] == list(values)


def test_field_counts_are_those_of_the_wheel() -> None:
    counts = {name: len(fields) for name, fields in EXPECTED_FIELDS.items()}
    assert counts == {
        "AccountInfo": 28,
        "TerminalInfo": 22,
        "SymbolInfo": 96,
        "Tick": 8,
        "TradePosition": 19,
        "TradeOrder": 24,
        "TradeDeal": 18,
        "TradeRequest": 17,
        "OrderSendResult": 11,
        "OrderCheckResult": 9,
        "BookInfo": 4,
    }


def test_a_struct_is_a_tuple_with_read_only_attributes() -> None:
    level = BookInfo((1, 1.1, 10, 10.0))
    assert isinstance(level, tuple)
    assert tuple(level) == (1, 1.1, 10, 10.0)
    kind, price, volume, volume_dbl = level
    assert (kind, price, volume, volume_dbl) == (level.type, level.price, level[2], level[-1])
    with pytest.raises(AttributeError):
        level.price = 2.0
    with pytest.raises(AttributeError):
        level.__dict__  # noqa: B018 -- no per-instance dict, like the C types


def test_there_is_no_fields_nor_replace_as_on_the_real_types() -> None:
    result = _send_result()
    assert not hasattr(result, "_fields")
    assert not hasattr(result, "_replace")
    assert not hasattr(OrderSendResult, "_make")


def test_asdict_is_shallow() -> None:
    result = _send_result()
    as_dict = result._asdict()
    assert list(as_dict) == EXPECTED_FIELDS["OrderSendResult"]
    assert type(as_dict["request"]) is TradeRequest
    assert as_dict["request"].comment == "hi"


def test_repr_names_each_field() -> None:
    assert repr(BookInfo((1, 1.1, 10, 10.0))) == (
        "BookInfo(type=1, price=1.1, volume=10, volume_dbl=10.0)"
    )
    assert "request=TradeRequest(action=1, magic=7," in repr(_send_result())


def test_a_wrong_length_is_refused_like_structseq_new() -> None:
    with pytest.raises(TypeError, match=r"takes a 4-sequence \(3-sequence given\)"):
        BookInfo((1, 2, 3))


def test_structs_pickle_for_the_worker_process() -> None:
    result = _send_result()
    copy = pickle.loads(pickle.dumps(result))
    assert copy == result
    assert type(copy) is OrderSendResult
    assert type(copy.request) is TradeRequest


def test_structs_work_in_match_statements() -> None:
    match BookInfo((2, 1.2, 5, 5.0)):
        case BookInfo(type=2, price=price):
            matched: Any = price
        case _:
            matched = None
    assert matched == 1.2


def test_every_constant_of_the_package_is_there_with_its_value() -> None:
    ints = {name for name in constants.__all__ if isinstance(getattr(constants, name), int)}
    assert len(ints) == 223
    samples = {
        "ORDER_TYPE_BUY": 0,
        "ORDER_TYPE_SELL": 1,
        "ORDER_FILLING_FOK": 0,
        "ORDER_FILLING_IOC": 1,
        "ORDER_FILLING_RETURN": 2,
        "TRADE_ACTION_DEAL": 1,
        "TRADE_ACTION_CLOSE_BY": 10,
        "TRADE_RETCODE_DONE": 10009,
        "TRADE_RETCODE_INVALID_FILL": 10030,
        "DEAL_REASON_EXPERT": 3,
        "TIMEFRAME_H1": 16385,
        "TIMEFRAME_MN1": 49153,
        "COPY_TICKS_ALL": -1,
        "RES_E_INTERNAL_FAIL_CONNECT": -10004,
        "DEAL_DIVIDEND": 15,  # spelling quirks kept
        "DEAL_DIVIDEND_FRANKED": 16,
        "DEAL_TAX": 17,
    }
    for name, value in samples.items():
        assert getattr(constants, name) == value, name


def test_the_terminal_carries_exactly_the_exported_constants() -> None:
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    assert mt5.ORDER_TYPE_SELL == 1
    assert mt5.TRADE_RETCODE_POSITION_CLOSED == 10036
    for missing in ("SYMBOL_FILLING_FOK", "SYMBOL_ORDER_MARKET", "TRADE_RETCODE_HEDGE_PROHIBITED"):
        assert not hasattr(mt5, missing), missing
        assert not hasattr(constants, missing), missing


def test_the_packages_reexport_their_public_names() -> None:
    assert set(terminal.__all__) >= {"constants", *EXPECTED_FIELDS}
    assert set(sim.__all__) == {
        "SimTerminal",
        "SimConfig",
        "install_as_metatrader5",
        "uninstall_metatrader5",
    }
    for package in (terminal, sim):
        for name in package.__all__:
            assert getattr(package, name) is not None


def test_the_structure_types_are_attributes_of_the_terminal_as_of_the_module() -> None:
    # Code written for the package checks types as ``mt5.TradePosition``.
    with SimTerminal(config=SimConfig(always_open=True)) as mt5:
        assert mt5.initialize()
        for name in EXPECTED_FIELDS:
            assert isinstance(getattr(mt5, name), type) and getattr(mt5, name).__name__ == name
        tick = mt5.symbol_info_tick("EURUSD")
        assert isinstance(tick, mt5.Tick)
        result = mt5.order_send(
            action=mt5.TRADE_ACTION_DEAL,
            symbol="EURUSD",
            volume=0.1,
            type=mt5.ORDER_TYPE_BUY,
            price=tick.ask,
        )
        assert isinstance(result, mt5.OrderSendResult)
        assert isinstance(result.request, mt5.TradeRequest)
        assert all(isinstance(p, mt5.TradePosition) for p in mt5.positions_get())
        assert isinstance(mt5.account_info(), mt5.AccountInfo)
        assert mt5.__version__.startswith("5.0.")
