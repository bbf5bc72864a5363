"""Pending orders and the history end to end: GET_ORDERS and GET_HISTORY against real gateway
processes on the simulator, through a raw DEALER with JSON written by hand (what a third-party
client sees) and through the public ``Bridge``.

The bridge cannot place pending orders, so the ``prepared`` gateway's terminal gets them before
the gateway starts: a ``SimTerminal`` on the gateway's own state file (``sim.sqlite3``), its
clock an hour back, places three (a BUY_LIMIT, a SELL_STOP and a SELL_LIMIT on three symbols,
each far from the price, so that none can trigger), and the gateway then opens that file. The
history comes from OPEN and CLOSE sent through the Bridge (``trades``, once for the module): it
holds three positions: one closed at once, one in two parts, one still open. No test changes what
another one reads.

The ``small`` gateway has ``max_rows = 2`` and a metrics endpoint: the TOO_LARGE refusals, the
refusals of bad arguments (raw) and the Bridge's own refusals (nothing sent, checked on its
metrics) run there.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, NamedTuple

import pytest
from support import JsonDealer, read_replies

from gtw_server.tagging import order_tag
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, InvalidRequest, OrderFilled, RequestRefused
from protocol import Deal, Order, wire_fields

SECRET: Final = "test-trade-reads-" + secrets.token_hex(16)
SEED: Final = 5
MAX_ROWS: Final = 2  # the ``small`` gateway's [gateway] max_rows
MT5_STRUCTS: Final = Path("/work/shared/reference/mt5_structs.json")
UNKNOWN: Final = 987_654_321  # a ticket no order, deal or position has

# The package's values (docs/MT5_API.md), written out: the test checks the numbers on the wire.
BUY, SELL = 0, 1  # ORDER_TYPE_* and DEAL_TYPE_* of market deals
BUY_LIMIT, SELL_LIMIT, SELL_STOP = 2, 3, 5
DEAL_TYPE_BALANCE: Final = 2
ENTRY_IN, ENTRY_OUT = 0, 1
REASON_EXPERT: Final = 3  # DEAL_REASON_EXPERT and ORDER_REASON_EXPERT
STATE_PLACED, STATE_FILLED = 1, 4
FILLING_RETURN: Final = 2
ORDER_FIELDS: Final = wire_fields(Order)  # server_offset_s is the Bridge's, never sent
DEAL_FIELDS: Final = wire_fields(Deal)


# -- the gateways --------------------------------------------------------------------------------


class Prepared(NamedTuple):
    """The gateway whose terminal had pending orders before it started."""

    process: GatewayProcess
    placed_at: float  # the preparing terminal's clock: every order's time_setup
    orders: dict[str, dict[str, Any]]  # by symbol, as orders_get gave them then
    unknown_ticket: tuple[Any, ...]  # what orders_get(ticket=UNKNOWN) gave then

    @property
    def endpoint(self) -> str:
        return self.process.endpoint

    def tickets(self, *symbols: str) -> list[int]:
        return [self.orders[symbol]["ticket"] for symbol in symbols]


def _place(mt5: SimTerminal) -> None:
    """Three pending orders, each 20 % away from the price on its untriggered side."""
    euro, yen, index = (mt5.symbol_info_tick(name) for name in ("EURUSD", "USDJPY", "US500"))
    assert euro is not None and yen is not None and index is not None
    price = round(euro.ask * 0.8, 5)
    requests: list[dict[str, Any]] = [
        {
            "symbol": "EURUSD",
            "type": BUY_LIMIT,
            "volume": 0.1,
            "price": price,
            "sl": round(price * 0.95, 5),
            "tp": round(price * 1.05, 5),
            "magic": 7,
            "comment": "dip",
        },
        {"symbol": "USDJPY", "type": SELL_STOP, "volume": 0.2, "price": round(yen.bid * 0.8, 3)},
        {
            "symbol": "US500",
            "type": SELL_LIMIT,
            "volume": 0.5,
            "price": round(index.bid * 1.2, 2),
            "type_filling": FILLING_RETURN,  # a limit order on a Market-execution symbol
            "magic": 9,
            "comment": "fade the top",
        },
    ]
    for request in requests:
        result = mt5.order_send({"action": mt5.TRADE_ACTION_PENDING, **request})
        assert result is not None, mt5.last_error()
        assert result.retcode == 10009 and result.order > 0, result


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    base = tmp_path_factory.mktemp("trade-reads")
    data_dir = base / "gateway"
    data_dir.mkdir()
    placed_at = time.time() - 3600
    with SimTerminal(
        state_path=data_dir / "sim.sqlite3",
        config=SimConfig(server_timezone="UTC", always_open=True, seed=SEED),
        clock=lambda: placed_at,
    ) as mt5:
        assert mt5.initialize()
        _place(mt5)
        found = mt5.orders_get()
        unknown = mt5.orders_get(ticket=UNKNOWN)
        assert found is not None and unknown is not None, mt5.last_error()
        assert mt5.shutdown()
    assert [order.symbol for order in found] == ["EURUSD", "USDJPY", "US500"]
    process = GatewayProcess(
        data_dir, secret=SECRET, sim={"seed": SEED}, log_file=base / "gateway.log"
    )
    with process:
        yield Prepared(
            process, placed_at, {order.symbol: order._asdict() for order in found}, unknown
        )


class Small(NamedTuple):
    """The gateway with ``max_rows = 2``, its metrics port, and the trades made on it."""

    process: GatewayProcess
    metrics_port: int
    closed: OrderFilled  # the OPEN of the EURUSD position, closed since
    still_open: OrderFilled  # the OPEN of the XAUUSD position

    @property
    def endpoint(self) -> str:
        return self.process.endpoint


async def _small_trades(endpoint: str) -> tuple[OrderFilled, OrderFilled]:
    async with Bridge(endpoint, secret=SECRET, request_timeout=15.0) as bridge:
        closed = await bridge.send_order("EURUSD", "BUY", 0.1)
        await bridge.close_position(closed.ticket)
        still_open = await bridge.send_order("XAUUSD", "SELL", 0.01)
        return closed, still_open


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    """Its history: the deposit, then 3 deals and 3 orders (2 and 2 of the closed position)."""
    base = tmp_path_factory.mktemp("trade-reads-small")
    port = free_port()
    process = GatewayProcess(
        base / "gateway",
        secret=SECRET,
        sim={"seed": SEED + 1},
        gateway={"max_rows": MAX_ROWS, "metrics_port": port},
        log_file=base / "gateway.log",
    )
    with process:
        closed, still_open = asyncio.run(_small_trades(process.endpoint))
        yield Small(process, port, closed, still_open)


class Trades(NamedTuple):
    """What the Bridge did on the ``prepared`` gateway, from ``start`` to ``end`` (epoch
    seconds, both whole; nothing else happened on that terminal meanwhile)."""

    start: int
    end: int
    fills: dict[str, OrderFilled]  # by step, in the order they ran
    uuids: dict[str, str]


# (step, what it does): three positions. A: EURUSD bought and closed; B: USDJPY sold, closed
# in two parts; C: XAUUSD bought, still open.
STEPS: Final = ["a_open", "a_close", "b_open", "b_part", "b_close", "c_open"]


async def _trade(endpoint: str) -> dict[str, OrderFilled]:
    fills: dict[str, OrderFilled] = {}
    async with Bridge(endpoint, secret=SECRET, request_timeout=15.0) as bridge:
        fills["a_open"] = await bridge.send_order(
            "EURUSD", "BUY", 0.1, magic=11, comment="alpha", uuid=f"tr-a-open-{_hex()}"
        )
        fills["a_close"] = await bridge.close_position(
            fills["a_open"].ticket, uuid=f"tr-a-close-{_hex()}"
        )
        fills["b_open"] = await bridge.send_order(
            "USDJPY", "SELL", 0.2, magic=42, comment="bravo", uuid=f"tr-b-open-{_hex()}"
        )
        fills["b_part"] = await bridge.close_position(
            fills["b_open"].ticket, 0.1, uuid=f"tr-b-part-{_hex()}"
        )
        fills["b_close"] = await bridge.close_position(
            fills["b_open"].ticket, uuid=f"tr-b-close-{_hex()}"
        )
        fills["c_open"] = await bridge.send_order("XAUUSD", "BUY", 0.01, uuid=f"tr-c-open-{_hex()}")
    return fills


@pytest.fixture(scope="module")
def trades(prepared: Prepared) -> Trades:
    start = int(time.time())
    fills = asyncio.run(_trade(prepared.endpoint))
    end = int(time.time()) + 1
    assert list(fills) == STEPS
    return Trades(start, end, fills, {step: fill.uuid for step, fill in fills.items()})


def _hex() -> str:
    return secrets.token_hex(4)


# -- a raw client ----------------------------------------------------------------------------


class Raw(JsonDealer):
    """``JsonDealer``, and the orders and deals of a reply, each checked to have every field of
    the package's struct in its order."""

    def orders(self, **fields: Any) -> list[dict[str, Any]]:
        """GET_ORDERS's orders, each checked to have every field of TradeOrder in order."""
        orders: list[dict[str, Any]] = self.ok("GET_ORDERS", **fields)["orders"]
        for order in orders:
            assert list(order) == ORDER_FIELDS
        return orders

    def deals(self, **fields: Any) -> list[dict[str, Any]]:
        """GET_HISTORY's deals, each checked to have every field of TradeDeal in order."""
        reply = self.ok("GET_HISTORY", **fields)
        assert "orders" not in reply
        deals: list[dict[str, Any]] = reply["deals"]
        for deal in deals:
            assert list(deal) == DEAL_FIELDS
        return deals

    def history_orders(self, **fields: Any) -> list[dict[str, Any]]:
        reply = self.ok("GET_HISTORY", kind="ORDERS", **fields)
        assert "deals" not in reply
        orders: list[dict[str, Any]] = reply["orders"]
        for order in orders:
            assert list(order) == ORDER_FIELDS
        return orders


