"""``inf_bridge.mt5``: the ``MetaTrader5`` package's surface on Linux, through a real gateway
process: its namespace, its reads answered as the package answers them, ``initialize`` that
checks the account instead of logging in, several threads at once, and a script written for
the package run unchanged, with the same output as on the simulator in-process."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import inf_bridge.mt5
from gtw_server.curve import keygen
from gtw_server.terminal.sim import install_as_metatrader5, uninstall_metatrader5
from gtw_server.terminal.sim.module import FUNCTIONS
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge.errors import OutcomeUnknown
from inf_bridge.mt5 import orders
from inf_bridge.mt5 import session as session_module
from protocol import RATES_DTYPE, READ_FUNCTIONS
from protocol import mt5_constants as constants
from protocol.mt5_structs import STRUCT_TYPES

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _module_on(tmp_path: Path, secret: str, **sim: Any) -> Iterator[Any]:
    """The module initialized on a gateway of its own, on a simulator with ``sim``."""
    module: Any = inf_bridge.mt5
    with GatewayProcess(tmp_path / "gw", secret=secret, sim={"seed": 1, **sim}) as gateway:
        assert module.initialize(endpoint=gateway.endpoint, secret=secret), module.last_error()
        try:
            yield module
        finally:
            module.shutdown()


@pytest.fixture
def mt5(gateway: GatewayProcess, secret: str) -> Iterator[ModuleType]:
    module = inf_bridge.mt5.install()
    assert module.initialize(endpoint=gateway.endpoint, secret=secret), module.last_error()
    yield module
    module.shutdown()
    inf_bridge.mt5.uninstall()


def test_the_namespace_is_the_packages_but_its_orders() -> None:
    module: Any = inf_bridge.mt5
    functions = {name for name in FUNCTIONS if callable(getattr(module, name, None))}
    assert functions == set(FUNCTIONS)
    assert set(READ_FUNCTIONS) < functions
    for name in constants.__all__:
        if isinstance(value := getattr(constants, name), int):
            assert getattr(module, name) == value, name
    assert all(getattr(module, kind.__name__) is kind for kind in STRUCT_TYPES)
    assert module.__version__ == constants.PACKAGE_VERSION
    assert module.__author__ == "MetaQuotes Ltd."


def test_functions_copied_into_a_class_are_not_bound(mt5: Any) -> None:
    # aiomql's BaseMeta copies the module's functions into a class, as attributes.
    copied: Any = type(
        "Copied", (), {name: getattr(mt5, name) for name in ("account_info", "version")}
    )
    assert copied().account_info().login == mt5.account_info().login
    assert copied.version()[0] == 500


def test_reads_answer_as_the_package_does(mt5: Any) -> None:
    account = mt5.account_info()
    assert type(account).__name__ == "AccountInfo" and account.n_fields == 28
    assert mt5.last_error() == (1, "Success")
    bars = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M5, 0, 30)
    assert bars.dtype == np.dtype(RATES_DTYPE) and len(bars) == 30 and bars.flags.writeable
    assert mt5.positions_get() == () and mt5.positions_total() == 0
    # The package's own forms: positions_get takes no positional argument...
    assert mt5.positions_get("EURUSD") is None
    assert mt5.last_error() == (-2, "Unnamed arguments not allowed")
    # ...and symbol_select's enable is positional only.
    with pytest.raises(TypeError, match="enable"):
        mt5.symbol_select("EURUSD", enable=True)
    ask = mt5.symbol_info_tick("EURUSD").ask
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1}
    checked = mt5.order_check(request | {"type": mt5.ORDER_TYPE_BUY, "price": ask})
    assert type(checked.request).__name__ == "TradeRequest" and checked.request.price == ask
    # A datetime is read as the package reads it: its timestamp, in whole seconds.
    now = datetime.now(UTC)
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, now, 5)) == 5
    assert mt5.history_deals_get(datetime(2020, 1, 1, tzinfo=UTC), now, group="*USD*") == ()
    # An argument the wire cannot carry: None, as the package's own invalid arguments.
    assert mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, [0], 1) is None
    assert mt5.last_error() == (-2, "Invalid arguments")


def test_before_initialize_and_after_shutdown_there_is_no_connection(mt5: Any) -> None:
    mt5.shutdown()
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")


def test_login_and_server_are_checked_never_used(
    mt5: Any, gateway: GatewayProcess, secret: str
) -> None:
    account = mt5.account_info()
    assert mt5.login(account.login) and mt5.login(account.login, "any", account.server)
    assert not mt5.initialize(endpoint=gateway.endpoint, secret=secret, login=account.login + 1)
    code, message = mt5.last_error()
    assert code == -6 and f"logged in to {account.login} on {account.server}" in message
    assert mt5.account_info() is None  # a failed initialize leaves no connection
    assert mt5.initialize(
        endpoint=gateway.endpoint, secret=secret, login=account.login, server=account.server
    )
    assert not mt5.login(account.login, server="OtherBroker-Live")


def test_a_gateway_that_is_not_there_fails_initialize_in_its_timeout(secret: str) -> None:
    module: Any = inf_bridge.mt5
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    assert not module.initialize(endpoint=endpoint, secret=secret, timeout=500)
    assert module.last_error() == (-10005, "IPC timeout")


def test_threads_share_the_one_connection(mt5: Any) -> None:
    login = mt5.account_info().login

    def read(n: int) -> tuple[int, int]:
        bars = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, n + 1)
        return mt5.account_info().login, len(bars)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(read, range(40)))
    assert answers == [(login, n + 1) for n in range(40)]


SCRIPT = """\
from datetime import datetime, timezone
import MetaTrader5 as mt5
if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()
utc_from = datetime(2020, 1, 10, tzinfo=timezone.utc)
rates = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H4, utc_from, 10)
for rate in rates:
    print(rate)
