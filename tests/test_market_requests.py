"""Market data end to end: GET_SYMBOLS, GET_SYMBOL, GET_TICK, GET_RATES and GET_TICKS against a
real gateway process on the simulator, through a raw DEALER with JSON written by hand (what a
third-party client sees) and through the public ``Bridge``.

Two gateways serve the whole module, started once: ``gateway`` with the default ``max_rows``
(100,000 bars fit in one reply) for the answers, and ``small`` with ``max_rows = 1000`` and a
metrics endpoint for the refusals. No test here changes what another one reads, except the
Market Watch: GER40 (the simulator's one symbol outside it) is asked for on ``gateway`` only by
``test_a_symbol_outside_the_market_watch_is_selected_first``, and on ``small`` only by
``test_bars_of_a_symbol_outside_the_market_watch``: each checks it is outside it at first.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from support import JsonDealer, read_replies, signed_open

from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, InvalidRequest, RequestRefused, SymbolInfo, Tick
from protocol import RATES_DTYPE, TICKS_DTYPE
from protocol import SymbolInfo as WireSymbolInfo

SECRET: Final = "test-market-" + secrets.token_hex(16)
MAX_ROWS: Final = 1000  # the ``small`` gateway's [gateway] max_rows
ALL_SYMBOLS: Final = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "GER40"]
DIGITS: Final = {"EURUSD": 5, "GBPUSD": 5, "USDJPY": 3, "XAUUSD": 2, "US500": 2, "GER40": 2}
MT5_STRUCTS: Final = Path("/work/shared/reference/mt5_structs.json")
# A bar's length in seconds, and where its grid starts (weekly bars open on Sunday: the epoch
# was a Thursday, 3 days before).
FRAMES: Final = {
    "M1": (60, 0),
    "M5": (300, 0),
    "M15": (900, 0),
    "M30": (1800, 0),
    "H1": (3600, 0),
    "H4": (14_400, 0),
    "D1": (86_400, 0),
    "W1": (604_800, 3 * 86_400),
}


# -- the gateways and a raw client ------------------------------------------------------------


class Small(NamedTuple):
    """The gateway with ``max_rows = 1000``, and its metrics port."""

    process: GatewayProcess
    metrics_port: int

    @property
    def endpoint(self) -> str:
        return self.process.endpoint


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    base = tmp_path_factory.mktemp("market")
    process = GatewayProcess(
        base / "gateway", secret=SECRET, sim={"seed": 1}, log_file=base / "gateway.log"
    )
    with process:
        yield process


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    base = tmp_path_factory.mktemp("market-small")
    port = free_port()
    process = GatewayProcess(
        base / "gateway",
        secret=SECRET,
        sim={"seed": 2},
        gateway={"max_rows": MAX_ROWS, "metrics_port": port},
        log_file=base / "gateway.log",
    )
    with process:
        yield Small(process, port)


class Raw(JsonDealer):
    """``JsonDealer``, and bars or ticks parsed from their rows frame."""

    def rows(self, action: str, dtype: list[tuple[str, str]], **fields: Any) -> npt.NDArray[Any]:
        """An OK reply with its rows frame, parsed as the header says (checked against the
        package's dtype: 60 bytes a row)."""
        reply, rest = self.ask(action, **fields)
        assert reply["status"] == "OK", reply
        header = reply["rows"]
        assert [tuple(field) for field in header["dtype"]] == dtype
        assert np.dtype(dtype).itemsize == 60
        assert len(rest) == 1, f"{len(rest)} frames after the reply"
        assert len(rest[0]) == header["rows"] * 60
        return np.frombuffer(rest[0], dtype=np.dtype(dtype))


@pytest.fixture
def raw(gateway: GatewayProcess) -> Iterator[Raw]:
    client = Raw(gateway.endpoint)
    yield client
    client.close()


@pytest.fixture
def raw_small(small: Small) -> Iterator[Raw]:
    client = Raw(small.endpoint)
    yield client
    client.close()


def now_s() -> int:
    return int(time.time())


def check_bars(bars: npt.NDArray[Any], frame: str) -> None:
    """Bars oldest first, one per grid step (the simulator's markets never close), and each
    bar's high and low around its open and close."""
    seconds, origin = FRAMES[frame]
    assert len(bars) > 0
    assert ((bars["time"] - origin) % seconds == 0).all(), "a bar off the timeframe's grid"
    assert (np.diff(bars["time"]) == seconds).all(), "bars not oldest first, one per step"
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    assert (bars["low"] > 0).all()


def check_ticks(ticks: npt.NDArray[Any]) -> None:
    assert (ticks["bid"] < ticks["ask"]).all()
    assert (ticks["time"] == ticks["time_msc"] // 1000).all()
    assert (np.diff(ticks["time_msc"]) > 0).all(), "ticks not oldest first"


# -- GET_SYMBOLS, GET_SYMBOL, GET_TICK: raw -----------------------------------------------------


@pytest.mark.parametrize(
    ("group", "names"),
    [
        (None, ALL_SYMBOLS),
        ("*", ALL_SYMBOLS),
        ("*USD*", ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]),
        ("*,!EUR*", ["GBPUSD", "USDJPY", "XAUUSD", "US500", "GER40"]),
        ("*USD*,!EUR*", ["GBPUSD", "USDJPY", "XAUUSD"]),
        ("XAUUSD", ["XAUUSD"]),
        ("US*,GER40", ["USDJPY", "US500", "GER40"]),
        # A mask that matches nothing is an empty list, as symbols_get gives: not an error.
        ("NOPE", []),
    ],
    ids=["all", "star", "usd", "not-eur", "usd-not-eur", "exact", "two-masks", "none"],
)
def test_get_symbols(raw: Raw, group: str | None, names: list[str]) -> None:
    reply = raw.ok("GET_SYMBOLS", **({} if group is None else {"group": group}))
    assert [info["name"] for info in reply["symbols"]] == names
    for info in reply["symbols"]:
        assert list(info) == list(WireSymbolInfo.__struct_fields__)


def test_get_symbol_has_every_field_in_the_packages_order(raw: Raw) -> None:
    info = raw.ok("GET_SYMBOL", symbol="EURUSD")["symbol_info"]
    assert len(info) == 96
    assert list(info) == list(WireSymbolInfo.__struct_fields__)
    if MT5_STRUCTS.exists():  # the recorded shape of the real package's SymbolInfo
        recorded = json.loads(MT5_STRUCTS.read_text())["SymbolInfo"]
        assert list(info) == [name for name, _ in recorded]


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "XAUUSD", "US500"])
def test_get_symbol_values(raw: Raw, symbol: str) -> None:
    info = raw.ok("GET_SYMBOL", symbol=symbol)["symbol_info"]
    assert info["name"] == symbol
    assert info["digits"] == DIGITS[symbol]
    assert info["point"] == pytest.approx(10.0 ** -info["digits"])
    assert 0 < info["volume_min"] <= info["volume_max"]
    assert 0 < info["volume_step"] <= info["volume_min"]
    assert 0 < info["bid"] < info["ask"]
    assert info["trade_contract_size"] > 0
    assert info["select"] is True and info["visible"] is True
    assert info["currency_profit"] and info["path"].endswith(symbol)


