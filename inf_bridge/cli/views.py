"""What ``mt5-bridge`` prints: the ``Session`` that a run's results, errors and questions go
through, and the views of an account, positions, fills, quotes, bars, symbols, pending orders,
the history, trade events and the gateway's news."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import msgspec
import numpy.typing as npt
from rich import box
from rich.console import Console, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from inf_bridge.cli.exit_codes import Exit
from inf_bridge.results import OrderDone, OrderFilled
from inf_bridge.streams import Gap
from inf_bridge.trade_events import AccountEvent, DealEvent, OrderEvent, TradeEvent
from protocol import (
    Account,
    Deal,
    GatewayInfo,
    Order,
    Position,
    SymbolInfo,
    Tick,
    describe_offset,
)

__all__ = ["PROG", "Session"]

PROG: Final = "mt5-bridge"
_PIPE_WIDTH: Final = 200  # piped output is not cut to 80 columns: scripts want whole lines


class Session:
    """Where one run's results, errors and questions go, and which orders are in flight."""

    def __init__(self, *, as_json: bool, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.console = _console(stdout)
        self.err_console = _console(stderr)
        # Orders sent whose outcome is not known yet: named if the run is interrupted.
        self.in_flight: set[str] = set()

    def emit(self, data: Any, human: RenderableType) -> None:
        """Show one result: ``data`` as a JSON line with ``--json``, else ``human``."""
        if self.as_json:
            self.write_json(data)
        else:
            self.console.print(human)

    def write_json(self, data: Any) -> None:
        self.stdout.write(msgspec.json.encode(data).decode() + "\n")
        self.stdout.flush()

    def note(self, message: str) -> None:
        """One line on stderr."""
        print(f"{PROG}: {message}", file=self.stderr, flush=True)

    def fail(self, message: str, code: Exit, **details: Any) -> Exit:
        """Report an error (one line on stderr; with ``--json`` also a JSON document on
        stdout, so that a script reading stdout sees it) and return its exit code."""
        self.note(message)
        if self.as_json:
            found = {key: value for key, value in details.items() if value is not None}
            self.write_json({"error": message, "exit_code": int(code), **found})
        return code

    @contextlib.contextmanager
    def order_in_flight(self, uuid: str) -> Iterator[None]:
        self.in_flight.add(uuid)
        yield
        # Not in a `finally`: after an exception (Ctrl+C above all) the order is still in doubt.
        self.in_flight.discard(uuid)

    async def confirm(self, question: str) -> bool:
        self.stderr.write(question)
        self.stderr.flush()
        return (await _read_line(self.stdin)).strip().lower() in ("y", "yes")


def _console(stream: TextIO) -> Console:
    # Symbols and comments are data: print them as they are (no markup, highlighting, emoji).
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(file=stream, markup=False, highlight=False, emoji=False, width=width)


async def _read_line(stream: TextIO) -> str:
    """One line from ``stream`` without blocking the loop. A daemon thread rather than the
    default executor, which would hold up the exit after Ctrl+C until Enter is pressed."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not future.done():  # cancelled by Ctrl+C meanwhile
            future.set_result(line)

    def read() -> None:
        line = stream.readline()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="mt5-bridge-prompt", daemon=True).start()
    return await future


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _price(value: float) -> str:
    return f"{value:.10g}" if value else "-"  # MetaTrader's 0 means "no level"


def _signed(value: float) -> Text:
    return Text(_money(value), style="green" if value > 0 else "red" if value < 0 else "")


def _table(*columns: str, numeric: Collection[str] = (), wrap: Collection[str] = ()) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    for column in columns:
        justify: JustifyMethod = "right" if column in numeric else "left"
        table.add_column(column, justify=justify, no_wrap=column not in wrap)
    return table


def _fitted(
    console: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[RenderableType]],
    *,
    numeric: Collection[str],
    optional: Sequence[str],
) -> Table:
    """A table that fits the console: the ``optional`` columns are left out, in that order,
    until it does. Rich would otherwise shorten every column, and a ticket or a price cut
    to "1000…" misleads."""
    rows = list(rows)
    shown = list(columns)
    unbounded = console.options.update_width(sys.maxsize)  # the table's own width, unclamped
    for dropped in (None, *optional):
        if dropped is not None:
            shown.remove(dropped)
        table = _table(*shown, numeric=numeric)
        kept = [columns.index(column) for column in shown]
        for row in rows:
            table.add_row(*(row[i] for i in kept))
        if console.measure(table, options=unbounded).maximum <= console.width:
            break
    return table


def _account_view(account: Account) -> Table:
    """Two label-value columns: narrow enough for any terminal."""
    grid = Table.grid(padding=(0, 2))
    for _ in range(3):
        grid.add_column()
    grid.add_column(justify="right")
    mode_style = "bold red" if account.trade_mode == "REAL" else ""
    trading = Text("allowed") if account.trade_allowed else Text("DISABLED", style="bold red")
    left: list[tuple[str, RenderableType]] = [
        ("Login", str(account.login)),
        ("Server", account.server),
        ("Mode", Text(account.trade_mode, style=mode_style)),
        ("Currency", account.currency),
        ("Leverage", f"1:{account.leverage} {account.margin_mode}"),
        ("Trading", trading),
    ]
    right: list[tuple[str, RenderableType]] = [
        ("Balance", _money(account.balance)),
        ("Equity", _money(account.equity)),
        ("Margin", _money(account.margin)),
        ("Free margin", _money(account.margin_free)),
        ("Margin level", f"{account.margin_level:,.0f}%" if account.margin else "-"),
        ("Profit", _signed(account.profit)),
    ]
    for (label, value), (label2, value2) in zip(left, right, strict=True):
        grid.add_row(Text(label, style="bold"), value, Text(label2, style="bold"), value2)
    return grid


_POSITION_COLUMNS: Final = (
    "Ticket",
    "Symbol",
    "Side",
    "Volume",
    "Open",
    "Current",
    "SL",
    "TP",
    "Swap",
    "Profit",
    "Magic",
    "Opened",
    "Comment",
)
_POSITION_NUMERIC: Final = (
    "Ticket",
    "Volume",
    "Open",
    "Current",
    "SL",
    "TP",
    "Swap",
    "Profit",
    "Magic",
)
# Left out in this order on a narrow terminal; what remains says what is open and how it does.
_POSITION_OPTIONAL: Final = ("Opened", "Magic", "Swap", "Comment", "SL", "TP", "Current")


def _positions_table(console: Console, positions: Sequence[Position]) -> Table:
    rows = (
        (
            str(p.ticket),
            p.symbol,
            Text(p.type.value, style="cyan" if p.type.value == "BUY" else "magenta"),
            f"{p.volume:.2f}",
            _price(p.price_open),
            _price(p.price_current),
            _price(p.sl),
            _price(p.tp),
            _money(p.swap),
            _signed(p.profit),
            str(p.magic),
            datetime.fromtimestamp(p.time, UTC).strftime("%m-%d %H:%M:%S"),
            p.comment,
        )
        for p in positions
    )
    table = _fitted(
        console,
        _POSITION_COLUMNS,
        rows,
        numeric=_POSITION_NUMERIC,
        optional=_POSITION_OPTIONAL,
    )
    lots = sum(p.volume for p in positions)
    net = sum(p.profit + p.swap for p in positions)
    count = f"{len(positions)} position" + ("" if len(positions) == 1 else "s")
    table.caption = f"{count}, {lots:.2f} lots, net profit {_money(net)}"
    table.caption_justify = "left"
    return table


def _no_positions(symbol: str | None) -> str:
    return "No open positions" + (f" in {symbol}" if symbol else "") + "."


def _fill_line(verb: str, what: str, fill: OrderFilled) -> Text:
    line = Text.assemble(
        (verb, "bold green"),
        f" {what} at {_price(fill.price)}  position #{fill.ticket}  deal #{fill.deal}  "
        f"uuid {fill.uuid}",
    )
    if fill.duplicate:
        line.append("  (executed earlier with this uuid; not executed again)", style="yellow")
    return line


def _done_line(verb: str, what: str, done: OrderDone) -> Text:
    """A command carried out with no deal: a pending order placed, changed or cancelled, a
    position's stops moved."""
    line = Text.assemble((verb, "bold green"), f" {what}  uuid {done.uuid}")
    if done.duplicate:
        line.append("  (carried out earlier with this uuid; not carried out again)", style="yellow")
    return line


def _levels(**levels: float | None) -> str:
    """``sl 1.08, tp removed``: the levels given, as a modification sets them (0 removes)."""
    return ", ".join(
        f"{name} {_price(value) if value else 'removed'}"
        for name, value in levels.items()
        if value is not None
    )


def _gateway_lines(gateway: GatewayInfo | None) -> list[Text]:
    """The gateway's own news: HALTED, and any warning (signatures off, Algo Trading off)."""
    if gateway is None:
        return []
    lines = [
        Text.assemble(
            "Gateway ",
            (f"v{gateway.version}", ""),
            f"  terminal {gateway.terminal}  ",
            ("HALTED", "bold red") if gateway.halted else ("trading", "green"),
            f" ({gateway.halt_reason})" if gateway.halted and gateway.halt_reason else "",
            f"  server clock {_server_clock(gateway)}",
        )
    ]
    lines += [Text(f"Warning: {warning}", style="bold yellow") for warning in gateway.warnings]
    return lines


def _server_clock(gateway: GatewayInfo) -> str:
    """``UTC+2``, with the zone when the operator named one; ``not known yet``."""
    if gateway.server_offset_s is None:
        return "not known yet"
    zone = f" ({gateway.server_timezone})" if gateway.server_timezone else ""
    return describe_offset(gateway.server_offset_s) + zone


# SYMBOL_TRADE_MODE_*, by value, in the package's words.
_TRADE_MODES: Final = {0: "DISABLED", 1: "LONGONLY", 2: "SHORTONLY", 3: "CLOSEONLY", 4: "FULL"}


def _trade_mode(value: int) -> str:
    return _TRADE_MODES.get(value, str(value))


def _quoted(value: float, info: SymbolInfo | None) -> str:
    """A price with its symbol's digits (1.10000, not 1.1), so that a column lines up."""
    return _price(value) if info is None else f"{value:.{info.digits}f}"


def _spread_points(tick: Tick, info: SymbolInfo | None) -> int | None:
    return None if info is None else round((tick.ask - tick.bid) / info.point)


def _quote_data(tick: Tick, info: SymbolInfo | None) -> dict[str, Any]:
    """A tick as ``quote --json`` gives it: the package's ``Tick`` fields, its symbol, and the
    symbol's digits and the spread in points."""
    digits = None if info is None else info.digits
    return {**msgspec.structs.asdict(tick), "digits": digits, "spread": _spread_points(tick, info)}


def _quotes_table(ticks: Mapping[str, Tick], specs: Mapping[str, SymbolInfo] | None) -> Table:
    """One line per symbol. With ``specs`` (the symbols' digits and point) prices line up and
    the spread is in points; ``watch`` asks for none, and goes without."""
    spread = ("Spread",) if specs is not None else ()
    table = _table("Symbol", "Bid", "Ask", *spread, "Time (UTC)", numeric=("Bid", "Ask", *spread))
    for symbol, tick in ticks.items():
        info = None if specs is None else specs.get(symbol)
        cells = [symbol, _quoted(tick.bid, info), _quoted(tick.ask, info)]
        if specs is not None:
            points = _spread_points(tick, info)
            cells.append("-" if points is None else str(points))
        when = datetime.fromtimestamp(tick.time_msc / 1000, UTC)
        cells.append(when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])  # to the millisecond
        table.add_row(*cells)
    return table


