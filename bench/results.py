"""What a benchmark run measured: frozen Structs, written as the ``--json`` file as they are.

Latencies are in microseconds, throughputs in requests per second, sizes in bytes. A figure
that could not be measured on this platform is ``None`` (``null`` in JSON).
"""

from __future__ import annotations

from typing import Final, Literal

from hdrh.histogram import HdrHistogram
from msgspec import Struct, field

__all__ = [
    "CURVE_PERCENTILES",
    "FetchResult",
    "GilResult",
    "Latency",
    "LoadResult",
    "Machine",
    "MarketResult",
    "MemoryResult",
    "Mt5CallResult",
    "PresendResult",
    "Ratios",
    "Report",
    "Server",
    "TargetCheck",
    "TerminalLatencyResult",
    "TickLatency",
]

# Where the latency curve is sampled, for the plot (percentiles of requests answered faster).
CURVE_PERCENTILES: Final = (
    0.0,
    10.0,
    25.0,
    50.0,
    75.0,
    90.0,
    95.0,
    99.0,
    99.5,
    99.9,
    99.95,
    99.99,
    100.0,
)
_NS_PER_US: Final = 1000.0

Server = Literal["floor", "unsafe", "gateway"]


class Latency(Struct, frozen=True, kw_only=True):
    """The distribution of one set of round trips."""

    count: int
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float
    curve: list[tuple[float, float]]  # (percentile, latency in us), for the plot

    @classmethod
    def of(cls, histogram: HdrHistogram) -> Latency:
        """Summarise a histogram of nanoseconds (in one pass over its counts: each query
        walks them all, in Python)."""
        wanted = (50.0, 90.0, 99.0, 99.9, *CURVE_PERCENTILES)
        values = {
            p: float(ns) / _NS_PER_US
            for p, ns in histogram.get_percentile_to_value_dict(list(wanted)).items()
        }
        return cls(
            count=histogram.get_total_count(),
            p50_us=values.get(50.0, 0.0),
            p90_us=values.get(90.0, 0.0),
            p99_us=values.get(99.0, 0.0),
            p999_us=values.get(99.9, 0.0),
            max_us=float(histogram.get_max_value()) / _NS_PER_US,
            curve=[(p, values.get(p, 0.0)) for p in CURVE_PERCENTILES],
        )


class LoadResult(Struct, frozen=True, kw_only=True):
    """One scenario against one server: ``clients`` x ``in_flight`` requests outstanding."""

    server: Server
    mode: str
    clients: int
    in_flight: int
    positions: int  # positions open at the server when the scenario started; -1: not asked
    seconds: float  # the measured window, warm-up excluded
    requests: int  # answered in the window (errors excluded)
    throughput: float
    latency: Latency
    by_action: dict[str, Latency]
    errors: dict[str, int]  # by error code, warm-up included
    client_cpu_us: float | None  # the load process's CPU time per request
    server_cpu_us: float | None  # the server's CPU time per request (its worker included)

    @property
    def shape(self) -> str:
        return f"{self.clients}x{self.in_flight}"


class Ratios(Struct, frozen=True, kw_only=True):
    """A gateway figure divided by a base's (the floor's, or the unsafe design's) for the same
    mode and shape."""

    mode: str
    clients: int
    in_flight: int
    positions: int
    p50: float
    p90: float
    p99: float
    p999: float
    throughput: float


class PresendResult(Struct, frozen=True, kw_only=True):
    """The client's cost of ``send_order`` before its bytes reach the socket."""

    iterations: int
    book_positions: int  # positions in the RiskMonitor's book
    audit_sink: bool  # whether the audit trail was written to a file meanwhile
    latency: Latency
    parts_us: dict[str, float]  # median of each step alone


class MemoryResult(Struct, frozen=True, kw_only=True):
    """Resident sizes before and after ``requests`` requests (after a warm-up)."""

    requests: int
    mode: str
    seconds: float
    gateway_before: int | None
    gateway_after: int | None
    client_before: int | None
    client_after: int | None

    @property
    def gateway_growth(self) -> int | None:
        if self.gateway_before is None or self.gateway_after is None:
            return None
        return self.gateway_after - self.gateway_before

    @property
    def client_growth(self) -> int | None:
        if self.client_before is None or self.client_after is None:
            return None
        return self.client_after - self.client_before


class GilResult(Struct, frozen=True, kw_only=True):
    """PINGs answered while orders that hold the worker's GIL for 300 ms are in flight."""

    skipped: str | None = None  # why it did not run
    order_latency_ms: float = 0.0
    orders_in_flight: int = 0
    ping: LoadResult | None = None
    orders: LoadResult | None = None


