"""Trade events through real gateway processes: every deal (the bridge's, SL, TP), every pending
order change and the account, each once and in order to a client that was away, across a
gateway killed and restarted; the log's hostile days (held, deleted); GET_ACCOUNT and
GET_POSITIONS answered while orders hold the terminal; and (the watcher alone, on a simulated
terminal) a wall clock that jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from support import JsonDealer, LockHolder, eventually, eventually_async

from gtw_server.adapter import OpenOrder, TerminalAdapter
from gtw_server.event_log import EventLog
from gtw_server.operations import WATCH
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.terminal.sim.store import Transaction
from gtw_server.testing import GatewayProcess
from gtw_server.trade_watch import TradeWatcher
from gtw_server.trades import TradeReader, Watch, Watched
from inf_bridge import Bridge, DealEvent, OrderEvent, OrderRejected, TradeEvent
from inf_bridge.streams import Stream
from inf_bridge.trade_events import TradeEvents
from protocol import Event, Side, trade_topic
from protocol.mt5_structs import TradeDeal, build

FAST = {"trade_poll_ms": 50, "account_event_interval_ms": 0}
POINT = 0.00001


def looked(endpoint: str) -> int:
    """The log's last number once the watcher's first look (the opening deposit, the
    account) is in it."""
    return eventually(lambda: log_end(endpoint)[1] >= 2 and log_end(endpoint)[1], "a first look")


def log_end(endpoint: str) -> tuple[str, int]:
    """The event log's id and last number, asked with hand-written JSON."""
    client = JsonDealer(endpoint)
    try:
        reply = client.ok("GET_EVENTS", since=2**63 - 1)
    finally:
        client.close()
    assert reply["events"] == []
    return reply["log"], reply["last_seq"]


async def collect(
    bridge: Bridge, since: int, want: int, *, log: str | None = None, timeout: float = 60.0
) -> tuple[list[TradeEvent], Any]:
    """The trade events after ``since`` until ``want`` trade deals (not the deposit) have come,
    and the iterator."""
    events: list[TradeEvent] = []
    stream = bridge.events(since=since, log=log)
    async with asyncio.timeout(timeout), stream:
        async for event in stream:
            events.append(event)
            if len(_trades(events)) >= want:
                break
    return events, stream


def _trades(events: list[TradeEvent]) -> list[DealEvent]:
    return [e for e in events if isinstance(e, DealEvent) and e.deal.type != 2]  # not BALANCE


async def round_trips(bridge: Bridge, count: int) -> set[str]:
    """``count`` positions opened and closed: 2 * ``count`` deals; their uuids."""
    uuids: set[str] = set()
    for _ in range(count):
        fill = await bridge.send_order("EURUSD", "BUY", 0.01)
        closed = await bridge.close_position(fill.ticket)
        uuids |= {fill.uuid, closed.uuid}
    return uuids


async def tight_stops(bridge: Bridge, count: int) -> set[str]:
    """``count`` positions with SL at the bid and TP a point above it: the next tick closes
    each (SL or TP), a deal the bridge did not send."""
    uuids: set[str] = set()
    for _ in range(20 * count):  # bounded: a refusal is the price moving, rarely twice
        if len(uuids) == count:
            break
        tick = await bridge.tick("EURUSD")
        sl, tp = tick.bid, round(tick.bid + POINT, 5)
        try:
            uuids.add((await bridge.send_order("EURUSD", "BUY", 0.01, sl=sl, tp=tp)).uuid)
        except OrderRejected as exc:  # the bid moved past the stop meanwhile: take it again
            assert exc.retcode == 10016, exc
    assert len(uuids) == count
    return uuids