_BAR_COLUMNS: Final = (
    "Time (UTC)",
    "Open",
    "High",
    "Low",
    "Close",
    "Tick volume",
    "Spread",
    "Real volume",
)


def _bars_table(rates: npt.NDArray[Any], info: SymbolInfo | None, what: str) -> Table:
    """``rates`` (``copy_rates_*``'s dtype), oldest first; ``what`` they are, for the caption."""
    table = _table(*_BAR_COLUMNS, numeric=_BAR_COLUMNS[1:])
    for opened, open_, high, low, close, tick_volume, spread, real_volume in rates.tolist():
        table.add_row(
            datetime.fromtimestamp(opened, UTC).strftime("%Y-%m-%d %H:%M"),
            *(_quoted(price, info) for price in (open_, high, low, close)),
            str(tick_volume),
            str(spread),
            str(real_volume),
        )
    table.caption = f"{len(rates)} {what}; a bar's time is its opening"
    table.caption_justify = "left"
    return table


_SYMBOL_COLUMNS: Final = ("Name", "Description", "Digits", "Spread", "Trade mode", "Market Watch")


def _symbols_table(console: Console, symbols: Sequence[SymbolInfo]) -> Table:
    def mode(value: int) -> Text:
        word = _trade_mode(value)
        return Text(word, style="" if word == "FULL" else "yellow")  # trading is limited

    rows = (
        (
            s.name,
            s.description,
            str(s.digits),
            str(s.spread),
            mode(s.trade_mode),
            "yes" if s.select else "no",
        )
        for s in symbols
    )
    table = _fitted(
        console,
        _SYMBOL_COLUMNS,
        rows,
        numeric=("Digits", "Spread"),
        optional=("Description",),
    )
    watched = sum(s.select for s in symbols)
    count = f"{len(symbols)} symbol" + ("" if len(symbols) == 1 else "s")
    table.caption = f"{count}, {watched} in the Market Watch"
    table.caption_justify = "left"
    return table