@pytest.fixture
def raw(prepared: Prepared) -> Iterator[Raw]:
    client = Raw(prepared.endpoint)
    yield client
    client.close()


@pytest.fixture
def raw_small(small: Small) -> Iterator[Raw]:
    client = Raw(small.endpoint)
    yield client
    client.close()


@pytest.fixture
async def client(prepared: Prepared) -> AsyncIterator[Bridge]:
    async with Bridge(prepared.endpoint, secret=SECRET, request_timeout=15.0) as bridge:
        yield bridge


def _without_price(order: dict[str, Any]) -> dict[str, Any]:
    """An order's fields but ``price_current``, which follows the market."""
    return {key: value for key, value in order.items() if key != "price_current"}


# -- the shapes -------------------------------------------------------------------------------


def test_the_wire_shapes_are_the_packages() -> None:
    assert len(ORDER_FIELDS) == 24 and len(DEAL_FIELDS) == 18
    if MT5_STRUCTS.exists():  # the recorded shape of the real package's structs
        recorded = json.loads(MT5_STRUCTS.read_text())
        assert [name for name, _ in recorded["TradeOrder"]] == ORDER_FIELDS
        assert [name for name, _ in recorded["TradeDeal"]] == DEAL_FIELDS


# -- GET_ORDERS: raw -----------------------------------------------------------------------------