async def test_a_client_away_for_200_deals_and_a_gateway_kill_gets_each_once_in_order(
    tmp_path: Path, secret: str
) -> None:
    data_dir = tmp_path / "gw"
    first = GatewayProcess(data_dir, secret=secret, gateway=FAST).start()
    try:
        log, start = log_end(first.endpoint)
        async with Bridge(first.endpoint, secret=secret) as trader:
            sent = await round_trips(trader, 50)  # 100 deals
            sent |= await tight_stops(trader, 5)  # 5 deals now, 5 by SL or TP later
            await asyncio.sleep(0.2)  # a look or two: some committed, maybe not all
    finally:
        first.kill()  # kill -9, between looks or in one

    with GatewayProcess(data_dir, secret=secret, gateway=FAST, port=first.port) as second:
        async with Bridge(second.endpoint, secret=secret) as trader:
            sent |= await round_trips(trader, 45)  # 90 deals: 200 in all
            await eventually_async(
                lambda: _flat(trader), "the terminal to close the tight positions", 60
            )
            history = await trader.history(time.time() - 86_400, time.time() + 86_400)
        async with Bridge(second.endpoint, secret=secret) as away:  # back after it all
            events, stream = await collect(away, start, 200, log=log)

    deals = _trades(events)
    seqs = [e.seq for e in events]
    assert seqs == list(range(start + 1, start + 1 + len(events)))  # gap-free, in order, once
    assert len(deals) == 200 and len({d.deal.ticket for d in deals}) == 200
    assert {d.deal.ticket for d in deals} == {d.ticket for d in history if d.type != 2}
    by_terminal = [d for d in deals if d.reason in ("SL", "TP")]
    assert len(by_terminal) == 5 and all(d.uuid is None and d.deal.entry == 1 for d in by_terminal)
    assert {d.uuid for d in deals if d.reason == "EXPERT"} == sent  # each tied to its request
    assert not stream.gaps and stream.log == log  # the same log, across the kill


async def test_trade_events_keep_coming_while_orders_keep_the_terminal_busy(
    tmp_path: Path, secret: str
) -> None:
    # Four traders with 16 orders in flight each keep the worker's pipe full: the watcher's
    # looks (background calls) must still get their turn, or a burst of orders freezes the
    # events (and the account snapshot) until it ends, just when they matter.
    with GatewayProcess(tmp_path / "gw", secret=secret, gateway=FAST) as gateway:
        _, start = log_end(gateway.endpoint)
        async with contextlib.AsyncExitStack() as stack:
            traders = [
                await stack.enter_async_context(Bridge(gateway.endpoint, secret=secret))
                for _ in range(4)
            ]
            limit, sent = 4_000, [0]  # bounded: a few seconds of orders here

            async def burst(trader: Bridge) -> None:
                while sent[0] < limit:
                    sent[0] += 1
                    fill = await trader.send_order("EURUSD", "BUY", 0.01)
                    await trader.close_position(fill.ticket)

            senders = [asyncio.create_task(burst(t)) for t in traders for _ in range(16)]
            try:
                await asyncio.sleep(0.5)  # the pipe is full by now
                sent_then = sent[0]
                async with asyncio.timeout(120), traders[0].events(since=start) as stream:
                    async for event in stream:
                        if _trades([event]):
                            break
                told_after = sent[0] - sent_then
            finally:
                for sender in senders:
                    sender.cancel()
                await asyncio.gather(*senders, return_exceptions=True)
    # Told while the burst went on: well before its last order was sent.
    assert sent[0] < limit, f"the first deal was told after the burst, {told_after} orders on"


async def _flat(bridge: Bridge) -> bool:
    return not await bridge.get_positions(fresh=True)


async def test_a_stop_order_fills_when_the_price_comes_and_the_events_say_so(
    gateway: GatewayProcess, secret: str
) -> None:
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        start = looked(gateway.endpoint)
        tick = await bridge.tick("EURUSD")
        stop = await bridge.place_order("EURUSD", "BUY_STOP", 0.1, round(tick.ask + POINT, 5))
        seen: list[TradeEvent] = []
        chase = asyncio.create_task(_chase(bridge, stop.order))
        try:
            async with asyncio.timeout(120), bridge.events(since=start) as stream:
                async for event in stream:  # the price moves by itself in the simulator
                    seen.append(event)
                    if isinstance(event, OrderEvent) and event.change == "FILLED":
                        break
        finally:
            chase.cancel()
    changes = [(e.order.ticket, e.change) for e in seen if isinstance(e, OrderEvent)]
    assert changes[0] == (stop.order, "PLACED") and changes[-1] == (stop.order, "FILLED")
    assert {change for _, change in changes[1:-1]} <= {"MODIFIED"}  # moved closer, if it was
    (fill,) = _trades(seen)
    assert fill.deal.order == stop.order and fill.uuid == stop.uuid and fill.deal.entry == 0
    filled = next(e for e in seen if isinstance(e, OrderEvent) and e.change == "FILLED")
    assert filled.order.state == 4 and filled.uuid == stop.uuid  # ORDER_STATE_FILLED
    assert seen.index(fill) < seen.index(filled)  # the deal, then the order it filled


