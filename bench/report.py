"""The report: ratios to the floor, the tables printed at the end of a run, the JSON file.

Tables are Markdown, so that a run's output can go into docs/PERFORMANCE.md as it is. A gateway
cell carries its ratio to the floor's figure for the same mode and shape, e.g. ``759 (5.3x)``:
for latencies, lower is better; for throughput, higher is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from bench.mt5_module import render as render_mt5_module
from bench.results import (
    Latency,
    LoadResult,
    MarketResult,
    PresendResult,
    Ratios,
    ReadsResult,
    Report,
    Server,
    TerminalLatencyResult,
)

__all__ = ["compute_ratios", "render", "write_json"]

_MB: Final = 1024 * 1024


def _floor_of(
    loads: Sequence[LoadResult], result: LoadResult, base: Server = "floor"
) -> LoadResult | None:
    """``base``'s result for the same mode and shape as ``result``."""
    for candidate in loads:
        if (
            candidate.server == base
            and candidate.mode == result.mode
            and candidate.clients == result.clients
            and candidate.in_flight == result.in_flight
        ):
            return candidate
    return None


def _ratio(value: float, floor: float) -> float:
    return value / floor if floor > 0 else float("inf")


def compute_ratios(loads: Sequence[LoadResult], base: Server = "floor") -> list[Ratios]:
    """Each gateway result divided by ``base``'s for the same mode and shape."""
    ratios = []
    for result in loads:
        floor = _floor_of(loads, result, base) if result.server == "gateway" else None
        if floor is None:
            continue
        gw, fl = result.latency, floor.latency
        ratios.append(
            Ratios(
                mode=result.mode,
                clients=result.clients,
                in_flight=result.in_flight,
                positions=result.positions,
                p50=_ratio(gw.p50_us, fl.p50_us),
                p90=_ratio(gw.p90_us, fl.p90_us),
                p99=_ratio(gw.p99_us, fl.p99_us),
                p999=_ratio(gw.p999_us, fl.p999_us),
                throughput=_ratio(result.throughput, floor.throughput),
            )
        )
    return ratios


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _cell(value: float | None, floor: float | None) -> str:
    """``value``, and its ratio to the floor's when there is one."""
    if value is None or floor is None or floor <= 0:
        return _num(value)
    ratio = value / floor
    return f"{_num(value)} ({ratio:.2f}x)" if ratio >= 0.1 else f"{_num(value)} ({ratio:.2g}x)"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in sorted(errors.items())) or "0"


def _latency_cells(lat: Latency, floor: Latency | None) -> list[str]:
    """p50, p90, p99 and p99.9, each with its ratio to the floor's."""
    ours = (lat.p50_us, lat.p90_us, lat.p99_us, lat.p999_us)
    if floor is None:
        return [_num(v) for v in ours]
    theirs = (floor.p50_us, floor.p90_us, floor.p99_us, floor.p999_us)
    return [_cell(v, f) for v, f in zip(ours, theirs, strict=True)]


def _load_rows(loads: Sequence[LoadResult]) -> list[list[str]]:
    rows = []
    for r in loads:
        floor = _floor_of(loads, r) if r.server != "floor" else None
        lat = r.latency
        rows.append(
            [
                r.mode,
                r.shape,
                str(r.positions),
                r.server,
                _cell(r.throughput, floor.throughput if floor else None),
                *_latency_cells(lat, floor.latency if floor else None),
                _cell(r.server_cpu_us, floor.server_cpu_us if floor else None),
                _num(r.client_cpu_us),
                _errors(r.errors),
            ]
        )
    return rows


def _action_rows(loads: Sequence[LoadResult]) -> list[list[str]]:
    """Per action, for the gateway's modes that send more than one kind of request."""
    rows = []
    for r in loads:
        if r.server != "gateway" or len(r.by_action) < 2:
            continue
        floor = _floor_of(loads, r)
        for action, lat in r.by_action.items():
            cells = _latency_cells(lat, floor.by_action.get(action) if floor else None)
            rows.append([r.mode, r.shape, str(r.positions), action, str(lat.count), *cells])
    return rows


