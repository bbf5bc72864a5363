"""The commands of ``mt5-bridge``, and running one (the package's docstring is the manual)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Final, TextIO

import msgspec
import zmq
from loguru import logger
from msgspec import Struct
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from inf_bridge.breaker import SECRET_REFUSED
from inf_bridge.cli.exit_codes import Exit
from inf_bridge.cli.parser import build_parser
from inf_bridge.cli.views import (
    PROG,
    Session,
    _account_view,
    _bars_table,
    _deals_table,
    _done_line,
    _event_data,
    _event_line,
    _fill_line,
    _gap_note,
    _gateway_lines,
    _history_orders_table,
    _levels,
    _no_pending,
    _no_positions,
    _no_symbols,
    _pending_table,
    _positions_table,
    _price,
    _quote_data,
    _quotes_table,
    _symbols_table,
    _table,
    _utc_time,
)
from inf_bridge.cli.watch import RecentEvents, _render, _snapshot
from inf_bridge.client import Bridge, new_uuid
from inf_bridge.config import SECRET_ENV, ClientConfig, ConfigError, load_config
from inf_bridge.errors import (
    BadReply,
    BridgeError,
    CircuitOpen,
    GatewayTimeout,
    InvalidRequest,
    OrderRejected,
    OutcomeUnknown,
    RequestRefused,
)
from inf_bridge.heartbeat import HeartbeatMonitor
from inf_bridge.results import OrderFilled
from inf_bridge.streams import Gap
from plumbing.loop import loop_factory  # the same event loop choice as the gateway's
from protocol import Deal, ErrorCode, Order, Position, SymbolInfo, wire_fields

__all__ = ["main"]

# One-shot commands need no background heartbeat (Bridge beats once when it opens), and watch
# beats once per frame itself: a day between automatic beats means "never" for a CLI.
_NO_AUTOMATIC_BEATS_S: Final = 86_400.0
_SWITCHES: Final = ("halt", "resume", "flatten")  # the commands that sign HALT or RESUME
_ENDLESS: Final = ("watch", "tail")  # the commands Ctrl+C is the way to end
_FLATTEN_REASON: Final = "flatten (mt5-bridge)"
_DAY: Final = 86_400.0


# -- commands --------------------------------------------------------------------------------

Command = Callable[[Bridge, argparse.Namespace, Session], Awaitable[Exit]]


async def _ping(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    health = bridge.health
    # A second beat: signed in the gateway's clock, which the opening beat has measured.
    await health.beat()
    if health.consecutive_failures or health.last_rtt is None:
        raise GatewayTimeout(
            f"no answer from the gateway at {bridge.endpoint} within {health.timeout:g} s"
        )
    if health.auth_error is not None:
        return session.fail(
            f"ping: {_signature_refused(health)}", Exit.REFUSED, error_code=health.auth_error
        )
    rtt, connected, gateway = health.last_rtt, health.mt5_connected, health.gateway
    terminal = ("terminal connected", "green") if connected else ("terminal DISCONNECTED", "red")
    session.emit(
        {
            "endpoint": bridge.endpoint,
            "rtt_ms": round(rtt * 1000, 3),
            "mt5_connected": connected,
            "authenticated": health.authenticated,
            "gateway": gateway,
        },
        Group(
            Text.assemble(
                ("OK", "bold green"),
                f" {bridge.endpoint}  round trip {rtt * 1000:.2f} ms  ",
                terminal,
                ("  secret accepted", "green") if health.authenticated else "",
            ),
            *_gateway_lines(gateway),
        ),
    )
    return Exit.OK


def _signature_refused(health: HeartbeatMonitor) -> str:
    """Why the gateway did not accept the heartbeat's signature, and what to do about it."""
    detail = f"{health.auth_error}: {health.auth_message}"
    if health.auth_error == ErrorCode.SIGNATURE_INVALID:
        return (
            f"the gateway refused this node's secret ({detail}); every order from this node "
            f"would be refused: check --secret-file or {SECRET_ENV}"
        )
    if health.auth_error == ErrorCode.SIGNATURE_EXPIRED:
        return (
            f"the gateway found this node's signature expired ({detail}): the clocks of this "
            "node and the gateway differ; synchronise them (NTP)"
        )
    return f"the gateway did not accept this node's signature ({detail})"