async def _chase(bridge: Bridge, order: int) -> None:
    """Every few seconds, move the stop to a point above the ask, until it has filled: the
    simulator's price wanders back to its mean, and may take long to rise on its own."""
    while True:
        await asyncio.sleep(3)
        tick = await bridge.tick("EURUSD")
        try:
            await bridge.modify_order(order, price=round(tick.ask + POINT, 5))
        except OrderRejected as exc:
            if exc.error_code == "ORDER_NOT_FOUND":
                return  # filled
            # NO_CHANGES, or INVALID_PRICE: the market moved meanwhile; look again


async def test_a_held_event_log_delays_events_and_loses_none(tmp_path: Path, secret: str) -> None:
    data_dir = tmp_path / "gw"
    with GatewayProcess(data_dir, secret=secret, gateway=FAST) as gateway:
        start = looked(gateway.endpoint)
        holder = LockHolder.sqlite(data_dir / "events.sqlite3")  # a backup tool, a shell
        try:
            async with Bridge(gateway.endpoint, secret=secret) as trader:
                await round_trips(trader, 3)  # orders never touch the event log
                _, held_end = log_end(gateway.endpoint)
                assert held_end == start  # nothing could be committed meanwhile
        finally:
            holder.release()
        async with Bridge(gateway.endpoint, secret=secret) as client:
            events, _ = await collect(client, start, 6)
    deals = _trades(events)
    assert len(deals) == 6 and len({d.deal.ticket for d in deals}) == 6


async def test_a_deleted_event_log_is_another_log_and_the_client_is_told(
    tmp_path: Path, secret: str
) -> None:
    data_dir = tmp_path / "gw"
    with GatewayProcess(data_dir, secret=secret, gateway=FAST) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as trader:
            await round_trips(trader, 2)
            events, stream = await collect(trader, 0, 4)
            old_log, old_seq = stream.log, events[-1].seq
    for name in ("events.sqlite3", "events.sqlite3-wal", "events.sqlite3-shm"):
        (data_dir / name).unlink(missing_ok=True)  # a careless operator
    with GatewayProcess(data_dir, secret=secret, gateway=FAST, port=gateway.port) as restarted:
        async with Bridge(restarted.endpoint, secret=secret) as trader:
            await round_trips(trader, 1)
            events, stream = await collect(trader, old_seq, 2, log=old_log)
    assert stream.log != old_log
    assert [gap.restarted for gap in stream.gaps] == [True]
    assert events[0].seq == 1  # the new log, read from its start


async def test_account_and_positions_answer_while_an_order_holds_the_terminal(
    tmp_path: Path, secret: str
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        sim={"hang_on_order": 2},  # the 2nd order hangs in the terminal
        gateway={"terminal_timeout_s": 6.0, "read_timeout_ms": 300, **FAST},
    )
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret, request_timeout=2.0) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1)
            client = JsonDealer(gateway.endpoint)
            try:
                # A client with no order of its own gets the watcher's last look: wait until
                # that look shows the position (the Bridge itself would read its own fill).
                await eventually_async(
                    lambda: _snapshot_shows(client, fill.ticket), "the watcher to see it"
                )
                hung = asyncio.create_task(bridge.send_order("EURUSD", "BUY", 0.2))
                await asyncio.sleep(0.5)  # the order is in the terminal, hanging
                cached = client.ok("GET_ACCOUNT")
                positions = client.ok("GET_POSITIONS", symbol="EURUSD")
                fresh = client.ok("GET_ACCOUNT", fresh=True)  # waits read_timeout_ms at most
            finally:
                client.close()
            assert not hung.done()  # all three answered while the order held the terminal
            assert cached["account"]["login"] > 0 and cached["age_ms"] > 0
            assert [p["ticket"] for p in positions["positions"]] == [fill.ticket]
            # Past the bound, the last reading, with its age (not a wait behind the order).
            assert fresh["age_ms"] >= cached["age_ms"]
            await asyncio.wait_for(hung, 30)  # the watchdog restarts the worker; it fills
            assert (await bridge.get_account(fresh=True)).login == cached["account"]["login"]