def test_a_symbol_outside_the_market_watch_is_selected_first(raw: Raw) -> None:
    def ger40() -> dict[str, Any]:
        listed: dict[str, Any] = raw.ok("GET_SYMBOLS", group="GER40")["symbols"][0]
        return listed

    assert ger40()["select"] is False  # GER40 starts outside the Market Watch
    info = raw.ok("GET_SYMBOL", symbol="GER40")["symbol_info"]
    assert info["name"] == "GER40" and info["select"] is True
    assert 0 < info["bid"] < info["ask"]
    assert ger40()["select"] is True  # and stays selected
    tick = raw.ok("GET_TICK", symbols=["GER40"])["ticks"]["GER40"]
    assert 0 < tick["bid"] < tick["ask"]


def test_bars_of_a_symbol_outside_the_market_watch(raw_small: Raw) -> None:
    """GET_RATES selects the symbol first too (on the other gateway, where GER40 is still
    outside the Market Watch)."""
    assert raw_small.ok("GET_SYMBOLS", group="GER40")["symbols"][0]["select"] is False
    bars = raw_small.rows("GET_RATES", RATES_DTYPE, symbol="GER40", timeframe="M5", count=12)
    assert len(bars) == 12
    check_bars(bars, "M5")
    assert (bars["spread"] >= 90).all()  # the narrowest: 3/4 of GER40's typical 120 or more
    assert raw_small.ok("GET_SYMBOLS", group="GER40")["symbols"][0]["select"] is True


def test_get_tick_of_several_symbols(raw: Raw) -> None:
    symbols = ["EURUSD", "USDJPY", "XAUUSD", "US500"]
    before = time.time()
    ticks = raw.ok("GET_TICK", symbols=symbols)["ticks"]
    assert list(ticks) == symbols
    for symbol, tick in ticks.items():
        assert tick["symbol"] == symbol
        assert 0 < tick["bid"] < tick["ask"]
        assert tick["time_msc"] // 1000 == tick["time"]
        assert round(tick["bid"], DIGITS[symbol]) == tick["bid"]
        assert abs(tick["time"] - before) < 60  # the simulator's clock is this machine's
        assert list(tick) == [*(name for name, _ in TICKS_DTYPE), "symbol"]


# -- GET_RATES and GET_TICKS: raw -------------------------------------------------------------


@pytest.mark.parametrize("frame", list(FRAMES))
def test_get_rates_count_from_the_current_bar(raw: Raw, frame: str) -> None:
    before = time.time()
    bars = raw.rows("GET_RATES", RATES_DTYPE, symbol="EURUSD", timeframe=frame, count=50)
    after = time.time()
    assert len(bars) == 50
    check_bars(bars, frame)
    seconds, _ = FRAMES[frame]
    # start_pos 0: the newest bar is the current period's, or the one before when the current
    # period has had no tick yet (ticks come seconds apart: a terminal has no bar for it then).
    current = int(before) - int(before) % seconds
    assert current - seconds <= bars["time"][-1] <= after
    # A bar's spread is its narrowest: 3/4 of EURUSD's typical 15 points, or a little more.
    assert (bars["spread"] >= 11).all() and (bars["tick_volume"] > 0).all()


