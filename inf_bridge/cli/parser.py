"""The command line of ``mt5-bridge``: the global flags, before or after the command, and each
command's arguments, checked against the wire contract's own types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import msgspec
from msgspec import Meta

from inf_bridge.cli.exit_codes import Exit, exit_codes_help
from inf_bridge.cli.views import PROG, _server_time
from inf_bridge.config import CONFIG_ENV, ENV_PREFIX, SECRET_ENV
from protocol import RATES_DTYPE, VERSION, Deal, Timeframe, validation_message
from protocol.messages import (
    Comment,
    Count,
    Deviation,
    Group,
    Magic,
    Price,
    Reason,
    StartPos,
    StopPrice,
    Symbol,
    Ticket,
    Uuid,
    Volume,
)

__all__ = ["build_parser"]

Seconds = Annotated[float, Meta(gt=0, le=3600)]
Days = Annotated[int, Meta(gt=0, le=10_000)]
Check = Callable[[argparse.Namespace], str | None]


def _typed(kind: Any, what: str) -> Callable[[str], Any]:
    """An argparse type that checks a value against the wire contract's own type, so that
    the CLI refuses at once what the gateway would refuse."""

    def convert(text: str) -> Any:
        try:
            return msgspec.convert(text, kind, strict=False)
        except msgspec.ValidationError as exc:
            message = validation_message(exc)
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: {message}") from None

    return convert


def _timeframe(text: str) -> Timeframe:
    """``M1`` .. ``MN1``, ``TIMEFRAME_H1``, or the constant's value (``16385``)."""
    try:
        return Timeframe.of(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_global_flags(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    # After the command, an absent flag must not overwrite one given before it: SUPPRESS.
    unset = argparse.SUPPRESS if after_command else None
    parser.add_argument("--config", metavar="FILE", default=unset, help="TOML config file")
    parser.add_argument(
        "--endpoint", metavar="URL", default=unset, help="gateway (default tcp://127.0.0.1:5555)"
    )
    parser.add_argument(
        "--secret-file", metavar="FILE", default=unset, help="file holding the shared secret"
    )
    parser.add_argument(
        "--operator-secret-file",
        metavar="FILE",
        default=unset,
        help="file holding the operator's secret, which signs HALT and RESUME (halt, resume, "
        "flatten) when the gateway has an operator key (default: the shared secret)",
    )
    parser.add_argument(
        "--curve-server-key",
        metavar="FILE",
        default=unset,
        help="the gateway's public CURVE key (.key), to connect with CURVE",
    )
    parser.add_argument(
        "--curve-client-cert",
        metavar="FILE",
        default=unset,
        help="this node's secret CURVE certificate (.key_secret), owner-only",
    )
    parser.add_argument(
        "--timeout",
        "--request-timeout",
        dest="request_timeout",
        metavar="SECONDS",
        default=unset,
        help="per round trip (default 2)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if after_command else False,
        help="machine-readable output: one JSON document per result or error, on stdout",
    )


def _date(text: str, *, end_of_day: bool = False) -> float:
    """``2026-12-01``, ``2026-12-01T14:30`` (or with a space) or epoch seconds, as epoch
    seconds in the trade server's clock: the clock the history's times are in. A date alone is
    the start of that day, or with ``end_of_day`` its last second (``--to`` includes the day)."""
    if text.isdigit():
        when = float(text)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid date {text!r}: expected 2026-12-01, 2026-12-01T14:30 or epoch seconds"
            ) from None
        if parsed.tzinfo is not None:
            raise argparse.ArgumentTypeError(
                f"invalid date {text!r}: give it without a time zone, in the trade server's "
                "clock (the one the history's times are in)"
            )
        date_only = len(text) <= len("2026-12-01")
        if end_of_day and date_only:
            parsed += timedelta(days=1, seconds=-1)
        when = parsed.replace(tzinfo=UTC).timestamp()
    if not (math.isfinite(when) and 0 <= when < 1e11):
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: out of range")
    return when


def _end_date(text: str) -> float:
    return _date(text, end_of_day=True)


def _one_order_filter(args: argparse.Namespace) -> str | None:
    given = [
        flag
        for flag, value in (
            ("SYMBOL", args.symbol),
            ("--group", args.group),
            ("--ticket", args.ticket),
        )
        if value is not None
    ]
    if len(given) > 1:
        return f"give one of SYMBOL, --group and --ticket at most, not {' and '.join(given)}"
    return None


def _history_form(args: argparse.Namespace) -> str | None:
    """Why the history's flags make no request, or ``None``."""
    dated = [
        flag
        for flag, value in (
            ("--days", args.days),
            ("--from", args.date_from),
            ("--to", args.date_to),
        )
        if value is not None
    ]
    if args.position is not None:
        beside = dated + (["--symbol"] if args.symbol is not None else [])
        if beside:
            return f"--position takes a position's whole history: not with {', '.join(beside)}"
        return None
    if args.symbol is not None and any(mark in args.symbol for mark in "*,!"):
        return f"--symbol {args.symbol!r} is a mask: give one symbol's name"
    if args.days is not None and len(dated) > 1:
        return "give --days or --from and --to, not both"
    if (args.date_from is None) != (args.date_to is None):
        return "--from and --to go together"
    if args.date_from is not None and args.date_to < args.date_from:
        start, end = _server_time(int(args.date_from)), _server_time(int(args.date_to))
        return f"--from {start} is after --to {end}: the range runs backwards"
    return None


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What argparse cannot say of one argument alone: checks of the whole command line,
        # each returning why it makes no request (or None), run once it is parsed.
        self.checks: list[Check] = []

    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for check in self.checks:
            if (message := check(parsed)) is not None:
                self.error(message)
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        # One line, not the whole usage: what is wrong, and where to read more.
        self.exit(Exit.USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    exit_codes = exit_codes_help()
    parser = _Parser(
        prog=PROG,
        description="Drive and watch an MT5 gateway: query the account, positions, quotes,\n"
        "bars, symbols, pending orders and the history; open and close positions; throw\n"
        "the kill switch.",
        epilog=f"The endpoint, secret and keys come from a TOML file (--config, ${CONFIG_ENV}\n"
        f"or ~/.config/mt5-bridge/config.toml), then the environment ({ENV_PREFIX}ENDPOINT,\n"
        f"{ENV_PREFIX}SECRET_FILE, {SECRET_ENV}, ...), then flags: later ones win.\n\n"
        f"Exit codes:\n{exit_codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    _add_global_flags(parser, after_command=False)
    common = _Parser(add_help=False)
    _add_global_flags(common, after_command=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> _Parser:
        parser: _Parser = commands.add_parser(name, parents=[common], help=help, description=help)
        return parser

    command("ping", "check that the gateway answers; show the round trip")
    command("account", "show the trading account")
    command("positions", "list open positions").add_argument(
        "--symbol", type=_typed(Symbol, "symbol")
    )
    opening = command("open", "open a position with a market order")
    opening.add_argument("symbol", type=_typed(Symbol, "symbol"), metavar="SYMBOL")
    opening.add_argument("side", type=str.upper, choices=("BUY", "SELL"), metavar="BUY|SELL")
    opening.add_argument("volume", type=_typed(Volume, "volume"), metavar="VOLUME", help="lots")
    opening.add_argument("--sl", type=_typed(StopPrice, "stop loss"), metavar="PRICE")
    opening.add_argument("--tp", type=_typed(StopPrice, "take profit"), metavar="PRICE")
    opening.add_argument(
        "--price", type=_typed(Price, "price"), metavar="PRICE", help="expected price"
    )
    opening.add_argument(
        "--deviation",
        type=_typed(Deviation, "deviation"),
        metavar="POINTS",
        help="allowed slippage",
    )
    opening.add_argument("--magic", type=_typed(Magic, "magic number"), metavar="N")
    opening.add_argument("--comment", type=_typed(Comment, "comment"), metavar="TEXT")
    uuid_help = "idempotency key: the same uuid never executes twice (default: a fresh one)"
    opening.add_argument("--uuid", type=_typed(Uuid, "uuid"), help=uuid_help)
    closing = command("close", "close a position, wholly or in part")
    closing.add_argument("ticket", type=_typed(Ticket, "ticket"), metavar="TICKET")
    closing.add_argument("--volume", type=_typed(Volume, "volume"), help="lots (default: all)")
    closing.add_argument("--uuid", type=_typed(Uuid, "uuid"), help=uuid_help)
    flatten = command(
        "flatten",
        "halt the gateway (so that no strategy opens a position meanwhile), then close every "
        f"open position; the halt stays on until `{PROG} resume`. Asks first, unless --yes",
    )
    flatten.add_argument("--symbol", type=_typed(Symbol, "symbol"), help="only this symbol")
    flatten.add_argument("-y", "--yes", action="store_true", help="do not ask")
    flatten.add_argument(
        "--no-halt",
        action="store_true",
        help="close without halting first (strategies may open new positions meanwhile)",
    )
    command("halt", "throw the gateway's kill switch: no new orders from any client").add_argument(
        "--reason", type=_typed(Reason, "reason")
    )
    command("resume", "lift a halt")
    command(
        "order", "what became of an order (exit 0 filled, 1 rejected or not found, 4 pending)"
    ).add_argument("uuid", type=_typed(Uuid, "uuid"), metavar="UUID")
    quote = command("quote", "the latest tick of each symbol: bid, ask, spread in points")
    quote.add_argument("symbols", type=_typed(Symbol, "symbol"), nargs="+", metavar="SYMBOL")
    bars = command("bars", "a symbol's latest bars, as copy_rates_from_pos gives them")
    bars.add_argument("symbol", type=_typed(Symbol, "symbol"), metavar="SYMBOL")
    bars.add_argument(
        "timeframe",
        type=_timeframe,
        metavar="TF",
        help=f"{', '.join(Timeframe)}, or a TIMEFRAME_* constant's name or value",
    )
    bars.add_argument(
        "--count",
        type=_typed(Count, "count"),
        default=20,
        metavar="N",
        help="how many bars, the current one last (default 20; the gateway refuses more "
        "than its [gateway] max_rows)",
    )
    bars.add_argument(
        "--start",
        type=_typed(StartPos, "start"),
        metavar="N",
        help="end N bars before the current one (default 0: the current one included), to "
        "ask for more than the gateway gives at once in parts",
    )
    bars.add_argument("--csv", metavar="FILE", help="write the bars to FILE (- for stdout) as CSV")
    # Raw, so that the header line is shown whole rather than wrapped mid-name.
    bars.formatter_class = argparse.RawDescriptionHelpFormatter
    bars.epilog = (
        "--csv writes a header line, then one line per bar, oldest first:\n"
        f"  {','.join(name for name, _ in RATES_DTYPE)}\n"
        "time is the bar's opening in epoch seconds, in the trade server's clock."
    )
    command("symbols", "the terminal's symbols, in the Market Watch or not").add_argument(
        "group",
        nargs="?",
        type=_typed(Group, "group"),
        metavar="GROUP",
        help="only these, as symbols_get's group: comma-separated masks, * for anything, ! to "
        "exclude; quote it: '*USD*,!EUR*'",
    )
    orders = command(
        "orders", "the pending orders: all, a symbol's, a group's, or the one with a ticket"
    )
    orders.add_argument(
        "symbol", nargs="?", type=_typed(Symbol, "symbol"), metavar="SYMBOL", help="only these"
    )
    orders.add_argument(
        "--group",
        type=_typed(Group, "group"),
        metavar="GROUP",
        help="only these symbols, as symbols_get's group masks: '*USD*,!EUR*'",
    )
    orders.add_argument(
        "--ticket", type=_typed(Ticket, "ticket"), metavar="N", help="only this one"
    )
    orders.checks.append(_one_order_filter)
    history = command(
        "history",
        "the account's history: its deals, or with --orders its orders (default: the last day)",
    )
    history.add_argument(
        "--days",
        type=_typed(Days, "days"),
        metavar="N",
        help="the last N days (default 1), up to now",
    )
    history.add_argument(
        "--from",
        dest="date_from",
        type=_date,
        metavar="DATE",
        help="from DATE (2026-12-01, 2026-12-01T14:30 or epoch seconds; with --to)",
    )
    history.add_argument(
        "--to",
        dest="date_to",
        type=_end_date,
        metavar="DATE",
        help="to DATE, included (a date alone: to the end of that day)",
    )
    history.add_argument("--symbol", type=_typed(Symbol, "symbol"), help="only this symbol")
    history.add_argument(
        "--position",
        type=_typed(Ticket, "position"),
        metavar="TICKET",
        help="every deal (or order) of this position, whenever it was",
    )
    history.add_argument(
        "--orders", action="store_true", help="the history's orders rather than its deals"
    )
    history.add_argument(
        "--csv", metavar="FILE", help="write every field to FILE (- for stdout) as CSV"
    )
    history.checks.append(_history_form)
    history.formatter_class = argparse.RawDescriptionHelpFormatter
    history.epilog = (
        "Dates and times are the trade server's clock, as the terminal gives them (many\n"
        "brokers' is not UTC): DATE is read in it, and the table shows it. --days counts\n"
        "back from this machine's clock, and its range ends a day past it, so that a\n"
        "server clock ahead of this machine's loses no deal.\n\n"
        "--csv writes every field, under a header line of the package's names, one line\n"
        "per deal (TradeDeal's fields) or, with --orders, per order (TradeOrder's):\n"
        f"  {','.join(field.name for field in msgspec.structs.fields(Deal))}"
    )
    watch = command(
        "watch", "a live view: link health, breaker, account, positions and their quotes"
    )
    watch.add_argument(
        "--interval", type=_typed(Seconds, "interval"), default=1.0, help="seconds (default 1)"
    )
    watch.add_argument("--once", action="store_true", help="show one frame and exit")
    return parser