def test_get_orders_gives_every_pending_order_with_every_field(
    raw: Raw, prepared: Prepared
) -> None:
    orders = raw.orders()
    assert [order["symbol"] for order in orders] == ["EURUSD", "USDJPY", "US500"]
    assert [order["ticket"] for order in orders] == prepared.tickets("EURUSD", "USDJPY", "US500")
    for order in orders:
        placed = prepared.orders[order["symbol"]]
        # Every value as the terminal had it before the gateway started, the live price aside.
        assert _without_price(order) == _without_price(placed)
        assert order["state"] == STATE_PLACED and order["reason"] == REASON_EXPERT
        assert order["time_setup"] == int(prepared.placed_at)
        assert order["time_setup_msc"] // 1000 == order["time_setup"]
        assert (order["time_done"], order["time_done_msc"], order["position_id"]) == (0, 0, 0)
        assert order["volume_current"] == order["volume_initial"]
        # Each was placed 20 % from the price: the current price is about 1.25 (or 0.83)
        # times the order's.
        ratio = order["price_current"] / order["price_open"]
        assert ratio == pytest.approx(1 / 0.8 if order["type"] != SELL_LIMIT else 1 / 1.2, 0.05)
    euro, yen, index = orders
    assert (euro["type"], euro["volume_initial"], euro["magic"], euro["comment"]) == (
        BUY_LIMIT,
        0.1,
        7,
        "dip",
    )
    assert euro["sl"] < euro["price_open"] < euro["tp"]
    assert (yen["type"], yen["volume_initial"], yen["magic"], yen["comment"]) == (
        SELL_STOP,
        0.2,
        0,
        "",
    )
    assert (yen["sl"], yen["tp"]) == (0.0, 0.0)
    assert round(yen["price_open"], 3) == yen["price_open"]
    assert (index["type"], index["volume_initial"], index["type_filling"]) == (
        SELL_LIMIT,
        0.5,
        FILLING_RETURN,
    )
    assert (index["magic"], index["comment"]) == (9, "fade the top")


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("EURUSD", ["EURUSD"]),
        ("USDJPY", ["USDJPY"]),
        ("US500", ["US500"]),
        ("GBPUSD", []),  # a symbol without pending orders
        ("NOPE", []),  # not one of the terminal's: orders_get gives an empty tuple too
    ],
    ids=["eurusd", "usdjpy", "us500", "none-of-its-own", "unknown-symbol"],
)
def test_get_orders_of_a_symbol(
    raw: Raw, prepared: Prepared, symbol: str, expected: list[str]
) -> None:
    orders = raw.orders(symbol=symbol)
    assert [order["ticket"] for order in orders] == prepared.tickets(*expected)
    assert all(order["symbol"] == symbol for order in orders)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("*", ["EURUSD", "USDJPY", "US500"]),
        ("*USD*", ["EURUSD", "USDJPY"]),
        ("*,!EUR*", ["USDJPY", "US500"]),
        ("*USD*,!EUR*", ["USDJPY"]),
        ("US*", ["USDJPY", "US500"]),
        ("EURUSD,US500", ["EURUSD", "US500"]),
        ("GBP*", []),
    ],
    ids=["all", "usd", "not-eur", "usd-not-eur", "prefix", "two-names", "none"],
)
def test_get_orders_of_a_group(
    raw: Raw, prepared: Prepared, group: str, expected: list[str]
) -> None:
    orders = raw.orders(group=group)
    assert [order["symbol"] for order in orders] == expected
    assert [order["ticket"] for order in orders] == prepared.tickets(*expected)


def test_get_orders_by_ticket(raw: Raw, prepared: Prepared) -> None:
    for symbol, placed in prepared.orders.items():
        (order,) = raw.orders(ticket=placed["ticket"])
        assert order["symbol"] == symbol
        assert _without_price(order) == _without_price(placed)


def test_an_unknown_ticket_is_no_order_not_an_error(raw: Raw, prepared: Prepared) -> None:
    """As the package answers orders_get(ticket=...) for a ticket it does not have: an empty
    tuple (the simulator's answer, read before the gateway started), so an empty list."""
    assert prepared.unknown_ticket == ()
    reply = raw.ok("GET_ORDERS", ticket=UNKNOWN)
    assert reply["orders"] == []  # present and empty, not left out
    assert raw.orders(ticket=2**63 - 1) == []  # the largest ticket the contract takes
    raw.alive()


def test_pending_orders_are_not_history(raw: Raw, prepared: Prepared) -> None:
    """Active orders are orders_get's, not history_orders_get's (until filled or canceled)."""
    for ticket in prepared.tickets("EURUSD", "USDJPY", "US500"):
        assert raw.history_orders(ticket=ticket) == []
        assert raw.deals(ticket=ticket) == []


# -- GET_ORDERS: the Bridge ----------------------------------------------------------------------


async def test_bridge_orders(client: Bridge, prepared: Prepared) -> None:
    everything = await client.orders()
    assert all(isinstance(order, Order) for order in everything)
    assert [order.ticket for order in everything] == prepared.tickets("EURUSD", "USDJPY", "US500")
    for order in everything:
        as_dict = {name: getattr(order, name) for name in ORDER_FIELDS}
        assert _without_price(as_dict) == _without_price(prepared.orders[order.symbol])
        assert order.price_current > 0
    (euro,) = await client.orders("EURUSD")
    assert (euro.symbol, euro.type, euro.volume_current) == ("EURUSD", BUY_LIMIT, 0.1)
    assert euro.price_open == prepared.orders["EURUSD"]["price_open"]
    assert [order.symbol for order in await client.orders(group="*,!EUR*")] == ["USDJPY", "US500"]
    (yen,) = await client.orders(ticket=prepared.orders["USDJPY"]["ticket"])
    assert (yen.symbol, yen.type, yen.volume_initial) == ("USDJPY", SELL_STOP, 0.2)
    assert await client.orders(ticket=UNKNOWN) == []
    assert await client.orders("GBPUSD") == []
    assert await client.orders(group="NOPE") == []