def _no_symbols(group: str | None) -> str:
    return f"No symbol matches {group}." if group else "The terminal has no symbols."


# -- pending orders and the history -----------------------------------------------------------
# The package's ORDER_* and DEAL_* values in its words, without the prefix (ORDER_TYPE_BUY_LIMIT:
# BUY_LIMIT). The CLI runs on the node, which has no MetaTrader5 package to ask; a value not
# listed here is shown as the number it is.
_ORDER_TYPES: Final = {
    0: "BUY", 1: "SELL", 2: "BUY_LIMIT", 3: "SELL_LIMIT", 4: "BUY_STOP", 5: "SELL_STOP",
    6: "BUY_STOP_LIMIT", 7: "SELL_STOP_LIMIT", 8: "CLOSE_BY",
}  # fmt: skip
_ORDER_STATES: Final = {
    0: "STARTED", 1: "PLACED", 2: "CANCELED", 3: "PARTIAL", 4: "FILLED", 5: "REJECTED",
    6: "EXPIRED", 7: "REQUEST_ADD", 8: "REQUEST_MODIFY", 9: "REQUEST_CANCEL",
}  # fmt: skip
_ORDER_TIMES: Final = {0: "GTC", 1: "DAY", 2: "SPECIFIED", 3: "SPECIFIED_DAY"}
_ORDER_REASONS: Final = {
    0: "CLIENT", 1: "MOBILE", 2: "WEB", 3: "EXPERT", 4: "SL", 5: "TP", 6: "SO",
}  # fmt: skip
_DEAL_TYPES: Final = {
    0: "BUY", 1: "SELL", 2: "BALANCE", 3: "CREDIT", 4: "CHARGE", 5: "CORRECTION", 6: "BONUS",
    7: "COMMISSION", 8: "COMMISSION_DAILY", 9: "COMMISSION_MONTHLY",
    10: "COMMISSION_AGENT_DAILY", 11: "COMMISSION_AGENT_MONTHLY", 12: "INTEREST",
    13: "BUY_CANCELED", 14: "SELL_CANCELED", 15: "DIVIDEND", 16: "DIVIDEND_FRANKED", 17: "TAX",
}  # fmt: skip
_TRADE_DEALS: Final = (0, 1)  # DEAL_TYPE_BUY, DEAL_TYPE_SELL
_DEAL_ENTRIES: Final = {0: "IN", 1: "OUT", 2: "INOUT", 3: "OUT_BY"}
_DEAL_REASONS: Final = {
    0: "CLIENT", 1: "MOBILE", 2: "WEB", 3: "EXPERT", 4: "SL", 5: "TP", 6: "SO", 7: "ROLLOVER",
    8: "VMARGIN", 9: "SPLIT",
}  # fmt: skip


