"""The command line of ``mt5-bridge``: the global flags, before or after the command, and each
command's arguments, checked against the wire contract's own types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, NoReturn

import msgspec
from msgspec import Meta

from inf_bridge.cli.exit_codes import Exit, exit_codes_help
from inf_bridge.cli.views import PROG, _utc_time
from inf_bridge.config import CONFIG_ENV, ENV_PREFIX, SECRET_ENV, Endpoint
from protocol import (
    RATES_DTYPE,
    VERSION,
    Deal,
    PendingType,
    Timeframe,
    validation_message,
    wire_fields,
)
from protocol.messages import (
    Comment,
    Count,
    Deviation,
    ExpiresAt,
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
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
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
    seconds, UTC (the Bridge's clock, and the one the history's times are shown in). A date alone is
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
                f"invalid date {text!r}: give it without a time zone, in UTC (the clock the "
                "history's times are shown in)"
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


def _expiration(text: str) -> str | int:
    """``GTC``, ``DAY``, or a time in UTC (the clock ``orders`` shows an expiration in):
    ``2026-12-01T18:00`` (or with a space), or epoch seconds."""
    if text.upper() in ("GTC", "DAY"):
        return text.upper()
    when: str | int = text
    if not text.isdigit():
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid expiration {text!r}: expected GTC, DAY, 2026-12-01T18:00 or epoch seconds"
            ) from None
        if parsed.tzinfo is not None:
            raise argparse.ArgumentTypeError(
                f"invalid expiration {text!r}: give it without a time zone, in UTC (the "
                "clock `orders` shows expirations in)"
            )
        if len(text) <= len("2026-12-01"):
            raise argparse.ArgumentTypeError(
                f"invalid expiration {text!r}: give the time as well (2026-12-01T18:00), or "
                "DAY for the end of the trading day"
            )
        when = int(parsed.replace(tzinfo=UTC).timestamp())  # whole seconds, as the terminal
    try:
        seconds: int = msgspec.convert(when, ExpiresAt, strict=False)
    except msgspec.ValidationError as exc:
        message = validation_message(exc)
        raise argparse.ArgumentTypeError(f"invalid expiration {text!r}: {message}") from None
    return seconds


def _endpoint(text: str) -> str:
    try:
        return msgspec.convert(text, Endpoint)
    except msgspec.ValidationError:
        raise argparse.ArgumentTypeError(
            f"invalid endpoint {text!r}: expected a ZeroMQ endpoint such as "
            "tcp://127.0.0.1:5556 or ipc://PATH"
        ) from None


def _stoplimit_form(args: argparse.Namespace) -> str | None:
    """Why a pending order's type and --stoplimit make no order together, or ``None``."""
    stop_limit = PendingType(args.type).stop_limit
    if stop_limit and args.stoplimit is None:
        return f"a {args.type} order needs --stoplimit: the price of the limit order it places"
    if not stop_limit and args.stoplimit is not None:
        return f"--stoplimit belongs to BUY_STOP_LIMIT and SELL_STOP_LIMIT, not {args.type}"
    return None


_ORDER_ONLY: Final = (
    ("--price", "price"),
    ("--stoplimit", "stoplimit"),
    ("--expiration", "expiration"),
)