def test_start_pos_shifts_the_window_by_that_many_bars(raw: Raw) -> None:
    for _ in range(3):  # again if an hour began between the calls (the windows then moved)
        first = raw.rows("GET_RATES", RATES_DTYPE, symbol="GBPUSD", timeframe="H1", count=60)
        shifted = raw.rows(
            "GET_RATES", RATES_DTYPE, symbol="GBPUSD", timeframe="H1", count=50, start_pos=10
        )
        last = raw.rows("GET_RATES", RATES_DTYPE, symbol="GBPUSD", timeframe="H1", count=60)
        if first["time"][-1] == last["time"][-1]:
            break
    else:
        pytest.fail("the current H1 bar changed three times in a row")
    assert len(shifted) == 50
    assert (shifted["time"] == first["time"][:50]).all()
    assert shifted["time"][-1] == first["time"][-1] - 10 * 3600
    # A past bar keeps its shape from call to call (its level follows the live price).
    assert (shifted["tick_volume"] == first["tick_volume"][:50]).all()


def test_get_rates_from_a_date_with_a_count(raw: Raw) -> None:
    date_from = now_s() - 5 * 3600 - 17
    bars = raw.rows(
        "GET_RATES", RATES_DTYPE, symbol="EURUSD", timeframe="M5", date_from=date_from, count=100
    )
    assert len(bars) == 100
    check_bars(bars, "M5")
    assert bars["time"][-1] == date_from - date_from % 300  # the last bar opened at or before


def test_get_rates_in_a_range(raw: Raw) -> None:
    date_from, date_to = now_s() - 86_400 + 7, now_s() - 43_200
    bars = raw.rows(
        "GET_RATES",
        RATES_DTYPE,
        symbol="USDJPY",
        timeframe="M15",
        date_from=date_from,
        date_to=date_to,
    )
    expected = range(date_from + (-date_from) % 900, date_to + 1, 900)
    assert bars["time"].tolist() == list(expected)  # every bar opened within it, and only those
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()


def test_a_range_with_no_bars_is_an_empty_frame(raw: Raw) -> None:
    reply, rest = raw.ask(
        "GET_RATES", symbol="EURUSD", timeframe="M1", date_from=100_000, date_to=100_600
    )
    assert reply["status"] == "OK" and reply["rows"]["rows"] == 0
    assert rest == [b""]


def test_100000_bars_in_one_request(raw: Raw) -> None:
    before = time.time()
    reply, rest = raw.ask("GET_RATES", symbol="EURUSD", timeframe="M1", count=100_000)
    after = time.time()
    assert reply["status"] == "OK", reply
    rows = reply["rows"]["rows"]
    assert [len(frame) for frame in rest] == [rows * 60]
    bars = np.frombuffer(rest[0], dtype=np.dtype(RATES_DTYPE))
    check_bars(bars, "M1")
    # The terminal keeps maxbars (100,000) bars: all of them, the newest one the current
    # minute's or, while it has had no tick yet, the minute before's.
    assert rows == 100_000
    assert int(before) // 60 * 60 - 60 <= bars["time"][-1] <= int(after)


def test_get_ticks_with_a_count(raw: Raw) -> None:
    date_from = now_s() - 3600  # an hour has 240 ticks at least
    ticks = raw.rows("GET_TICKS", TICKS_DTYPE, symbol="EURUSD", date_from=date_from, count=50)
    assert len(ticks) == 50
    check_ticks(ticks)
    assert date_from * 1000 <= ticks["time_msc"][0] < (date_from + 60) * 1000  # from date_from on
    assert (np.diff(ticks["time_msc"]) > 0).all()


def test_get_ticks_in_a_range(raw: Raw) -> None:
    date_from, date_to = now_s() - 600, now_s() - 300
    ticks = raw.rows(
        "GET_TICKS", TICKS_DTYPE, symbol="XAUUSD", date_from=date_from, date_to=date_to
    )
    check_ticks(ticks)
    # Both ends included: every tick of the seconds date_from to date_to, the same ticks a
    # count from date_from gives.
    assert len(ticks) >= 20
    assert date_from * 1000 <= ticks["time_msc"][0] and ticks["time_msc"][-1] < (date_to + 1) * 1000
    counted = raw.rows(
        "GET_TICKS", TICKS_DTYPE, symbol="XAUUSD", date_from=date_from, count=len(ticks) + 1
    )
    assert (counted[: len(ticks)] == ticks).all() and counted["time"][-1] > date_to