class Mt5CallResult(Struct, frozen=True, kw_only=True):
    """One call of the ``MetaTrader5`` package through ``inf_bridge.mt5`` and in-process on the
    simulator, timed in turn (``bench.mt5_module``): the medians, in µs."""

    call: str
    through_us: float
    in_process_us: float

    @property
    def ratio(self) -> float:
        return self.through_us / self.in_process_us


class TerminalLatencyResult(Struct, frozen=True, kw_only=True):
    """The gateway and the unsafe design with orders that take the terminal
    ``order_latency_ms`` (the GIL held), in the same scenarios (``bench.terminal_latency``)."""

    order_latency_ms: float
    loads: list[LoadResult]


class FetchResult(Struct, frozen=True, kw_only=True):
    """One bars request answered ``rounds`` times (after one unmeasured), timed whole: from
    the call to the rows in hand."""

    server: str  # "gateway", or "floor" (bench.market_floor's canned bars)
    client: str  # "Bridge.rates", or "bare DEALER" (recv_multipart, nothing decoded)
    rows: int  # in the last answer
    bytes: int  # of rows, in the last answer
    rounds: int
    p50_ms: float
    best_ms: float
    worst_ms: float
    server_cpu_ms: float | None  # the server's CPU time per fetch (its worker included)


class TickLatency(Struct, frozen=True, kw_only=True):
    """How old ticks were when the streams' loops got them (see ``bench.subscribers``)."""

    server: str  # "gateway" (age from tick.time_msc), or "floor" (from the PUB's stamp)
    client: str  # "Bridge.ticks", or "EventHub stream"
    subscribers: int
    symbols: int
    during: str  # what else ran meanwhile
    seconds: float
    events: int  # ticks received over every stream
    gaps: int
    dropped: int
    latency: Latency  # in us, as everywhere
    server_cpu_percent: float | None  # the server's CPU time over the window (worker included)
    client_cpu_percent: float | None  # the subscribers' process's


class MarketResult(Struct, frozen=True, kw_only=True):
    """The market-data scenario of issue 15, against its floors in the same run."""

    poll_interval_ms: int  # the gateway's feed: every tick waits up to this long for a poll
    floor_interval_ms: float  # the PUB floor's bursts
    bars: int  # requested per fetch
    fetch: list[FetchResult]
    ticks: list[TickLatency]
    streaming_subscribers: int  # in the order scenarios below
    quiet: list[LoadResult]  # PING and OPEN (open_close) with no subscriber, round by round
    streaming: list[LoadResult]  # the same while streaming_subscribers stream every symbol
    # The same while as many subscribers stream from the floor's PUB instead: the machine's share
    # of the difference (the subscribers' process and its wake-ups), not the gateway's.
    elsewhere: list[LoadResult] = field(default_factory=list)


class ReadsResult(Struct, frozen=True, kw_only=True):
    """Reads beside orders (issue 16, ``bench.reads``): the probe's latency by request, with
    no orders (``quiet``) and beside ``clients`` x ``in_flight`` orders (``loaded``)."""

    clients: int
    in_flight: int
    seconds: float
    quiet: dict[str, Latency]
    loaded: dict[str, Latency]
    orders_answered: int
    errors: dict[str, int] = field(default_factory=dict)


class Machine(Struct, frozen=True, kw_only=True):
    """Where the run happened: a shared 2-core VM reads very differently from a workstation."""

    cpu_model: str
    cores: int
    usable_cores: int
    load_average: tuple[float, float, float] | None
    python: str
    implementation: str
    platform: str
    event_loop: str


class TargetCheck(Struct, frozen=True, kw_only=True):
    """One target of the issue against what was measured. ``passed`` is ``None`` when the
    measurement was skipped or not run."""

    name: str
    target: str
    measured: str
    passed: bool | None
    note: str = ""


class Report(Struct, kw_only=True):
    """Everything one run measured."""

    command: str
    started_at: str
    machine: Machine
    loads: list[LoadResult] = field(default_factory=list)
    ratios: list[Ratios] = field(default_factory=list)
    unsafe_ratios: list[Ratios] = field(default_factory=list)  # to the unsafe design (issue 18)
    presend: list[PresendResult] = field(default_factory=list)
    memory: MemoryResult | None = None
    gil: GilResult | None = None
    market: MarketResult | None = None
    reads: ReadsResult | None = None
    terminal_latency: list[TerminalLatencyResult] = field(default_factory=list)
    mt5_module: list[Mt5CallResult] = field(default_factory=list)  # issue 19
    targets: list[TargetCheck] = field(default_factory=list)
    machine_note: str = ""  # set when the machine is slower than the targets' reference