# -- GET_HISTORY: raw ----------------------------------------------------------------------------


def _expected_deals(trades: Trades) -> list[dict[str, Any]]:
    """The deals the six steps made, in order: every field but the time, the price and the
    profit, which the test checks on their own."""
    fills = trades.fills
    a, b, c = (fills[f"{name}_open"].ticket for name in "abc")
    rows = [
        # (step, type, entry, position, magic, volume, symbol, comment after the tag)
        ("a_open", BUY, ENTRY_IN, a, 11, 0.1, "EURUSD", " alpha"),
        ("a_close", SELL, ENTRY_OUT, a, 11, 0.1, "EURUSD", ""),
        ("b_open", SELL, ENTRY_IN, b, 42, 0.2, "USDJPY", " bravo"),
        ("b_part", BUY, ENTRY_OUT, b, 42, 0.1, "USDJPY", ""),
        ("b_close", BUY, ENTRY_OUT, b, 42, 0.1, "USDJPY", ""),
        ("c_open", BUY, ENTRY_IN, c, 0, 0.01, "XAUUSD", ""),
    ]
    return [
        {
            "ticket": fills[step].deal,
            "order": fills[step].order,
            "type": kind,
            "entry": entry,
            "magic": magic,
            "position_id": position,
            "reason": REASON_EXPERT,
            "volume": volume,
            "commission": 0.0,
            "swap": 0.0,
            "fee": 0.0,
            "symbol": symbol,
            "comment": order_tag(trades.uuids[step]) + rest,
            "external_id": "",
        }
        for step, kind, entry, position, magic, volume, symbol, rest in rows
    ]


def _check_deals(deals: list[dict[str, Any]], trades: Trades, steps: list[str]) -> None:
    """``deals`` are exactly those of ``steps``, with the right values in every field."""
    expected = {row["ticket"]: row for row in _expected_deals(trades)}
    assert [deal["ticket"] for deal in deals] == [trades.fills[step].deal for step in steps]
    for deal, step in zip(deals, steps, strict=True):
        fill = trades.fills[step]
        assert {key: deal[key] for key in expected[deal["ticket"]]} == expected[deal["ticket"]]
        assert deal["price"] == fill.price
        assert trades.start <= deal["time"] <= trades.end
        assert deal["time_msc"] // 1000 == deal["time"]
        assert deal["comment"].startswith(order_tag(fill.uuid))
        if deal["entry"] == ENTRY_IN:
            assert deal["profit"] == 0.0
    # The deals of one position are linked by position_id, oldest first.
    times = [deal["time_msc"] for deal in deals]
    assert times == sorted(times)


def test_the_deals_of_a_date_range(raw: Raw, trades: Trades) -> None:
    deals = raw.deals(date_from=trades.start, date_to=trades.end)
    _check_deals(deals, trades, STEPS)
    a_in, a_out = deals[:2]
    # EURUSD's profit, in the account's USD: (close - open) x 0.1 lot x 100,000.
    assert a_out["profit"] == pytest.approx((a_out["price"] - a_in["price"]) * 10_000, abs=0.011)
    assert a_in["position_id"] == a_out["position_id"] == trades.fills["a_open"].ticket
    assert a_in["order"] == a_in["position_id"]  # a hedging position's ticket is its order's
    b_in, b_part, b_out = deals[2:5]
    # USDJPY's, converted from yen at the closing price: (open - close) x lots x 100,000 / close.
    for part in (b_part, b_out):
        gained = (b_in["price"] - part["price"]) * part["volume"] * 100_000 / part["price"]
        assert part["profit"] == pytest.approx(gained, abs=0.011)


def test_a_date_range_takes_whole_seconds_both_ends_included(
    raw: Raw, prepared: Prepared, trades: Trades
) -> None:
    everything = raw.deals(date_from=0, date_to=trades.end + 3600)
    deposit, *rest = everything
    # The account's opening deposit, an hour back, when the pending orders were placed.
    assert (deposit["type"], deposit["entry"], deposit["profit"], deposit["comment"]) == (
        DEAL_TYPE_BALANCE,
        ENTRY_IN,
        10_000.0,
        "Deposit",
    )
    assert deposit["time"] == int(prepared.placed_at) and deposit["symbol"] == ""
    _check_deals(rest, trades, STEPS)
    first = rest[0]["time"]
    same_second = [deal for deal in everything if deal["time"] == first]
    assert raw.deals(date_from=first, date_to=first) == same_second
    # Fractions of a second are cut, as the package cuts them.
    assert raw.deals(date_from=first + 0.2, date_to=first + 0.9) == same_second
    assert raw.deals(date_from=trades.end + 1, date_to=trades.end + 3600) == []
    assert raw.deals(date_from=0, date_to=int(prepared.placed_at) - 1) == []


def test_the_deals_of_a_position(raw: Raw, trades: Trades) -> None:
    fills = trades.fills
    _check_deals(raw.deals(position=fills["a_open"].ticket), trades, ["a_open", "a_close"])
    _check_deals(
        raw.deals(position=fills["b_open"].ticket), trades, ["b_open", "b_part", "b_close"]
    )
    _check_deals(raw.deals(position=fills["c_open"].ticket), trades, ["c_open"])
    assert raw.deals(position=UNKNOWN) == []


def test_the_deals_of_an_order(raw: Raw, trades: Trades) -> None:
    """``ticket`` is an order's: the deals that order made (one each, here)."""
    for step in STEPS:
        _check_deals(raw.deals(ticket=trades.fills[step].order), trades, [step])
    assert raw.deals(ticket=UNKNOWN) == []
    # A deal's own ticket is not an order's.
    assert raw.deals(ticket=trades.fills["a_open"].deal) == []