@pytest.mark.parametrize(("flags", "some"), [("ALL", True), ("INFO", True), ("TRADE", False)])
def test_get_ticks_flags(raw: Raw, flags: str, some: bool) -> None:
    ticks = raw.rows(
        "GET_TICKS", TICKS_DTYPE, symbol="EURUSD", date_from=now_s() - 600, count=20, flags=flags
    )  # ten minutes hold 40 ticks at least (4 a minute in the quietest hour)
    assert len(ticks) == (20 if some else 0)  # the simulator has no trades: no TRADE ticks


# -- refusals: raw ------------------------------------------------------------------------------


def _ago(seconds: int) -> int:
    return now_s() - seconds


# (action, fields, error_code, what error_msg must contain); dates are computed at each test.
BAD: Final[list[Any]] = [
    pytest.param(
        "GET_SYMBOL", {"symbol": "NOPE"}, "SYMBOL_NOT_FOUND", "'NOPE'", id="symbol-unknown"
    ),
    pytest.param(
        "GET_TICK", {"symbols": ["NOPE"]}, "SYMBOL_NOT_FOUND", "'NOPE'", id="tick-unknown"
    ),
    pytest.param(
        "GET_TICK",
        {"symbols": ["EURUSD", "NOPE", "XAUUSD"]},
        "SYMBOL_NOT_FOUND",
        "'NOPE'",
        id="tick-one-unknown-among-known",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "NOPE", "timeframe": "M1", "count": 5},
        "SYMBOL_NOT_FOUND",
        "'NOPE'",
        id="rates-unknown",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "NOPE", "date_from": 60, "count": 5},
        "SYMBOL_NOT_FOUND",
        "'NOPE'",
        id="ticks-unknown",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD.m", "timeframe": "M1", "count": 5},
        "SYMBOL_NOT_FOUND",
        "'EURUSD.m' is not known to the terminal; did you mean EURUSD?",
        id="rates-unknown-suggests-a-name",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M7", "count": 5},
        "INVALID_REQUEST",
        "`$.timeframe`",
        id="timeframe-M7",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": 1, "count": 5},
        "INVALID_REQUEST",
        "`$.timeframe`",
        id="timeframe-number",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "m1", "count": 5},
        "INVALID_REQUEST",
        "`$.timeframe`",
        id="timeframe-lowercase",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "count": 5},
        "INVALID_REQUEST",
        # at the top level msgspec names a missing field without a path
        "missing required field `timeframe`",
        id="timeframe-missing",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": 0},
        "INVALID_REQUEST",
        "`$.count`",
        id="rates-count-0",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": -5},
        "INVALID_REQUEST",
        "`$.count`",
        id="rates-count-negative",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": 2.5},
        "INVALID_REQUEST",
        "`$.count`",
        id="rates-count-float",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": 10, "start_pos": -1},
        "INVALID_REQUEST",
        "`$.start_pos`",
        id="rates-start-pos-negative",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": 60, "count": 0},
        "INVALID_REQUEST",
        "`$.count`",
        id="ticks-count-0",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": MAX_ROWS + 1},
        "TOO_LARGE",
        f"count {MAX_ROWS + 1} is over this gateway's limit of {MAX_ROWS}",
        id="rates-count-over-max-rows",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": 60, "count": MAX_ROWS + 1},
        "TOO_LARGE",
        f"count {MAX_ROWS + 1} is over this gateway's limit of {MAX_ROWS}",
        id="ticks-count-over-max-rows",
    ),
    pytest.param(
        "GET_RATES",
        {
            "symbol": "EURUSD",
            "timeframe": "M1",
            "date_from": ("ago", 3 * 86_400),
            "date_to": ("ago", 0),
        },
        "TOO_LARGE",
        f"rows found, over this gateway's limit of {MAX_ROWS}",
        id="rates-range-over-max-rows",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": ("ago", 3600), "date_to": ("ago", 0)},
        "TOO_LARGE",
        f"rows found, over this gateway's limit of {MAX_ROWS}",
        id="ticks-range-over-max-rows",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "date_from": ("ago", 0), "date_to": ("ago", 600)},
        "INVALID_REQUEST",
        "the range runs backwards",
        id="rates-backwards",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": ("ago", 0), "date_to": ("ago", 600)},
        "INVALID_REQUEST",
        "the range runs backwards",
        id="ticks-backwards",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "date_to": ("ago", 0)},
        "INVALID_REQUEST",
        "date_to needs date_from",
        id="rates-date-to-alone",
    ),
    pytest.param(
        "GET_RATES",
        {
            "symbol": "EURUSD",
            "timeframe": "M1",
            "count": 10,
            "start_pos": 5,
            "date_from": ("ago", 600),
        },
        "INVALID_REQUEST",
        "start_pos counts back from the current bar",
        id="rates-start-pos-with-date",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1"},
        "INVALID_REQUEST",
        "say which bars",
        id="rates-no-count-no-date",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "date_from": ("ago", 600)},
        "INVALID_REQUEST",
        "either count or date_to",
        id="rates-date-from-alone",
    ),
    pytest.param(
        "GET_RATES",
        {
            "symbol": "EURUSD",
            "timeframe": "M1",
            "date_from": ("ago", 600),
            "count": 5,
            "date_to": ("ago", 0),
        },
        "INVALID_REQUEST",
        "either count or date_to",
        id="rates-count-and-date-to",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": ("ago", 600)},
        "INVALID_REQUEST",
        "either count or date_to",
        id="ticks-neither-count-nor-date-to",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": ("ago", 600), "count": 5, "date_to": ("ago", 0)},
        "INVALID_REQUEST",
        "either count or date_to",
        id="ticks-count-and-date-to",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "count": 5},
        "INVALID_REQUEST",
        "missing required field `date_from`",
        id="ticks-no-date-from",
    ),
    pytest.param(
        "GET_TICKS",
        {"symbol": "EURUSD", "date_from": 60, "count": 5, "flags": "BOGUS"},
        "INVALID_REQUEST",
        "`$.flags`",
        id="ticks-bad-flags",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "date_from": -1, "count": 5},
        "INVALID_REQUEST",
        "`$.date_from`",
        id="rates-negative-date",
    ),
    pytest.param(
        "GET_TICK", {"symbols": []}, "INVALID_REQUEST", "`$.symbols`", id="tick-0-symbols"
    ),
    pytest.param(
        "GET_TICK",
        {"symbols": ["EURUSD"] * 65},
        "INVALID_REQUEST",
        "length <= 64 - at `$.symbols`",
        id="tick-65-symbols",
    ),
    pytest.param(
        "GET_TICK",
        {"symbols": ["EURUSD", "A" * 30]},
        "INVALID_REQUEST",
        "`$.symbols[1]`",
        id="tick-symbol-30-chars",
    ),
    pytest.param(
        "GET_SYMBOL",
        {"symbol": "A" * 30},
        "INVALID_REQUEST",
        "length <= 29 - at `$.symbol`",
        id="symbol-30-chars",
    ),
    pytest.param("GET_SYMBOL", {"symbol": ""}, "INVALID_REQUEST", "`$.symbol`", id="symbol-empty"),
    pytest.param(
        "GET_RATES",
        {"symbol": "A" * 30, "timeframe": "M1", "count": 5},
        "INVALID_REQUEST",
        "`$.symbol`",
        id="rates-symbol-30-chars",
    ),
    pytest.param(
        "GET_SYMBOL",
        {"symbol": "EURUSD", "extra": 1},
        "INVALID_REQUEST",
        "unknown field `extra`",
        id="symbol-unknown-field",
    ),
    pytest.param(
        "GET_RATES",
        {"symbol": "EURUSD", "timeframe": "M1", "count": 5, "limit": 5},
        "INVALID_REQUEST",
        "unknown field `limit`",
        id="rates-unknown-field",
    ),
    pytest.param(
        "GET_SYMBOLS",
        {"group": "*" * 1025},
        "INVALID_REQUEST",
        "length <= 1024 - at `$.group`",
        id="group-1025-chars",
    ),
    pytest.param("GET_SYMBOLS", {"group": ""}, "INVALID_REQUEST", "`$.group`", id="group-empty"),
]


