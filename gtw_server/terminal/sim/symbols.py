"""The simulated broker's symbols: their specifications, and how they answer ``symbol_info``.

EURUSD follows the recorded MetaQuotes-Demo values (docs/MT5_API.md section 5); the others are
typical retail-broker settings. The mix is deliberate: FX pairs use Instant execution with FOK
(the server uses Fill or Kill whatever a client sends), XAUUSD and GER40 use Market execution
with FOK or IOC, and
US500 allows IOC only, so an order without ``type_filling`` is refused there with 10030, as on
many real CFD servers. GER40 is not in the Market Watch until ``symbol_select``.

Trading hours (UTC, ``sessions``): FX from Sunday 22:00 to Friday 22:00, gold with a daily
break from 22:00 to 23:00, US500 from 22:00 to 21:00 the next day, GER40 from 07:00 to 21:00
on weekdays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from gtw_server.terminal.sim.sessions import weekly
from protocol import mt5_constants as c
from protocol.mt5_structs import SymbolInfo, build

if TYPE_CHECKING:
    from gtw_server.terminal.sim.prices import Quote

__all__ = [
    "SYMBOLS",
    "SymbolSpec",
    "filling_allowed",
    "filling_used",
    "group_filter",
    "symbol_info",
    "symbol_table",
]

_FX_HOURS: Final = weekly(("Sun 22:00", "Fri 22:00"))
_GOLD_HOURS: Final = weekly(
    *(
        (f"{day} 23:00", f"{next_day} 22:00")
        for day, next_day in zip(
            ("Sun", "Mon", "Tue", "Wed", "Thu"), ("Mon", "Tue", "Wed", "Thu", "Fri"), strict=True
        )
    )
)
_US_INDEX_HOURS: Final = weekly(
    *(
        (f"{day} 22:00", f"{next_day} 21:00")
        for day, next_day in zip(
            ("Sun", "Mon", "Tue", "Wed", "Thu"), ("Mon", "Tue", "Wed", "Thu", "Fri"), strict=True
        )
    )
)
_EU_INDEX_HOURS: Final = weekly(
    *((f"{day} 07:00", f"{day} 21:00") for day in ("Mon", "Tue", "Wed", "Thu", "Fri"))
)

# Symbol bitmasks from MQL5; the Python package does not export them (see constants.py).
SYMBOL_FILLING_FOK: Final = 1
SYMBOL_FILLING_IOC: Final = 2
_QUOTED: Final = (c.SYMBOL_TRADE_EXECUTION_REQUEST, c.SYMBOL_TRADE_EXECUTION_INSTANT)
_POLICIES: Final = (c.ORDER_FILLING_FOK, c.ORDER_FILLING_IOC, c.ORDER_FILLING_RETURN)
SYMBOL_EXPIRATION_ALL: Final = 1 | 2 | 4 | 8  # GTC, DAY, SPECIFIED, SPECIFIED_DAY
SYMBOL_ORDER_ALL: Final = 1 | 2 | 4 | 8 | 16 | 32 | 64  # MARKET ... CLOSEBY


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolSpec:
    """A symbol's contract, as the trade server defines it, plus how its simulated price moves.

    ``price``, ``volatility`` (annualised, of the log price) and ``spread`` (typical, in
    points) drive the random walk; ``hours`` are its weekly sessions (``sessions``); the
    rest is what ``symbol_info`` reports.
    """

    name: str
    description: str
    path: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    digits: int
    contract_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    calc_mode: int
    exemode: int
    filling_mode: int
    stops_level: int = 0
    margin_hedged: float
    swap_long: float
    swap_short: float
    price: float
    volatility: float
    spread: int
    hours: tuple[tuple[int, int], ...]
    selected: bool = True

    @property
    def point(self) -> float:
        return 10.0**-self.digits


def _forex(name: str, description: str, *, digits: int, spread: int, price: float) -> SymbolSpec:
    return SymbolSpec(
        name=name,
        description=description,
        path=f"Forex\\{name}",
        currency_base=name[:3],
        currency_profit=name[3:],
        currency_margin=name[:3],
        digits=digits,
        contract_size=100_000.0,
        volume_min=0.01,
        volume_max=500.0,
        volume_step=0.01,
        calc_mode=c.SYMBOL_CALC_MODE_FOREX,
        exemode=c.SYMBOL_TRADE_EXECUTION_INSTANT,
        filling_mode=SYMBOL_FILLING_FOK,
        margin_hedged=100_000.0,
        swap_long=-7.0,
        swap_short=2.0,
        price=price,
        volatility=0.08,
        spread=spread,
        hours=_FX_HOURS,
    )


SYMBOLS: Final[Mapping[str, SymbolSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _forex("EURUSD", "Euro vs US Dollar", digits=5, spread=15, price=1.10000),
            _forex(
                "GBPUSD", "Great Britain Pound vs US Dollar", digits=5, spread=18, price=1.27000
            ),
            _forex("USDJPY", "US Dollar vs Japanese Yen", digits=3, spread=16, price=150.000),
            SymbolSpec(
                name="XAUUSD",
                description="Gold vs US Dollar",
                path="Metals\\XAUUSD",
                currency_base="XAU",
                currency_profit="USD",
                currency_margin="USD",
                digits=2,
                contract_size=100.0,
                volume_min=0.01,
                volume_max=100.0,
                volume_step=0.01,
                calc_mode=c.SYMBOL_CALC_MODE_CFDLEVERAGE,
                exemode=c.SYMBOL_TRADE_EXECUTION_MARKET,
                filling_mode=SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC,
                margin_hedged=50.0,
                swap_long=-45.0,
                swap_short=20.0,
                price=2350.00,
                volatility=0.15,
                spread=25,
                hours=_GOLD_HOURS,
            ),
            SymbolSpec(
                name="US500",
                description="US 500 Cash Index",
                path="Indices\\US500",
                currency_base="USD",
                currency_profit="USD",
                currency_margin="USD",
                digits=2,
                contract_size=1.0,
                volume_min=0.1,
                volume_max=1000.0,
                volume_step=0.1,
                calc_mode=c.SYMBOL_CALC_MODE_CFDLEVERAGE,
                exemode=c.SYMBOL_TRADE_EXECUTION_MARKET,
                filling_mode=SYMBOL_FILLING_IOC,
                stops_level=50,
                margin_hedged=0.5,
                swap_long=-3.0,
                swap_short=-1.0,
                price=5300.00,
                volatility=0.16,
                spread=50,
                hours=_US_INDEX_HOURS,
            ),
            SymbolSpec(
                name="GER40",
                description="Germany 40 Cash Index",
                path="Indices\\GER40",
                currency_base="EUR",
                currency_profit="EUR",
                currency_margin="EUR",
                digits=2,
                contract_size=1.0,
                volume_min=0.1,
                volume_max=500.0,
                volume_step=0.1,
                calc_mode=c.SYMBOL_CALC_MODE_CFDLEVERAGE,
                exemode=c.SYMBOL_TRADE_EXECUTION_MARKET,
                filling_mode=SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC,
                stops_level=100,
                margin_hedged=0.5,
                swap_long=-4.0,
                swap_short=-1.5,
                price=18_500.00,
                volatility=0.18,
                spread=120,
                hours=_EU_INDEX_HOURS,
                selected=False,
            ),
        )
    }
)
"""Every symbol of the simulated server, by name, in Market Watch order."""


def filling_allowed(spec: SymbolSpec, type_filling: int) -> bool:
    """Whether a market order may use ``type_filling`` on this symbol (docs/MT5_API.md section 5).

    Instant and Request execution take any policy and use Fill or Kill ("the Fill or Kill
    policy is always used", the documentation says, and its own ``order_send`` example sends
    RETURN: ``filling_used``); Market and Exchange execution allow what the symbol's
    ``filling_mode`` bits allow, and Exchange execution also RETURN.
    """
    if spec.exemode in _QUOTED:
        return type_filling in _POLICIES
    if type_filling == c.ORDER_FILLING_FOK:
        return bool(spec.filling_mode & SYMBOL_FILLING_FOK)
    if type_filling == c.ORDER_FILLING_IOC:
        return bool(spec.filling_mode & SYMBOL_FILLING_IOC)
    return (
        type_filling == c.ORDER_FILLING_RETURN and spec.exemode == c.SYMBOL_TRADE_EXECUTION_EXCHANGE
    )


def filling_used(spec: SymbolSpec, type_filling: int) -> int:
    """The policy the server applies to an order it accepted: FOK in Instant and Request
    execution, whatever was asked; what was asked otherwise."""
    return c.ORDER_FILLING_FOK if spec.exemode in _QUOTED else type_filling


@lru_cache(maxsize=64)
def group_filter(group: str) -> Callable[[str], bool]:
    """A predicate for an MT5 group mask such as ``"*USD*,!EUR*"``.

    Conditions are comma-separated, ``*`` matches anything and a leading ``!`` excludes; they
    apply in order, so the last condition that matches a name decides (hence MetaQuotes'
    advice to list inclusions first).

    >>> [name for name in SYMBOLS if group_filter("*USD*,!EUR*")(name)]
    ['GBPUSD', 'USDJPY', 'XAUUSD']
    """
    conditions = [
        (not cond.startswith("!"), re.compile(re.escape(cond.lstrip("!")).replace(r"\*", ".*")))
        for cond in group.split(",")
        if cond
    ]

    def matches(name: str) -> bool:
        selected = False
        for include, pattern in conditions:
            if pattern.fullmatch(name):
                selected = include
        return selected

    return matches


_EMPTY: Final[Mapping[str, object]] = {"int": 0, "float": 0.0, "bool": False, "str": ""}


@cache
def _static_fields(spec: SymbolSpec) -> Mapping[str, Any]:
    """The fields of ``SymbolInfo`` that never change for a symbol, computed once.

    Whatever the simulator does not model (sessions, options, exchange data) is empty.
    """
    fields = {name: _EMPTY[kind] for name, kind in SymbolInfo.__annotations__.items()}
    fields.update(
        spread_float=True,
        digits=spec.digits,
        trade_calc_mode=spec.calc_mode,
        trade_stops_level=spec.stops_level,
        trade_exemode=spec.exemode,
        swap_mode=c.SYMBOL_SWAP_MODE_POINTS,
        swap_rollover3days=c.DAY_OF_WEEK_WEDNESDAY,
        expiration_mode=SYMBOL_EXPIRATION_ALL,
        filling_mode=spec.filling_mode,
        order_mode=SYMBOL_ORDER_ALL,
        order_gtc_mode=c.SYMBOL_ORDERS_GTC,
        point=spec.point,
        trade_tick_size=spec.point,
        trade_contract_size=spec.contract_size,
        volume_min=spec.volume_min,
        volume_max=spec.volume_max,
        volume_step=spec.volume_step,
        swap_long=spec.swap_long,
        swap_short=spec.swap_short,
        margin_hedged=spec.margin_hedged,
        currency_base=spec.currency_base,
        currency_profit=spec.currency_profit,
        currency_margin=spec.currency_margin,
        description=spec.description,
        name=spec.name,
        path=spec.path,
    )
    return MappingProxyType(fields)


def symbol_info(
    spec: SymbolSpec, quote: Quote, *, selected: bool, tick_value: float, trade_mode: int
) -> SymbolInfo:
    """``SymbolInfo`` for ``spec`` at ``quote``; ``tick_value`` is in the account currency,
    ``trade_mode`` the server's setting for the symbol (``SimConfig.symbol_trade_modes``).

    The session statistics (day high/low, volumes, session prices) are not simulated yet: the
    highs and lows report the current quote and the counters are 0.
    """
    return build(
        SymbolInfo,
        {
            **_static_fields(spec),
            "trade_mode": trade_mode,
            "select": selected,
            "visible": selected,
            "time": quote.time_msc // 1000,
            "spread": quote.spread,
            "bid": quote.bid,
            "bidhigh": quote.bid,
            "bidlow": quote.bid,
            "ask": quote.ask,
            "askhigh": quote.ask,
            "asklow": quote.ask,
            "trade_tick_value": tick_value,
            "trade_tick_value_profit": tick_value,
            "trade_tick_value_loss": tick_value,
        },
    )


def symbol_table(suffix: str = "", added: Iterable[SymbolSpec] = ()) -> Mapping[str, SymbolSpec]:
    """The simulator's symbols, then ``added`` ones, as a broker that appends ``suffix`` to
    every name lists them (``EURUSD.m``): ``SYMBOLS`` itself when there is neither.

    >>> list(symbol_table(".m"))[:2]
    ['EURUSD.m', 'GBPUSD.m']
    """
    if not suffix and not added:
        return SYMBOLS
    return MappingProxyType(
        {
            spec.name + suffix: replace(spec, name=spec.name + suffix, path=spec.path + suffix)
            for spec in (*SYMBOLS.values(), *added)
        }
    )