print("positions", mt5.positions_get(symbol="EURUSD"), mt5.positions_total())
deals = mt5.history_deals_get(datetime(2020, 1, 1), datetime.now(), group="*USD*")
print("deals", deals, mt5.history_deals_total(datetime(2020, 1, 1), datetime.now()))
account = mt5.account_info()
print("account", type(account).__name__, account.currency, account.leverage, account.balance)
print("symbol", mt5.symbol_info("EURUSD").digits, mt5.symbols_total() > 0)
print("error", mt5.last_error())
mt5.shutdown()
"""


def test_a_script_runs_unchanged_with_the_simulators_results(
    tmp_path: Path, gateway: GatewayProcess, secret: str
) -> None:
    script = tmp_path / "docs_examples.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "MT5_BRIDGE_SECRET": secret, "PYTHONPATH": str(ROOT)}
    through = subprocess.run(
        [sys.executable, "-m", "inf_bridge.mt5", "--endpoint", gateway.endpoint, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    simulator = ["-m", "gtw_server.terminal.sim.module", "--sim", "always_open=true"]
    simulator += ["--sim", "server_timezone=UTC"]  # as the gateway fixture's
    in_process = subprocess.run(  # the gateway fixture's simulator: seed 1
        [sys.executable, *simulator, "--sim", "seed=1", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert through.returncode == 0, through.stderr
    assert in_process.returncode == 0, in_process.stderr
    lines = through.stdout.splitlines()
    assert len(lines) == 15 and lines[-1] == "error (1, 'Success')", through.stdout
    assert lines[10] == "positions () 0" and lines[11] == "deals () 1"  # the opening deposit
    assert through.stdout == in_process.stdout  # the same simulator, through the gateway


def test_a_gateway_killed_under_a_script_gives_none_and_a_timeout(
    tmp_path: Path, secret: str
) -> None:
    module: Any = inf_bridge.mt5
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, sim={"seed": 1}).start()
    try:
        assert module.initialize(endpoint=gateway.endpoint, secret=secret, timeout=500)
        assert module.account_info() is not None
        gateway.kill()  # kill -9: the script is not told
        assert module.account_info() is None
        assert module.last_error() == (-10005, "IPC timeout")
    finally:
        module.shutdown()
        gateway.stop()


def test_order_check_takes_the_keyword_form_too(mt5: Any) -> None:
    ask = mt5.symbol_info_tick("EURUSD").ask
    fields = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": 0}
    fields |= {"price": ask, "sl": 0.0, "tp": 0.0, "deviation": 10, "magic": 7}
    fields |= {"comment": "check", "type_time": 0, "type_filling": 0}  # 12 keywords
    checked = mt5.order_check(**fields)
    assert checked is not None, mt5.last_error()
    assert checked.request.magic == 7 and checked.request.comment == "check"


def test_a_shutdown_in_one_thread_ends_the_reads_of_the_others_cleanly(mt5: Any) -> None:
    def read() -> list[Any]:
        return [mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 50) for _ in range(30)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        readers = [pool.submit(read) for _ in range(4)]
        mt5.shutdown()
        answers = [bars for reader in readers for bars in reader.result(timeout=60)]
    # Each read got its bars or None, never an exception; after the shutdown, None.
    assert all(bars is None or len(bars) == 50 for bars in answers)
    assert answers[-1] is None
    # (The error slot is the process's, as the package's: ask it after a call of one's own.)
    assert mt5.account_info() is None and mt5.last_error() == (-10004, "No IPC connection")


def _child_reads(queue: Any) -> None:
    module: Any = inf_bridge.mt5
    queue.put((module.account_info(), module.last_error()))


def test_a_forked_child_has_no_connection_and_does_not_hang(mt5: Any) -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_reads, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == (None, (-10004, "No IPC connection"))
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert mt5.account_info() is not None  # the parent's connection is untouched


EXAMPLE = ROOT / "examples" / "metatrader5_on_linux.py"


def _docs_order_send_example() -> str:
    """MetaQuotes' ``order_send`` example, as published (examples/metatrader5_on_linux.py)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    after = text.split("# ---- order_send (mt5ordersend_py)", 1)[1].split("\n", 1)[1]
    return after.split("# fmt: on", 1)[0]