async def _account(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    account = await bridge.get_account(fresh=True)
    session.emit(account, _account_view(account))
    return Exit.OK


async def _positions(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    positions = await bridge.get_positions(args.symbol, fresh=True)
    session.emit(
        positions,
        _positions_table(session.console, positions) if positions else _no_positions(args.symbol),
    )
    return Exit.OK


async def _open(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    uuid = args.uuid or new_uuid()  # chosen here, so that a lost outcome can be named
    with session.order_in_flight(uuid):
        fill = await bridge.send_order(
            args.symbol,
            args.side,
            args.volume,
            price=args.price,
            sl=args.sl,
            tp=args.tp,
            deviation=args.deviation,
            magic=args.magic,
            comment=args.comment,
            uuid=uuid,
        )
    session.emit(fill, _fill_line("FILLED", f"{args.side} {fill.volume:g} {args.symbol}", fill))
    return Exit.OK


async def _close(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    uuid = args.uuid or new_uuid()
    with session.order_in_flight(uuid):
        fill = await bridge.close_position(args.ticket, args.volume, uuid=uuid)
    session.emit(fill, _fill_line("CLOSED", f"{fill.volume:g} lots", fill))
    return Exit.OK


async def _place(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    uuid = args.uuid or new_uuid()
    with session.order_in_flight(uuid):
        done = await bridge.place_order(
            args.symbol,
            args.type,
            args.volume,
            args.price,
            sl=args.sl,
            tp=args.tp,
            expiration=args.expiration,
            stoplimit=args.stoplimit,
            magic=args.magic,
            comment=args.comment,
            uuid=uuid,
        )
    limit = f" (limit {_price(args.stoplimit)})" if args.stoplimit is not None else ""
    what = f"{args.type} {args.volume:g} {args.symbol} at {_price(args.price)}{limit}"
    session.emit(done, _done_line("PLACED", f"{what}  order #{done.order}", done))
    return Exit.OK


async def _modify(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    uuid = args.uuid or new_uuid()
    with session.order_in_flight(uuid):
        if args.order:
            done = await bridge.modify_order(
                args.ticket,
                price=args.price,
                sl=args.sl,
                tp=args.tp,
                expiration=args.expiration,
                stoplimit=args.stoplimit,
                uuid=uuid,
            )
        else:
            done = await bridge.modify_position(args.ticket, sl=args.sl, tp=args.tp, uuid=uuid)
    changes = _levels(price=args.price, stoplimit=args.stoplimit, sl=args.sl, tp=args.tp)
    if args.order and args.expiration is not None:
        expires = args.expiration
        changes += ", " if changes else ""
        changes += f"expires {expires if isinstance(expires, str) else _utc_time(expires)}"
    what = f"order #{args.ticket}" if args.order else f"position #{args.ticket}"
    session.emit(done, _done_line("MODIFIED", f"{what}: {changes}", done))
    return Exit.OK


async def _cancel(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    uuid = args.uuid or new_uuid()
    with session.order_in_flight(uuid):
        done = await bridge.cancel_order(args.ticket, uuid=uuid)
    session.emit(done, _done_line("CANCELLED", f"order #{args.ticket}", done))
    return Exit.OK


class _Closed(Struct, frozen=True, kw_only=True):
    """What flatten did to one position."""

    ticket: int
    symbol: str
    result: str  # CLOSED, ALREADY_CLOSED or FAILED
    fill: OrderFilled | None = None
    error: str | None = None
    exit_code: int = 0


async def _close_one(bridge: Bridge, position: Position, session: Session) -> _Closed:
    uuid = new_uuid()
    done = _Closed(ticket=position.ticket, symbol=position.symbol, result="CLOSED")
    try:
        with session.order_in_flight(uuid):
            fill = await bridge.close_position(position.ticket, uuid=uuid)
    except OrderRejected as exc:
        if exc.error_code == ErrorCode.POSITION_NOT_FOUND:  # closed by someone else meanwhile
            return msgspec.structs.replace(done, result="ALREADY_CLOSED")
        return _failed(done, exc)
    except BridgeError as exc:
        return _failed(done, exc)
    return msgspec.structs.replace(done, fill=fill)


def _failed(done: _Closed, exc: BridgeError) -> _Closed:
    code = _exit_code(exc)
    return msgspec.structs.replace(done, result="FAILED", error=str(exc), exit_code=code)


async def _flatten(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    halting = not args.no_halt
    positions = await bridge.get_positions(args.symbol, fresh=True)
    if not args.yes and (positions or halting):
        if positions:
            session.err_console.print(_positions_table(session.err_console, positions))
        if not await session.confirm(_flatten_question(positions, halting=halting)):
            nothing = "nothing was halted or closed" if halting else "nothing was closed"
            return session.fail(f"flatten: declined; {nothing}", Exit.REFUSED)
    if halting:
        # First, so that no strategy opens a position while these are closed.
        unhalted = "could not halt the gateway first, so nothing was closed"
        without = f"`{PROG} flatten --no-halt` closes without halting"
        try:
            halted = await bridge.halt(_FLATTEN_REASON)
        except BridgeError as exc:
            return session.fail(
                f"flatten: {unhalted}: {_describe(exc, 'halt')}; {without}",
                _exit_code(exc),
                error_code=getattr(exc, "error_code", None),
            )
        if not halted:
            return session.fail(f"flatten: {unhalted}; {without}", Exit.REFUSED)
        session.note(
            f"flatten: the gateway is HALTED (no new orders from any client until `{PROG} "
            "resume`); closing positions"
        )
        # any opened before the halt too
        positions = await bridge.get_positions(args.symbol, fresh=True)
    if not positions:
        session.emit([], _no_positions(args.symbol))
        return Exit.OK
    results = await asyncio.gather(*(_close_one(bridge, p, session) for p in positions))
    table = _table(
        "Ticket",
        "Symbol",
        "Result",
        "Volume",
        "Price",
        "Detail",
        numeric=("Ticket", "Volume", "Price"),
        wrap=("Detail",),
    )
    for r in results:
        style = {"CLOSED": "green", "FAILED": "bold red"}.get(r.result, "")
        table.add_row(
            str(r.ticket),
            r.symbol,
            Text(r.result, style=style),
            f"{r.fill.volume:.2f}" if r.fill else "",
            _price(r.fill.price) if r.fill else "",
            r.error or "",
        )
    session.emit(results, table)
    failed = [r for r in results if r.result == "FAILED"]
    if not failed:
        return Exit.OK
    session.note(f"flatten: {len(failed)} of {len(results)} positions were not closed")
    return Exit(max(r.exit_code for r in failed))  # the worst: unknown > unreachable > refused


def _flatten_question(positions: Sequence[Position], *, halting: bool) -> str:
    halt = "Halt the gateway (no new orders from any client)"
    if not positions:
        return f"No open positions. {halt}? [y/N] "
    lots = sum(p.volume for p in positions)
    which = "this position" if len(positions) == 1 else f"these {len(positions)} positions"
    close = f"close {which} ({lots:.2f} lots)"
    return f"{halt} and {close}? [y/N] " if halting else f"{close.capitalize()}? [y/N] "


async def _halt(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    halted = await bridge.halt(args.reason)
    human = (
        Text.assemble(
            ("HALTED", "bold red"),
            ": the gateway refuses new orders from every client until `mt5-bridge resume`; "
            "closing positions still works",
        )
        if halted
        else Text("the gateway did not halt", style="bold red")
    )
    session.emit({"halted": halted, "reason": args.reason}, human)
    return Exit.OK if halted else Exit.REFUSED


async def _resume(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    halted = await bridge.resume()
    human = (
        Text("the gateway is still halted", style="bold red")
        if halted
        else Text.assemble(("RESUMED", "bold green"), ": the gateway accepts new orders again")
    )
    session.emit({"halted": halted}, human)
    return Exit.REFUSED if halted else Exit.OK


async def _order(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    state = await bridge.get_order(args.uuid)
    table = Table.grid(padding=(0, 2))
    for field in msgspec.structs.fields(state):
        value = getattr(state, field.name)
        if value is not None:
            table.add_row(field.name, str(value))
    session.emit(state, table)
    # OK: carried out with no deal (placed, modified, cancelled). A PENDING order is in
    # flight or being reconciled: not known yet.
    outcomes = {"FILLED": Exit.OK, "OK": Exit.OK, "PENDING": Exit.UNKNOWN}
    return outcomes.get(state.status, Exit.REFUSED)


async def _specs(bridge: Bridge, symbols: Sequence[str]) -> dict[str, SymbolInfo]:
    """The symbols' specifications (digits, point), by name, in one GET_SYMBOLS: a group of
    masks without wildcards selects exactly the names."""
    return {info.name: info for info in await bridge.symbols(",".join(symbols))}


async def _quote(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    symbols = list(dict.fromkeys(args.symbols))  # each once, in the order given
    ticks, specs = await asyncio.gather(bridge.quotes(*symbols), _specs(bridge, symbols))
    session.emit(
        [_quote_data(ticks[symbol], specs.get(symbol)) for symbol in symbols],
        _quotes_table({symbol: ticks[symbol] for symbol in symbols}, specs),
    )
    return Exit.OK


async def _bars(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    rates = bridge.rates(args.symbol, args.timeframe, count=args.count, start=args.start)
    if args.csv is not None:
        found = await rates
        return _write_csv("bars", found.dtype.names or (), found.tolist(), args.csv, session)
    found, specs = await asyncio.gather(rates, _specs(bridge, [args.symbol]))
    names = found.dtype.names or ()
    session.emit(
        [dict(zip(names, row, strict=True)) for row in found.tolist()],
        _bars_table(found, specs.get(args.symbol), f"{args.timeframe} bars of {args.symbol}"),
    )
    return Exit.OK


def _write_csv(
    command: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    target: str,
    session: Session,
) -> Exit:
    """``rows`` as CSV under ``header``, to the file ``target`` or (``-``) to stdout, which
    then holds the CSV only: the count goes to stderr."""
    if target == "-":
        _csv_rows(session.stdout, header, rows)
        session.note(f"{command}: {len(rows)} rows written to stdout")
        return Exit.OK
    try:
        with open(target, "w", encoding="utf-8", newline="") as file:
            _csv_rows(file, header, rows)
    except OSError as exc:
        return session.fail(f"{command}: cannot write {target}: {exc.strerror}", Exit.USAGE)
    session.emit({"file": target, "rows": len(rows)}, f"{len(rows)} rows written to {target}")
    return Exit.OK


def _csv_rows(stream: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)  # Python numbers: floats as their shortest exact repr
    stream.flush()


async def _orders(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    orders = await bridge.orders(args.symbol, group=args.group, ticket=args.ticket)
    session.emit(
        orders,
        _pending_table(session.console, orders)
        if orders
        else _no_pending(args.symbol, args.group, args.ticket),
    )
    return Exit.OK


async def _history(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    date_from, date_to = args.date_from, args.date_to
    if args.position is not None:
        what = f"of position #{args.position}"
    elif date_from is not None:
        what = f"from {_utc_time(int(date_from))} to {_utc_time(int(date_to))}"
    else:
        days = args.days or 1
        now = time.time()
        # Ends a day past now: a deal's time is the terminal's, converted, and a machine's
        # clock may be behind the trade server's by more than a little.
        date_from, date_to = now - days * _DAY, now + _DAY
        what = "of the last day" if days == 1 else f"of the last {days} days"
    if args.symbol is not None:
        what = f"in {args.symbol} {what}"
    where: dict[str, Any] = {"symbol": args.symbol, "position": args.position}
    found: Sequence[Order | Deal]
    kind: type[Order] | type[Deal]
    if args.orders:
        orders = await bridge.history_orders(date_from, date_to, **where)
        found, kind, view = orders, Order, _history_orders_table(session.console, orders, what)
    else:
        deals = await bridge.history(date_from, date_to, **where)
        found, kind, view = deals, Deal, _deals_table(session.console, deals, what)
    if args.csv is not None:  # every field of the package's, in its order, under its names
        names = wire_fields(kind)
        rows = [[getattr(item, name) for name in names] for item in found]
        return _write_csv("history", names, rows, args.csv, session)
    session.emit(found, view if found else f"No {'orders' if args.orders else 'deals'} {what}.")
    return Exit.OK


async def _symbols(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    symbols = await bridge.symbols(args.group)
    session.emit(
        symbols,
        _symbols_table(session.console, symbols) if symbols else _no_symbols(args.group),
    )
    return Exit.OK


async def _tail(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    if (missing := _no_events_endpoint(bridge, "tail")) is not None:
        return session.fail(missing, Exit.USAGE)

    def gap(gap: Gap) -> None:  # the client's own warning is off: say it here
        session.note(f"tail: {_gap_note(gap)}")

    shown = 0
    async with bridge.events(args.since, on_gap=gap) as events:
        async for event in events:  # until Ctrl+C, or --count
            session.emit(_event_data(event), _event_line(event))
            shown += 1
            if shown == args.count:
                break
    return Exit.OK


def _no_events_endpoint(bridge: Bridge, command: str) -> str | None:
    if bridge.events_endpoint is not None:
        return None
    return (
        f"{command}: the gateway's event socket is not next to {bridge.endpoint} (no tcp "
        "port): give --events-endpoint URL"
    )


async def _watch(bridge: Bridge, args: argparse.Namespace, session: Session) -> Exit:
    if args.once:
        snapshot, failure = await _snapshot(bridge)  # opening the Bridge took the first beat
        session.emit(snapshot, _render(session.console, snapshot))
        if failure is None:
            return Exit.OK
        session.note(f"watch: {failure}")
        return _exit_code(failure)
    # The trade events, followed from now on in the background: without an event socket to
    # follow them on, the rest of the view still stands.
    recent: contextlib.AbstractAsyncContextManager[RecentEvents | None] = (
        contextlib.nullcontext()
        if bridge.events_endpoint is None
        else RecentEvents(bridge, args.since)
    )
    if (missing := _no_events_endpoint(bridge, "watch")) is not None:
        session.note(f"{missing}, to see the trade events")
    # With --json, one JSON line per frame; else one view, redrawn in place.
    screen: contextlib.AbstractContextManager[Live | None] = (
        contextlib.nullcontext()
        if session.as_json
        else Live(console=session.console, auto_refresh=False, redirect_stderr=False)
    )
    async with recent as events:
        snapshot, _ = await _snapshot(bridge, events)
        with screen as live:
            while True:  # until Ctrl+C, which is how a watch ends
                if live is None:
                    session.write_json(snapshot)
                else:
                    live.update(_render(session.console, snapshot), refresh=True)
                await asyncio.sleep(args.interval)
                await bridge.health.beat()
                snapshot, _ = await _snapshot(bridge, events)


# -- the command line ------------------------------------------------------------------------

_COMMANDS: Final[dict[str, Command]] = {
    "ping": _ping,
    "account": _account,
    "positions": _positions,
    "open": _open,
    "close": _close,
    "place": _place,
    "modify": _modify,
    "cancel": _cancel,
    "flatten": _flatten,
    "halt": _halt,
    "resume": _resume,
    "order": _order,
    "quote": _quote,
    "bars": _bars,
    "symbols": _symbols,
    "orders": _orders,
    "history": _history,
    "tail": _tail,
    "watch": _watch,
}


def _exit_code(exc: BridgeError) -> Exit:
    if isinstance(exc, OutcomeUnknown):
        return Exit.UNKNOWN
    if isinstance(exc, GatewayTimeout | BadReply):
        return Exit.UNREACHABLE
    if isinstance(exc, InvalidRequest):  # an argument the wire contract refuses: nothing sent
        return Exit.USAGE
    return Exit.REFUSED


def _describe(exc: BridgeError, command: str) -> str:
    """The error's message, with what the operator can do about it."""
    if isinstance(exc, OutcomeUnknown):
        return (
            f"{exc}; the order may have executed: check with `{PROG} order {exc.uuid}` "
            f"(the same command again with --uuid {exc.uuid} cannot execute it twice)"
        )
    if isinstance(exc, CircuitOpen) and exc.reason == SECRET_REFUSED:
        return (
            f"{exc} (the gateway refused this node's secret: check --secret-file or {SECRET_ENV})"
        )
    if isinstance(exc, RequestRefused) and exc.error_code == ErrorCode.TOO_LARGE:
        if command == "history":
            return f"{exc} (with --days, or --from and --to: `{PROG} history --help`)"
        return f"{exc} (with --count and --start: `{PROG} bars --help`)"
    code = exc.error_code if isinstance(exc, OrderRejected) else None
    if command == "modify" and (hint := _other_kind(exc, code)) is not None:
        return f"{exc} ({hint})"
    # The Bridge signs whatever it has a secret for: a missing signature means no secret.
    if code == ErrorCode.SIGNATURE_MISSING:
        if command in _SWITCHES:
            return (
                f"{exc} (no secret is configured: --operator-secret-file FILE, or the shared one)"
            )
        return f"{exc} (no shared secret is configured: --secret-file FILE or {SECRET_ENV})"
    if code == ErrorCode.SIGNATURE_INVALID:
        if command in _SWITCHES:
            return (
                f"{exc} (a gateway with an operator key takes HALT and RESUME signed with it "
                "only: --operator-secret-file FILE)"
            )
        return f"{exc} (does this client have the gateway's secret?)"
    return str(exc)


def _other_kind(exc: BridgeError, code: str | None) -> str | None:
    """How to act on the ticket ``modify`` was told is a position's when it is an order's, or
    the other way round: the gateway says what it is, in its own terms."""
    if code == ErrorCode.ORDER_NOT_FOUND and "is an open position" in str(exc):
        return f"a position's stops: `{PROG} modify TICKET --sl PRICE`, without --order"
    if code == ErrorCode.POSITION_NOT_FOUND and "is a pending order" in str(exc):
        return f"a pending order: `{PROG} modify TICKET --order ...`, or `{PROG} cancel TICKET`"
    return None


async def _run(config: ClientConfig, args: argparse.Namespace, session: Session) -> Exit:
    bridge = Bridge(
        config.endpoint,
        **config.bridge_options(),
        heartbeat_interval=_NO_AUTOMATIC_BEATS_S,
        heartbeat_timeout=config.request_timeout,
        events_endpoint=getattr(args, "events_endpoint", None),  # tail and watch only
    )
    try:
        async with bridge:
            # Opening took one beat. Without an answer, every command but watch (which shows
            # an unreachable gateway for what it is) would only wait as long again, and fail.
            if args.command != "watch" and bridge.health.last_rtt is None:
                raise GatewayTimeout(
                    f"no answer from the gateway at {config.endpoint} "
                    f"within {config.request_timeout:g} s"
                )
            return await _COMMANDS[args.command](bridge, args, session)
    except BridgeError as exc:
        return session.fail(
            f"{args.command}: {_describe(exc, args.command)}",
            _exit_code(exc),
            error_code=getattr(exc, "error_code", None),
            retcode=getattr(exc, "retcode", None),
            uuid=getattr(exc, "uuid", None),
        )
    except zmq.ZMQError as exc:  # an endpoint ZeroMQ cannot connect to at all
        return session.fail(f"cannot connect to {config.endpoint}: {exc}", Exit.USAGE)


@contextlib.contextmanager
def _library_logs_off() -> Iterator[None]:
    """The client's log and audit lines (heartbeat misses, rejections) would repeat, in
    another form, the one line this CLI prints."""
    logger.disable("inf_bridge")
    try:
        yield
    finally:
        logger.enable("inf_bridge")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else Exit.USAGE
    session = Session(as_json=args.json, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    if args.command == "flatten" and not args.yes and not session.stdin.isatty():
        return session.fail("flatten: no terminal to confirm on: add --yes", Exit.USAGE)
    try:
        config = load_config(
            config_file=args.config,
            overrides={
                "endpoint": args.endpoint,
                "secret_file": args.secret_file,
                "operator_secret_file": args.operator_secret_file,
                "curve_server_key": args.curve_server_key,
                "curve_client_cert": args.curve_client_cert,
                "request_timeout": args.request_timeout,
            },
        )
    except ConfigError as exc:
        return session.fail(str(exc), Exit.USAGE)
    try:
        with _library_logs_off(), asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_run(config, args, session))
    except KeyboardInterrupt:
        if args.command in _ENDLESS:  # Ctrl+C is how a watch or a tail ends
            return Exit.OK
        doubt = sorted(session.in_flight)
        if doubt:
            return session.fail(
                f"interrupted with {len(doubt)} order(s) in flight, which may have executed: "
                + "; ".join(f"check with `{PROG} order {uuid}`" for uuid in doubt),
                Exit.INTERRUPTED,
            )
        return session.fail("interrupted", Exit.INTERRUPTED)
