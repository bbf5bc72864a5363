"""Replaying a broker's exported CSV files: the simulator's prices are the file's, its bars
give back the file's own, and a strategy trades that history through a real gateway."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from msgspec import ValidationError

from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.terminal.sim.replay import ReplayError
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
BARS = SAMPLES / "EURUSD_M1.csv"
TICKS = SAMPLES / "EURUSD_ticks.csv"
START = datetime(2024, 3, 4, 7, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def replaying(file: Path, clock: Clock, zone: str = "UTC", **settings: Any) -> SimTerminal:
    config = SimConfig(server_timezone=zone, replay={"EURUSD": str(file)}, **settings)
    mt5 = SimTerminal(config=config, clock=clock)
    assert mt5.initialize(), mt5.last_error()
    return mt5


def rows(file: Path) -> list[list[str]]:
    with file.open(newline="") as handle:
        return list(csv.reader(handle, delimiter="\t"))[1:]


@pytest.mark.parametrize("zone", ["UTC", "EET"])
def test_a_replayed_bars_file_gives_back_its_own_bars(zone: str) -> None:
    # The file's times are the server's, on whichever clock it keeps: they come back as written.
    clock = Clock(0.0)
    mt5 = replaying(BARS, clock, zone, replay_speed=3600.0)  # an hour of the file a second
    clock.now = 3.5  # past the file's three hours: every bar is complete
    bars = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, START, START + 3 * 3600)
    assert bars is not None
    expected = [
        (
            int(
                datetime.strptime(f"{r[0]} {r[1]}", "%Y.%m.%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp()
            ),
            float(r[2]),
            float(r[3]),
            float(r[4]),
            float(r[5]),
            int(r[6]),
            int(r[8]),
        )
        for r in rows(BARS)
    ]
    got = [
        (
            int(b["time"]),
            b["open"],
            b["high"],
            b["low"],
            b["close"],
            int(b["tick_volume"]),
            int(b["spread"]),
        )
        for b in bars
    ]
    assert got == expected and len(got) == 180
    hours = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_H1, START, START + 3 * 3600)
    assert hours is not None and len(hours) == 3
    first_hour = bars[:60]
    assert (hours["open"][0], hours["close"][0]) == (first_hour["open"][0], first_hour["close"][-1])
    assert (hours["high"][0], hours["low"][0]) == (
        first_hour["high"].max(),
        first_hour["low"].min(),
    )
    assert hours["tick_volume"][0] == first_hour["tick_volume"].sum()


def test_the_live_quote_follows_the_file_minute_by_minute() -> None:
    clock = Clock(0.0)
    mt5 = replaying(BARS, clock)  # in step with the clock, from the file's first row
    for minute in range(1, 6):
        clock.now = minute * 60 - 0.001  # the end of the file's minute
        tick = mt5.symbol_info_tick("EURUSD")
        assert tick is not None
        close = float(rows(BARS)[minute - 1][5])
        assert (tick.bid, tick.time // 60) == (close, int(START) // 60 + minute - 1)
        (bar,) = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 1)  # type: ignore[misc]
        assert bar["low"] <= tick.bid <= bar["high"]


def test_a_replayed_ticks_file_is_the_tick_history_and_the_bars_are_made_of_it() -> None:
    clock = Clock(0.0)
    mt5 = replaying(TICKS, clock, replay_from=START + 120.0, replay_speed=10.0)
    clock.now = 30.0  # 300 s of the file later: 07:07:00
    ticks = mt5.copy_ticks_range("EURUSD", START, START + 600, mt5.COPY_TICKS_ALL)
    assert ticks is not None
    written = rows(TICKS)
    kept = [r for r in written if r[1] < "07:07:00.001"]
    assert len(ticks) == len(kept)
    bid = ask = 0.0
    for row, tick in zip(kept, ticks, strict=True):
        bid, ask = float(row[2] or bid), float(row[3] or ask)  # empty: unchanged
        assert (tick["bid"], tick["ask"]) == (bid, ask)
    live = mt5.symbol_info_tick("EURUSD")
    assert live is not None and (live.bid, live.ask, live.time_msc) == (
        ticks["bid"][-1],
        ticks["ask"][-1],
        ticks["time_msc"][-1],
    )
    bars = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, START, START + 600)
    assert bars is not None and len(bars) == 7
    first = ticks[ticks["time"] < START + 60]
    assert (bars["open"][0], bars["close"][0], bars["tick_volume"][0]) == (
        first["bid"][0],
        first["bid"][-1],
        len(first),
    )


def test_orders_fill_at_the_file_s_prices() -> None:
    clock = Clock(0.0)
    mt5 = replaying(TICKS, clock, always_open=True)
    clock.now = 100.0
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask}
    result = mt5.order_send(request)
    assert result is not None and (result.retcode, result.price) == (10009, tick.ask)
    (deal,) = mt5.history_deals_get(position=result.order) or ()
    assert deal.time == int(START) + 100  # the file's time is the server's


def test_bad_files_and_settings_are_refused_with_their_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.03.04\t07:00:00\t1.1\t1.0\t1.2\t1.1\t5\t0\t10\n"
    )
    with pytest.raises(ReplayError, match=r"bad.csv, line 2: its high and low"):
        SimTerminal(config=SimConfig(server_timezone="UTC", replay={"EURUSD": str(bad)}))
    bad.write_text("time,price\n1,2\n")
    with pytest.raises(ReplayError, match="not an MT5 export"):
        SimTerminal(config=SimConfig(server_timezone="UTC", replay={"EURUSD": str(bad)}))
    bad.write_text(BARS.read_text().replace("07:01:00", "06:01:00"))
    with pytest.raises(ReplayError, match="line 3: earlier than the line before"):
        SimTerminal(config=SimConfig(server_timezone="UTC", replay={"EURUSD": str(bad)}))
    with pytest.raises(ValidationError, match=r"Unknown symbol 'BTCUSD'.* - at `\$.replay.BTCUSD`"):
        SimConfig(server_timezone="UTC", replay={"BTCUSD": str(BARS)})
    with pytest.raises(ReplayError, match="before a file's first row"):
        SimTerminal(
            config=SimConfig(
                server_timezone="UTC", replay={"EURUSD": str(BARS)}, replay_from=START - 60
            )
        )
    with pytest.raises(FileNotFoundError):
        SimTerminal(
            config=SimConfig(
                server_timezone="UTC", replay={"EURUSD": str(tmp_path / "missing.csv")}
            )
        )


async def test_a_strategy_trades_the_file_through_a_real_gateway(
    tmp_path: Path, secret: str
) -> None:
    """The gateway on a replay: the bridge's bars are the file's, and an order fills at the
    file's price of that moment."""
    process = GatewayProcess(
        tmp_path / "gateway",
        secret=secret,
        sim={"replay": {"EURUSD": str(BARS)}, "replay_from": START + 600, "always_open": True},
        log_file=tmp_path / "gateway.log",
    )
    written = rows(BARS)
    with process:
        async with Bridge(process.endpoint, secret=secret) as bridge:
            bars = await bridge.rates("EURUSD", "M1", date_from=START, date_to=START + 120)
            got = [(b["open"], b["high"], b["low"], b["close"]) for b in bars]
            assert got == [tuple(float(x) for x in row[2:6]) for row in written[:3]]
            tick = await bridge.tick("EURUSD")
            reply = await bridge.send_order("EURUSD", "BUY", 0.1)
    # The file's bars of the tick's minute and the next (the clock ran on meanwhile).
    index = (int(tick.time) - int(START)) // 60
    near = written[index : index + 2]
    assert float(near[0][4]) <= tick.bid <= float(near[0][3])
    low = min(float(row[4]) + int(row[8]) * 1e-5 for row in near)
    high = max(float(row[3]) + int(row[8]) * 1e-5 for row in near)
    assert low - 1e-9 <= reply.price <= high + 1e-9  # an ask of the file's minutes