def _snapshot_shows(client: JsonDealer, ticket: int) -> bool:
    return [p["ticket"] for p in client.ok("GET_POSITIONS")["positions"]] == [ticket]


def test_get_events_pages_with_hand_written_json(gateway: GatewayProcess) -> None:
    client = JsonDealer(gateway.endpoint)
    try:
        looked(gateway.endpoint)  # the opening deposit and the account are in the log
        first = client.ok("GET_EVENTS", since=0, limit=2)
        assert first["log"] and first["first_seq"] == 1 and first["last_seq"] >= 2
        assert [e["seq"] for e in first["events"]] == [1, 2]
        assert first["events"][0]["deal"]["type"] == 2  # the opening deposit (DEAL_TYPE_BALANCE)
        nxt = client.ok("GET_EVENTS", since=1, limit=1)
        assert [e["seq"] for e in nxt["events"]] == [2]
        for bad in ({"since": -1}, {"limit": 0}, {"limit": 1001}, {"since": "1"}):
            reply, _ = client.ask("GET_EVENTS", **bad)
            assert (reply["status"], reply["error_code"]) == ("REJECTED", "INVALID_REQUEST")
            assert next(iter(bad)) in reply["error_msg"]
    finally:
        client.close()


@pytest.mark.parametrize("action", ["GET_ACCOUNT", "GET_POSITIONS"])
def test_fresh_reads_say_how_old_they_are(gateway: GatewayProcess, action: str) -> None:
    client = JsonDealer(gateway.endpoint)
    try:
        assert client.ok(action, fresh=True)["age_ms"] == 0
        reply, _ = client.ask(action, fresh="yes")
        assert (reply["status"], reply["error_code"]) == ("REJECTED", "INVALID_REQUEST")
    finally:
        client.close()


class _InProcessWorker:
    """The worker's WATCH run in this process, on a simulated terminal."""

    def __init__(self, reader: TradeReader) -> None:
        self.reader = reader

    async def call(self, op: Any, argument: Watch) -> Watched:
        assert op is WATCH
        return self.reader.watch(argument)


async def test_a_clock_that_jumps_ahead_and_back_misses_no_deal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mt5 = SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True))
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    log = EventLog(tmp_path / "events.sqlite3", retention_s=86_400)
    watcher = TradeWatcher(
        _InProcessWorker(TradeReader(adapter)),  # type: ignore[arg-type]
        log,
        None,
        run="r",
        owner=lambda tag: None,
        interval_s=1.0,
        account_interval_s=3600.0,
    )
    real = time.time
    try:
        await watcher.look()  # the deposit, the account
        first = adapter.open(OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="a"))
        monkeypatch.setattr(time, "time", lambda: real() + 3 * 86_400)  # NTP gone wild
        ahead = await watcher.look()
        monkeypatch.setattr(time, "time", real)  # and corrected
        second = adapter.open(OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment="b"))
        back = await watcher.look()
    finally:
        log.close()
    assert [e.deal.ticket for e in ahead if e.deal] == [first.deal]
    assert [e.deal.ticket for e in back if e.deal] == [second.deal]  # not skipped