def _word(words: Mapping[int, str], value: int) -> str:
    return words.get(value, str(value))


def _side_style(word: str) -> str:
    return "cyan" if word.startswith("BUY") else "magenta" if word.startswith("SELL") else ""


def _utc_time(seconds: int) -> str:
    """An epoch time as UTC text (the Bridge gives every time in UTC)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


_TIMES_NOTE: Final = (
    "times in UTC (the terminal's are its trade server's clock's, converted by the bridge)"
)

_PENDING_COLUMNS: Final = (
    "Ticket",
    "Symbol",
    "Type",
    "Volume",
    "Price",
    "SL",
    "TP",
    "Expiration",
    "Comment",
)


def _expiration(order: Order) -> str:
    """When a pending order expires: its time, or its type of time (GTC: until cancelled)."""
    if order.time_expiration:
        return _utc_time(order.time_expiration)
    return _word(_ORDER_TIMES, order.type_time)


def _pending_table(console: Console, orders: Sequence[Order]) -> Table:
    rows = (
        (
            str(o.ticket),
            o.symbol,
            Text(word := _word(_ORDER_TYPES, o.type), style=_side_style(word)),
            f"{o.volume_current:.2f}",
            # A stop limit order: its stop price, then the limit price it places at the stop.
            _price(o.price_open)
            + (f" (limit {_price(o.price_stoplimit)})" if o.price_stoplimit else ""),
            _price(o.sl),
            _price(o.tp),
            _expiration(o),
            o.comment,
        )
        for o in orders
    )
    table = _fitted(
        console,
        _PENDING_COLUMNS,
        rows,
        numeric=("Ticket", "Volume", "Price", "SL", "TP"),
        optional=("Comment", "Expiration", "SL", "TP"),
    )
    lots = sum(o.volume_current for o in orders)
    table.caption = f"{_plural(len(orders), 'pending order')}, {lots:.2f} lots; {_TIMES_NOTE}"
    table.caption_justify = "left"
    return table


def _no_pending(symbol: str | None, group: str | None, ticket: int | None) -> str:
    if ticket is not None:
        return f"No pending order #{ticket}."
    which = f" in {symbol}" if symbol else f" matching {group}" if group else ""
    return f"No pending orders{which}."


_DEAL_COLUMNS: Final = (
    "Time (UTC)",
    "Ticket",
    "Order",
    "Position",
    "Symbol",
    "Type",
    "Entry",
    "Volume",
    "Price",
    "Profit",
    "Commission",
    "Swap",
    "Reason",
    "Comment",
)
_DEAL_NUMERIC: Final = (
    "Ticket",
    "Order",
    "Position",
    "Volume",
    "Price",
    "Profit",
    "Commission",
    "Swap",
)


def _deals_table(console: Console, deals: Sequence[Deal], what: str) -> Table:
    """The history's deals, as the terminal gives them (oldest first); ``what`` they are."""
    rows = (
        (
            _utc_time(d.time),
            str(d.ticket),
            str(d.order) if d.order else "-",
            str(d.position_id) if d.position_id else "-",
            d.symbol or "-",
            Text(word := _word(_DEAL_TYPES, d.type), style=_side_style(word)),
            _word(_DEAL_ENTRIES, d.entry),
            f"{d.volume:.2f}",
            _price(d.price),
            _signed(d.profit),
            _money(d.commission),
            _money(d.swap),
            _word(_DEAL_REASONS, d.reason),
            d.comment,
        )
        for d in deals
    )
    table = _fitted(
        console,
        _DEAL_COLUMNS,
        rows,
        numeric=_DEAL_NUMERIC,
        optional=("Comment", "Order", "Reason", "Commission", "Swap", "Ticket", "Entry"),
    )
    # What the trades made: deposits, withdrawals and the like are not profit.
    trades = [d for d in deals if d.type in _TRADE_DEALS]
    net = sum(d.profit + d.commission + d.swap + d.fee for d in trades)
    table.caption = (
        f"{_plural(len(deals), 'deal')} {what}; the trades' net profit {_money(net)}; {_TIMES_NOTE}"
    )
    table.caption_justify = "left"
    return table