def test_the_docs_order_send_example_runs_unchanged_through_the_gateway(
    tmp_path: Path, gateway: GatewayProcess, secret: str
) -> None:
    script = tmp_path / "order_send_example.py"
    script.write_text(_docs_order_send_example(), encoding="utf-8")
    env = {**os.environ, "MT5_BRIDGE_SECRET": secret, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "inf_bridge.mt5", "--endpoint", gateway.endpoint, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # USDJPY bought with ORDER_FILLING_RETURN, as the docs have it, then closed by position.
    assert any(line.startswith("1. order_send(): by USDJPY 0.1 lots at ") for line in lines)
    assert any(
        line.startswith("2. order_send done,  OrderSendResult(retcode=10009") for line in lines
    )
    (done,) = [line for line in lines if line.startswith("2. order_send done")]
    assert "comment='python script open'" in done  # the request's, as the script wrote it
    assert "       traderequest: comment=python script close" in lines
    assert any(line.startswith("4. position #") and "retcode=10009" in line for line in lines)
    assert "order_send failed" not in result.stdout


def test_order_send_maps_every_action_onto_its_command(mt5: Any) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    sold = mt5.order_send(
        {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.2, "type": 1}
        | {"price": tick.bid, "deviation": 20, "magic": 7, "comment": "mine"}
    )
    assert sold.retcode == mt5.TRADE_RETCODE_DONE and sold.deal > 0 and sold.volume == 0.2
    assert sold.request.comment == "mine" and mt5.last_error() == (1, "Success")
    (position,) = mt5.positions_get()
    assert position.ticket == sold.order and position.magic == 7
    sl, tp = round(tick.bid + 0.01, 5), round(tick.bid - 0.01, 5)
    same = mt5.order_send({"action": mt5.TRADE_ACTION_SLTP, "position": position.ticket})
    assert same.retcode == mt5.TRADE_RETCODE_NO_CHANGES  # both levels 0 already
    moved = mt5.order_send({"action": 6, "position": position.ticket, "sl": sl, "tp": tp})
    assert moved.retcode == mt5.TRADE_RETCODE_DONE and mt5.positions_get()[0].sl == sl
    # The terminal's refusal is a result, with its retcode, as the package's.
    wrong = mt5.order_send({"action": 6, "position": position.ticket, "sl": tp, "tp": sl})
    assert wrong.retcode == mt5.TRADE_RETCODE_INVALID_STOPS and wrong.request.sl == tp
    limit = round(tick.ask - 0.005, 5)
    placed = mt5.order_send(
        {"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.1}
        | {"type": mt5.ORDER_TYPE_BUY_LIMIT, "price": limit, "type_time": mt5.ORDER_TIME_DAY}
    )
    assert placed.retcode == 10009 and mt5.orders_get()[0].ticket == placed.order
    lower = round(limit - 0.001, 5)
    changed = mt5.order_send({"action": 7, "order": placed.order, "price": lower})
    assert changed.retcode == 10009 and mt5.orders_get()[0].price_open == lower
    removed = mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": placed.order})
    assert removed.retcode == 10009 and mt5.orders_total() == 0
    closed = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.2, "type": 0}
        | {"position": position.ticket, "price": mt5.symbol_info_tick("EURUSD").ask}
    )
    assert closed.retcode == mt5.TRADE_RETCODE_DONE and mt5.positions_total() == 0


