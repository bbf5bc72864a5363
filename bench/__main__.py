"""``python -m bench``: measure the gateway against its floor and the targets of issue 7.

Prints Markdown tables (stdout) and a progress line (stderr); ``--json`` and ``--plot`` write
files. Exit status: 0, or 1 with ``--check`` when a target failed, or 2 when the run could not
be made (bad arguments, a server that would not start, no matplotlib for ``--plot``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from loguru import logger

from bench.load import MODES, Shape
from bench.market import MarketOptions
from bench.plot import PlotUnavailable, require_matplotlib, write_plot
from bench.progress import Progress
from bench.report import render, write_json
from bench.suite import Options, run_suite

__all__ = ["build_parser", "main"]

T = TypeVar("T")
_DEFAULTS = Options()
_MARKET = MarketOptions()
_ONLY = ("market", "reads")


def _listed(parse: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    """An argparse type for a comma-separated list of ``parse``'d items."""

    def parse_list(text: str) -> tuple[T, ...]:
        try:
            return tuple(parse(item.strip()) for item in text.split(",") if item.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_list


def _mode(text: str) -> str:
    if text not in MODES:
        raise ValueError(f"unknown mode {text!r}; expected some of {', '.join(MODES)}")
    return text


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a count >= 0, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise ValueError(f"expected seconds between 0 and 3600, got {text}")
    return value


def _milliseconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10_000:
        raise ValueError(f"expected milliseconds between 0 and 10,000, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise ValueError("expected more than 0 seconds")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise ValueError("expected a count >= 1")
    return value


def _single(parse: Callable[[str], T]) -> Callable[[str], T]:
    def parse_one(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_one


def build_parser() -> argparse.ArgumentParser:
    d = _DEFAULTS
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the gateway (simulator, signatures on, journal on) against a bare "
        "echo server in the same run, through the real client; check the targets of issue 7.",
    )
    parser.add_argument(
        "--modes",
        type=_listed(_mode),
        default=d.modes,
        metavar="LIST",
        help=f"any of {','.join(MODES)} (default: all)",
    )
    parser.add_argument(
        "--shapes",
        type=_listed(Shape.parse),
        default=d.shapes,
        metavar="LIST",
        help="CLIENTSxIN_FLIGHT, comma-separated; 1x1 is one-in-flight latency (default: 1x1,4x16)",
    )
    parser.add_argument(
        "--duration",
        type=_single(_positive_seconds),
        default=d.duration_s,
        metavar="S",
        help=f"measured seconds per scenario (default {d.duration_s:g})",
    )
    parser.add_argument(
        "--warmup",
        type=_single(_seconds),
        default=d.warmup_s,
        metavar="S",
        help=f"unmeasured seconds before each scenario (default {d.warmup_s:g})",
    )
    parser.add_argument(
        "--positions",
        type=_listed(_count),
        default=d.positions,
        metavar="LIST",
        help="fill the gateway's book up to each of these levels in turn and measure again "
        "(the floor is measured once)",
    )
    parser.add_argument(
        "--presend-iterations",
        type=_single(_count),
        default=d.presend_iterations,
        metavar="N",
        help=f"orders timed before the socket; 0 skips (default {d.presend_iterations})",
    )
    parser.add_argument(
        "--books",
        type=_listed(_count),
        default=d.books,
        metavar="LIST",
        help="RiskMonitor book sizes for the pre-send measurement (default 20)",
    )
    parser.add_argument(
        "--memory-requests",
        type=_single(_count),
        default=d.memory_requests,
        metavar="N",
        help=f"PINGs for the memory check; 0 skips (default {d.memory_requests:,})",
    )
    parser.add_argument(
        "--memory-mode",
        type=_single(_mode),
        default=d.memory_mode,
        metavar="MODE",
        help=f"what the memory check sends (default {d.memory_mode})",
    )
    parser.add_argument(
        "--gil-duration",
        type=_single(_seconds),
        default=d.gil_duration_s,
        metavar="S",
        help=f"PING during 300 ms GIL-holding orders; 0 skips (default {d.gil_duration_s:g})",
    )
    parser.add_argument(
        "--terminal-latencies",
        type=_listed(_milliseconds),
        default=d.terminal_latencies_ms,
        metavar="LIST",
        help="orders that take the terminal this many ms, gateway against the unsafe design; "
        "'' skips (default " + ",".join(f"{ms:g}" for ms in d.terminal_latencies_ms) + ")",
    )
    parser.add_argument(
        "--mt5-module-rounds",
        type=int,
        default=d.mt5_module_rounds,
        metavar="N",
        help="inf_bridge.mt5's calls against the same calls in-process on the simulator, N "
        f"rounds; 0 skips (default {d.mt5_module_rounds})",
    )
    market = parser.add_argument_group("market data (issue 15)")
    market.add_argument(
        "--only",
        choices=_ONLY,
        help="run only this scenario ('market', or 'reads': GET_ACCOUNT beside 64 orders in "
        "flight); the others are skipped",
    )
    market.add_argument("--no-market", action="store_true", help="skip the market data scenario")
    market.add_argument(
        "--no-reads", action="store_true", help="skip the reads-beside-orders scenario"
    )
    market.add_argument(
        "--bars",
        type=_single(_positive),
        default=_MARKET.bars,
        metavar="N",
        help=f"M1 bars per fetch (default {_MARKET.bars:,}, the simulator's most)",
    )
    market.add_argument(
        "--bars-rounds",
        type=_single(_count),
        default=_MARKET.bars_rounds,
        metavar="N",
        help=f"measured fetches of each kind; 0 skips (default {_MARKET.bars_rounds})",
    )
    market.add_argument(
        "--subscribers",
        type=_listed(_positive),
        default=_MARKET.subscribers,
        metavar="LIST",
        help="tick streams at once, in one process; the largest also streams during the "
        "orders (default 1,50)",
    )
    market.add_argument(
        "--stream-duration",
        type=_single(_positive_seconds),
        default=_MARKET.stream_s,
        metavar="S",
        help=f"seconds of each tick timing window (default {_MARKET.stream_s:g})",
    )
    market.add_argument(
        "--market-rounds",
        type=_single(_count),
        default=_MARKET.rounds,
        metavar="N",
        help="rounds of PING and OPEN without subscribers, with them, and with them on the "
        f"floor; 0 skips (default {_MARKET.rounds})",
    )
    market.add_argument(
        "--poll-interval-ms",
        type=_single(_positive),
        default=_MARKET.poll_interval_ms,
        metavar="MS",
        help=f"the gateway's feed poll interval (default {_MARKET.poll_interval_ms})",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the latency distributions (needs the 'plot' extra: matplotlib)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target fails"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.books:
        parser.error("--books needs at least one size")
    if args.plot is not None:
        try:
            require_matplotlib()  # before the run, not a minute later
        except PlotUnavailable as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
    if (args.only == "market" and args.no_market) or (args.only == "reads" and args.no_reads):
        parser.error(f"--only {args.only} and --no-{args.only} exclude each other")
    if not 5 <= args.poll_interval_ms <= 60_000:
        parser.error("--poll-interval-ms is 5 to 60000, as the gateway takes it")
    market = MarketOptions(
        bars=args.bars,
        bars_rounds=args.bars_rounds,
        subscribers=tuple(sorted(set(args.subscribers))),
        stream_s=args.stream_duration,
        rounds=args.market_rounds,
        poll_interval_ms=args.poll_interval_ms,
    )
    only = args.only is not None
    options = Options(
        modes=() if only else args.modes,
        shapes=args.shapes,
        duration_s=args.duration,
        warmup_s=args.warmup,
        positions=tuple(sorted(set(args.positions))),
        presend_iterations=0 if only else args.presend_iterations,
        books=args.books,
        memory_requests=0 if only else args.memory_requests,
        memory_mode=args.memory_mode,
        gil_duration_s=0.0 if only else args.gil_duration,
        terminal_latencies_ms=() if only else args.terminal_latencies,
        mt5_module_rounds=0 if only else args.mt5_module_rounds,
        market=None if args.no_market or args.only == "reads" else market,
        reads=not args.no_reads and args.only in (None, "reads"),
    )
    # The Bridges log an audit line per order stage; on stderr they would flood the terminal
    # and the terminal would be what is measured. The pre-send measurement adds its own sink.
    logger.remove()
    try:
        report = run_suite(
            options,
            command=" ".join(["python -m bench", *argv]),
            progress=Progress(quiet=args.quiet),
        )
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    if args.json is not None:
        write_json(report, args.json)
        print(f"\nJSON: {args.json}")
    if args.plot is not None and report.loads:
        write_plot(report, args.plot)
        print(f"Plot: {args.plot}")
    failed = [t for t in report.targets if t.passed is False]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