def _unsafe_rows(loads: Sequence[LoadResult]) -> list[list[str]]:
    """OPEN and CLOSE through the gateway against the same through the unsafe design."""
    rows = []
    for r in loads:
        unsafe = _floor_of(loads, r, "unsafe") if r.server == "gateway" else None
        if unsafe is None or r.mode == "ping":
            continue
        for action in ("OPEN", "CLOSE"):
            ours, theirs = r.by_action.get(action), unsafe.by_action.get(action)
            if ours is None or theirs is None:
                continue
            rows.append(
                [
                    r.mode,
                    r.shape,
                    action,
                    _cell(ours.p50_us, theirs.p50_us),
                    _num(theirs.p50_us),
                    _cell(ours.p99_us, theirs.p99_us),
                    _num(theirs.p99_us),
                ]
            )
        throughput = _cell(r.throughput, unsafe.throughput)
        rows.append([r.mode, r.shape, "orders/s", throughput, _num(unsafe.throughput), "", ""])
    return rows


def _action_p50(result: LoadResult | None, action: str) -> float | None:
    latency = result.by_action.get(action) if result is not None else None
    return latency.p50_us if latency is not None else None


def _terminal_latency(results: Sequence[TerminalLatencyResult]) -> list[str]:
    """Issue 18: the gateway against the unsafe design when the terminal is the slow part."""
    out = [
        "Orders that take the terminal N ms (order_latency_ms, the GIL held), a fresh gateway "
        "and a fresh unsafe design each; in us and orders/s, (Nx) the gateway's ratio to the "
        "unsafe design:",
        "",
    ]
    rows = []
    for result in results:
        by = {(r.server, r.mode, r.shape): r for r in result.loads}
        gw_open, un_open = (
            _action_p50(by.get((server, "open_close", "1x1")), "OPEN")
            for server in ("gateway", "unsafe")
        )
        gw_rate, un_rate = (
            run.throughput if (run := by.get((server, "open_close", "4x16"))) else None
            for server in ("gateway", "unsafe")
        )
        gw_ping, un_ping = (
            _action_p50(by.get((server, "mixed", "4x16")), "PING")
            for server in ("gateway", "unsafe")
        )
        errors = [
            sum(sum(r.errors.values()) for r in result.loads if r.server == server)
            for server in ("gateway", "unsafe")
        ]
        rows.append(
            [
                f"{result.order_latency_ms:g}",
                _cell(gw_open, un_open),
                _num(un_open),
                _cell(gw_rate, un_rate),
                _num(un_rate),
                _cell(gw_ping, un_ping),
                _num(un_ping),
                " · ".join(str(count) for count in errors),
            ]
        )
    out += _table(
        (
            "terminal ms",
            "OPEN p50, 1x1: gateway",
            "unsafe",
            "orders/s, 4x16: gateway",
            "unsafe",
            "PING p50 beside 4x16 orders: gateway",
            "unsafe",
            "errors: gateway · unsafe",
        ),
        rows,
    )
    return [*out, ""]


def _presend_rows(presend: Sequence[PresendResult]) -> list[list[str]]:
    rows = []
    for p in presend:
        parts = p.parts_us
        rest = p.latency.p50_us - sum(parts.values())
        rows.append(
            [
                str(p.book_positions),
                "yes" if p.audit_sink else "no",
                _num(p.latency.p50_us),
                _num(p.latency.p99_us),
                *(_num(v) for v in parts.values()),
                _num(rest),
            ]
        )
    return rows


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / _MB:.1f} MB"


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} %"


def _reads(reads: ReadsResult) -> list[str]:
    """Reads beside orders (issue 16): each read's p50 against PING's in the same window."""
    ping = reads.loaded.get("PING")
    out = [
        f"Reads beside orders (issue 16): one probe client asks PING, GET_ACCOUNT, "
        f"GET_POSITIONS and GET_ACCOUNT fresh in turn, one at a time, for {reads.seconds:g} s "
        f"with no orders, then beside {reads.clients}x{reads.in_flight} OPEN/CLOSE orders in "
        f"flight ({reads.orders_answered:,} answered meanwhile). Latency in us; the ratio is "
        "the read's p50 over PING's p50 beside the orders (the goal: under 2 for GET_ACCOUNT).",
        "",
    ]
    rows = []
    for name, loaded in reads.loaded.items():
        quiet = reads.quiet.get(name)
        ratio = loaded.p50_us / ping.p50_us if ping is not None and ping.p50_us > 0 else 0.0
        rows.append(
            (
                name,
                _num(quiet.p50_us) if quiet is not None else "-",
                _num(loaded.p50_us),
                _num(loaded.p99_us),
                f"{ratio:.2f}x",
            )
        )
    out += _table(("request", "quiet p50", "beside orders p50", "p99", "/ PING p50"), rows)
    out += ["", f"Errors: {_errors(reads.errors)}.", ""]
    return out