@pytest.mark.parametrize(
    ("group", "steps"),
    [
        ("*", STEPS),
        ("EURUSD", ["a_open", "a_close"]),
        ("*JPY*", ["b_open", "b_part", "b_close"]),
        ("*,!EUR*", ["b_open", "b_part", "b_close", "c_open"]),
        ("*USD*,!USDJPY", ["a_open", "a_close", "c_open"]),
        ("GBP*", []),
    ],
    ids=["all", "one-symbol", "mask", "not-eur", "usd-but-one", "none"],
)
def test_the_deals_of_a_group_in_a_date_range(
    raw: Raw, trades: Trades, group: str, steps: list[str]
) -> None:
    deals = raw.deals(date_from=trades.start, date_to=trades.end, group=group)
    _check_deals(deals, trades, steps)


def test_the_deals_of_one_symbol_in_a_date_range(raw: Raw, trades: Trades) -> None:
    """``symbol`` is one name, resolved as an OPEN's (here the broker's own names); a name the
    terminal does not know selects nothing, as an unknown group does."""
    dated = {"date_from": trades.start, "date_to": trades.end}
    _check_deals(raw.deals(**dated, symbol="USDJPY"), trades, ["b_open", "b_part", "b_close"])
    _check_deals(raw.deals(**dated, symbol="XAUUSD"), trades, ["c_open"])
    assert raw.deals(**dated, symbol="GBPUSD") == []
    assert raw.deals(**dated, symbol="NOPE") == []
    euro = raw.history_orders(**dated, symbol="EURUSD")
    assert [order["ticket"] for order in euro] == [
        trades.fills[step].order for step in ("a_open", "a_close")
    ]


def test_the_orders_of_the_history(raw: Raw, trades: Trades) -> None:
    orders = raw.history_orders(date_from=trades.start, date_to=trades.end)
    fills = trades.fills
    assert [order["ticket"] for order in orders] == [fills[step].order for step in STEPS]
    deals = {deal["order"]: deal for deal in raw.deals(date_from=trades.start, date_to=trades.end)}
    for order, step in zip(orders, STEPS, strict=True):
        deal = deals[order["ticket"]]
        assert order["state"] == STATE_FILLED and order["reason"] == REASON_EXPERT
        assert order["type"] == deal["type"]  # a market order's deal goes its way
        assert order["symbol"] == deal["symbol"] and order["magic"] == deal["magic"]
        assert order["position_id"] == deal["position_id"]
        assert order["volume_initial"] == deal["volume"] and order["volume_current"] == 0.0
        assert order["comment"] == deal["comment"]
        assert order["comment"].startswith(order_tag(fills[step].uuid))
        assert order["time_done"] >= order["time_setup"] >= trades.start
        assert order["time_done_msc"] // 1000 == order["time_done"]
    b = fills["b_open"].ticket
    assert [order["ticket"] for order in raw.history_orders(position=b)] == [
        fills[step].order for step in ("b_open", "b_part", "b_close")
    ]
    (one,) = raw.history_orders(ticket=fills["b_part"].order)
    assert one == next(order for order in orders if order["ticket"] == fills["b_part"].order)
    assert raw.history_orders(ticket=UNKNOWN) == []
    yen = raw.history_orders(date_from=trades.start, date_to=trades.end, group="USDJPY")
    assert [order["ticket"] for order in yen] == [
        fills[step].order for step in ("b_open", "b_part", "b_close")
    ]


# -- GET_HISTORY: the Bridge ---------------------------------------------------------------------


def _as_dicts(items: list[Deal] | list[Order]) -> list[dict[str, Any]]:
    """As the wire has them: the Bridge's ``server_offset_s`` (0: the harness's simulator
    keeps UTC; None in the seconds before the gateway learned it) is its own."""
    assert all(item.server_offset_s in (0, None) for item in items)
    fields = ORDER_FIELDS if items and isinstance(items[0], Order) else DEAL_FIELDS
    return [{name: getattr(item, name) for name in fields} for item in items]


async def test_bridge_history(client: Bridge, trades: Trades) -> None:
    start = datetime.fromtimestamp(trades.start, UTC)
    end = datetime.fromtimestamp(trades.end, UTC)
    deals = await client.history(start, end)
    assert all(isinstance(deal, Deal) for deal in deals)
    _check_deals(_as_dicts(deals), trades, STEPS)
    # The same instants in another zone, or as epoch seconds, are the same range.
    east = timezone(timedelta(hours=3))
    assert await client.history(start.astimezone(east), end.astimezone(east)) == deals
    assert await client.history(trades.start, float(trades.end)) == deals
    fills = trades.fills
    by_symbol = await client.history(start, end, symbol="USDJPY")
    _check_deals(_as_dicts(by_symbol), trades, ["b_open", "b_part", "b_close"])
    by_group = await client.history(start, end, group="*,!USDJPY")
    _check_deals(_as_dicts(by_group), trades, ["a_open", "a_close", "c_open"])
    by_position = await client.history(position=fills["a_open"].ticket)
    _check_deals(_as_dicts(by_position), trades, ["a_open", "a_close"])
    by_order = await client.history(ticket=fills["b_part"].order)
    _check_deals(_as_dicts(by_order), trades, ["b_part"])
    assert await client.history(position=UNKNOWN) == []
    assert await client.history(ticket=UNKNOWN) == []


