"""``SimConfig``: the simulated broker account and its fault switches (the gateway's ``[sim]``).

The field names are the keys of the ``[sim]`` table in the gateway's TOML file, so tests and
operators can rely on them. Every field is range-checked when the object is built, whether in
code or by ``msgspec.convert`` from TOML, and a bad value names its field:

>>> SimConfig(seed=7, leverage=500).leverage
500
>>> SimConfig(leverage=0)
Traceback (most recent call last):
    ...
msgspec.ValidationError: Expected `int` >= 1 - at `$.leverage`
>>> msgspec.convert({"margin_mode": "hedge"}, SimConfig)
Traceback (most recent call last):
    ...
msgspec.ValidationError: Invalid enum value 'hedge' - at `$.margin_mode`
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, NamedTuple, TypeVar

import msgspec
from msgspec import Meta

from protocol.server_time import zone_problem

__all__ = ["Execution", "SimConfig"]

Rate = Annotated[float, Meta(ge=0, le=1)]
Seconds = Annotated[float, Meta(ge=0, le=10 * 365 * 86400)]
Delay = Annotated[float, Meta(ge=0, le=60_000)]  # milliseconds
_SYMBOL_NAME: Final = re.compile(r"^[A-Za-z0-9._#+-]{1,31}$")  # a broker's symbol name
T = TypeVar("T")


class Execution(NamedTuple):
    """How the trade server executes: what a deal costs, how far it may slip, how long the
    server takes before it executes (``SimConfig.execution``)."""

    commission_per_lot: float
    slippage_points: int
    execution_ms: tuple[float, float]
    rollover_spread: float


_PROFILES: Final = {
    "ideal": Execution(
        commission_per_lot=0.0, slippage_points=0, execution_ms=(0.0, 0.0), rollover_spread=1.0
    ),
    "realistic": Execution(
        commission_per_lot=3.5, slippage_points=3, execution_ms=(20.0, 120.0), rollover_spread=3.0
    ),
}


def _either(value: T | None, default: T) -> T:
    return default if value is None else value


class ReplayFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A replayed symbol the simulator does not list (``BTCUSD``, ``NAS100``): its exported
    file, and the simulator's symbol whose contract it copies (``like``: sessions, contract
    size, volumes, margin, swaps; its digits are the file's)."""

    file: Annotated[str, Meta(min_length=1)]
    like: str


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the simulated terminal behaves. The defaults are a ready USD demo account.

    The account fields (``login`` to ``trade_mode``) seed a *new* state file; a terminal that
    opens an existing file keeps the account stored there.

    Fault switches (``faults`` has the common rules: times are on the terminal's clock
    from the construction of the ``SimTerminal``; counts are per ``SimTerminal`` object, so a
    restarted worker process starts counting again; an "order" is an ``order_send`` call that
    reaches the trade server, that is connected and past the binding's argument checks):

    - ``order_latency_ms``: every order is executed and committed to the state file first, then
      ``order_send`` takes this long to return, so a process killed meanwhile has filled the
      order but never replied. The time is spent holding the GIL, as the real binary does (no
      other thread of the process runs), unless ``order_latency_holds_gil`` is off (it sleeps).
    - ``hang_on_order = N``: the N-th order (1-based) is executed and committed, and then
      ``order_send`` never returns (it blocks without the GIL and without using the CPU; the
      process dies on SIGKILL as usual). With N = 1 a restarted worker hangs again on its first
      order; with N >= 2 its next order goes through.
    - ``hang_before_order = N``: the same, but the N-th order hangs *before* it reaches the
      trade server: nothing is executed, so reconciliation finds nothing and frees its uuid.
    - ``lose_reply_on_order = N``: the N-th order is executed and committed, then the terminal
      dies before replying: ``order_send`` returns None with ``(-10002, 'IPC recv failed')``,
      later calls give ``(-10004, 'No IPC connection')``, and ``initialize()`` reconnects.
    - ``disconnect_at_s`` / ``disconnect_for_s``: the terminal goes away ``disconnect_at_s``
      after construction and is back ``disconnect_for_s`` later (once per terminal object).
      The first call on a connection made before it went away fails with
      ``(-10001, 'IPC send failed')`` and executes nothing; an ``order_send`` that was already
      running (its latency) when it went away returns None with ``(-10002, 'IPC recv
      failed')``, its fill committed. Either way the connection is then closed: calls give
      ``(-10004, 'No IPC connection')`` until ``initialize()`` succeeds, which it does not
      while the terminal is away (``False``, ``(-10003, 'IPC initialize failed, MetaTrader 5
      x64 not found')``). There is no automatic reconnection, as with the real package.
    - ``requote_rate`` / ``reject_rate``: the share of orders the dealer answers with 10004
      (market deals in Request or Instant execution only; deal, order, volume and price 0, bid
      and ask the current quotes) or 10006 ``'Request rejected'`` (any request the server
      would accept). One draw per order from a generator seeded by ``seed``: deterministic.

    Terminal and server settings:

    - ``always_open``: ``False`` (the default) gives each symbol its trading hours
      (``sessions``), as a broker runs the week: requests outside them are refused with
      10018, and nothing moves at the weekend. ``True``: markets never close, for a demo or a
      test that must run on a Saturday too (``make demo``, the tests and the benchmark set it).
    - ``symbol_trade_modes``: a symbol's trade mode, if not ``"full"``: ``"disabled"`` (10017),
      ``"longonly"`` (10042), ``"shortonly"`` (10043), ``"closeonly"`` (10044).
    - ``algo_trading``: the terminal's Algo Trading button; off, ``terminal_info().trade_allowed``
      is False and ``order_send`` answers 10027 ``'AutoTrading disabled by client'``.
    - ``tradeapi_disabled``: the terminal refuses the Python API: ``order_send`` returns None
      with ``(-8, 'Auto-Trading using Python API disabled in Terminal')``.
    - ``pending_retcode``: what a placed pending order answers, 10009 (observed on real servers,
      the default) or 10008 (the documented TRADE_RETCODE_PLACED).

    Execution (``execution()`` gives the terms in force): ``profile = "ideal"`` (the default:
    deterministic, for tests) fills at the quoted price at once with no commission;
    ``"realistic"`` sets the knobs below to a retail ECN's (3.5 per lot per side, up to 3
    points of slippage, 20 to 120 ms before the server executes, the spread three times wider
    at the rollover). Each knob, when set,
    overrides the profile's value:

    - ``commission_per_lot``: charged on every deal, in the account currency, per lot (the
      deal's ``commission``, negative, taken from the balance).
    - ``slippage_points``: a market deal in Market or Exchange execution fills up to this many
      points worse than the quote (one draw per deal from a generator seeded by ``seed``).
    - ``execution_ms``: ``[low, high]``: ``order_send`` waits a uniform draw in this range
      before the server executes, so the price can move between the client's quote and the
      fill; in Instant and Request execution a move beyond the request's ``deviation`` is then
      a requote (10004), as on a real server.
    - ``rollover_spread``: the spread is this many times wider from 21:55 to 22:15 UTC, around
      the daily rollover, when liquidity is thin (in the quotes, the ticks and the M1 bars).

    - ``maxbars``: the bars the terminal keeps per symbol and timeframe (its "Max bars in
      chart" option; ``terminal_info().maxbars``): ``copy_rates_*`` go back that many
      bars (further back than that many periods where markets closed), and asking
      ``copy_rates_from``/``copy_rates_from_pos`` for more bars fails with
      ``(-2, 'Terminal: Invalid params')``.
    - ``server_timezone``: the trade server's time zone, an IANA name (``"EET"``, the
      default, is UTC+2 in winter and UTC+3 in summer, as many brokers run; ``"UTC"``):
      every time the terminal gives (ticks, bars, deals, orders, positions, a symbol's last
      quote) is on that clock, and the dates it is given (``copy_*``, ``history_*``, an
      order's ``expiration``) are read on it, with its daylight-saving changes; daily and
      weekly bars start at the server's midnight. Whole-hour offsets only. The files of
      ``replay`` are in it too.
    - ``symbol_suffix``: the broker appends it to every symbol's name (``".m"``: ``EURUSD.m``),
      as many brokers do; the prices are the same. Other settings name symbols without it.

    Prices: every symbol has one stream of ticks (``tape``), made up from ``seed`` unless
    ``replay`` gives it a file:

    - ``replay``: ``{EURUSD = "EURUSD_M1.csv"}``: symbols and the CSV file a MetaTrader 5
      terminal exported for each, M1 bars or ticks (``replay``'s docstring has the columns);
      the other symbols keep their made-up prices. A symbol the simulator does not list is
      added, like one it does: ``{BTCUSD = {file = "BTCUSD_M1.csv", like = "XAUUSD"}}``
      (``ReplayFile``).
    - ``replay_from``: the moment of the files the simulator starts at (a TOML date-time, an
      ISO text or epoch seconds; UTC); by default the latest first row among the files. The
      simulator's clock runs from there: its time is ``replay_from`` plus the time since the
      terminal started, times ``replay_speed`` (1.0, the default: in step with the clock;
      60.0: a minute of the file per second). Without ``replay``, the two start the made-up
      prices' clock at that moment and speed, as a rehearsal of a given day would (a weekend,
      a daylight-saving change); a state file keeps the latest time it saw.
    """

    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    login: Annotated[int, Meta(ge=1, le=2**63 - 1)] = 5_000_001
    server: Annotated[str, Meta(min_length=1, max_length=253)] = "SimBroker-Demo"
    balance: Annotated[float, Meta(ge=0, le=1e12)] = 10_000.0
    # Every currency the symbol table can convert profit and margin into.
    currency: Literal["USD", "EUR", "GBP", "JPY"] = "USD"
    leverage: Annotated[int, Meta(ge=1, le=10_000)] = 100
    margin_mode: Literal["hedging", "netting"] = "hedging"
    trade_mode: Literal["demo", "contest", "real"] = "demo"
    always_open: bool = False
    symbol_trade_modes: dict[
        str, Literal["disabled", "longonly", "shortonly", "closeonly", "full"]
    ] = msgspec.field(default_factory=dict)
    algo_trading: bool = True
    tradeapi_disabled: bool = False
    pending_retcode: Literal[10008, 10009] = 10009
    order_latency_ms: Annotated[float, Meta(ge=0, le=600_000)] = 0.0
    order_latency_holds_gil: bool = True
    hang_on_order: Annotated[int, Meta(ge=0)] = 0
    hang_before_order: Annotated[int, Meta(ge=0)] = 0
    lose_reply_on_order: Annotated[int, Meta(ge=0)] = 0
    disconnect_at_s: Seconds | None = None
    disconnect_for_s: Seconds = 0.0
    requote_rate: Rate = 0.0
    reject_rate: Rate = 0.0
    profile: Literal["ideal", "realistic"] = "ideal"
    commission_per_lot: Annotated[float, Meta(ge=0, le=1_000)] | None = None
    slippage_points: Annotated[int, Meta(ge=0, le=10_000)] | None = None
    execution_ms: tuple[Delay, Delay] | None = None
    rollover_spread: Annotated[float, Meta(ge=1, le=100)] | None = None
    maxbars: Annotated[int, Meta(ge=1_000, le=100_000_000)] = 100_000
    server_timezone: str = "EET"
    symbol_suffix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._#+-]{0,8}$")] = ""
    replay: dict[str, Annotated[str, Meta(min_length=1)] | ReplayFile] = msgspec.field(
        default_factory=dict
    )
    replay_from: datetime | Annotated[float, Meta(ge=0)] | None = None
    replay_speed: Annotated[float, Meta(gt=0, le=1_000_000)] = 1.0

    def execution(self) -> Execution:
        """The execution terms in force: the profile's, with each knob that is set."""
        base = _PROFILES[self.profile]
        return Execution(
            commission_per_lot=_either(self.commission_per_lot, base.commission_per_lot),
            slippage_points=_either(self.slippage_points, base.slippage_points),
            execution_ms=_either(self.execution_ms, base.execution_ms),
            rollover_spread=_either(self.rollover_spread, base.rollover_spread),
        )

    def __post_init__(self) -> None:
        # msgspec checks constraints only when decoding or converting; check each field the
        # same way here so that building the object in code is checked too.
        for field in msgspec.structs.fields(self):
            try:
                msgspec.convert(getattr(self, field.name), field.type)
            except msgspec.ValidationError as exc:
                raise msgspec.ValidationError(f"{exc} - at `$.{field.name}`") from None
        if (why := zone_problem(self.server_timezone)) is not None:
            raise msgspec.ValidationError(f"{why} - at `$.server_timezone`")
        if self.execution_ms is not None and self.execution_ms[0] > self.execution_ms[1]:
            raise msgspec.ValidationError(
                f"the range {list(self.execution_ms)} runs backwards - at `$.execution_ms`"
            )
        if not (self.symbol_trade_modes or self.replay):
            return
        from gtw_server.terminal.sim.symbols import SYMBOLS  # noqa: PLC0415 (the simulator's)

        for name in self.symbol_trade_modes:
            if name not in SYMBOLS:
                raise msgspec.ValidationError(
                    f"Unknown symbol {name!r} - at `$.symbol_trade_modes`"
                )
        for name, (_, like) in self.replay_files().items():
            where = f"`$.replay.{name}`"
            if like is None and name not in SYMBOLS:
                raise msgspec.ValidationError(
                    f"Unknown symbol {name!r}: give {{file = ..., like = a simulator symbol}}"
                    f" - at {where}"
                )
            if like is not None:
                if name in SYMBOLS:
                    raise msgspec.ValidationError(
                        f"{name!r} is the simulator's own: give the file alone - at {where}"
                    )
                if not _SYMBOL_NAME.match(name):
                    raise msgspec.ValidationError(f"Invalid symbol name {name!r} - at {where}")
                if like not in SYMBOLS:
                    raise msgspec.ValidationError(f"Unknown symbol {like!r} - at {where}.like")

    def replay_files(self) -> dict[str, tuple[str, str | None]]:
        """Each replayed symbol's file, and the symbol it is like (None: it is that one)."""
        files: dict[str, tuple[str, str | None]] = {}
        for name, source in self.replay.items():
            if isinstance(source, str):
                files[name] = (source, None)
            else:  # a ReplayFile, or its table when the config was built in code
                added = msgspec.convert(source, ReplayFile)
                files[name] = (added.file, added.like)
        return files

    def replay_from_s(self) -> float | None:
        """``replay_from`` in epoch seconds (a date-time without a zone is UTC)."""
        start = self.replay_from
        if isinstance(start, datetime):
            return (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
        return start
