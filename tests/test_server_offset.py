"""The trade server's clock as the gateway learns it: from fresh quotes only, each change said
and kept, a configured zone the truth; end to end, PING, the metric and the data directory."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from support import eventually_async, scrape, server_clock_known

from gtw_server.adapter import TerminalAdapter
from gtw_server.server_offset import OFFSET_FILE, ServerOffset
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge
from protocol import ServerClock

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def test_a_fresh_quote_tells_the_offset_and_a_stale_one_nothing(tmp_path: Path) -> None:
    offset = ServerOffset(tmp_path / OFFSET_FILE)
    assert offset.offset_s is None
    assert offset.learn(NOW + 7200 - 400, NOW) is None  # 6 min 40 s old: a closed market's
    assert offset.learn(NOW + 7200 + 120, NOW) is None  # two minutes ahead: not a clock
    assert offset.learn(NOW + 7200 - 290, NOW) == (
        "the trade server is on UTC+2 (from the terminal's quotes)"
    )
    assert offset.learn(NOW + 7200 - 5, NOW + 60) is None  # the same: nothing to say
    assert (offset.offset_s, offset.offsets) == (7200, [(int(NOW), 7200)])
    summer = NOW + 180 * 86_400
    assert offset.learn(summer + 10_800 - 1, summer) == (
        "the trade server's clock moved from UTC+2 to UTC+3 (a daylight-saving change?)"
    )
    assert offset.learn(summer + 5.5 * 3600, summer) is not None  # half hours are zones too
    assert offset.offsets[-1] == (int(summer), 19_800)


def test_what_was_learned_is_kept_and_a_broken_file_is_learned_again(tmp_path: Path) -> None:
    path = tmp_path / OFFSET_FILE
    offset = ServerOffset(path)
    offset.learn(NOW + 7200, NOW)
    offset.save()
    assert json.loads(path.read_text()) == {"offsets": [[int(NOW), 7200]]}
    assert ServerOffset(path).offset_s == 7200  # a restart on a weekend still knows
    path.write_text("{not json")  # a careless edit
    again = ServerOffset(path)
    assert again.offset_s is None
    assert again.learn(NOW + 7200, NOW) is not None


def test_a_configured_zone_is_the_truth_and_a_quote_that_disagrees_is_said_once(
    tmp_path: Path,
) -> None:
    offset = ServerOffset(tmp_path / OFFSET_FILE, zone="EET")
    assert offset.offset_s == ServerClock("EET").offset_s(time.time())
    assert offset.learn(NOW + 7200, NOW) is None  # EET is UTC+2 on 1 January
    warning = offset.learn(NOW, NOW)  # a terminal on UTC: the zone, or the clock, is wrong
    assert warning is not None and "say the trade server is on UTC, but" in warning
    assert offset.learn(NOW + 1, NOW) is None  # said once
    assert offset.offsets == []  # nothing learned replaces the zone
    assert not (tmp_path / OFFSET_FILE).exists()


def test_only_a_quote_that_moves_tells_the_time() -> None:
    clock = {"now": NOW + 10 * 3600}  # a Thursday, markets open
    config = SimConfig(server_timezone="EET")
    with SimTerminal(config=config, clock=lambda: clock["now"]) as terminal:
        adapter = TerminalAdapter(terminal)
        assert adapter.connect().quote_msc == 0  # picks the symbol to read
        assert adapter.status().quote_msc == 0  # its first reading: moving or not?
        assert adapter.status().quote_msc == 0  # the same quote: says nothing
        clock["now"] += 30
        quote_s = adapter.status().quote_msc / 1000
        assert 0 <= clock["now"] + 7200 - quote_s < 30  # moved: the server's clock, fresh


def test_a_closed_markets_last_quote_never_tells_the_time() -> None:
    # Saturday: every quote is Friday night's, a whole number of quarter hours (and days) old,
    # which rounded would pass for an offset (the weekend would walk it down to UTC-22).
    saturday = NOW + 2 * 86_400 + 12 * 3600  # 2026-01-03 12:00 UTC
    clock = {"now": saturday}
    config = SimConfig(server_timezone="EET")  # markets keep their hours
    offset = ServerOffset(Path("/nonexistent") / OFFSET_FILE)
    with SimTerminal(config=config, clock=lambda: clock["now"]) as terminal:
        adapter = TerminalAdapter(terminal)
        adapter.connect()
        for _ in range(50):  # two days of looks, 15 minutes apart
            clock["now"] += 900
            status = adapter.status()
            assert status.quote_msc == 0
        assert offset.offset_s is None


async def test_ping_reports_the_offset_learned_from_an_eet_terminal(
    tmp_path: Path, secret: str
) -> None:
    port = free_port()
    gateway = GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        sim={"server_timezone": "EET"},
        gateway={"metrics_port": port},
        log_file=tmp_path / "gateway.log",
    )
    expected = ServerClock("EET").offset_s(time.time())
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            await server_clock_known(bridge)
            info = bridge.health.gateway
        samples = await asyncio.to_thread(scrape, port)
    assert info is not None
    assert (info.server_offset_s, info.server_timezone) == (expected, None)
    assert info.server_offsets is not None and info.server_offsets[-1][1] == expected
    assert samples["mt5_gateway_server_offset_seconds"] == expected
    kept = json.loads((tmp_path / "gw" / OFFSET_FILE).read_text())
    assert kept["offsets"][-1][1] == expected
    log = (tmp_path / "gateway.log").read_text()
    assert "the trade server is on UTC+" in log


@pytest.mark.parametrize(("zone", "warned"), [("EET", False), ("UTC", True)])
async def test_a_configured_zone_is_reported_and_a_wrong_one_is_warned_of(
    tmp_path: Path, secret: str, zone: str, warned: bool
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        sim={"server_timezone": "EET"},
        gateway={"server_timezone": zone},
        log_file=tmp_path / "gateway.log",
    )
    log_file = tmp_path / "gateway.log"
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            info = bridge.health.gateway  # a named zone is known from the first beat
            if warned:  # once a quote moved and disagreed
                await eventually_async(
                    lambda: "but [gateway] server_timezone UTC is UTC now" in log_file.read_text(),
                    "the warning",
                    timeout=60,
                )
    assert info is not None
    assert (info.server_timezone, info.server_offsets) == (zone, None)
    assert info.server_offset_s == ServerClock(zone).offset_s(time.time())
    assert ("but [gateway] server_timezone UTC is UTC now" in log_file.read_text()) is warned