def _dates(fields: dict[str, Any]) -> dict[str, Any]:
    """``("ago", s)`` values as the epoch seconds ``s`` seconds ago."""
    return {
        key: _ago(value[1]) if isinstance(value, tuple) and value[0] == "ago" else value
        for key, value in fields.items()
    }


@pytest.mark.parametrize(("action", "fields", "code", "says"), BAD)
def test_a_bad_request_gets_a_precise_refusal(
    raw_small: Raw, action: str, fields: dict[str, Any], code: str, says: str
) -> None:
    reply, rest = raw_small.ask(action, **_dates(fields))
    assert reply["status"] == "REJECTED", reply
    assert reply["error_code"] == code, reply
    assert says in reply["error_msg"], reply["error_msg"]
    assert rest == [], "a refusal carries no rows frame"
    for key in ("symbols", "symbol_info", "ticks", "rows"):
        assert key not in reply
    raw_small.alive()


def test_within_max_rows_is_answered(raw_small: Raw) -> None:
    """The limits of the table above are limits: max_rows itself, and a range just under it,
    are answered."""
    bars = raw_small.rows("GET_RATES", RATES_DTYPE, symbol="EURUSD", timeframe="M1", count=MAX_ROWS)
    assert len(bars) == MAX_ROWS
    start = now_s() // 60 * 60 - 900 * 60  # on the grid: both ends are bars
    bars = raw_small.rows(
        "GET_RATES",
        RATES_DTYPE,
        symbol="EURUSD",
        timeframe="M1",
        date_from=start,
        date_to=start + 600 * 60,
    )
    assert len(bars) == 601
    ticks = raw_small.rows(
        "GET_TICKS", TICKS_DTYPE, symbol="EURUSD", date_from=now_s() - 3600, count=MAX_ROWS
    )
    assert len(ticks) == MAX_ROWS
    symbols = ALL_SYMBOLS[:4] * 16  # 64 names: the most one GET_TICK may hold
    assert list(raw_small.ok("GET_TICK", symbols=symbols)["ticks"]) == ALL_SYMBOLS[:4]
    assert raw_small.ok("GET_SYMBOLS", group="*" * 1024)["symbols"]  # the longest group