_HISTORY_ORDER_COLUMNS: Final = (
    "Time (UTC)",
    "Ticket",
    "Position",
    "Symbol",
    "Type",
    "State",
    "Volume",
    "Price",
    "SL",
    "TP",
    "Done (UTC)",
    "Reason",
    "Comment",
)


def _history_orders_table(console: Console, orders: Sequence[Order], what: str) -> Table:
    """The history's orders: when each was placed, and what became of it."""
    rows = (
        (
            _utc_time(o.time_setup),
            str(o.ticket),
            str(o.position_id) if o.position_id else "-",
            o.symbol or "-",
            Text(word := _word(_ORDER_TYPES, o.type), style=_side_style(word)),
            _word(_ORDER_STATES, o.state),
            f"{o.volume_initial:.2f}",
            _price(o.price_open),
            _price(o.sl),
            _price(o.tp),
            _utc_time(o.time_done) if o.time_done else "-",
            _word(_ORDER_REASONS, o.reason),
            o.comment,
        )
        for o in orders
    )
    table = _fitted(
        console,
        _HISTORY_ORDER_COLUMNS,
        rows,
        numeric=("Ticket", "Position", "Volume", "Price", "SL", "TP"),
        optional=("Comment", "Done (UTC)", "Reason", "SL", "TP", "Position"),
    )
    table.caption = f"{_plural(len(orders), 'order')} {what}; {_TIMES_NOTE}"
    table.caption_justify = "left"
    return table


