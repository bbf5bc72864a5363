"""MT5_READ through a real gateway, with hand-written JSON: any read function of the
``MetaTrader5`` package answered as the package would answer the script (its structures, its
arrays, ``last_error()``, its ``TypeError``), and nothing that is not a read, ever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import JsonDealer

from gtw_server.adapter import TerminalAdapter
from gtw_server.errors import TerminalRefused
from gtw_server.mt5_reads import Mt5Call, call_read
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import GatewayProcess
from protocol import RATES_DTYPE, TICKS_DTYPE
from protocol.mt5_structs import AccountInfo, OrderCheckResult, TradeRequest


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[JsonDealer]:
    dealer = JsonDealer(gateway.endpoint)
    yield dealer
    dealer.close()


def read(client: JsonDealer, function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    reply = client.ok("MT5_READ", function=function, args=list(args), kwargs=kwargs)
    mt5: dict[str, Any] = reply["mt5"]
    return mt5


def test_a_structure_comes_whole_in_the_packages_field_order(client: JsonDealer) -> None:
    answer = read(client, "account_info")
    assert answer["error"] == [1, "Success"]
    value = answer["value"]
    assert value["struct"] == "AccountInfo"
    account = AccountInfo(value["fields"])  # 28 fields, in the binary's order
    assert account.login > 0 and account.balance > 0 and account.currency == "USD"
    assert read(client, "version")["value"][0] == 500  # (500, build, date): a tuple, as a list


def test_an_array_comes_as_rows_after_the_reply(client: JsonDealer) -> None:
    reply, rest = client.ask("MT5_READ", function="copy_rates_from_pos", args=["EURUSD", 1, 0, 25])
    assert reply["status"] == "OK" and reply["mt5"]["error"] == [1, "Success"]
    assert [tuple(field) for field in reply["rows"]["dtype"]] == RATES_DTYPE
    bars = np.frombuffer(rest[0], dtype=np.dtype(RATES_DTYPE))
    assert len(bars) == reply["rows"]["rows"] == 25
    assert (np.diff(bars["time"]) == 60).all() and (bars["high"] >= bars["low"]).all()


def test_the_packages_own_forms_and_errors_come_back_as_it_gives_them(
    client: JsonDealer,
) -> None:
    # positions_get takes no positional argument: None, and the binary's message.
    refused = read(client, "positions_get", "EURUSD")
    assert refused == {"error": [-2, "Unnamed arguments not allowed"]}
    assert read(client, "positions_get", symbol="EURUSD") == {"error": [1, "Success"], "value": []}
    # symbol_select's enable is positional only: the package raises TypeError.
    raised = read(client, "symbol_select", "GBPUSD", enable=True)
    assert "raised" in raised and "enable" in raised["raised"]
    # A group mask and a range, as history_deals_get takes them.
    deals = read(client, "history_deals_get", 0, int(time.time()) + 86_400, group="*")
    assert deals["error"] == [1, "Success"] and deals["value"][0]["struct"] == "TradeDeal"


def test_order_check_takes_a_request_dict_and_nests_it_in_the_answer(
    client: JsonDealer,
) -> None:
    tick = read(client, "symbol_info_tick", "EURUSD")["value"]["fields"]
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick[2]}
    answer = read(client, "order_check", request)
    assert answer["error"] == [1, "Success"]
    result = answer["value"]
    assert result["struct"] == "OrderCheckResult"
    fields = result["fields"]
    nested = fields[-1]
    assert nested["struct"] == "TradeRequest"
    checked = OrderCheckResult([*fields[:-1], TradeRequest(nested["fields"])])
    assert checked.retcode == 0 and checked.request.volume == 0.1 and checked.margin > 0


# A whole, valid market order: had it reached the terminal, it would have filled.
BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 0}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"function": "order_send", "args": [BUY]}, "not a read function"),
        ({"function": "order_send", "kwargs": BUY}, "not a read function"),
        ({"function": "Buy", "args": ["EURUSD", 0.1]}, "not a read function"),
        ({"function": "initialize"}, "not a read function"),
        ({"function": "__class__"}, "not a read function"),
        ({"function": "account_info", "args": [[1, 2]]}, "Expected"),  # no list argument
        ({"function": "account_info", "args": list(range(9))}, "length <= 8"),
        ({"function": "symbol_info", "args": [2**70]}, "Expected"),  # no int64
        ({"function": "copy_rates_from_pos", "args": ["x" * 3000, 1, 0, 1]}, "length <= 2048"),
    ],
)
def test_anything_but_a_read_is_refused_and_nothing_runs(
    client: JsonDealer, fields: dict[str, Any], why: str
) -> None:
    reply, rest = client.ask("MT5_READ", **fields)
    assert reply["status"] == "REJECTED" and reply["error_code"] == "INVALID_REQUEST", reply
    assert why in reply["error_msg"] and rest == []
    assert read(client, "positions_total")["value"] == 0  # no order was sent
    assert read(client, "history_orders_total", 0, 2**31 - 1)["value"] == 0


def test_more_rows_than_the_gateway_gives_is_refused(tmp_path: Path, secret: str) -> None:
    with GatewayProcess(tmp_path / "gw", secret=secret, gateway={"max_rows": 5}) as gateway:
        dealer = JsonDealer(gateway.endpoint)
        try:
            reply, rest = dealer.ask(
                "MT5_READ", function="copy_rates_from_pos", args=["EURUSD", 1, 0, 6]
            )
            assert reply["status"] == "REJECTED" and reply["error_code"] == "TOO_LARGE", reply
            assert "max_rows" in reply["error_msg"] and rest == []
            total = read(dealer, "symbols_total")["value"]
            listed, _ = dealer.ask("MT5_READ", function="symbols_get")  # a tuple: counted too
            assert total > 5 and listed["error_code"] == "TOO_LARGE", (total, listed)
        finally:
            dealer.close()


def test_a_count_or_a_range_over_max_rows_is_refused_before_the_terminal(
    client: JsonDealer,
) -> None:
    # 250,000 rows is the default max_rows; a count over it never reaches the terminal.
    for function, args in (
        ("copy_rates_from_pos", ["EURUSD", 1, 0, 250_001]),
        ("copy_ticks_from", ["EURUSD", 0, 250_001, -1]),
        ("copy_rates_range", ["EURUSD", 1, 0, 2**31 - 1]),  # 68 years of M1 bars
    ):
        reply, rest = client.ask("MT5_READ", function=function, args=args)
        assert reply["error_code"] == "TOO_LARGE" and "ask in parts" in reply["error_msg"], reply
        assert rest == []


def test_copy_ticks_range_over_years_costs_max_rows_ticks(tmp_path: Path, secret: str) -> None:
    with GatewayProcess(tmp_path / "gw", secret=secret, gateway={"max_rows": 50}) as gateway:
        dealer = JsonDealer(gateway.endpoint)
        try:
            years, _ = dealer.ask(
                "MT5_READ", function="copy_ticks_range", args=["EURUSD", 0, 2**31 - 1, -1]
            )
            assert years["error_code"] == "TOO_LARGE", years
            now = int(time.time())
            recent, rest = dealer.ask(
                "MT5_READ", function="copy_ticks_range", args=["EURUSD", now - 2, now, -1]
            )
            assert recent["status"] == "OK" and recent["rows"]["rows"] <= 50, recent
            ticks = np.frombuffer(rest[0], dtype=np.dtype(TICKS_DTYPE))
            assert (ticks["time"] >= now - 2).all() and (ticks["time"] <= now).all()
        finally:
            dealer.close()


def test_the_worker_calls_nothing_but_the_reads() -> None:
    # Behind the gateway's own refusal, the worker's: a name that is not a read never
    # reaches getattr.
    with SimTerminal(config=SimConfig(always_open=True)) as terminal:
        assert terminal.initialize()
        adapter = TerminalAdapter(terminal)
        for function in ("order_send", "initialize", "__class__"):
            call = Mt5Call(function=function, args=[BUY], kwargs={}, max_rows=10)
            with pytest.raises(TerminalRefused, match="not a read"):
                call_read(adapter, call)
        assert terminal.positions_total() == 0 and terminal.history_orders_total(0, 2**31) == 0