def _market(market: MarketResult) -> list[str]:
    """The market-data section (issue 15)."""
    out = ["Market data (issue 15):", ""]
    if market.fetch:
        bare = next((f for f in market.fetch if f.client == "bare DEALER"), None)
        out.append(
            f"Bars: {market.bars:,} M1 bars of EURUSD per request, timed from the call to the "
            "rows in hand, in ms (server CPU: ms per fetch, the gateway's worker included); "
            "the floor's are the same bytes with nothing behind them; (Nx) is the ratio to "
            "the bare DEALER's."
        )
        out.append("")
        rows = []
        for f in market.fetch:
            rows.append(
                [
                    f.server,
                    f.client,
                    f"{f.rows:,}",
                    f"{f.bytes / 1e6:.1f}",
                    _cell(f.p50_ms, bare.p50_ms if bare and f is not bare else None),
                    _cell(f.best_ms, bare.best_ms if bare and f is not bare else None),
                    _num(f.worst_ms),
                    f"{f.bytes / 1e6 / (f.best_ms / 1000):,.0f}" if f.best_ms > 0 else "n/a",
                    _num(f.server_cpu_ms),
                    str(f.rounds),
                ]
            )
        out += _table(
            (
                "server",
                "client",
                "rows",
                "MB",
                "p50",
                "best",
                "worst",
                "MB/s (best)",
                "server CPU",
                "rounds",
            ),
            rows,
        )
        out.append("")
    if market.ticks:
        out.append(
            f"Tick delivery, in ms: the gateway's ticks timed from the simulator's tick time "
            f"(time_msc, a 250 ms grid) to `async for tick in bridge.ticks(...)`, which includes "
            f"the wait for the feed's next poll (poll_interval_ms = {market.poll_interval_ms}: "
            f"up to that long, about half of it on average); the floor's from a PUB's "
            f"time.time() stamp (bursts of one tick per symbol every "
            f"{market.floor_interval_ms:g} ms) to the same hub and stream, no poll. All the "
            "subscribers of a row share one process; (Nx) is the ratio to the floor's with as "
            "many subscribers."
        )
        out.append("")
        floors = {t.subscribers: t.latency for t in market.ticks if t.server == "floor"}
        rows = []
        for t in market.ticks:
            floor = floors.get(t.subscribers) if t.server == "gateway" else None
            lat = t.latency
            rows.append(
                [
                    t.server,
                    t.client,
                    str(t.subscribers),
                    str(t.symbols),
                    t.during,
                    f"{t.events:,}",
                    *(
                        f"{_ms(v)} ({v / f:.1f}x)" if floor and f > 0 else _ms(v)
                        for v, f in (
                            (lat.p50_us, floor.p50_us if floor else 0.0),
                            (lat.p90_us, floor.p90_us if floor else 0.0),
                            (lat.p99_us, floor.p99_us if floor else 0.0),
                        )
                    ),
                    _ms(lat.curve[0][1]) if lat.curve else "n/a",
                    _ms(lat.max_us),
                    f"{t.gaps}/{t.dropped}",
                    _percent(t.server_cpu_percent),
                    _percent(t.client_cpu_percent),
                ]
            )
        out += _table(
            (
                "server",
                "client",
                "subscribers",
                "symbols",
                "during",
                "ticks",
                "p50",
                "p90",
                "p99",
                "min",
                "max",
                "gaps/dropped",
                "server CPU",
                "subscribers' CPU",
            ),
            rows,
        )
        out.append("")
    if market.quiet or market.streaming:
        out.append(
            f"PING and OPEN (then CLOSE), one in flight, through inf_bridge.Bridge from this "
            f"process, in us, without subscribers and with {market.streaming_subscribers} "
            "streaming every symbol from another process, and with as many streaming from the "
            "floor's PUB instead (the machine's share: the same subscribers' process, no work for "
            "the gateway); each round starts with another of the three."
        )
        out.append("")
        rows = []
        count = market.streaming_subscribers
        sides = (
            ("0", market.quiet),
            (str(count), market.streaming),
            (f"{count}, of the floor", market.elsewhere),
        )
        for label, loads in sides:
            for index, r in enumerate(loads):
                for action, lat in r.by_action.items():
                    rows.append(
                        [
                            action,
                            label,
                            str(index // 2 + 1),
                            str(lat.count),
                            _num(lat.p50_us),
                            _num(lat.p90_us),
                            _num(lat.p99_us),
                            _num(r.server_cpu_us),
                            _errors(r.errors),
                        ]
                    )
        rows.sort(key=lambda row: (row[0], row[2], [label for label, _ in sides].index(row[1])))
        out += _table(
            (
                "action",
                "subscribers",
                "round",
                "count",
                "p50",
                "p90",
                "p99",
                "server CPU/request",
                "errors",
            ),
            rows,
        )
        out.append("")
    return out


def render(report: Report) -> str:
    """The whole report as Markdown text."""
    m = report.machine
    load = "n/a" if m.load_average is None else " ".join(f"{x:.2f}" for x in m.load_average)
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores ({m.usable_cores} usable), load average "
        f"{load}; {m.implementation} {m.python}, {m.event_loop}; {m.platform}.",
        "The gateway (and its terminal worker), the floor and the load process share these cores.",
        f"Command: `{report.command}`",
        "",
    ]
    if report.loads:
        out.append(
            "Latency in us (client-side round trip through inf_bridge.Bridge), throughput in "
            "requests/s, CPU in us per request; a gateway or unsafe-design cell's (Nx) is its "
            "ratio to the floor."
        )
        out.append("")
        out += _table(
            (
                "mode",
                "shape",
                "positions",
                "server",
                "req/s",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "server CPU",
                "client CPU",
                "errors",
            ),
            _load_rows(report.loads),
        )
        out.append("")
    unsafe_rows = _unsafe_rows(report.loads)
    if unsafe_rows:
        out.append(
            "Against the unsafe design (bench.unsafe: the same simulator called inline on the "
            "event loop, no journal, no signature, no worker process), in us; (Nx) is the "
            "gateway's ratio to it:"
        )
        out.append("")
        out += _table(
            ("mode", "shape", "action", "gateway p50", "unsafe p50", "gateway p99", "unsafe p99"),
            unsafe_rows,
        )
        out.append("")
    action_rows = _action_rows(report.loads)
    if action_rows:
        out.append("By action (gateway; ratio to the floor's same action):")
        out.append("")
        out += _table(
            ("mode", "shape", "positions", "action", "count", "p50", "p90", "p99", "p99.9"),
            action_rows,
        )
        out.append("")
    if report.presend:
        parts = tuple(report.presend[0].parts_us)
        out.append(
            "Client cost of send_order before the socket, in us (parts: medians of each step "
            "alone; rest: the calls between them):"
        )
        out.append("")
        out += _table(
            ("book", "audit file", "p50", "p99", *parts, "rest"), _presend_rows(report.presend)
        )
        out.append("")
    if report.memory is not None:
        mem = report.memory
        out.append(
            f"Memory over {mem.requests:,} {mem.mode.upper()} in {mem.seconds:.1f} s: gateway "
            f"{_mb(mem.gateway_before)} -> {_mb(mem.gateway_after)}, client "
            f"{_mb(mem.client_before)} -> {_mb(mem.client_after)}."
        )
        out.append("")
    gil = report.gil
    if gil is not None:
        if gil.skipped is not None or gil.ping is None or gil.orders is None:
            out.append(f"PING during GIL-holding orders: {gil.skipped}.")
        else:
            ping = gil.ping.latency
            out.append(
                f"PING during {gil.order_latency_ms:g} ms GIL-holding orders "
                f"({gil.orders_in_flight} in flight, {gil.orders.requests} filled): "
                f"p50 {_num(ping.p50_us)}, p99 {_num(ping.p99_us)}, max {_num(ping.max_us)} us "
                f"over {ping.count} PINGs; errors {_errors(gil.ping.errors)}."
            )
        out.append("")
    if report.market is not None:
        out += _market(report.market)
    if report.reads is not None:
        out += _reads(report.reads)
    if report.terminal_latency:
        out += _terminal_latency(report.terminal_latency)
    if report.mt5_module:
        out += [
            "MetaTrader5 on Linux (issue 19, bench.mt5_module): each call through "
            "inf_bridge.mt5 and a gateway, and the same call in-process on the simulator, in "
            "turn; p50 in us:",
            "",
            *render_mt5_module(report.mt5_module).splitlines(),
            "",
        ]
    if report.targets:
        out.append("Targets (issues 7, 15, 16 and 18), each a ratio within this run:")
        out.append("")
        out += _table(
            ("target", "goal", "measured", "result", "note"),
            (
                (
                    t.name,
                    t.target,
                    t.measured,
                    "n/a" if t.passed is None else "PASS" if t.passed else "FAIL",
                    t.note,
                )
                for t in report.targets
            ),
        )
        if report.machine_note:
            out += ["", report.machine_note]
    return "\n".join(out)


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