async def test_bridge_history_orders(client: Bridge, trades: Trades, raw: Raw) -> None:
    start, end = trades.start, trades.end
    orders = await client.history_orders(
        datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    )
    assert all(isinstance(order, Order) for order in orders)
    assert _as_dicts(orders) == raw.history_orders(date_from=start, date_to=end)
    fills = trades.fills
    assert [order.ticket for order in orders] == [fills[step].order for step in STEPS]
    euro = await client.history_orders(start, end, symbol="EURUSD")
    assert [order.ticket for order in euro] == [fills["a_open"].order, fills["a_close"].order]
    gold = await client.history_orders(start, end, group="XAU*")
    assert [order.ticket for order in gold] == [fills["c_open"].order]
    b = await client.history_orders(position=fills["b_open"].ticket)
    assert [order.position_id for order in b] == [fills["b_open"].ticket] * 3
    (one,) = await client.history_orders(ticket=fills["a_close"].order)
    assert (one.type, one.state, one.volume_initial) == (SELL, STATE_FILLED, 0.1)
    assert await client.history_orders(ticket=UNKNOWN) == []


# -- TOO_LARGE -------------------------------------------------------------------------------------


def _all() -> dict[str, Any]:
    """A date range holding the whole history."""
    return {"date_from": 0, "date_to": time.time() + 3600}


# (fields, what the reply gives: a count of rows, or the refusal's message)
LIMITS: Final[list[Any]] = [
    pytest.param(lambda _s: _all(), "4 deals found", id="range-deals"),
    pytest.param(lambda _s: {**_all(), "kind": "ORDERS"}, "3 orders found", id="range-orders"),
    pytest.param(lambda _s: {**_all(), "group": "*USD*"}, "3 deals found", id="range-group"),
    pytest.param(lambda _s: {**_all(), "group": "EURUSD"}, 2, id="range-group-at-the-limit"),
    pytest.param(lambda _s: {**_all(), "group": "XAUUSD"}, 1, id="range-group-under-it"),
    pytest.param(lambda s: {"position": s.closed.ticket}, 2, id="position-at-the-limit"),
    pytest.param(
        lambda s: {"position": s.closed.ticket, "kind": "ORDERS"}, 2, id="position-orders"
    ),
    pytest.param(lambda s: {"ticket": s.still_open.order}, 1, id="ticket"),
]


@pytest.mark.parametrize(("fields", "outcome"), LIMITS)
def test_more_than_max_rows_is_too_large(
    raw_small: Raw, small: Small, fields: Callable[[Small], dict[str, Any]], outcome: int | str
) -> None:
    reply, rest = raw_small.ask("GET_HISTORY", **fields(small))
    assert rest == []
    if isinstance(outcome, int):
        assert reply["status"] == "OK", reply
        rows = reply["orders"] if fields(small).get("kind") == "ORDERS" else reply["deals"]
        assert len(rows) == outcome
    else:
        assert (reply["status"], reply["error_code"]) == ("REJECTED", "TOO_LARGE"), reply
        assert reply["error_msg"].startswith(outcome), reply["error_msg"]
        assert f"over this gateway's limit of {MAX_ROWS} per request" in reply["error_msg"]
        assert "deals" not in reply and "orders" not in reply
    raw_small.alive()


# -- refusals: raw ---------------------------------------------------------------------------------