def test_order_send_refuses_as_the_binding_does_and_sends_nothing(mt5: Any) -> None:
    deal = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
    assert mt5.order_send(deal | {"volume": 1}) is None  # an int where a float is
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert mt5.order_send(deal | {"comment": "c" * 30}) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')
    assert mt5.order_send(deal, volume=0.2) is None
    assert mt5.last_error() == (-2, "Unnamed arguments not allowed")
    unknown = mt5.order_send(deal | {"type": mt5.ORDER_TYPE_BUY_LIMIT})  # not a DEAL's type
    assert unknown.retcode == mt5.TRADE_RETCODE_INVALID
    assert mt5.positions_total() == 0 and mt5.history_orders_total(0, 2**31 - 1) == 0
    assert mt5.order_send(**deal).retcode == mt5.TRADE_RETCODE_DONE  # the keyword form


def test_the_packages_buy_sell_and_close_helpers_trade_through_the_gateway(mt5: Any) -> None:
    bought = mt5.Buy("EURUSD", 0.1)
    sold = mt5.Sell("GBPUSD", 0.2)
    assert bought.retcode == sold.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.positions_total() == 2
    assert mt5.Close("EURUSD") is True and mt5.positions_total() == 1
    assert mt5.Close("GBPUSD", ticket=sold.order) is True and mt5.positions_total() == 0


def test_the_risk_limits_of_the_client_config_refuse_locally(
    tmp_path: Path, gateway: GatewayProcess, secret: str
) -> None:
    config = tmp_path / "client.toml"
    config.write_text("[risk]\nmax_order_volume = 0.5\n", encoding="utf-8")
    module: Any = inf_bridge.mt5
    assert module.initialize(endpoint=gateway.endpoint, secret=secret, config=str(config))
    try:
        refused = module.order_send({"action": 1, "symbol": "EURUSD", "volume": 1.0, "type": 0})
        assert refused.retcode == module.TRADE_RETCODE_REJECT
        assert "RiskMonitor" in refused.comment and "MAX_ORDER_VOLUME" in refused.comment
        assert module.positions_total() == 0  # never sent
    finally:
        module.shutdown()


def test_a_lost_reply_executes_the_order_once(tmp_path: Path, secret: str) -> None:
    # The terminal executes the first order and dies before replying: the gateway reconciles
    # it from the history and answers the same uuid, which the module retried.
    with _module_on(tmp_path, secret, lose_reply_on_order=1) as module:
        bought = module.Buy("EURUSD", 0.1)
        assert bought.retcode == module.TRADE_RETCODE_DONE, module.last_error()
        assert module.positions_total() == 1


def test_an_order_executed_but_untold_is_answered_when_sent_again(
    mt5: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first order executes, and its answer is lost past the Bridge's retries; the script
    # sends it again at a fresh price: the gateway is asked about the same uuid and answers
    # the fill, nothing is executed twice.
    sent: list[tuple[str, bool]] = []

    async def executed_then_untold(
        bridge: Any, request: Any, uuid: str, *, asked_before: bool = False
    ) -> Any:
        sent.append((uuid, asked_before))
        result = await orders.send(bridge, request, uuid, asked_before=asked_before)
        if len(sent) == 1:
            raise OutcomeUnknown(uuid, "no answer, and the gateway could not tell")
        return result

    monkeypatch.setattr(session_module, "send", executed_then_untold)
    deal = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "comment": "once"}
    ask: float = mt5.symbol_info_tick("EURUSD").ask
    assert mt5.order_send(deal | {"price": ask}) is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    again = mt5.order_send(deal | {"price": ask + 0.0001})  # a retry re-quotes
    assert again.retcode == mt5.TRADE_RETCODE_DONE and again.deal > 0
    assert sent[1] == (sent[0][0], True)  # the same uuid, the gateway asked first
    assert mt5.positions_total() == 1  # executed once
    other = mt5.order_send(deal | {"comment": "another"})  # another order, another uuid
    assert other.retcode == mt5.TRADE_RETCODE_DONE and sent[2][0] != sent[0][0]
    assert mt5.positions_total() == 2


