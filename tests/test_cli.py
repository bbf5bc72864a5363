"""The operator CLI, `mt5-bridge`, driven as an operator would: against a real gateway, with the
configuration from files, the environment and flags. No output ever shows the secret, and no
error is ever a traceback."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pytest
from loguru import logger

import inf_bridge.cli
import inf_bridge.cli.commands
import inf_bridge.cli.views
from gtw_server.curve import keygen
from gtw_server.terminal import constants
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, GatewayTimeout, Position, RequestRefused
from inf_bridge.breaker import CircuitBreaker
from inf_bridge.cli import Exit, build_parser, main
from inf_bridge.config import ConfigError, default_config_file, load_config
from protocol import RATES_DTYPE, Deal, Order, Secret, SymbolInfo, Tick


class Run(NamedTuple):
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CLI = Callable[..., Run]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MT5_BRIDGE_* variable and no user config file from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("MT5_BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def secret_file(tmp_path: Path, secret: str) -> Path:
    path = tmp_path / "secret"
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], secret: str) -> CLI:
    """``cli("ping")``: run ``main`` in this process; check what every run must satisfy."""

    def run(*argv: str) -> Run:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert secret not in out + err
        assert "Traceback" not in err
        if code != Exit.OK and "[y/N]" not in err:  # a question and its table come first
            assert len(err.strip().splitlines()) == 1, err  # one clear line
        return Run(code, out, err)

    return run


@pytest.fixture
def connected(
    gateway: GatewayProcess, secret_file: Path, monkeypatch: pytest.MonkeyPatch
) -> GatewayProcess:
    """Point the CLI at the test gateway through the environment, as an operator would."""
    monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
    monkeypatch.setenv("MT5_BRIDGE_SECRET_FILE", str(secret_file))
    return gateway


class Terminal:
    """A stdin that is a terminal, where the operator types ``answer``."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


# -- commands against a gateway --------------------------------------------------------------


def test_ping_account_positions(connected: GatewayProcess, cli: CLI) -> None:
    ping = cli("ping")
    assert ping.code == Exit.OK
    assert ping.out.startswith(f"OK {connected.endpoint}") and "terminal connected" in ping.out
    assert "secret accepted" in ping.out  # the PING was signed, and the gateway took it
    pong = cli("ping", "--json").json()
    assert pong["endpoint"] == connected.endpoint and pong["mt5_connected"] is True
    assert pong["authenticated"] is True
    assert 0 < pong["rtt_ms"] < 1000

    account = cli("account")
    assert "SimBroker-Demo" in account.out and "DEMO" in account.out
    assert "10,000.00" in account.out
    assert cli("--json", "account").json()["login"] == 5000001

    assert cli("positions").out == "No open positions.\n"
    assert cli("positions", "--json").json() == []


def test_open_close_and_ask_about_an_order(connected: GatewayProcess, cli: CLI) -> None:
    opened = cli("open", "EURUSD", "buy", "0.3", "--sl", "1.05", "--comment", "[manual]")
    assert opened.code == Exit.OK and opened.out.startswith("FILLED BUY 0.3 EURUSD at ")
    fill = cli("open", "GBPUSD", "SELL", "0.1", "--uuid", "cli-open-1", "--magic", "7", "--json")
    filled = fill.json()
    assert filled["uuid"] == "cli-open-1" and filled["volume"] == 0.1 and not filled["duplicate"]

    again = cli("open", "GBPUSD", "SELL", "0.1", "--uuid", "cli-open-1", "--magic", "7")
    assert again.code == Exit.OK and "not executed again" in again.out  # exactly once

    positions = cli("positions", "--json").json()
    assert sorted((p["symbol"], p["type"], p["volume"]) for p in positions) == [
        ("EURUSD", "BUY", 0.3),
        ("GBPUSD", "SELL", 0.1),
    ]
    table = cli("positions").out
    assert "[manual]" in table  # data is printed as it is, never read as markup
    assert "2 positions, 0.40 lots" in table
    assert [p["symbol"] for p in cli("positions", "--symbol", "GBPUSD", "--json").json()] == [
        "GBPUSD"
    ]

    state = cli("order", "cli-open-1", "--json")
    assert state.code == Exit.OK
    assert state.json()["status"] == "FILLED" and state.json()["ticket"] == filled["ticket"]
    assert "FILLED" in cli("order", "cli-open-1").out

    (eurusd,) = (p for p in positions if p["symbol"] == "EURUSD")
    part = cli("close", str(eurusd["ticket"]), "--volume", "0.1", "--json").json()
    assert part["action"] == "CLOSE" and part["volume"] == 0.1
    closed = cli("close", str(eurusd["ticket"]))
    assert closed.code == Exit.OK and closed.out.startswith("CLOSED 0.2 lots at ")

    gone = cli("close", str(eurusd["ticket"]))
    assert gone.code == Exit.REFUSED and "POSITION_NOT_FOUND" in gone.err
    unknown = cli("order", "never-sent", "--json")
    assert unknown.code == Exit.REFUSED
    assert unknown.json()["error_code"] == "ORDER_NOT_FOUND"


def test_a_rejected_order_exits_1(connected: GatewayProcess, cli: CLI) -> None:
    rejected = cli("open", "EURUSD", "BUY", "0.001", "--uuid", "too-small-1")
    assert rejected.code == Exit.REFUSED
    assert rejected.err.startswith("mt5-bridge: open: MT5_REJECTED: ")
    assert "10014" in rejected.err
    error = cli("--json", "open", "EURUSD", "BUY", "0.001", "--uuid", "too-small-2").json()
    assert error["exit_code"] == 1 and error["error_code"] == "MT5_REJECTED"
    assert error["retcode"] == 10014 and error["uuid"] == "too-small-2"


def test_halt_refuses_new_orders_until_resume(connected: GatewayProcess, cli: CLI) -> None:
    ticket = cli("open", "EURUSD", "BUY", "0.1", "--json").json()["ticket"]
    halted = cli("halt", "--reason", "news at 14:30")
    assert halted.code == Exit.OK and halted.out.startswith("HALTED")
    refused = cli("open", "EURUSD", "BUY", "0.1")
    assert refused.code == Exit.REFUSED and "TRADING_HALTED" in refused.err
    assert "news at 14:30" in refused.err
    assert cli("close", str(ticket)).code == Exit.OK  # reducing risk is always allowed
    assert cli("resume", "--json").json() == {"halted": False}
    assert cli("open", "EURUSD", "BUY", "0.1").code == Exit.OK