def _modify_form(args: argparse.Namespace) -> str | None:
    """Why modify's flags change nothing, or belong to the other kind of ticket, or ``None``."""
    if args.order:
        changes = ("price", "stoplimit", "sl", "tp", "expiration")
        if all(getattr(args, name) is None for name in changes):
            return "say what to change: --price, --stoplimit, --sl, --tp or --expiration"
        return None
    misplaced = [flag for flag, name in _ORDER_ONLY if getattr(args, name) is not None]
    if misplaced:
        verb = "changes" if len(misplaced) == 1 else "change"
        return f"{' and '.join(misplaced)} {verb} a pending order: add --order"
    if args.sl is None and args.tp is None:
        return "say what to change: --sl, --tp or both (0 removes a level)"
    return None


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
        start, end = _utc_time(int(args.date_from)), _utc_time(int(args.date_to))
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
        "bars, symbols, pending orders and the history; open, modify and close\n"
        "positions; place, modify and cancel pending orders; follow the trade events;\n"
        "throw the kill switch.",
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
    expiration_help = (
        "DAY (the end of the trading day), or a time in UTC: 2026-12-01T18:00, or epoch seconds"
    )
    placing = command(
        "place",
        "place a pending order: a limit order waits for a better price than the market's "
        "(a buy below the ask), a stop order for a worse one (a buy above it)",
    )
    placing.add_argument("symbol", type=_typed(Symbol, "symbol"), metavar="SYMBOL")
    placing.add_argument(
        "type",
        type=str.upper,
        choices=tuple(PendingType),
        metavar="TYPE",
        help=", ".join(PendingType),
    )
    placing.add_argument("volume", type=_typed(Volume, "volume"), metavar="VOLUME", help="lots")
    placing.add_argument(
        "price",
        type=_typed(Price, "price"),
        metavar="PRICE",
        help="where it triggers (a stop limit order: where it places its limit order)",
    )
    placing.add_argument("--sl", type=_typed(StopPrice, "stop loss"), metavar="PRICE")
    placing.add_argument("--tp", type=_typed(StopPrice, "take profit"), metavar="PRICE")
    placing.add_argument(
        "--stoplimit",
        type=_typed(Price, "stoplimit"),
        metavar="PRICE",
        help="the price of the limit order a *_STOP_LIMIT order places (required for those)",
    )
    placing.add_argument(
        "--expiration",
        type=_expiration,
        metavar="WHEN",
        help=f"GTC (until cancelled, the default), {expiration_help}",
    )
    placing.add_argument("--magic", type=_typed(Magic, "magic number"), metavar="N")
    placing.add_argument("--comment", type=_typed(Comment, "comment"), metavar="TEXT")
    placing.add_argument("--uuid", type=_typed(Uuid, "uuid"), help=uuid_help)
    placing.checks.append(_stoplimit_form)
    modify = command(
        "modify",
        "move an open position's stop loss and take profit; with --order, change a pending "
        "order's price, stops, stop-limit price or expiration (0 removes an --sl or --tp "
        "level; what is not given stays)",
    )
    modify.add_argument(
        "ticket",
        type=_typed(Ticket, "ticket"),
        metavar="TICKET",
        help="the position's ticket; with --order, the pending order's",
    )
    modify.add_argument(
        "--order",
        action="store_true",
        help="TICKET is a pending order's (as `orders` lists them), not a position's",
    )
    modify.add_argument("--sl", type=_typed(StopPrice, "stop loss"), metavar="PRICE")
    modify.add_argument("--tp", type=_typed(StopPrice, "take profit"), metavar="PRICE")
    modify.add_argument(
        "--price", type=_typed(Price, "price"), metavar="PRICE", help="with --order: move it"
    )
    modify.add_argument(
        "--stoplimit",
        type=_typed(Price, "stoplimit"),
        metavar="PRICE",
        help="with --order: a stop limit order's limit price",
    )
    modify.add_argument(
        "--expiration",
        type=_expiration,
        metavar="WHEN",
        help=f"with --order: GTC (until cancelled), {expiration_help}",
    )
    modify.add_argument("--uuid", type=_typed(Uuid, "uuid"), help=uuid_help)
    modify.checks.append(_modify_form)
    cancel = command("cancel", "cancel a pending order")
    cancel.add_argument("ticket", type=_typed(Ticket, "ticket"), metavar="ORDER", help="its ticket")
    cancel.add_argument("--uuid", type=_typed(Uuid, "uuid"), help=uuid_help)
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
        "order",
        "what became of an order (exit 0 filled or carried out, 1 rejected or not found, "
        "4 pending)",
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
        "time is the bar's opening in epoch seconds, UTC (the terminal's, converted)."
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
        "Dates and times are UTC: DATE is read in it, and the table shows it (the\n"
        "terminal's times are its trade server's, often UTC+2 or +3: the bridge converts\n"
        "them). --days counts back from this machine's clock.\n\n"
        "--csv writes every field, under a header line of the package's names, one line\n"
        "per deal (TradeDeal's fields) or, with --orders, per order (TradeOrder's):\n"
        f"  {','.join(wire_fields(Deal))}"
    )
    events_help = (
        "the gateway's event socket (default: the port after the endpoint's, as the "
        "gateway's own default)"
    )
    tail = command(
        "tail",
        "print the trade events as they come, one line each, starting with its number: "
        "deals, pending orders placed, modified, triggered, filled, cancelled or expired, "
        "and the account's changes; until Ctrl+C",
    )
    tail.formatter_class = argparse.RawDescriptionHelpFormatter
    tail.epilog = (
        "Each line starts with the event's number (SEQ, to go on from with --since), then\n"
        "the time the gateway recorded it, in this machine's clock, then DEAL, ORDER (with\n"
        "its change: PLACED, MODIFIED, TRIGGERED, FILLED, CANCELLED, EXPIRED, REJECTED) or\n"
        'ACCOUNT. With --json, one JSON object a line: its "type" (deal, order, account),\n'
        '"seq", "time", and the deal, order or account with every field of the package\'s.'
    )
    tail.add_argument(
        "--since",
        type=_typed(Seq, "since"),
        metavar="SEQ",
        help="first the events after number SEQ that the gateway keeps (0: all of them, "
        "a week by default), then the new ones (default: only the new ones)",
    )
    tail.add_argument(
        "--count", type=_typed(Count, "count"), metavar="N", help="stop after N events"
    )
    tail.add_argument("--events-endpoint", type=_endpoint, metavar="URL", help=events_help)
    watch = command(
        "watch",
        "a live view: link health, breaker, account, positions and their quotes, pending "
        "orders, and the deals and order changes since the watch started",
    )
    watch.add_argument(
        "--interval", type=_typed(Seconds, "interval"), default=1.0, help="seconds (default 1)"
    )
    once_or_since = watch.add_mutually_exclusive_group()
    once_or_since.add_argument(
        "--once",
        action="store_true",
        help="show one frame and exit (without trade events: `tail --since SEQ` shows those)",
    )
    once_or_since.add_argument(
        "--since",
        type=_typed(Seq, "since"),
        metavar="SEQ",
        help="the deals and order changes after event number SEQ (as `tail` numbers them), "
        "then the new ones (default: from when the watch starts)",
    )
    watch.add_argument("--events-endpoint", type=_endpoint, metavar="URL", help=events_help)
    return parser