def test_many_refusals_in_a_row_leave_the_gateway_answering(raw_small: Raw) -> None:
    """Refusals pipelined on one socket: each gets its own reply, none is dropped."""
    uuids = [raw_small.send("GET_SYMBOL", symbol=f"NOPE{n}") for n in range(50)]
    uuids += [
        raw_small.send("GET_RATES", symbol="EURUSD", timeframe="M7", count=1) for _ in range(50)
    ]
    replies = {}
    for _ in range(len(uuids)):
        reply, _rest = raw_small.recv()
        replies[reply["uuid"]] = reply
    assert set(replies) == set(uuids)
    assert {r["error_code"] for r in replies.values()} == {"SYMBOL_NOT_FOUND", "INVALID_REQUEST"}
    raw_small.alive()


# -- orders before market data ---------------------------------------------------------------


def test_an_order_is_not_delayed_behind_market_data(raw: Raw) -> None:
    """The worker runs one terminal call at a time; market data takes the background lane,
    and at most one background call is in its pipe at once (gtw_server.lanes), so an OPEN sent
    after 12 GET_RATES of 100,000 bars runs after at most the one already running (and, at
    most, one more the gateway handed a place before the OPEN arrived): its reply comes
    before those of the last 8 GET_RATES at least. Order of replies, not timing, is checked."""
    rates = [
        raw.send("GET_RATES", symbol="EURUSD", timeframe="M1", count=100_000) for _ in range(12)
    ]
    order = f"mr-open-{secrets.token_hex(4)}"
    raw.sock.send(signed_open(SECRET, order, volume=0.1))
    arrived: list[str] = []
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + 60
    for _ in range(len(rates) + 1):  # bounded in count, and each wait in time
        assert time.monotonic() < deadline, f"only {len(arrived)} replies in 60 s"
        reply, rest = raw.recv(timeout=30)
        arrived.append(reply["uuid"])
        statuses[reply["uuid"]] = reply.get("error_code") or reply["status"]
        if reply["uuid"] in rates and reply["status"] == "OK":
            assert [len(frame) for frame in rest] == [6_000_000]
    # A 6 MB reply may be refused BUSY while the previous one is still being written out to
    # this socket (the gateway's per-peer budget for large replies): by design, and it comes
    # when the bars were read, so it does not change the order checked below.
    assert {statuses[uuid] for uuid in rates} <= {"OK", "BUSY"}, statuses
    assert sorted(arrived) == sorted([*rates, order])
    assert statuses[order] == "FILLED", statuses[order]
    after = arrived[arrived.index(order) + 1 :]
    assert len(after) >= 8, f"the OPEN's reply came after {arrived.index(order)} GET_RATES"
    raw.alive()


# -- the Bridge: answers --------------------------------------------------------------------------


@pytest.fixture
async def client(gateway: GatewayProcess) -> AsyncIterator[Bridge]:
    async with Bridge(gateway.endpoint, secret=SECRET, request_timeout=15.0) as bridge:
        yield bridge


async def test_bridge_symbols(client: Bridge) -> None:
    assert [info.name for info in await client.symbols()] == ALL_SYMBOLS
    assert [info.name for info in await client.symbols("*USD*,!EUR*")] == [
        "GBPUSD",
        "USDJPY",
        "XAUUSD",
    ]
    assert await client.symbols("NOPE") == []
    info = await client.symbol("XAUUSD")
    assert isinstance(info, SymbolInfo)
    assert info.name == "XAUUSD" and info.digits == 2
    assert info.point == pytest.approx(0.01)
    assert 0 < info.volume_min <= info.volume_max
    assert len(info.__struct_fields__) == 96


async def test_bridge_ticks(client: Bridge) -> None:
    quotes = await client.quotes("EURUSD", "USDJPY", "US500")
    assert list(quotes) == ["EURUSD", "USDJPY", "US500"]
    for symbol, tick in quotes.items():
        assert isinstance(tick, Tick) and tick.symbol == symbol
        assert 0 < tick.bid < tick.ask
        assert tick.time_msc // 1000 == tick.time
    tick = await client.tick("GBPUSD")
    assert tick.symbol == "GBPUSD" and tick.bid < tick.ask


async def test_bridge_rates_in_three_forms(client: Bridge) -> None:
    bars = await client.rates("EURUSD", "M1", count=30, start=5)
    assert bars.dtype == np.dtype(RATES_DTYPE) and len(bars) == 30
    check_bars(bars, "M1")
    assert bars.flags.writeable  # a writable array, as the package gives

    date_from = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    bars = await client.rates("EURUSD", "M5", date_from=date_from, count=100)
    assert len(bars) == 100
    check_bars(bars, "M5")
    stamp = int(date_from.timestamp())
    assert bars["time"][-1] == stamp - stamp % 300

    date_to = date_from + timedelta(hours=2)
    bars = await client.rates("EURUSD", "M15", date_from=date_from, date_to=date_to)
    assert len(bars) > 0
    check_bars(bars, "M15")
    assert bars["time"][0] >= stamp and bars["time"][-1] <= int(date_to.timestamp())
    assert len(bars) == len(range(stamp + (-stamp) % 900, int(date_to.timestamp()) + 1, 900))