def test_order_send_refuses_what_a_terminal_refuses_before_the_server(mt5: Any) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    bought = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": np.float64(0.1)}
        | {
            "type": 0,
            "price": np.float64(tick.ask),  # numpy floats, as the binding takes them
        }
    )
    assert bought.retcode == mt5.TRADE_RETCODE_DONE
    close = {"action": 1, "symbol": "EURUSD", "position": bought.order}
    same_side = mt5.order_send(close | {"volume": 0.1, "type": 0})  # would add, not close
    assert same_side.retcode == mt5.TRADE_RETCODE_INVALID
    no_volume = mt5.order_send(close | {"type": 1})  # never "all of it"
    assert no_volume.retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
    other_symbol = mt5.order_send(close | {"symbol": "GBPUSD", "volume": 0.1, "type": 1})
    assert other_symbol.retcode == mt5.TRADE_RETCODE_INVALID and mt5.positions_total() == 1
    gone = mt5.order_send(close | {"position": 1, "volume": 0.1, "type": 1})
    assert gone.retcode == mt5.TRADE_RETCODE_POSITION_CLOSED
    pending = {"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.1, "type": 2}
    pending |= {"price": round(tick.ask - 0.005, 5)}
    no_expiry = mt5.order_send(pending | {"type_time": mt5.ORDER_TIME_SPECIFIED})
    assert no_expiry.retcode == mt5.TRADE_RETCODE_INVALID_EXPIRATION
    day = mt5.order_send(
        pending | {"type_time": mt5.ORDER_TIME_SPECIFIED_DAY, "expiration": int(tick.time)}
    )
    assert day.retcode == mt5.TRADE_RETCODE_DONE  # to the end of that day, not that second
    (placed,) = mt5.orders_get()
    assert placed.time_expiration == int(tick.time) - int(tick.time) % 86_400 + 86_399
    no_price = mt5.order_send({"action": mt5.TRADE_ACTION_MODIFY, "order": placed.ticket})
    assert no_price.retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    assert mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "position": -1}) is None
    assert mt5.last_error() == (-2, 'Invalid "position" argument')  # unsigned in the binding
    assert mt5.orders_total() == 1 and mt5.positions_total() == 1


def test_a_placed_order_answers_the_terminals_retcode(tmp_path: Path, secret: str) -> None:
    # TRADE_RETCODE_PLACED, as documented
    with _module_on(tmp_path, secret, pending_retcode=10008) as module:
        ask = module.symbol_info_tick("EURUSD").ask
        placed = module.order_send(
            {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2}
            | {"price": round(ask - 0.005, 5)}
        )
        assert placed.retcode == module.TRADE_RETCODE_PLACED
        assert placed.volume == placed.price == 0.0 and placed.order > 0  # no deal


def test_the_result_is_the_terminals_whole_answer(mt5: Any) -> None:
    first = mt5.Buy("EURUSD", 0.1)
    second = mt5.Sell("EURUSD", 0.1)
    for result in (first, second):
        assert result.retcode == mt5.TRADE_RETCODE_DONE
        assert 0 < result.bid < result.ask and result.retcode_external == 0
    # The terminal's own request counter, not one of the bridge's.
    assert 0 < first.request_id < second.request_id
    assert first.price == first.ask and second.price == second.bid  # filled at its quote


def test_a_requote_gives_the_prices_the_terminal_offers_and_executes_nothing(
    tmp_path: Path, secret: str
) -> None:
    with _module_on(tmp_path, secret, requote_rate=1.0) as module:
        tick = module.symbol_info_tick("EURUSD")
        requoted = module.order_send(
            {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask}
        )
        assert (requoted.retcode, requoted.comment) == (10004, "Requote")
        assert 0 < requoted.bid < requoted.ask and requoted.request_id > 0
        assert requoted.deal == requoted.order == 0 and module.positions_total() == 0