def test_a_symbol_the_simulator_does_not_list_is_replayed_like_one_it_does(
    tmp_path: Path,
) -> None:
    """BTCUSD, two digits, with gold's contract (a CFD: margin at its own price)."""
    file = tmp_path / "BTCUSD_M1.csv"
    header = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    prices = [
        (67000.5 + 10 * k, 67020.25 + 10 * k, 66990.0 + 10 * k, 67010.75 + 10 * k)
        for k in range(30)
    ]
    file.write_text(
        header
        + "".join(
            f"2024.03.04\t10:{k:02d}:00\t{o:.2f}\t{h:.2f}\t{lo:.2f}\t{c:.2f}\t40\t0\t1500\n"
            for k, (o, h, lo, c) in enumerate(prices)
        )
    )
    clock = Clock(0.0)
    added = {"BTCUSD": {"file": str(file), "like": "XAUUSD"}}
    mt5 = SimTerminal(
        config=SimConfig(server_timezone="UTC", replay=added, always_open=True), clock=clock
    )  # type: ignore[arg-type]
    assert mt5.initialize()
    clock.now = 20 * 60 + 30  # 10:20:30 in the file
    info = mt5.symbol_info("BTCUSD")
    assert info is not None
    assert (info.digits, info.path, info.trade_contract_size) == (2, "Custom\\BTCUSD", 100.0)
    bars = mt5.copy_rates_from_pos("BTCUSD", mt5.TIMEFRAME_M1, 1, 3)
    assert bars is not None and [b["open"] for b in bars] == [p[0] for p in prices[17:20]]
    tick = mt5.symbol_info_tick("BTCUSD")
    assert tick is not None and prices[20][2] <= tick.bid <= prices[20][1]
    assert round(tick.ask - tick.bid, 2) == 15.0  # 1500 points of 0.01
    request = {"action": 1, "symbol": "BTCUSD", "volume": 0.01, "type": 0, "price": tick.ask}
    sent = mt5.order_send(request)
    assert sent is not None and sent.retcode == 10009, sent
    account = mt5.account_info()  # gold's contract: 100 units a lot, 1:100
    assert account is not None
    assert account.margin == pytest.approx(0.01 * 100 * tick.ask / 100, rel=0.01)
    eurusd = mt5.symbol_info_tick("EURUSD")  # the listed symbols are there, made up, then
    now_s = int(START) + 3 * 3600 + 20 * 60 + 30  # 10:20:30
    assert eurusd is not None and now_s - 60 < eurusd.time <= now_s
    with pytest.raises(ValidationError, match=r"give \{file = \.\.\., like"):
        SimConfig(server_timezone="UTC", replay={"BTCUSD": str(file)})
    with pytest.raises(
        ValidationError, match=r"Unknown symbol 'DOGE' - at `\$.replay.BTCUSD`.like"
    ):
        SimConfig(server_timezone="UTC", replay={"BTCUSD": {"file": str(file), "like": "DOGE"}})  # type: ignore[dict-item]