async def test_bridge_timeframe_constant_is_the_same_as_its_name(client: Bridge) -> None:
    for _ in range(3):  # again if an hour began between the two calls
        by_name = await client.rates("EURUSD", "H1", count=48)
        by_constant = await client.rates("EURUSD", 16385, count=48)  # TIMEFRAME_H1
        if by_name["time"][-1] == by_constant["time"][-1]:
            break
    else:
        pytest.fail("the current H1 bar changed three times in a row")
    assert (by_name["time"] == by_constant["time"]).all()
    assert (by_name["tick_volume"] == by_constant["tick_volume"]).all()
    # The same bars: the simulator draws them from the same seed; only their level follows the
    # live bid, so the closes differ from one call to the other by one factor (and rounding).
    ratio = np.log(by_name["close"] / by_constant["close"])
    assert np.ptp(ratio) < 1e-4


async def test_bridge_100000_bars(client: Bridge) -> None:
    bars = await client.rates("USDJPY", "M1", count=100_000)
    assert len(bars) == 100_000 and bars.nbytes == 6_000_000
    check_bars(bars, "M1")


async def test_bridge_ticks_history(client: Bridge) -> None:
    date_from = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3600)
    ticks = await client.ticks_history("EURUSD", date_from, count=40)
    assert ticks.dtype == np.dtype(TICKS_DTYPE) and len(ticks) == 40
    check_ticks(ticks)
    assert ticks["time_msc"][0] >= int(date_from.timestamp()) * 1000
    date_to = datetime.fromtimestamp(int(ticks["time"][-1]) - 1, UTC)
    ranged = await client.ticks_history("EURUSD", date_from, date_to=date_to)
    check_ticks(ranged)
    assert 0 < len(ranged) < 40 and (ranged == ticks[: len(ranged)]).all()
    assert len(await client.ticks_history("EURUSD", date_from, count=40, flags="TRADE")) == 0
    assert len(await client.ticks_history("EURUSD", date_from, count=40, flags="info")) == 40


# -- the Bridge: refusals ----------------------------------------------------------------------

Call = Callable[[Bridge], Awaitable[object]]
NAIVE: Final = datetime(2024, 1, 2, 3, 4, 5)  # no tzinfo


def _hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


# (call, the InvalidRequest's field (None: not checked), what its message says)
INVALID: Final[list[Any]] = [
    pytest.param(lambda b: b.rates("EURUSD", "M7", count=5), "timeframe", "M7", id="timeframe-M7"),
    pytest.param(lambda b: b.rates("EURUSD", 7, count=5), "timeframe", "7", id="timeframe-7"),
    pytest.param(lambda b: b.rates("EURUSD", "M1", count=0), "count", "0", id="count-0"),
    pytest.param(lambda b: b.rates("EURUSD", "M1", count=-3), "count", "-3", id="count-negative"),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", count=5, start=-1), "start_pos", "-1", id="start-negative"
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_from=_hours_ago(1), date_to=_hours_ago(2)),
        "GET_RATES",
        "backwards",
        id="rates-backwards",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_to=_hours_ago(1)),
        "GET_RATES",
        "date_to needs date_from",
        id="date-to-alone",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", count=5, start=2, date_from=_hours_ago(1)),
        "GET_RATES",
        "start_pos",
        id="start-with-date",
    ),
    pytest.param(lambda b: b.rates("EURUSD", "M1"), "GET_RATES", "say which bars", id="no-form"),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", count=5, date_from=_hours_ago(2), date_to=_hours_ago(1)),
        "GET_RATES",
        "either count or date_to",
        id="rates-count-and-date-to",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(1)),
        "GET_TICKS",
        "either count or date_to",
        id="ticks-neither",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(1), count=5, date_to=_hours_ago(0)),
        "GET_TICKS",
        "either count or date_to",
        id="ticks-both",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(0), date_to=_hours_ago(1)),
        "GET_TICKS",
        "backwards",
        id="ticks-backwards",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(1), count=5, flags="BOGUS"),
        "flags",
        "BOGUS",
        id="ticks-bad-flags",
    ),
    pytest.param(lambda b: b.quotes(), "symbols", "length >= 1", id="quotes-0"),
    pytest.param(lambda b: b.quotes(*["EURUSD"] * 65), "symbols", "length <= 64", id="quotes-65"),
    pytest.param(lambda b: b.symbol("A" * 30), "symbol", "length <= 29", id="symbol-30-chars"),
    pytest.param(
        lambda b: b.quotes("EURUSD", "A" * 30), "symbols", "length <= 29", id="quotes-30-chars"
    ),
    pytest.param(lambda b: b.tick("A" * 30), "symbols", "length <= 29", id="tick-30-chars-field"),
    pytest.param(
        lambda b: b.rates("A" * 30, "M1", count=5), "symbol", "length <= 29", id="rates-30-chars"
    ),
    pytest.param(lambda b: b.symbols("*" * 1025), "group", "length <= 1024", id="group-1025"),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_from=NAIVE, count=5),
        "date_from",
        "no time zone",
        id="rates-naive-date",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", NAIVE, count=5),
        "date_from",
        "no time zone",
        id="ticks-naive-date",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_from=_hours_ago(2), date_to=NAIVE),
        "date_to",
        "no time zone",
        id="rates-naive-date-to",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_from=math.nan, count=5),
        "date_from",
        "not a date",
        id="rates-nan-date",
    ),
]