def test_the_filling_policy_and_a_closes_magic_and_comment_go_as_written(mt5: Any) -> None:
    # US500 takes IOC only (Market execution): a request without type_filling is FOK there,
    # as the package sends it, and the terminal refuses it, in process as through the bridge.
    buy = {"action": 1, "symbol": "US500", "volume": 1.0, "type": 0}
    in_process = install_as_metatrader5(always_open=True)
    try:
        assert in_process.initialize() and in_process.order_send(buy).retcode == 10030
    finally:
        uninstall_metatrader5()
    refused = mt5.order_send(buy)
    assert (refused.retcode, refused.comment) == (10030, "Unsupported filling mode")
    assert mt5.order_send(buy | {"type_filling": 9}).retcode == 10030  # not a policy at all
    assert mt5.positions_total() == 0
    bought = mt5.order_send(buy | {"type_filling": mt5.ORDER_FILLING_IOC, "magic": 3})
    assert bought.retcode == mt5.TRADE_RETCODE_DONE
    (order,) = mt5.history_orders_get(ticket=bought.order)
    assert order.type_filling == mt5.ORDER_FILLING_IOC
    close = {"action": 1, "symbol": "US500", "volume": 1.0, "type": 1, "position": bought.order}
    closed = mt5.order_send(close | {"type_filling": 1, "magic": 9, "comment": "exit"})
    assert closed.retcode == mt5.TRADE_RETCODE_DONE and closed.request.comment == "exit"
    opening, closing = mt5.history_deals_get(position=bought.order)
    assert (opening.magic, closing.magic, closing.ticket) == (3, 9, closed.deal)
    assert closing.comment.endswith(" exit")  # after the bridge's tag
    assert closing.entry == mt5.DEAL_ENTRY_OUT and mt5.positions_total() == 0


def _wheel_init(into: Path) -> str:
    """The package's own ``__init__.py``, from its wheel on PyPI (fetched as any fixture)."""
    fetch = [sys.executable, "-m", "pip", "download", f"MetaTrader5=={constants.PACKAGE_VERSION}"]
    fetch += ["--no-deps", "--only-binary=:all:", "--platform", "win_amd64"]
    fetch += ["--python-version", "3.11", "--quiet", "-d", str(into)]
    run = subprocess.run(fetch, capture_output=True, text=True, timeout=120, check=False)
    if run.returncode != 0:
        pytest.skip(f"the MetaTrader5 wheel could not be fetched: {run.stderr[-300:]}")
    (wheel,) = into.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read("MetaTrader5/__init__.py").decode("utf-8")


def test_metaquotes_own_buy_sell_and_close_from_the_wheel_trade_through_the_gateway(
    mt5: Any, tmp_path: Path
) -> None:
    # The wheel's __init__.py, its binary's names (``from ._core import *``) given by this
    # module instead: MetaQuotes' Buy, Sell and Close, as published, call our functions.
    source = _wheel_init(tmp_path).replace("from ._core import *", "pass")
    package: dict[str, Any] = dict(vars(mt5))
    exec(compile(source, "MetaTrader5/__init__.py", "exec"), package)
    assert package["__version__"] == mt5.__version__
    assert package["TRADE_RETCODE_DONE"] == mt5.TRADE_RETCODE_DONE
    assert package["Buy"] is not mt5.Buy  # the wheel's own, not this project's copy
    bought = package["Buy"]("EURUSD", 0.1)
    sold = package["Sell"]("GBPUSD", 0.2)
    assert bought.retcode == sold.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.positions_total() == 2
    assert package["Close"]("EURUSD") is True and mt5.positions_total() == 1
    assert package["Close"]("GBPUSD", ticket=sold.order) is True and mt5.positions_total() == 0


def test_initialize_takes_the_curve_keys_and_a_stranger_gets_nothing(
    tmp_path: Path, secret: str
) -> None:
    keys = tmp_path / "keys"
    for name in ("gateway", "alice", "mallory"):
        keygen(keys, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(keys / "alice.key", allowed / "alice.key")
    curve = (keys / "gateway.key_secret", allowed, keys / "alice.key_secret")
    module: Any = inf_bridge.mt5
    with GatewayProcess(tmp_path / "gw", secret=secret, curve=curve) as gateway:
        server_key = str(keys / "gateway.key")
        try:
            assert module.initialize(
                endpoint=gateway.endpoint,
                secret=secret,
                curve_server_key=server_key,
                curve_client_cert=str(keys / "alice.key_secret"),
            ), module.last_error()
            assert module.account_info() is not None
            module.shutdown()
            assert not module.initialize(  # a key not on the gateway's list: no answer
                endpoint=gateway.endpoint,
                secret=secret,
                timeout=500,
                curve_server_key=server_key,
                curve_client_cert=str(keys / "mallory.key_secret"),
            )
            assert module.last_error() == (-10005, "IPC timeout")
        finally:
            module.shutdown()