# -- trade events ----------------------------------------------------------------------------


def _event_kind(event: TradeEvent) -> str:
    """The protocol's word for the event's kind: ``deal``, ``order`` or ``account``."""
    if isinstance(event, DealEvent):
        return "deal"
    return "order" if isinstance(event, OrderEvent) else "account"


def _event_data(event: TradeEvent) -> dict[str, Any]:
    """An event as ``tail --json`` gives it: its ``type`` (``deal``, ``order``, ``account``),
    then its fields (the deal, order or account as the package's ``TradeDeal``, ``TradeOrder``
    or ``AccountInfo``); a deal's ``reason`` also in words (``SL``, ``TP``, ``SO``...)."""
    data = {"type": _event_kind(event), **msgspec.structs.asdict(event)}
    if isinstance(event, DealEvent):
        data["reason"] = event.reason
    return data


_EVENT_TYPES: Final = {"deal": DealEvent, "order": OrderEvent, "account": AccountEvent}


def _as_event(data: Mapping[str, Any]) -> TradeEvent:
    """An event back from ``_event_data``'s form."""
    event: TradeEvent = msgspec.convert(data, _EVENT_TYPES[data["type"]])
    return event


def _event_time(epoch: float) -> str:
    """When the gateway recorded an event, in this machine's time, to the millisecond."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _event_line(event: TradeEvent) -> Text:
    """One line, starting with the event's number: what happened, with the tickets to act on."""
    line = Text.assemble(f"{event.seq}  {_event_time(event.time)}  ")
    if isinstance(event, DealEvent):
        line.append_text(_deal_text(event))
    elif isinstance(event, OrderEvent):
        line.append_text(_order_text(event))
    else:
        line.append_text(_account_text(event.account))
    if not isinstance(event, AccountEvent) and event.uuid:
        line.append(f"  uuid {event.uuid}")
    return line


def _deal_text(event: DealEvent) -> Text:
    d = event.deal
    word = _word(_DEAL_TYPES, d.type)
    text = Text.assemble(("DEAL", "bold"), f" #{d.ticket} ", (word, _side_style(word)))
    if d.type in _TRADE_DEALS:
        text.append(f" {_word(_DEAL_ENTRIES, d.entry)} {d.volume:.2f} {d.symbol}")
        text.append(f" at {_price(d.price)}  position #{d.position_id}")
        if d.entry != 0:  # what a position's exit made; an entry makes nothing yet
            text.append("  profit ")
            text.append_text(_signed(d.profit))
    else:  # a deposit, a withdrawal, a charge...: an amount
        text.append(f" {_money(d.profit)}" + (f" {d.comment}" if d.comment else ""))
    text.append(f"  {event.reason}")
    return text


_CHANGE_STYLES: Final = {"FILLED": "green", "CANCELLED": "yellow", "EXPIRED": "yellow"}


def _order_text(event: OrderEvent) -> Text:
    o, change = event.order, event.change
    word = _word(_ORDER_TYPES, o.type)
    text = Text.assemble(
        ("ORDER", "bold"),
        f" #{o.ticket} ",
        (change, _CHANGE_STYLES.get(change, "bold red" if change == "REJECTED" else "")),
        " ",
        (word, _side_style(word)),
        f" {o.volume_current or o.volume_initial:.2f} {o.symbol} at {_price(o.price_open)}",
    )
    if o.price_stoplimit:
        text.append(f" (limit {_price(o.price_stoplimit)})")
    text.append(f"  sl {_price(o.sl)}  tp {_price(o.tp)}  expires {_expiration(o)}")
    return text


def _account_text(account: Account) -> Text:
    level = f"{account.margin_level:,.0f}%" if account.margin else "-"
    return Text.assemble(
        ("ACCOUNT", "bold"),
        f" balance {_money(account.balance)}  equity {_money(account.equity)}  margin "
        f"{_money(account.margin)}  free margin {_money(account.margin_free)}  margin level "
        f"{level}",
    )


def _gap_note(gap: Gap) -> str:
    """What a gap in the trade events means to the one reading them."""
    if gap.restarted:
        return (
            f"the gateway has another event log ({gap.run}): events of the old one not read "
            "are lost; reading the new one from its start"
        )
    return f"{gap.missed} trade events were pruned by the gateway before they were read"