@pytest.mark.parametrize(("call", "field", "says"), INVALID)
async def test_bridge_refuses_bad_arguments_before_sending(
    small: Small, call: Call, field: str | None, says: str
) -> None:
    async with Bridge(small.endpoint, secret=SECRET) as bridge:
        before = read_replies(small.endpoint, small.metrics_port)
        with pytest.raises(InvalidRequest) as raised:
            await call(bridge)
        assert not isinstance(raised.value, RequestRefused)
        if field is not None:
            assert raised.value.field == field, raised.value
        assert says in raised.value.message, raised.value.message
        # Nothing reached the gateway: it answered no market-data request meanwhile (it counts
        # every reply, refusals included, in mt5_gateway_requests_total).
        assert read_replies(small.endpoint, small.metrics_port) == before
        assert (await bridge.tick("EURUSD")).bid > 0  # and the Bridge still works


NOT_FOUND: Final = ("SYMBOL_NOT_FOUND", "symbol 'NOPE' is not known")
# (call, the action the gateway refused, (its error_code, what its message says))
REFUSED: Final[list[Any]] = [
    pytest.param(lambda b: b.symbol("NOPE"), "GET_SYMBOL", NOT_FOUND, id="symbol"),
    pytest.param(lambda b: b.tick("NOPE"), "GET_TICK", NOT_FOUND, id="tick"),
    pytest.param(lambda b: b.quotes("EURUSD", "NOPE"), "GET_TICK", NOT_FOUND, id="quotes"),
    pytest.param(lambda b: b.rates("NOPE", "M1", count=5), "GET_RATES", NOT_FOUND, id="rates"),
    pytest.param(
        lambda b: b.ticks_history("NOPE", _hours_ago(1), count=5),
        "GET_TICKS",
        NOT_FOUND,
        id="ticks",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", count=MAX_ROWS + 1),
        "GET_RATES",
        ("TOO_LARGE", f"count {MAX_ROWS + 1} is over"),
        id="rates-count-too-large",
    ),
    pytest.param(
        lambda b: b.rates("EURUSD", "M1", date_from=_hours_ago(72), date_to=_hours_ago(0)),
        "GET_RATES",
        ("TOO_LARGE", "rows found, over this gateway's limit of 1000"),
        id="rates-range-too-large",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(1), count=MAX_ROWS + 1),
        "GET_TICKS",
        ("TOO_LARGE", f"count {MAX_ROWS + 1} is over"),
        id="ticks-count-too-large",
    ),
    pytest.param(
        lambda b: b.ticks_history("EURUSD", _hours_ago(1), date_to=_hours_ago(0)),
        "GET_TICKS",
        ("TOO_LARGE", "rows found, over this gateway's limit"),
        id="ticks-range-too-large",
    ),
]


@pytest.mark.parametrize(("call", "action", "refusal"), REFUSED)
async def test_bridge_raises_the_gateways_refusal(
    small: Small, call: Call, action: str, refusal: tuple[str, str]
) -> None:
    code, says = refusal
    key = f'mt5_gateway_requests_total{{action="{action}",status="REJECTED"}}'
    async with Bridge(small.endpoint, secret=SECRET) as bridge:
        before = read_replies(small.endpoint, small.metrics_port).get(key, 0)
        with pytest.raises(RequestRefused) as raised:
            await call(bridge)
        assert raised.value.error_code == code, raised.value
        assert says in raised.value.message, raised.value.message
        assert (
            read_replies(small.endpoint, small.metrics_port).get(key, 0) == before + 1
        )  # the gateway refused it
        assert (await bridge.tick("EURUSD")).bid > 0


async def test_bridge_takes_aware_datetimes_in_any_zone(client: Bridge) -> None:
    """An aware datetime is an instant, whatever its zone: UTC and UTC+3 give the same bars."""
    instant = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(hours=3)
    east = instant.astimezone(timezone(timedelta(hours=3)))
    assert east.hour != instant.hour
    in_utc = await client.rates("EURUSD", "M1", date_from=instant, count=10)
    elsewhere = await client.rates("EURUSD", "M1", date_from=east, count=10)
    assert in_utc["time"][-1] == int(instant.timestamp())
    assert (in_utc["time"] == elsewhere["time"]).all()