class _Looks:
    """A trade watcher on a simulated terminal in this process, and the reads of the history
    its looks made."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "sim.sqlite3"
        self.sim = SimTerminal(
            config=SimConfig(server_timezone="UTC", always_open=True), state_path=self.state
        )
        self.adapter = TerminalAdapter(self.sim)
        assert self.adapter.connect().connected
        self.log = EventLog(tmp_path / "events.sqlite3", retention_s=86_400)
        self.reads: list[tuple[str, tuple[Any, ...]]] = []
        read = self.adapter.read

        def noted(what: str, *args: Any, **query: Any) -> Any:
            self.reads.append((what, args))
            return read(what, *args, **query)

        self.adapter.read = noted  # type: ignore[method-assign]
        self.reader = TradeReader(self.adapter)
        self.watcher = TradeWatcher(
            _InProcessWorker(self.reader),  # type: ignore[arg-type]
            self.log,
            None,
            run="r",
            owner=lambda tag: None,
            interval_s=1.0,
            account_interval_s=3600.0,
        )

    def buy(self, comment: str) -> int:
        opened = self.adapter.open(
            OpenOrder(symbol="EURUSD", side=Side.BUY, volume=0.1, comment=comment)
        )
        assert opened.deal is not None
        return opened.deal

    async def deals_told(self) -> list[int]:
        self.reads.clear()
        return [e.deal.ticket for e in await self.watcher.look() if e.deal]

    def read_from(self) -> list[int]:
        """Where each of the last look's history reads started."""
        return [args[0] for what, args in self.reads if what.endswith("_get") and args]


async def test_looks_read_only_the_recent_history_once_it_is_tallied(tmp_path: Path) -> None:
    looks = _Looks(tmp_path)
    try:
        await looks.deals_told()  # the first reads the day whole, and tallies it
        day_from = looks.read_from()[0]
        for n in range(3):
            ticket = looks.buy(f"n{n}")
            assert await looks.deals_told() == [ticket]
            assert min(looks.read_from()) > day_from + 86_000  # seconds, not a day
    finally:
        looks.log.close()


async def test_a_deal_synced_late_with_an_old_time_is_still_told(tmp_path: Path) -> None:
    looks = _Looks(tmp_path)
    try:
        await looks.deals_told()
        first = looks.buy("first")
        assert await looks.deals_told() == [first]
        # A terminal back from an outage syncs a deal the server made an hour ago (a stop
        # loss): the next ticket, with an old time, outside the recent history.
        broker = looks.sim._broker
        ticket, broker._next_deal = broker._next_deal, broker._next_deal + 1
        deal = next(d for d in looks.sim.history_deals_get(0, 2**31 - 1) if d.ticket == first)
        late = deal._asdict() | {"ticket": ticket, "time": deal.time - 3600}
        late["time_msc"] = late["time"] * 1000
        broker.store.commit(  # as the simulator writes its own deals (to its file and memory)
            Transaction(
                balance=broker.account.balance,
                next_order=broker._next_order,
                next_deal=broker._next_deal,
                deals=(build(TradeDeal, late),),
            ),
            [],
        )
        assert await looks.deals_told() == [ticket]  # the counts did not add up
        assert min(looks.read_from()) < late["time"]  # so the day was read whole, once
        second = looks.buy("second")
        assert await looks.deals_told() == [second]
        assert min(looks.read_from()) > late["time"]  # and then the recent history again
    finally:
        looks.log.close()


async def test_a_reader_whose_queue_overflowed_gets_the_lost_events_from_the_log(
    gateway: GatewayProcess, secret: str
) -> None:
    start = looked(gateway.endpoint)
    async with Bridge(
        gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
    ) as bridge:
        # A reader too slow for its live queue: two events fit, the rest fall out of it.
        live: Stream[Event] = Stream(bridge._events(), [trade_topic()], lambda e: e, maxsize=2)
        events = TradeEvents(bridge._event_page, live, start)
        seen: list[TradeEvent] = []
        async with asyncio.timeout(30):
            await round_trips(bridge, 1)
            while len(_trades(seen)) < 2:  # caught up: reading live from here
                seen.append(await anext(events))
            await round_trips(bridge, 5)  # 10 deals and their account events, not read
            await eventually_async(lambda: live.dropped > 0, "the live queue to overflow")
            while len(_trades(seen)) < 12:
                seen.append(await anext(events))
        await events.aclose()
    first = seen[0]
    assert first.seq == start + 1
    seqs = [e.seq for e in seen]
    assert seqs == list(range(first.seq, first.seq + len(seen)))  # none lost, none twice