ONE_OF: Final = (
    "give one of: date_from and date_to (with group or symbol, optionally), ticket, position"
)
# (action, fields, what error_msg must contain); every one is INVALID_REQUEST.
BAD: Final[list[Any]] = [
    pytest.param(
        "GET_ORDERS",
        {"symbol": "EURUSD", "group": "*"},
        "give one of symbol, group and ticket at most, not symbol and group",
        id="orders-symbol-and-group",
    ),
    pytest.param(
        "GET_ORDERS",
        {"symbol": "EURUSD", "ticket": 5},
        "give one of symbol, group and ticket at most, not symbol and ticket",
        id="orders-symbol-and-ticket",
    ),
    pytest.param(
        "GET_ORDERS",
        {"group": "*", "ticket": 5},
        "give one of symbol, group and ticket at most, not group and ticket",
        id="orders-group-and-ticket",
    ),
    pytest.param(
        "GET_ORDERS",
        {"symbol": "EURUSD", "group": "*", "ticket": 5},
        "not symbol and group and ticket",
        id="orders-all-three",
    ),
    pytest.param("GET_ORDERS", {"ticket": 0}, "Expected `int` >= 1 - at `$.ticket`", id="orders-0"),
    pytest.param("GET_ORDERS", {"ticket": -7}, ">= 1 - at `$.ticket`", id="orders-negative"),
    pytest.param("GET_ORDERS", {"ticket": 2**63}, "`$.ticket`", id="orders-ticket-2-63"),
    pytest.param("GET_ORDERS", {"ticket": "7"}, "`$.ticket`", id="orders-ticket-string"),
    pytest.param("GET_ORDERS", {"ticket": 1.5}, "`$.ticket`", id="orders-ticket-float"),
    pytest.param("GET_ORDERS", {"symbol": ""}, "`$.symbol`", id="orders-symbol-empty"),
    pytest.param(
        "GET_ORDERS", {"symbol": "A" * 30}, "length <= 29 - at `$.symbol`", id="orders-symbol-30"
    ),
    pytest.param("GET_ORDERS", {"group": ""}, "`$.group`", id="orders-group-empty"),
    pytest.param(
        "GET_ORDERS", {"group": "*" * 1025}, "length <= 1024 - at `$.group`", id="orders-group-1025"
    ),
    pytest.param(
        "GET_ORDERS", {"position": 5}, "unknown field `position`", id="orders-unknown-field"
    ),
    pytest.param(
        "GET_ORDERS", {"kind": "DEALS"}, "unknown field `kind`", id="orders-kind-is-history's"
    ),
    pytest.param("GET_HISTORY", {}, ONE_OF, id="history-no-form"),
    pytest.param("GET_HISTORY", {"kind": "ORDERS"}, ONE_OF, id="history-orders-no-form"),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 3600)},
        "a date range needs both date_from and date_to",
        id="history-date-from-alone",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_to": ("ago", 0)},
        "a date range needs both date_from and date_to",
        id="history-date-to-alone",
    ),
    pytest.param(
        "GET_HISTORY",
        {"ticket": 5, "position": 6},
        ONE_OF + "; not ticket and position",
        id="history-ticket-and-position",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 3600), "date_to": ("ago", 0), "ticket": 5},
        "; not a date range and ticket",
        id="history-range-and-ticket",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 3600), "position": 5},
        "; not a date range and position",
        id="history-half-range-and-position",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 0), "date_to": ("ago", 3600)},
        "the range runs backwards: date_to ",
        id="history-backwards",
    ),
    pytest.param(
        "GET_HISTORY",
        {"group": "*USD*"},
        "group selects within a date range",
        id="history-group-alone",
    ),
    pytest.param(
        "GET_HISTORY",
        {"group": "*USD*", "position": 5},
        "group selects within a date range",
        id="history-group-with-position",
    ),
    pytest.param(
        "GET_HISTORY",
        {"group": "*", "date_from": ("ago", 3600)},
        "a date range needs both date_from and date_to",
        id="history-group-half-range",
    ),
    pytest.param(
        "GET_HISTORY",
        {"kind": "POSITIONS", "position": 5},
        "Invalid enum value 'POSITIONS' - at `$.kind`",
        id="history-unknown-kind",
    ),
    pytest.param(
        "GET_HISTORY", {"kind": "deals", "position": 5}, "`$.kind`", id="history-kind-lowercase"
    ),
    pytest.param("GET_HISTORY", {"kind": 0, "position": 5}, "`$.kind`", id="history-kind-number"),
    pytest.param("GET_HISTORY", {"ticket": 0}, ">= 1 - at `$.ticket`", id="history-ticket-0"),
    pytest.param("GET_HISTORY", {"ticket": -1}, ">= 1 - at `$.ticket`", id="history-ticket-neg"),
    pytest.param("GET_HISTORY", {"position": 0}, ">= 1 - at `$.position`", id="history-position-0"),
    pytest.param(
        "GET_HISTORY", {"position": -3}, ">= 1 - at `$.position`", id="history-position-neg"
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": -1, "date_to": ("ago", 0)},
        ">= 0.0 - at `$.date_from`",
        id="history-negative-date",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": "yesterday", "date_to": ("ago", 0)},
        "`$.date_from`",
        id="history-date-string",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": 0, "date_to": ("ago", 0), "group": ""},
        "`$.group`",
        id="history-group-empty",
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 3600), "date_to": ("ago", 0), "symbol": "EURUSD", "group": "*"},
        "give symbol or group, not both",
        id="history-symbol-and-group",
    ),
    pytest.param(
        "GET_HISTORY",
        {"symbol": "EURUSD", "position": 5},
        "symbol selects within a date range",
        id="history-symbol-with-position",
    ),
    *(
        pytest.param(
            "GET_HISTORY",
            {"date_from": ("ago", 3600), "date_to": ("ago", 0), "symbol": mask},
            f"symbol {mask!r} is a mask, not one symbol: give it as group",
            id=f"history-symbol-mask-{mask}",
        )
        for mask in ("*", "*USD*", "EURUSD,GBPUSD", "!EURUSD")
    ),
    pytest.param(
        "GET_HISTORY",
        {"date_from": ("ago", 3600), "date_to": ("ago", 0), "symbol": "A" * 30},
        "length <= 29 - at `$.symbol`",
        id="history-symbol-30",
    ),
    pytest.param(
        "GET_HISTORY",
        {"position": 5, "limit": 10},
        "unknown field `limit`",
        id="history-unknown-field",
    ),
]


def _dates(fields: dict[str, Any]) -> dict[str, Any]:
    """``("ago", s)`` values as the epoch seconds ``s`` seconds ago."""
    now = int(time.time())
    return {
        key: now - value[1] if isinstance(value, tuple) and value[0] == "ago" else value
        for key, value in fields.items()
    }


@pytest.mark.parametrize(("action", "fields", "says"), BAD)
def test_a_bad_request_gets_a_precise_refusal(
    raw_small: Raw, action: str, fields: dict[str, Any], says: str
) -> None:
    reply, rest = raw_small.ask(action, **_dates(fields))
    assert rest == []
    assert (reply["status"], reply["error_code"]) == ("REJECTED", "INVALID_REQUEST"), reply
    assert says in reply["error_msg"], reply["error_msg"]
    assert "orders" not in reply and "deals" not in reply
    raw_small.alive()


# -- the Bridge: refusals ----------------------------------------------------------------------

Call = Callable[[Bridge], Awaitable[object]]
NAIVE: Final = datetime(2024, 1, 2, 3, 4, 5)  # no tzinfo


def _hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


