"""``install_as_metatrader5``: the simulator as the ``MetaTrader5`` module, for code written for
the official package (its namespace as docs/MT5_API.md sections 0 and 1 describe it)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from gtw_server.terminal.sim.module import install_as_metatrader5, uninstall_metatrader5
from protocol import mt5_constants as constants
from protocol.mt5_structs import STRUCT_TYPES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "metatrader5_on_linux.py"
# The constants as read from the 5.0.6231 wheel (the team's reference, next to the repository).
# Where the other tests read the reference too.
REFERENCE_CONSTANTS = Path("/work/shared/reference/mt5_constants.json")

# The package's functions: the binary's (docs/MT5_API.md section 1), then its __init__'s.
PACKAGE_FUNCTIONS = [
    "initialize",
    "login",
    "shutdown",
    "version",
    "last_error",
    "account_info",
    "terminal_info",
    "symbols_total",
    "symbols_get",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "market_book_add",
    "market_book_get",
    "market_book_release",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "copy_ticks_from",
    "copy_ticks_range",
    "orders_total",
    "orders_get",
    "order_calc_margin",
    "order_calc_profit",
    "order_check",
    "order_send",
    "positions_total",
    "positions_get",
    "history_orders_total",
    "history_orders_get",
    "history_deals_total",
    "history_deals_get",
    "Buy",
    "Sell",
    "Close",
]


@pytest.fixture(autouse=True)
def restore_modules() -> Iterator[None]:
    """Uninstalls after each test and leaves ``sys.modules["MetaTrader5"]`` as it found it."""
    before = sys.modules.get("MetaTrader5")
    yield
    uninstall_metatrader5()
    if before is None:
        sys.modules.pop("MetaTrader5", None)
    else:
        sys.modules["MetaTrader5"] = before


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )


def test_import_gives_the_installed_module() -> None:
    module = install_as_metatrader5(always_open=True)
    import MetaTrader5

    assert MetaTrader5 is module
    assert importlib.import_module("MetaTrader5") is module
    assert type(module) is ModuleType and module.__name__ == "MetaTrader5"
    spec = importlib.util.find_spec("MetaTrader5")  # how code checks that the package is there
    assert spec is not None and spec.name == "MetaTrader5"
    assert re.fullmatch(r"5\.0\.\d+", module.__version__)
    assert module.__author__ == "MetaQuotes Ltd."
    assert "simulated" in repr(module)


def test_the_namespace_holds_every_function_as_a_plain_attribute() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    namespace = vars(mt5)
    for name in PACKAGE_FUNCTIONS:
        function = namespace[name]  # in __dict__ itself: no module __getattr__
        assert callable(function), name
        assert function.__name__ == name and function.__qualname__ == name
        assert function.__module__ == "MetaTrader5"
        assert function.__doc__, name
        assert inspect.isroutine(function), name
        assert name in repr(function)
    assert list(inspect.signature(mt5.Buy).parameters) == [
        "symbol",
        "volume",
        "price",
        "comment",
        "ticket",
    ]
    close = inspect.signature(mt5.Close).parameters.values()
    assert [(parameter.name, parameter.kind.name) for parameter in close] == [
        ("symbol", "POSITIONAL_OR_KEYWORD"),
        ("comment", "KEYWORD_ONLY"),
        ("ticket", "KEYWORD_ONLY"),
    ]
    assert "__getattr__" not in namespace
    functions = {name for name, value in namespace.items() if callable(value)}
    types = {struct_type.__name__ for struct_type in STRUCT_TYPES}
    assert functions == set(PACKAGE_FUNCTIONS) | types


def test_the_constants_are_the_packages() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    found = {name: value for name, value in vars(mt5).items() if name.isupper()}
    expected = {
        name: value
        for name in constants.__all__
        if isinstance(value := getattr(constants, name), int)
    }
    assert found == expected
    assert len(found) == 223  # docs/MT5_API.md section 0
    assert "SYMBOL_FILLING_FOK" not in found  # not exported by the package either


@pytest.mark.skipif(not REFERENCE_CONSTANTS.exists(), reason="no shared/reference on this machine")
def test_the_constants_equal_the_reference_read_from_the_wheel() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    reference = json.loads(REFERENCE_CONSTANTS.read_text(encoding="utf-8"))
    found = {name: value for name, value in vars(mt5).items() if name.isupper()}
    assert found == reference


def test_the_structure_types_are_the_results_types() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    assert mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    assert isinstance(tick, mt5.Tick)
    result = mt5.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.1,
            "type": mt5.ORDER_TYPE_BUY,
            "price": tick.ask,
            "deviation": 10,
        }
    )
    assert isinstance(result, mt5.OrderSendResult) and isinstance(result.request, mt5.TradeRequest)
    assert all(isinstance(position, mt5.TradePosition) for position in mt5.positions_get())


def test_functions_copied_out_of_the_namespace_are_called_as_they_are() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    # As a framework collects them...
    functions = {name: value for name, value in vars(mt5).items() if callable(value)}
    assert functions["initialize"]() is True
    assert functions["account_info"]().balance == 10_000.0
    assert functions["symbol_info"]("EURUSD").name == "EURUSD"

    # ... and as aiomql's BaseMeta does: into a class, then called on an instance. A plain
    # function would be bound there and get the instance as its first argument.
    class BaseMeta(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> BaseMeta:
            namespace |= {f"_{key}": vars(mt5)[key] for key in PACKAGE_FUNCTIONS}
            namespace |= {key: value for key, value in vars(mt5).items() if key.isupper()}
            return super().__new__(mcs, name, bases, namespace)

    class MetaCore(metaclass=BaseMeta):
        pass

    core: Any = MetaCore()
    assert core._initialize() is True
    assert core._symbol_info_tick("EURUSD").ask > 0
    assert core._Buy("EURUSD", 0.1).retcode == core.TRADE_RETCODE_DONE
    assert core._positions_total() == 1
    assert core._Close("EURUSD") is True
    assert core._last_error() == (1, "Success")


def test_the_packages_buy_sell_and_close_helpers_trade() -> None:
    mt5 = install_as_metatrader5(always_open=True)
    assert mt5.initialize()
    bought = mt5.Buy("EURUSD", 0.1)
    sold = mt5.Sell("EURUSD", 0.2, comment="hedge")
    assert bought.retcode == sold.retcode == mt5.TRADE_RETCODE_DONE
    assert sold.request.comment == "hedge" and sold.request.deviation == 10
    assert mt5.positions_total() == 2  # a hedging account
    assert mt5.Close("EURUSD", ticket=bought.order) is True
    assert [position.ticket for position in mt5.positions_get()] == [sold.order]
    assert mt5.Close("EURUSD") is True
    assert mt5.positions_total() == 0
    assert mt5.Close("EURUSD") is False  # nothing to close


def test_the_helpers_go_through_the_modules_own_functions() -> None:
    # The package's Buy calls the module's order_send, so a patched one sees its request.
    mt5 = install_as_metatrader5(always_open=True)
    assert mt5.initialize()
    sent: list[dict[str, Any]] = []
    order_send = mt5.order_send

    def recording(request: dict[str, Any]) -> Any:
        sent.append(request)
        return order_send(request)

    mt5.order_send = recording
    assert mt5.Buy("USDJPY", 0.1, comment="via module").retcode == mt5.TRADE_RETCODE_DONE
    assert [request["comment"] for request in sent] == ["via module"]


def test_settings_are_the_sim_tables_and_are_checked_as_it_is() -> None:
    mt5 = install_as_metatrader5(
        balance=5_000, leverage=500, margin_mode="netting", seed=3, always_open=True
    )
    assert mt5.initialize()
    account = mt5.account_info()
    assert (account.balance, account.leverage) == (5_000.0, 500)
    assert account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    with pytest.raises(msgspec.ValidationError, match=r"\$\.leverage"):
        install_as_metatrader5(leverage=0)
    with pytest.raises(msgspec.ValidationError, match="unknown field `balanse`"):
        install_as_metatrader5(balanse=1.0)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.margin_mode"):
        install_as_metatrader5(margin_mode="hedge")
    # A refused installation changes nothing: the previous one is still there, and works.
    import MetaTrader5

    assert MetaTrader5 is mt5
    assert mt5.account_info().balance == 5_000.0


def test_installing_again_closes_the_previous_simulator(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    first = install_as_metatrader5(state, always_open=True)
    assert first.initialize()
    position = first.Buy("EURUSD", 0.1).order
    second = install_as_metatrader5(state, always_open=True)
    import MetaTrader5

    assert MetaTrader5 is second and second is not first
    with pytest.raises(RuntimeError, match="closed"):  # the first SimTerminal is closed
        first.initialize()
    assert first.account_info() is None
    # The state file was handed over: the second one finds the position.
    assert second.initialize()
    assert [p.ticket for p in second.positions_get()] == [position]


def test_an_in_memory_state_is_new_each_time() -> None:
    first = install_as_metatrader5(always_open=True)
    assert first.initialize() and first.Buy("EURUSD", 0.1).retcode == first.TRADE_RETCODE_DONE
    second = install_as_metatrader5(always_open=True)
    assert second.initialize() and second.positions_total() == 0


def test_uninstall_removes_the_module_and_puts_back_what_was_there() -> None:
    assert uninstall_metatrader5() is False  # nothing installed
    install_as_metatrader5(always_open=True)
    assert uninstall_metatrader5() is True
    assert "MetaTrader5" not in sys.modules
    assert uninstall_metatrader5() is False

    placeholder = ModuleType("MetaTrader5")  # e.g. the real package, imported before
    sys.modules["MetaTrader5"] = placeholder
    mt5 = install_as_metatrader5(always_open=True)
    install_as_metatrader5(
        always_open=True
    )  # installing twice still remembers what was there first
    assert sys.modules["MetaTrader5"] is not mt5
    assert uninstall_metatrader5() is True
    assert sys.modules["MetaTrader5"] is placeholder


def test_the_example_runs_the_documentations_examples_unchanged() -> None:
    result = run_python(str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("MetaTrader5 package author:  MetaQuotes Ltd.") == 2
    # copy_rates_from: 10 H4 bars up to 2020-01-10 00:00 UTC, printed 'as is'
    start = lines.index("Display obtained data 'as is'")
    bars = lines[start + 1 : start + 11]
    assert [int(bar[1:].split(",")[0]) for bar in bars] == list(
        range(1578484800, 1578614401, 4 * 3600)
    )
    # order_send: USDJPY bought with ORDER_FILLING_RETURN, then closed
    assert any(line.startswith("1. order_send(): by USDJPY 0.1 lots at ") for line in lines)
    assert any(
        line.startswith("2. order_send done,  OrderSendResult(retcode=10009") for line in lines
    )
    ticket = re.search(r"opened position with POSITION_TICKET=(\d+)", result.stdout)
    assert ticket is not None
    assert f"4. position #{ticket[1]} closed, OrderSendResult(retcode=10009" in result.stdout
    assert "   comment=Request executed" in lines
    assert f"       traderequest: position={ticket[1]}" in lines
    assert "order_send failed" not in result.stdout


def test_the_runner_runs_an_unmodified_script(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text("SYMBOL = 'EURUSD'\n", encoding="utf-8")
    script = tmp_path / "strategy.py"
    script.write_text(
        "import sys\n"
        "import MetaTrader5 as mt5\n"
        "from settings import SYMBOL\n"  # its own directory is on sys.path, as usual
        "if not mt5.initialize():\n"
        "    quit()\n"
        "account = mt5.account_info()\n"
        "print(account.balance, account.margin_mode, sys.argv[1:], __name__)\n"
        "print(mt5.Buy(SYMBOL, 0.1).comment)\n",
        encoding="utf-8",
    )
    module = "gtw_server.terminal.sim.module"
    result = run_python(
        "-m",
        module,
        "--sim",
        "balance=1234",
        "--sim",
        "always_open=true",
        "--sim",
        "margin_mode=netting",
        str(script),
        "-x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1234.0 0 ['-x'] __main__", "Request executed"]

    refused = run_python("-m", module, "--sim", "leverage=0", str(script))
    assert refused.returncode == 2 and "$.leverage" in refused.stderr