def halted(cli: CLI) -> bool:
    return bool(cli("ping", "--json").json()["gateway"].get("halted"))


def test_flatten_halts_then_closes_everything(connected: GatewayProcess, cli: CLI) -> None:
    assert cli("flatten", "--yes", "--no-halt").out == "No open positions.\n"
    assert not halted(cli)
    for symbol in ("EURUSD", "EURUSD", "USDJPY"):
        assert cli("open", symbol, "BUY", "0.1").code == Exit.OK

    only = cli("flatten", "--symbol", "USDJPY", "--yes", "--json")
    assert [(r["symbol"], r["result"]) for r in only.json()] == [("USDJPY", "CLOSED")]
    assert "the gateway is HALTED" in only.err and "mt5-bridge resume" in only.err
    assert halted(cli)  # first, so that no strategy could open a position meanwhile
    refused = cli("open", "EURUSD", "BUY", "0.1")  # and it stays on until resume
    assert refused.code == Exit.REFUSED and "TRADING_HALTED" in refused.err
    everything = cli("flatten", "-y")
    assert everything.code == Exit.OK and everything.out.count("CLOSED") == 2
    assert cli("positions", "--json").json() == []
    assert cli("resume").code == Exit.OK


def test_with_an_operator_key_only_it_halts_resumes_and_flattens(
    tmp_path: Path, secret_file: Path, secret: str, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = tmp_path / "operator-secret"
    operator.write_text(f"operator-{secret}\n", encoding="utf-8")
    operator.chmod(0o600)
    with GatewayProcess(
        tmp_path / "gw", secret=secret, gateway={"operator_secret_file": str(operator)}
    ) as gateway:
        monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
        monkeypatch.setenv("MT5_BRIDGE_SECRET_FILE", str(secret_file))
        assert cli("open", "EURUSD", "BUY", "0.1").code == Exit.OK
        with_order_secret = cli("halt")
        assert with_order_secret.code == Exit.REFUSED
        assert "SIGNATURE_INVALID" in with_order_secret.err
        assert "--operator-secret-file" in with_order_secret.err
        flat = cli("flatten", "--yes")  # it cannot halt first, so it closes nothing
        assert flat.code == Exit.REFUSED and "--no-halt" in flat.err
        assert "could not halt the gateway first, so nothing was closed" in flat.err
        assert len(cli("positions", "--json").json()) == 1 and not halted(cli)

        assert cli("halt", "--operator-secret-file", str(operator)).code == Exit.OK
        assert cli("resume").code == Exit.REFUSED  # a strategy's secret cannot lift it
        monkeypatch.setenv("MT5_BRIDGE_OPERATOR_SECRET_FILE", str(operator))
        flat = cli("flatten", "--yes", "--json")
        assert flat.code == Exit.OK and [r["result"] for r in flat.json()] == ["CLOSED"]
        assert cli("resume").code == Exit.OK and not halted(cli)
        assert f"operator-{secret}" not in (tmp_path / "gw" / "audit.jsonl").read_text()


def test_flatten_counts_a_position_closed_meanwhile_as_closed(
    connected: GatewayProcess, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("open", "EURUSD", "BUY", "0.1")
    real = Bridge.get_positions

    async def with_a_stale_one(self: Bridge, symbol: str | None = None) -> list[Position]:
        positions = await real(self, symbol)
        return [*positions, msgspec.structs.replace(positions[0], ticket=999_999_999)]

    monkeypatch.setattr(Bridge, "get_positions", with_a_stale_one)
    flat = cli("flatten", "--yes", "--json")
    assert flat.code == Exit.OK
    assert [r["result"] for r in flat.json()] == ["CLOSED", "ALREADY_CLOSED"]


def test_flatten_asks_on_a_terminal(
    connected: GatewayProcess, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("open", "EURUSD", "SELL", "0.2")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = cli("flatten")
    assert declined.code == Exit.REFUSED
    question = "Halt the gateway (no new orders from any client) and close this position"
    assert f"{question} (0.20 lots)? [y/N]" in declined.err
    assert "nothing was halted or closed" in declined.err.splitlines()[-1]
    assert len(cli("positions", "--json").json()) == 1 and not halted(cli)
    assert "Close this position (0.20 lots)? [y/N]" in cli("flatten", "--no-halt").err

    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert cli("flatten").code == Exit.OK
    assert cli("positions", "--json").json() == [] and halted(cli)


def test_flatten_without_yes_off_a_terminal_is_refused(cli: CLI) -> None:
    # stdin under pytest is not a terminal; nothing is even connected to.
    refused = cli("flatten", "--endpoint", f"tcp://127.0.0.1:{free_port()}")
    assert refused.code == Exit.USAGE and "--yes" in refused.err


def test_watch_once(connected: GatewayProcess, cli: CLI) -> None:
    cli("open", "XAUUSD", "BUY", "0.05")
    frame = cli("watch", "--once")
    assert frame.code == Exit.OK
    shown = ("HEALTHY", "Breaker closed", "terminal connected", "secret accepted", "XAUUSD")
    for text in shown:
        assert text in frame.out
    snapshot = cli("watch", "--once", "--json").json()
    assert snapshot["health"]["state"] == "HEALTHY" and snapshot["breaker"]["open"] is False
    assert snapshot["health"]["authenticated"] is True
    assert snapshot["account"]["login"] == 5000001
    assert [p["symbol"] for p in snapshot["positions"]] == ["XAUUSD"]
    assert snapshot["error"] is None


def test_interrupted_order_is_named(
    connected: GatewayProcess, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl+C while the order is at the gateway

    monkeypatch.setattr(Bridge, "send_order", interrupted)
    run = cli("open", "EURUSD", "BUY", "0.1", "--uuid", "in-doubt-1")
    assert run.code == Exit.INTERRUPTED
    assert "mt5-bridge order in-doubt-1" in run.err


# -- market data ----------------------------------------------------------------------------


def rows(table: str) -> list[list[str]]:
    """A table's lines after its header and rule, split at spaces."""
    return [line.split() for line in table.splitlines()[2:] if line.strip()]


def test_quote(connected: GatewayProcess, cli: CLI) -> None:
    shown = cli("quote", "EURUSD", "USDJPY", "EURUSD")  # each once, in the order given
    assert shown.code == Exit.OK
    header = shown.out.split("\n", 1)[0].split()
    assert header == ["Symbol", "Bid", "Ask", "Spread", "Time", "(server)"]
    (eurusd, usdjpy) = rows(shown.out)
    assert [eurusd[0], usdjpy[0]] == ["EURUSD", "USDJPY"]
    for (_, bid, ask, spread, _, _), digits, point in ((eurusd, 5, 1e-5), (usdjpy, 3, 1e-3)):
        assert len(bid.split(".")[1]) == len(ask.split(".")[1]) == digits  # the symbol's digits
        assert 0 < float(bid) < float(ask)
        assert int(spread) == round((float(ask) - float(bid)) / point)  # in points

    quotes = cli("quote", "XAUUSD", "EURUSD", "--json").json()
    assert [(q["symbol"], q["digits"]) for q in quotes] == [("XAUUSD", 2), ("EURUSD", 5)]
    for q in quotes:
        assert q["spread"] == round((q["ask"] - q["bid"]) * 10 ** q["digits"]) > 0
        assert q["time"] == q["time_msc"] // 1000 and q["flags"] > 0  # the package's Tick
    assert 1.0 < quotes[1]["bid"] < 1.2  # the simulator's EURUSD, near 1.10000


def test_bars_table_json_and_timeframes(connected: GatewayProcess, cli: CLI) -> None:
    shown = cli("bars", "EURUSD", "M1", "--count", "5")
    assert shown.code == Exit.OK
    assert "5 M1 bars of EURUSD; a bar's time is its opening" in shown.out
    bars = rows(shown.out)[:5]
    assert len(bars) == 5
    for _, _, open_, high, low, close, ticks, spread, real in bars:
        assert all(len(price.split(".")[1]) == 5 for price in (open_, high, low, close))
        assert float(low) <= min(float(open_), float(close)) <= float(high)
        assert int(ticks) > 0 and int(spread) == 15 and real == "0"

    assert len(cli("bars", "EURUSD", "D1", "--json").json()) == 20  # the default count
    for timeframe in ("H1", "TIMEFRAME_H1", "16385", "h1"):  # 16385: TIMEFRAME_H1's value
        hourly = cli("bars", "GBPUSD", timeframe, "--count", "3", "--json").json()
        assert [bar["time"] - hourly[0]["time"] for bar in hourly] == [0, 3600, 7200]
        assert list(hourly[0]) == [
            "time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume"
        ]  # fmt: skip
    # --start counts back from the current bar: the closed ones are the same either way.
    weeks = cli("bars", "EURUSD", "W1", "--count", "3", "--json").json()
    assert cli("bars", "EURUSD", "W1", "--count", "2", "--start", "1", "--json").json() == weeks[:2]


def test_bars_to_csv(connected: GatewayProcess, cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "eurusd-w1.csv"
    written = cli("bars", "EURUSD", "W1", "--count", "30", "--csv", str(path))
    assert written.code == Exit.OK and written.out == f"30 rows written to {path}\n"
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    assert header == "time,open,high,low,close,tick_volume,spread,real_volume"
    assert len(lines) == 30
    with path.open(encoding="utf-8", newline="") as file:
        parsed = list(csv.DictReader(file))
    back = np.array(
        [tuple(row[name] for name, _ in RATES_DTYPE) for row in parsed], dtype=RATES_DTYPE
    )
    assert np.all(np.diff(back["time"]) == 7 * 86_400)  # epoch seconds, a week apart
    assert np.all(back["low"] <= back["high"]) and np.all(back["spread"] == 15)
    as_json = cli("bars", "EURUSD", "W1", "--count", "30", "--json").json()
    # Every closed bar the same as --json gives it (floats written exactly); the current one
    # may have moved meanwhile.
    assert [tuple(bar.values()) for bar in as_json][:-1] == back.tolist()[:-1]

    assert cli("bars", "EURUSD", "W1", "--csv", str(path), "--json").json() == {
        "file": str(path),
        "rows": 20,
    }
    piped = cli("bars", "EURUSD", "D1", "--count", "3", "--csv", "-")
    assert piped.out.splitlines()[0] == header and len(piped.out.splitlines()) == 4
    assert [int(line.split(",")[0]) % 86_400 for line in piped.out.splitlines()[1:]] == [0, 0, 0]
    assert piped.err == "mt5-bridge: bars: 3 rows written to stdout\n"  # stdout is the CSV only


def test_symbols(connected: GatewayProcess, cli: CLI) -> None:
    shown = cli("symbols")
    assert shown.code == Exit.OK
    table = rows(shown.out)[:6]
    assert [row[0] for row in table] == ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "GER40"]
    _, *description, digits, spread, mode, watched = table[0]
    assert " ".join(description) == "Euro vs US Dollar" and digits == "5" and int(spread) > 0
    assert (mode, watched) == ("FULL", "yes")
    assert table[5][-2:] == ["FULL", "no"]  # GER40 is not in the Market Watch
    assert "6 symbols, 5 in the Market Watch" in shown.out

    picked = cli("symbols", "*USD*,!EUR*", "--json").json()
    assert [s["name"] for s in picked] == ["GBPUSD", "USDJPY", "XAUUSD"]
    assert len(picked[0]) == len(msgspec.structs.fields(SymbolInfo))  # every field of the package's
    assert picked[2]["digits"] == 2 and picked[2]["point"] == 0.01

    none = cli("symbols", "ZZZ*")
    assert none.code == Exit.OK and none.out == "No symbol matches ZZZ*.\n"
    assert cli("symbols", "ZZZ*", "--json").json() == []


def test_market_data_bad_arguments(connected: GatewayProcess, cli: CLI, tmp_path: Path) -> None:
    cases = [
        (
            ("bars", "EURUSD", "M7"),
            Exit.USAGE,
            "argument TF: unknown timeframe 'M7'; expected one of M1, M2",
        ),
        (
            ("bars", "EURUSD", "M1", "--count", "0"),
            Exit.USAGE,
            "argument --count: invalid count '0': Expected `int` >= 1",
        ),
        (("bars", "EURUSD", "M1", "--count", "-5"), Exit.USAGE, "invalid count '-5'"),
        (("bars", "EURUSD", "M1", "--start", "-1"), Exit.USAGE, "invalid start '-1'"),
        (
            ("bars", "NOPE", "M1"),
            Exit.REFUSED,
            "bars: SYMBOL_NOT_FOUND: symbol 'NOPE' is not known to the terminal",
        ),
        (
            ("quote", "EURUSD", "NOPE"),
            Exit.REFUSED,
            "quote: SYMBOL_NOT_FOUND: symbol 'NOPE' is not known",
        ),
        (
            ("bars", "EURUSD", "M1", "--count", "250001"),
            Exit.REFUSED,
            "bars: TOO_LARGE: count 250001 is over this gateway's limit of 250000 rows",
        ),
        (("symbols", ""), Exit.USAGE, "invalid group '': Expected `str` of length >= 1"),
        (("quote",), Exit.USAGE, "the following arguments are required: SYMBOL"),
        (
            ("bars", "EURUSD", "M1", "--csv", str(tmp_path / "absent" / "x.csv")),
            Exit.USAGE,
            f"bars: cannot write {tmp_path / 'absent' / 'x.csv'}: No such file or directory",
        ),
    ]
    for argv, code, message in cases:
        run = cli(*argv)
        assert (run.code, run.out) == (code, ""), argv
        assert message in run.err, run.err
    refused = cli("--json", "bars", "NOPE", "H4").json()
    assert refused["exit_code"] == Exit.REFUSED and refused["error_code"] == "SYMBOL_NOT_FOUND"


def test_watch_shows_the_quotes_of_the_positions_symbols(
    connected: GatewayProcess, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("watch", "--once", "--json").json()["quotes"] is None  # no positions: no quotes
    cli("open", "XAUUSD", "BUY", "0.05")
    cli("open", "EURUSD", "SELL", "0.1")
    lines = cli("watch", "--once").out.splitlines()
    (header,) = (i for i, line in enumerate(lines) if line.split()[:3] == ["Symbol", "Bid", "Ask"])
    quotes = rows("\n".join(lines[header:]))
    assert [(row[0], float(row[1]) < float(row[2])) for row in quotes] == [
        ("EURUSD", True),
        ("XAUUSD", True),
    ]
    snapshot = cli("watch", "--once", "--json").json()
    assert sorted(snapshot["quotes"]) == ["EURUSD", "XAUUSD"] and snapshot["quotes_error"] is None
    assert all(0 < q["bid"] < q["ask"] for q in snapshot["quotes"].values())

    async def refused(self: Bridge, *symbols: str) -> dict[str, Tick]:
        raise RequestRefused("MT5_DISCONNECTED", "the terminal could not answer")

    monkeypatch.setattr(Bridge, "quotes", refused)
    frame = cli("watch", "--once")
    assert frame.code == Exit.OK  # the rest of the frame stands
    assert "Quotes unavailable: MT5_DISCONNECTED: the terminal could not answer" in frame.out
    assert "2 positions" in frame.out
    snapshot = cli("watch", "--once", "--json").json()
    assert snapshot["quotes"] is None and snapshot["error"] is None
    assert snapshot["quotes_error"].startswith("MT5_DISCONNECTED")


def test_symbols_trade_modes_and_the_gateways_row_limit(
    tmp_path: Path, secret_file: Path, secret: str, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes = {"GER40": "closeonly", "XAUUSD": "disabled", "USDJPY": "longonly"}
    with GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        sim={"seed": 1, "symbol_trade_modes": modes},
        gateway={"max_rows": 100},
    ) as gateway:
        monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
        monkeypatch.setenv("MT5_BRIDGE_SECRET_FILE", str(secret_file))
        shown = {row[0]: row[-2] for row in rows(cli("symbols").out)[:6]}
        assert shown == {
            "EURUSD": "FULL",
            "GBPUSD": "FULL",
            "USDJPY": "LONGONLY",
            "XAUUSD": "DISABLED",
            "US500": "FULL",
            "GER40": "CLOSEONLY",
        }
        assert len(cli("bars", "EURUSD", "M5", "--count", "100", "--json").json()) == 100
        over = cli("bars", "EURUSD", "M5", "--count", "101")
        assert over.code == Exit.REFUSED
        assert "TOO_LARGE: count 101 is over this gateway's limit of 100 rows" in over.err
        assert "--start" in over.err  # how to ask in parts


# -- pending orders and the history --------------------------------------------------------


def round_trip(cli: CLI, symbol: str = "EURUSD") -> int:
    """Open a position through the CLI and close it; its ticket."""
    ticket: int = cli("open", symbol, "BUY", "0.2", "--comment", "round trip", "--json").json()[
        "ticket"
    ]
    assert cli("close", str(ticket)).code == Exit.OK
    return ticket


def test_history_shows_a_positions_two_deals(connected: GatewayProcess, cli: CLI) -> None:
    ticket = round_trip(cli)
    deals = cli("history", "--json").json()  # the last day: the deposit and the round trip
    assert [(d["type"], d["entry"], d["position_id"]) for d in deals] == [
        (2, 0, 0),  # DEAL_TYPE_BALANCE: the simulated account's deposit
        (0, 0, ticket),  # BUY, IN
        (1, 1, ticket),  # SELL, OUT
    ]
    assert list(deals[1]) == [field.name for field in msgspec.structs.fields(Deal)]
    assert deals[0]["profit"] == 10_000.0 and deals[1]["volume"] == deals[2]["volume"] == 0.2

    shown = cli("history", "--position", str(ticket))
    assert shown.code == Exit.OK
    header = shown.out.split("\n", 1)[0].split()
    assert header[:3] == ["Time", "(server)", "Ticket"] and header[-2:] == ["Reason", "Comment"]
    (opened, closed) = rows(shown.out)[:2]
    # time (a date and a time), ticket, order, position, symbol, type, entry, volume, price...
    assert opened[4:9] == [str(ticket), "EURUSD", "BUY", "IN", "0.20"]
    assert closed[4:9] == [str(ticket), "EURUSD", "SELL", "OUT", "0.20"]
    assert opened[-4] == "EXPERT"  # placed through the API: an expert's
    assert opened[-3].startswith("#") and opened[-2:] == ["round", "trip"]  # the order's tag
    assert f"2 deals of position #{ticket}; the trades' net profit " in shown.out
    assert "times in the trade server's clock" in shown.out
    assert cli("history", "--position", str(ticket), "--json").json() == deals[1:]

    table = cli("history").out  # the deposit: a balance deal, with no symbol, order or price
    deposit = [str(deals[0]["ticket"]), "-", "-", "-", "BALANCE", "IN", "0.00", "-"]
    deposit += ["10,000.00", "0.00", "0.00", "CLIENT", "Deposit"]
    assert rows(table)[0][2:] == deposit
    assert "3 deals of the last day" in table

    # A range in the server's clock: the deals' own times, as the terminal gave them.
    start, end = str(deals[1]["time"]), str(deals[2]["time"])
    ranged = cli("history", "--from", start, "--to", end, "--symbol", "EURUSD", "--json")
    assert ranged.json() == deals[1:]
    assert cli("history", "--symbol", "GBPUSD", "--json").json() == []
    assert cli("history", "--symbol", "GBPUSD").out == "No deals in GBPUSD of the last day.\n"

    orders = cli("history", "--orders", "--position", str(ticket), "--json").json()
    assert [(o["type"], o["state"], o["position_id"]) for o in orders] == [
        (0, 4, ticket),  # ORDER_TYPE_BUY, ORDER_STATE_FILLED
        (1, 4, ticket),
    ]
    assert list(orders[0]) == [field.name for field in msgspec.structs.fields(Order)]
    listed = rows(cli("history", "--orders", "--days", "2").out)[:2]
    assert [row[2:7] for row in listed] == [
        [str(ticket), str(ticket), "EURUSD", "BUY", "FILLED"],
        [str(orders[1]["ticket"]), str(ticket), "EURUSD", "SELL", "FILLED"],
    ]


def test_history_to_csv(connected: GatewayProcess, cli: CLI, tmp_path: Path) -> None:
    ticket = round_trip(cli)
    path = tmp_path / "deals.csv"
    written = cli("history", "--csv", str(path))
    assert written.code == Exit.OK and written.out == f"3 rows written to {path}\n"
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    assert header.split(",") == [field.name for field in msgspec.structs.fields(Deal)]
    assert len(lines) == 3
    with path.open(encoding="utf-8", newline="") as file:
        back = [msgspec.convert(row, Deal, strict=False) for row in csv.DictReader(file)]
    as_json = msgspec.convert(cli("history", "--json").json(), list[Deal])
    assert back == as_json  # every field, floats written exactly
    assert back[0].comment == "Deposit" and back[1].position_id == ticket

    piped = cli("history", "--orders", "--position", str(ticket), "--csv", "-")
    with_orders = list(csv.DictReader(piped.out.splitlines()))
    assert list(with_orders[0]) == [field.name for field in msgspec.structs.fields(Order)]
    assert [int(order["position_id"]) for order in with_orders] == [ticket, ticket]
    assert piped.err == "mt5-bridge: history: 2 rows written to stdout\n"  # stdout: CSV only
    assert cli("history", "--csv", str(path), "--json").json() == {"file": str(path), "rows": 3}


def test_orders_without_pending_orders(connected: GatewayProcess, cli: CLI) -> None:
    none = cli("orders")
    assert none.code == Exit.OK and none.out == "No pending orders.\n"
    assert cli("orders", "--json").json() == []
    assert cli("orders", "EURUSD").out == "No pending orders in EURUSD.\n"
    assert cli("orders", "--group", "*JPY*").out == "No pending orders matching *JPY*.\n"
    assert cli("orders", "--ticket", "7").out == "No pending order #7.\n"
    round_trip(cli)  # a market order is no pending one
    assert cli("orders", "--json").json() == []


def place_pending(state: Path) -> list[int]:
    """Place a BUY_LIMIT on EURUSD and a SELL_STOP on USDJPY in a simulated terminal's state
    file, as a trader's terminal would have, before a gateway opens it; their tickets."""
    terminal = SimTerminal(state_path=str(state), config=SimConfig(seed=1))
    assert terminal.initialize()
    tickets = []
    try:
        for symbol, kind, away, stop, comment in (
            ("EURUSD", constants.ORDER_TYPE_BUY_LIMIT, -0.005, -0.005, "dip"),
            ("USDJPY", constants.ORDER_TYPE_SELL_STOP, -0.5, +0.5, "breakout"),
        ):
            tick = terminal.symbol_info_tick(symbol)
            assert tick is not None
            price = round(tick.bid + away, 3)
            result = terminal.order_send(
                action=constants.TRADE_ACTION_PENDING,
                symbol=symbol,
                type=kind,
                volume=0.1,
                price=price,
                sl=round(price + stop, 3),
                comment=comment,
            )
            assert result is not None and result.retcode == 10009, result
            tickets.append(result.order)
    finally:
        terminal.shutdown()
    return tickets


def test_orders_lists_the_pending_orders(
    tmp_path: Path, secret_file: Path, secret: str, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit, stop = place_pending(tmp_path / "gw" / "sim.sqlite3")
    with GatewayProcess(tmp_path / "gw", secret=secret, sim={"seed": 1}) as gateway:
        monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
        monkeypatch.setenv("MT5_BRIDGE_SECRET_FILE", str(secret_file))
        shown = cli("orders")
        assert shown.code == Exit.OK
        assert shown.out.split("\n", 1)[0].split() == [
            "Ticket", "Symbol", "Type", "Volume", "Price", "SL", "TP", "Expiration", "Comment"
        ]  # fmt: skip
        assert [row[:4] + row[-2:] for row in rows(shown.out)[:2]] == [
            [str(limit), "EURUSD", "BUY_LIMIT", "0.10", "GTC", "dip"],
            [str(stop), "USDJPY", "SELL_STOP", "0.10", "GTC", "breakout"],
        ]
        assert "2 pending orders, 0.20 lots" in shown.out

        orders = cli("orders", "--json").json()
        assert [o["ticket"] for o in orders] == [limit, stop]
        assert list(orders[0]) == [field.name for field in msgspec.structs.fields(Order)]
        assert (orders[0]["type"], orders[0]["state"]) == (2, 1)  # BUY_LIMIT, PLACED
        assert [o["ticket"] for o in cli("orders", "USDJPY", "--json").json()] == [stop]
        assert [o["ticket"] for o in cli("orders", "--group", "EUR*", "--json").json()] == [limit]
        (one,) = cli("orders", "--ticket", str(stop), "--json").json()
        assert (one["ticket"], one["symbol"], one["type"]) == (stop, "USDJPY", 5)  # SELL_STOP
        assert one["sl"] > one["price_open"] and one["comment"] == "breakout"


def test_history_and_orders_bad_arguments(
    connected: GatewayProcess, cli: CLI, tmp_path: Path
) -> None:
    cases = [
        (("history", "--position", "0"), "argument --position: invalid position '0'"),
        (("history", "--days", "0"), "argument --days: invalid days '0': Expected `int` >= 1"),
        (("history", "--days", "-1"), "invalid days '-1'"),
        (
            ("history", "--from", "2026-12-05", "--to", "2026-12-01"),
            "mt5-bridge history: --from 2026-12-05 00:00:00 is after --to 2026-12-01 23:59:59: "
            "the range runs backwards (see mt5-bridge history --help)",
        ),
        (("history", "--from", "2026-12-01"), "--from and --to go together"),
        (("history", "--to", "2026-12-01"), "--from and --to go together"),
        (
            ("history", "--days", "2", "--from", "2026-12-01", "--to", "2026-12-02"),
            "give --days or --from and --to, not both",
        ),
        (
            ("history", "--position", "5", "--symbol", "EURUSD"),
            "--position takes a position's whole history: not with --symbol",
        ),
        (("history", "--symbol", "EUR*"), "--symbol 'EUR*' is a mask: give one symbol's name"),
        (
            ("history", "--from", "yesterday", "--to", "2026-12-01"),
            "argument --from: invalid date 'yesterday'",
        ),
        (
            ("history", "--from", "2026-12-01T00:00+02:00", "--to", "2026-12-02"),
            "give it without a time zone, in the trade server's clock",
        ),
        (
            ("orders", "EURUSD", "--ticket", "5"),
            "give one of SYMBOL, --group and --ticket at most, not SYMBOL and --ticket",
        ),
        (("orders", "--ticket", "0"), "argument --ticket: invalid ticket '0'"),
        (("orders", "--group", ""), "invalid group ''"),
        (
            ("history", "--csv", str(tmp_path / "absent" / "x.csv")),
            f"history: cannot write {tmp_path / 'absent' / 'x.csv'}: No such file or directory",
        ),
    ]
    for argv, message in cases:
        run = cli(*argv)
        assert (run.code, run.out) == (Exit.USAGE, ""), argv
        assert message in run.err, run.err


def test_history_past_the_gateways_row_limit_is_refused(
    tmp_path: Path, secret_file: Path, secret: str, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GatewayProcess(
        tmp_path / "gw", secret=secret, sim={"seed": 1}, gateway={"max_rows": 1}
    ) as gateway:
        monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
        monkeypatch.setenv("MT5_BRIDGE_SECRET_FILE", str(secret_file))
        ticket = cli("open", "EURUSD", "SELL", "0.1", "--json").json()["ticket"]
        over = cli("history")  # the deposit and the SELL: 2 deals, over the limit of 1
        assert (over.code, over.out) == (Exit.REFUSED, "")
        assert "history: TOO_LARGE: 2 deals found, over this gateway's limit of 1" in over.err
        assert "--days, or --from and --to" in over.err  # how to ask for less
        refused = cli("history", "--json").json()
        assert (refused["exit_code"], refused["error_code"]) == (Exit.REFUSED, "TOO_LARGE")
        assert len(cli("history", "--position", str(ticket), "--json").json()) == 1


def test_the_clis_words_are_the_packages_names() -> None:
    """BUY_LIMIT for ORDER_TYPE_BUY_LIMIT's value, and so on: the names of the constants the
    simulated package carries (the real package's), without their prefix."""

    def package(*prefixes: str) -> dict[int, str]:
        return {
            value: name.removeprefix(prefix)
            for name, value in vars(constants).items()
            for prefix in prefixes
            if name.startswith(prefix) and isinstance(value, int)
        }

    views = inf_bridge.cli.views
    assert package("ORDER_TYPE_") == views._ORDER_TYPES
    assert package("ORDER_STATE_") == views._ORDER_STATES
    assert package("ORDER_TIME_") == views._ORDER_TIMES
    assert package("ORDER_REASON_") == views._ORDER_REASONS
    # DEAL_DIVIDEND, DEAL_DIVIDEND_FRANKED and DEAL_TAX are deal types too, named without _TYPE_.
    deal_types = package("DEAL_TYPE_") | {
        value: name.removeprefix("DEAL_")
        for name, value in vars(constants).items()
        if name in ("DEAL_DIVIDEND", "DEAL_DIVIDEND_FRANKED", "DEAL_TAX")
    }
    assert deal_types == views._DEAL_TYPES and len(deal_types) == 18
    assert package("DEAL_ENTRY_") == views._DEAL_ENTRIES
    assert package("DEAL_REASON_") == views._DEAL_REASONS


# -- failures: exit codes and one clear line -------------------------------------------------


def test_unreachable_gateway_exits_3(cli: CLI) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    run = cli("--endpoint", endpoint, "--timeout", "0.3", "account")
    assert run.code == Exit.UNREACHABLE
    assert (
        run.err == f"mt5-bridge: account: no answer from the gateway at {endpoint} within 0.3 s\n"
    )
    assert time.monotonic() - started < 2  # one timeout, not one per attempt
    frame = cli("watch", "--once", "--json", "--endpoint", endpoint, "--timeout", "0.2")
    assert frame.code == Exit.UNREACHABLE
    assert frame.json()["error"].startswith("no answer")


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[bridge]\nrequest_timeout = -1\n", "[bridge] request_timeout"),
        ('[bridge]\nendpoint = "localhost"\n', "[bridge] endpoint"),
        ("[bridge]\nendpiont = 'x'\n", "endpiont"),
        ("[brigde]\n", "brigde"),
        ('[bridge]\nsecret = "hunter2"\n', "must not contain the secret"),
        ("[bridge\n", "not valid TOML"),
    ],
)
def test_bad_config_file_exits_2(tmp_path: Path, cli: CLI, toml: str, named: str) -> None:
    config = tmp_path / "client.toml"
    config.write_text(toml, encoding="utf-8")
    run = cli("--config", str(config), "ping")
    assert run.code == Exit.USAGE and named in run.err
    assert "hunter2" not in run.err


def test_bad_flags_and_environment_exit_2(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = cli("ping", "--endpoint", "localhost:5555")
    assert run.code == Exit.USAGE and run.err.startswith("mt5-bridge: --endpoint: ")
    assert cli("ping", "--config", str(tmp_path / "absent.toml")).code == Exit.USAGE
    monkeypatch.setenv("MT5_BRIDGE_REQUEST_TIMEOUT", "soon")
    run = cli("--json", "ping")
    assert run.code == Exit.USAGE and "MT5_BRIDGE_REQUEST_TIMEOUT" in run.json()["error"]
    usage = cli("open", "EURUSD", "HOLD", "0.1")
    assert usage.code == Exit.USAGE and usage.err.startswith("mt5-bridge open: argument BUY|SELL")
    assert cli("open", "EURUSD", "BUY", "-1").code == Exit.USAGE  # the wire contract's limits
    assert cli("order", "not a uuid!").code == Exit.USAGE


def test_secret_file_missing_or_open_to_others_exits_2(
    cli: CLI, tmp_path: Path, secret_file: Path
) -> None:
    missing = cli("ping", "--secret-file", str(tmp_path / "nope"))
    assert missing.code == Exit.USAGE
    assert "--secret-file: cannot read the secret file" in missing.err
    if os.name == "posix":
        secret_file.chmod(0o640)
        shared = cli("ping", "--secret-file", str(secret_file))
        assert shared.code == Exit.USAGE and f"chmod 600 {secret_file}" in shared.err


def test_signatures_need_the_gateways_secret(
    gateway: GatewayProcess, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT5_BRIDGE_ENDPOINT", gateway.endpoint)
    assert cli("ping").code == Exit.OK  # queries need no secret
    unsigned = cli("open", "EURUSD", "BUY", "0.1")
    assert unsigned.code == Exit.REFUSED and "SIGNATURE_MISSING" in unsigned.err
    assert "no shared secret is configured" in unsigned.err
    monkeypatch.setenv("MT5_BRIDGE_SECRET", "not-the-gateway-secret")
    # The gateway says so at the first, signed, PING: ping fails, and no order is sent.
    ping = cli("ping")
    assert ping.code == Exit.REFUSED
    assert ping.err.startswith("mt5-bridge: ping: the gateway refused this node's secret")
    assert cli("--json", "ping").json()["error_code"] == "SIGNATURE_INVALID"
    wrong = cli("open", "EURUSD", "BUY", "0.1", "--uuid", "wrong-secret-1")
    assert wrong.code == Exit.REFUSED and "SECRET_REFUSED" in wrong.err
    assert "the gateway refused this node's secret" in wrong.err
    frame = cli("watch", "--once")
    assert "secret REFUSED" in frame.out and "Breaker OPEN (SECRET_REFUSED)" in frame.out
    for run in (ping, wrong, frame):
        assert "not-the-gateway-secret" not in run.out + run.err
    monkeypatch.delenv("MT5_BRIDGE_SECRET")
    assert cli("order", "wrong-secret-1").code == Exit.REFUSED  # never sent: not found


def test_curve_keys_reach_the_bridge_only_when_configured(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, endpoint: str, **options: Any) -> None:
            seen.append(options)

        async def __aenter__(self) -> None:
            raise GatewayTimeout("recorded")

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(inf_bridge.cli.commands, "Bridge", Recorder)  # where _run finds it
    assert cli("ping").code == Exit.UNREACHABLE
    assert "curve_server_key" not in seen[-1] and "curve_client_cert" not in seen[-1]
    assert seen[-1]["heartbeat_interval"] >= 3600  # a one-shot command: no heartbeat storm

    for name in ("gateway", "client"):
        keygen(tmp_path / "keys", name)
    config = tmp_path / "client.toml"
    config.write_text(
        '[bridge]\ncurve_server_key = "keys/gateway.key"\n'
        'curve_client_cert = "keys/client.key_secret"\n',
        encoding="utf-8",
    )
    assert cli("--config", str(config), "ping").code == Exit.UNREACHABLE
    assert seen[-1]["curve_server_key"] == str(tmp_path / "keys" / "gateway.key")
    assert seen[-1]["curve_client_cert"] == str(tmp_path / "keys" / "client.key_secret")
    assert "operator_secret" not in seen[-1]

    operator = tmp_path / "operator-secret"
    operator.write_text("the-operator-secret-0123456789", encoding="utf-8")
    operator.chmod(0o600)
    flag = ("--operator-secret-file", str(operator))
    for argv in (("resume", *flag), (*flag, "resume")):  # after the command, or before it
        assert cli(*argv).code == Exit.UNREACHABLE
        assert seen[-1]["operator_secret"] == b"the-operator-secret-0123456789"


# -- the configuration -----------------------------------------------------------------------


def test_config_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_text(
        '[bridge]\nendpoint = "tcp://10.0.0.1:5555"\nrequest_timeout = 3\nsecret_file = "s"\n',
        encoding="utf-8",
    )
    (tmp_path / "s").write_text("from-file-from-file\n", encoding="utf-8")
    (tmp_path / "s").chmod(0o600)
    env = {"MT5_BRIDGE_REQUEST_TIMEOUT": "4.5", "MT5_BRIDGE_ENDPOINT": "tcp://10.0.0.2:5555"}
    loaded = load_config(
        config_file=config, env=env, overrides={"endpoint": "ipc:///tmp/gw", "secret_file": None}
    )
    assert loaded.endpoint == "ipc:///tmp/gw"  # flag over environment over file
    assert loaded.request_timeout == 4.5  # environment over file
    assert loaded.secret == b"from-file-from-file"  # a relative path is next to the config file
    assert isinstance(loaded.secret, Secret) and "from-file-from-file" not in repr(loaded)

    # The secret itself in the environment outranks the file's secret_file...
    from_env = load_config(config_file=config, env={"MT5_BRIDGE_SECRET": " s3cret-s3cret-s3cret\n"})
    assert from_env.secret == b"s3cret-s3cret-s3cret"
    # ...and a secret file in the environment outranks both.
    env = {"MT5_BRIDGE_SECRET": "x", "MT5_BRIDGE_SECRET_FILE": str(tmp_path / "s")}
    assert load_config(config_file=config, env=env).secret == b"from-file-from-file"


def test_the_operators_secret_comes_from_a_private_file_only(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = tmp_path / "operator-secret"
    operator.write_text("the-operator-secret-0123456789\n", encoding="utf-8")
    operator.chmod(0o600)
    config = tmp_path / "client.toml"
    config.write_text('[bridge]\noperator_secret_file = "operator-secret"\n', encoding="utf-8")
    loaded = load_config(config_file=config, env={})
    assert loaded.operator_secret == b"the-operator-secret-0123456789"  # next to the file
    assert "the-operator-secret" not in repr(loaded)
    assert loaded.bridge_options()["operator_secret"] == loaded.operator_secret
    assert "operator_secret" not in load_config(env={}).bridge_options()
    env = {"MT5_BRIDGE_OPERATOR_SECRET_FILE": str(operator)}
    assert load_config(env=env).operator_secret == loaded.operator_secret
    config.write_text('[bridge]\noperator_secret = "hunter2-hunter2"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not contain the secret"):
        load_config(config_file=config, env={})
    if os.name == "posix":
        operator.chmod(0o644)
        shared = cli("halt", "--operator-secret-file", str(operator))
        assert shared.code == Exit.USAGE
        assert shared.err.startswith("mt5-bridge: --operator-secret-file: ")
        assert f"chmod 600 {operator}" in shared.err


def test_default_config_file(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "mt5-bridge" / "config.toml"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert default_config_file(env, platform="linux") is None  # none there: defaults
    user.parent.mkdir(parents=True)
    user.write_text('[bridge]\nendpoint = "tcp://10.9.9.9:5555"\n', encoding="utf-8")
    assert default_config_file(env, platform="linux") == user
    assert load_config(env=env).endpoint == "tcp://10.9.9.9:5555"
    windows = {"APPDATA": str(tmp_path / "xdg")}
    assert default_config_file(windows, platform="win32") == user
    chosen = {**env, "MT5_BRIDGE_CONFIG": str(tmp_path / "elsewhere.toml")}
    assert default_config_file(chosen) == tmp_path / "elsewhere.toml"
    with pytest.raises(ConfigError, match=r"MT5_BRIDGE_CONFIG: config file .* does not exist"):
        load_config(env=chosen)


def test_curve_needs_both_files(tmp_path: Path) -> None:
    key = tmp_path / "gateway.key"
    key.write_text("key", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"needs both .* curve_client_cert is not set"):
        load_config(env={"MT5_BRIDGE_CURVE_SERVER_KEY": str(key)})
    with pytest.raises(ConfigError, match="--curve-client-cert: no such file"):
        load_config(
            env={"MT5_BRIDGE_CURVE_SERVER_KEY": str(key)},
            overrides={"curve_client_cert": str(tmp_path / "absent")},
        )


def test_bad_curve_keys_are_one_line_errors(tmp_path: Path, cli: CLI) -> None:
    keygen(tmp_path, "gateway")
    keygen(tmp_path, "node")
    server, client = str(tmp_path / "gateway.key"), str(tmp_path / "node.key_secret")
    with pytest.raises(ConfigError, match="only a public key"):  # the .key, not .key_secret
        load_config(overrides={"curve_server_key": server, "curve_client_cert": server})
    (tmp_path / "garbage.key").write_text("garbage", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"garbage\.key"):
        load_config(
            overrides={
                "curve_server_key": str(tmp_path / "garbage.key"),
                "curve_client_cert": client,
            }
        )
    if os.name == "posix":
        os.chmod(client, 0o644)
        with pytest.raises(ConfigError, match="chmod"):
            load_config(overrides={"curve_server_key": server, "curve_client_cert": client})
    # The flags reach the same checks, and the command says it in one line with exit code 2.
    result = cli("--curve-server-key", server, "--curve-client-cert", server, "ping")
    assert result.code == 2 and "only a public key" in result.err
    assert "Traceback" not in result.err


def test_the_gateways_secret_curve_key_is_refused_on_a_node(tmp_path: Path, cli: CLI) -> None:
    keygen(tmp_path, "gateway")
    keygen(tmp_path, "node")
    secret_key_file = str(tmp_path / "gateway.key_secret")
    node = str(tmp_path / "node.key_secret")
    result = cli("--curve-server-key", secret_key_file, "--curve-client-cert", node, "ping")
    assert result.code == Exit.USAGE
    assert "a node needs only the gateway's public key (gateway.key)" in result.err
    assert "must never leave the gateway's box" in result.err
    with pytest.raises(ValueError, match="SECRET key"):
        Bridge(
            "tcp://127.0.0.1:1",
            secret=None,
            curve_server_key=secret_key_file,
            curve_client_cert=node,
        )


# -- the command itself ----------------------------------------------------------------------


def test_global_flags_go_before_or_after_the_command(connected: GatewayProcess, cli: CLI) -> None:
    assert cli("--json", "positions").out == cli("positions", "--json").out == "[]\n"
    assert cli("--timeout", "5", "ping", "--json").json()["mt5_connected"] is True


def test_exit_codes_are_documented(cli: CLI) -> None:
    assert "Exit codes:" in cli("--help").out
    epilog = build_parser().epilog or ""
    codes = epilog.split("Exit codes:\n")[1].splitlines()
    assert [int(line.split()[0]) for line in codes] == [int(code) for code in Exit]
    for line in codes:
        assert line in (inf_bridge.cli.__doc__ or "")


def test_python_dash_m_and_ctrl_c_ends_a_watch(
    connected: GatewayProcess, tmp_path: Path, secret: str
) -> None:
    command = [sys.executable, "-m", "inf_bridge"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("mt5-bridge ")

    watch = subprocess.Popen(
        [*command, "watch", "--json", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        frames = [json.loads(watch.stdout.readline()) for _ in range(3)]  # refreshed
        assert [frame["health"]["beats"] for frame in frames] == [1, 2, 3]
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=10)
    finally:
        watch.kill()
    assert watch.returncode == Exit.OK
    assert err == "" and secret not in out


def test_the_cli_leaves_the_clients_logging_as_it_found_it(cli: CLI) -> None:
    lines: list[str] = []
    handler = logger.add(lines.append, filter="inf_bridge")
    try:
        cli("--endpoint", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.1", "ping")
        assert lines == []  # the missed beat was not logged over the CLI's own line
        CircuitBreaker().trip("after the CLI")  # the client's own audit line
    finally:
        logger.remove(handler)
    assert any("after the CLI" in line for line in lines)


def test_a_short_secret_in_the_environment_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MT5_BRIDGE_SECRET: .*3 bytes; at least 16"):
        load_config(config_file=None, env={"MT5_BRIDGE_SECRET": "abc", "HOME": str(tmp_path)})


def test_a_value_that_fails_a_pattern_is_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["open", "EURUSD", "BUY", "0.1", "--uuid", "a b"])
    assert "invalid uuid 'a b': Expected `str` of 1-64 letters" in capsys.readouterr().err