# (call, the InvalidRequest's field, what its message says)
INVALID: Final[list[Any]] = [
    pytest.param(
        lambda b: b.orders("EURUSD", group="*"),
        "GET_ORDERS",
        "not symbol and group",
        id="orders-symbol-and-group",
    ),
    pytest.param(
        lambda b: b.orders(group="*", ticket=5),
        "GET_ORDERS",
        "not group and ticket",
        id="orders-group-and-ticket",
    ),
    pytest.param(lambda b: b.orders(ticket=0), "ticket", "0 is not allowed", id="orders-ticket-0"),
    pytest.param(lambda b: b.orders(ticket=-5), "ticket", ">= 1", id="orders-ticket-negative"),
    pytest.param(
        lambda b: b.orders("A" * 30), "symbol", "is not a symbol name", id="orders-symbol-30"
    ),
    pytest.param(
        lambda b: b.orders("EUR*"), "symbol", "is a mask, not a symbol", id="orders-symbol-mask"
    ),
    pytest.param(lambda b: b.orders(group=""), "group", "length >= 1", id="orders-group-empty"),
    pytest.param(lambda b: b.history(), "GET_HISTORY", ONE_OF, id="history-no-form"),
    pytest.param(lambda b: b.history_orders(), "GET_HISTORY", ONE_OF, id="history-orders-no-form"),
    pytest.param(
        lambda b: b.history(_hours_ago(1)),
        "GET_HISTORY",
        "a date range needs both date_from and date_to",
        id="history-date-from-alone",
    ),
    pytest.param(
        lambda b: b.history(date_to=_hours_ago(1)),
        "GET_HISTORY",
        "a date range needs both date_from and date_to",
        id="history-date-to-alone",
    ),
    pytest.param(
        lambda b: b.history(position=5, ticket=6),
        "GET_HISTORY",
        "not ticket and position",
        id="history-ticket-and-position",
    ),
    pytest.param(
        lambda b: b.history(_hours_ago(2), _hours_ago(1), position=5),
        "GET_HISTORY",
        "not a date range and position",
        id="history-range-and-position",
    ),
    pytest.param(
        lambda b: b.history(_hours_ago(1), _hours_ago(2)),
        "GET_HISTORY",
        "the range runs backwards",
        id="history-backwards",
    ),
    pytest.param(
        lambda b: b.history_orders(_hours_ago(1), _hours_ago(2)),
        "GET_HISTORY",
        "the range runs backwards",
        id="history-orders-backwards",
    ),
    pytest.param(
        lambda b: b.history(group="*USD*"),
        "GET_HISTORY",
        "group selects within a date range",
        id="history-group-alone",
    ),
    pytest.param(
        lambda b: b.history(symbol="EURUSD", ticket=5),
        "GET_HISTORY",
        "symbol selects within a date range",
        id="history-symbol-without-range",
    ),
    pytest.param(
        lambda b: b.history(_hours_ago(2), _hours_ago(1), symbol="EURUSD", group="*"),
        "GET_HISTORY",
        "give symbol or group, not both",
        id="history-symbol-and-group",
    ),
    pytest.param(
        lambda b: b.history(_hours_ago(2), _hours_ago(1), symbol="*USD*"),
        "GET_HISTORY",
        "is a mask, not one symbol: give it as group",
        id="history-symbol-mask",
    ),
    pytest.param(
        lambda b: b.history(_hours_ago(2), _hours_ago(1), symbol="A" * 30),
        "symbol",
        "length <= 29",
        id="history-symbol-30",
    ),
    pytest.param(
        lambda b: b.history(ticket=0), "ticket", "0 is not allowed", id="history-ticket-0"
    ),
    pytest.param(
        lambda b: b.history_orders(position=-1), "position", ">= 1", id="history-position-negative"
    ),
    pytest.param(
        lambda b: b.history(NAIVE, _hours_ago(0)),
        "date_from",
        "no time zone",
        id="history-naive-date-from",
    ),
    pytest.param(
        lambda b: b.history_orders(_hours_ago(2), NAIVE),
        "date_to",
        "no time zone",
        id="history-orders-naive-date-to",
    ),
    pytest.param(
        lambda b: b.history(math.nan, _hours_ago(0)),
        "date_from",
        "not a date",
        id="history-nan-date",
    ),
    pytest.param(
        lambda b: b.history(-5.0, _hours_ago(0)),
        "date_from",
        ">= 0",
        id="history-negative-date",
    ),
]


@pytest.mark.parametrize(("call", "field", "says"), INVALID)
async def test_bridge_refuses_bad_arguments_before_sending(
    small: Small, call: Call, field: str, says: str
) -> None:
    async with Bridge(small.endpoint, secret=SECRET) as bridge:
        before = read_replies(small.endpoint, small.metrics_port)
        with pytest.raises(InvalidRequest) as raised:
            await call(bridge)
        assert not isinstance(raised.value, RequestRefused)
        assert raised.value.field == field, raised.value
        assert says in raised.value.message, raised.value.message
        # Nothing reached the gateway: it answered no read meanwhile (it counts every reply,
        # refusals included, in mt5_gateway_requests_total).
        assert read_replies(small.endpoint, small.metrics_port) == before
        assert await bridge.orders(ticket=UNKNOWN) == []  # and the Bridge still works


# (call, what the refusal's message starts with)
TOO_LARGE: Final[list[Any]] = [
    pytest.param(lambda b: b.history(0, time.time() + 3600), "4 deals found", id="deals"),
    pytest.param(lambda b: b.history_orders(0, time.time() + 3600), "3 orders found", id="orders"),
    pytest.param(
        lambda b: b.history(_hours_ago(1), _hours_ago(-1), group="*USD*"),
        "3 deals found",
        id="group",
    ),
]


@pytest.mark.parametrize(("call", "says"), TOO_LARGE)
async def test_bridge_raises_too_large(small: Small, call: Call, says: str) -> None:
    key = 'mt5_gateway_requests_total{action="GET_HISTORY",status="REJECTED"}'
    async with Bridge(small.endpoint, secret=SECRET) as bridge:
        before = read_replies(small.endpoint, small.metrics_port).get(key, 0)
        with pytest.raises(RequestRefused) as raised:
            await call(bridge)
        assert raised.value.error_code == "TOO_LARGE", raised.value
        assert raised.value.message.startswith(says), raised.value.message
        assert (
            read_replies(small.endpoint, small.metrics_port).get(key, 0) == before + 1
        )  # the gateway refused it
        # Within the limit, the same gateway answers.
        deals = await bridge.history(position=small.closed.ticket)
        assert [deal.entry for deal in deals] == [ENTRY_IN, ENTRY_OUT]
