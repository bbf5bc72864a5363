"""The simulated trade server and account: it plans and executes requests and answers queries.

The broker holds the account, the open positions and the active orders in memory (loaded from
the ``Store`` at start), plus the price feed and the valuation. A trade request is *planned*
first: checked against the server's rules, and turned into either a refusal (a retcode) or a
``Transaction`` with the account figures it would leave. ``order_check`` stops there;
``order_send`` commits the transaction and only then applies it in memory, so a failed commit
changes nothing.

The checks of a market deal, in order: symbol (10013), order type (10035), volume min/max/step
(10014), filling mode (10030), the position to close (10036, 10013 for a wrong symbol or
direction, 10038 for too much volume), for Instant/Request execution the price (10015) and
deviation (10004), then for an opening deal the stops (10016) and the free margin (10019).

Implemented so far: market deals (``TRADE_ACTION_DEAL``) on hedging accounts. The other trade
actions raise ``NotImplementedError`` rather than pretending to answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final, NamedTuple, Protocol, TypeVar

from gtw_server.terminal import constants as c
from gtw_server.terminal.sim_account import (
    Account,
    Exposure,
    Figures,
    Position,
    Valuation,
    exposure_after,
)
from gtw_server.terminal.sim_config import SimConfig
from gtw_server.terminal.sim_prices import PriceFeed, Quote
from gtw_server.terminal.sim_store import Store, Transaction
from gtw_server.terminal.sim_symbols import SYMBOLS, SymbolSpec, filling_allowed, group_filter
from gtw_server.terminal.sim_symbols import symbol_info as _symbol_info
from gtw_server.terminal.structs import (
    AccountInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
    build,
)

__all__ = ["FIRST_DEAL_TICKET", "FIRST_ORDER_TICKET", "Broker"]

# Separate ranges, so a deal ticket mistaken for a position ticket finds nothing.
FIRST_ORDER_TICKET: Final = 100_000_001
FIRST_DEAL_TICKET: Final = 50_000_001

_VOLUME_EPSILON: Final = 1e-9
_MARGIN_MODES: Final = {
    "hedging": c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
    "netting": c.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
}
_TRADE_MODES: Final = {
    "demo": c.ACCOUNT_TRADE_MODE_DEMO,
    "contest": c.ACCOUNT_TRADE_MODE_CONTEST,
    "real": c.ACCOUNT_TRADE_MODE_REAL,
}
_LATER_ACTIONS: Final = frozenset(
    {
        c.TRADE_ACTION_PENDING,
        c.TRADE_ACTION_SLTP,
        c.TRADE_ACTION_MODIFY,
        c.TRADE_ACTION_REMOVE,
        c.TRADE_ACTION_CLOSE_BY,
    }
)
_NO_FIGURES: Final = Figures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class _Fill(NamedTuple):
    """A request the server accepts: what to commit, what to answer, the account after."""

    tx: Transaction
    order: int
    deal: int
    volume: float
    price: float
    quote: Quote
    figures: Figures


class _Deal(NamedTuple):
    """A market deal that passed the request checks, at the price the server fills it."""

    spec: SymbolSpec
    request: TradeRequest
    volume: float  # snapped to the symbol's volume step
    quote: Quote
    price: float
    now_ms: int


class _Refusal(NamedTuple):
    retcode: int
    quote: Quote | None = None  # the quotes a requote reports
    figures: Figures | None = None  # the account it would have left, for "No money"


class _HasSymbol(Protocol):
    @property
    def symbol(self) -> str: ...


R = TypeVar("R", bound=_HasSymbol)


def _select(
    records: Mapping[int, R], *, symbol: str | None, group: str | None, ticket: int | None
) -> Iterable[R]:
    """``positions_get``/``orders_get`` filtering: ticket, else symbol, else group, else all."""
    if ticket is not None:
        record = records.get(ticket)
        return () if record is None else (record,)
    if symbol is not None:
        return [record for record in records.values() if record.symbol == symbol]
    if group is not None:
        matches = group_filter(group)
        return [record for record in records.values() if matches(record.symbol)]
    return records.values()


class Broker:
    """The account at a simulated broker, its positions and orders, and the server's rules.

    ``clock`` gives epoch seconds (the feed's ticks follow it); ``step`` moves the broker's time
    ahead of it by hand.
    """

    def __init__(self, store: Store, config: SimConfig, clock: Callable[[], float]) -> None:
        snapshot = store.load() or store.create(
            _new_account(config), next_order=FIRST_ORDER_TICKET, next_deal=FIRST_DEAL_TICKET
        )
        if snapshot.account.margin_mode != c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
            store.close()
            raise NotImplementedError("netting accounts are not simulated yet")
        self.store = store
        self.account = snapshot.account
        self._clock = clock
        self._offset = 0.0
        self._positions: dict[int, Position] = {}
        self._exposure: dict[str, Exposure] = {}
        for position in snapshot.positions:
            self._put(position)
        self._orders = {order.ticket: order for order in snapshot.orders}
        self._next_order = snapshot.next_order
        self._next_deal = snapshot.next_deal
        self._feed = PriceFeed(
            SYMBOLS.values(), seed=config.seed, now_ms=self.now_ms(), stored=snapshot.prices
        )
        self._valuation = Valuation(
            SYMBOLS, self._feed, currency=self.account.currency, leverage=self.account.leverage
        )

    # -- time ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int((self._clock() + self._offset) * 1000)

    def step(self, seconds: float) -> None:
        """Moves the broker's time ``seconds`` ahead of its clock, for good."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"step() needs a finite number of seconds >= 0, got {seconds!r}")
        self._offset += seconds

    def _sync(self) -> int:
        now_ms = self.now_ms()
        self._feed.at(now_ms)
        return now_ms

    # -- queries ------------------------------------------------------------------------

    def account_info(self) -> AccountInfo:
        self._sync()
        account = self.account
        figures = self._valuation.figures(account, self._exposure)
        return build(
            AccountInfo,
            {
                "login": account.login,
                "trade_mode": account.trade_mode,
                "leverage": account.leverage,
                "limit_orders": 200,
                "margin_so_mode": c.ACCOUNT_STOPOUT_MODE_PERCENT,
                "trade_allowed": True,
                "trade_expert": True,
                "margin_mode": account.margin_mode,
                "currency_digits": self._valuation.digits,
                "fifo_close": False,
                **figures._asdict(),
                "margin_so_call": 50.0,
                "margin_so_so": 30.0,
                "margin_initial": 0.0,
                "margin_maintenance": 0.0,
                "assets": 0.0,
                "liabilities": 0.0,
                "commission_blocked": 0.0,
                "name": account.name,
                "server": account.server,
                "currency": account.currency,
                "company": account.company,
            },
        )

    def symbol_info(self, spec: SymbolSpec, *, selected: bool) -> SymbolInfo:
        self._sync()
        quote = self._feed.quote(spec.name)
        tick_value = self._valuation.tick_value(spec)
        return _symbol_info(spec, quote, selected=selected, tick_value=tick_value)

    def tick(self, spec: SymbolSpec) -> Tick:
        self._sync()
        quote = self._feed.quote(spec.name)
        flags = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        return Tick(
            (quote.time_msc // 1000, quote.bid, quote.ask, 0.0, 0, quote.time_msc, flags, 0.0)
        )

    def positions(
        self, *, symbol: str | None, group: str | None, ticket: int | None
    ) -> tuple[TradePosition, ...]:
        self._sync()
        chosen = _select(self._positions, symbol=symbol, group=group, ticket=ticket)
        return tuple(self._position_info(position) for position in chosen)

    def positions_total(self) -> int:
        return len(self._positions)

    def orders(
        self, *, symbol: str | None, group: str | None, ticket: int | None
    ) -> tuple[TradeOrder, ...]:
        return tuple(_select(self._orders, symbol=symbol, group=group, ticket=ticket))

    def orders_total(self) -> int:
        return len(self._orders)

    def calc_margin(self, spec: SymbolSpec, volume: float, price: float) -> float:
        self._sync()
        return round(self._valuation.margin(spec, volume, price), self._valuation.digits)

    def calc_profit(
        self, spec: SymbolSpec, order_type: int, volume: float, price_open: float, price: float
    ) -> float:
        self._sync()
        return self._valuation.profit(spec, order_type, volume, price_open, price)

    def _position_info(self, p: Position) -> TradePosition:
        price, profit = self._valuation.current(p)
        return TradePosition(
            (
                p.ticket,
                p.time_msc // 1000,
                p.time_msc,
                p.time_update_msc // 1000,
                p.time_update_msc,
                p.type,
                p.magic,
                p.identifier,
                p.reason,
                p.volume,
                p.price_open,
                p.sl,
                p.tp,
                price,
                p.swap,
                profit,
                p.symbol,
                p.comment,
                p.external_id,
            )
        )

    # -- trading ------------------------------------------------------------------------

    def check(self, request: TradeRequest) -> OrderCheckResult:
        """``order_check``: the verdict, and the account as the request would leave it."""
        outcome = self._plan(request, self._sync())
        if isinstance(outcome, _Refusal):
            retcode, figures = outcome.retcode, outcome.figures or _NO_FIGURES
            comment = c.RETCODE_COMMENTS[retcode]
        else:
            retcode, figures, comment = 0, outcome.figures, "Done"
        money = (figures.balance, figures.equity, figures.profit, figures.margin)
        level = (figures.margin_free, figures.margin_level)
        return OrderCheckResult((retcode, *money, *level, comment, request))

    def send(self, request: TradeRequest, request_id: int) -> OrderSendResult:
        """``order_send``: executes the request; the fill is committed before it is answered."""
        outcome = self._plan(request, self._sync())
        if isinstance(outcome, _Refusal):
            quote = outcome.quote
            bid, ask = (quote.bid, quote.ask) if quote else (0.0, 0.0)
            comment = c.RETCODE_COMMENTS[outcome.retcode]
            return OrderSendResult(
                (outcome.retcode, 0, 0, 0.0, 0.0, bid, ask, comment, request_id, 0, request)
            )
        self.store.commit(outcome.tx, self._feed.state())
        self._apply(outcome.tx)
        return OrderSendResult(
            (
                c.TRADE_RETCODE_DONE,
                outcome.deal,
                outcome.order,
                outcome.volume,
                outcome.price,
                outcome.quote.bid,
                outcome.quote.ask,
                c.RETCODE_COMMENTS[c.TRADE_RETCODE_DONE],
                request_id,
                0,
                request,
            )
        )

    def _apply(self, tx: Transaction) -> None:
        self.account = self.account._replace(balance=tx.balance)
        for position in tx.put_positions:
            self._put(position)
        for ticket in tx.drop_positions:
            self._exposure = exposure_after(self._exposure, self._positions.pop(ticket), None)
        self._next_order, self._next_deal = tx.next_order, tx.next_deal

    def _put(self, position: Position) -> None:
        old = self._positions.get(position.ticket)
        self._positions[position.ticket] = position
        self._exposure = exposure_after(self._exposure, old, position)

    def _plan(self, request: TradeRequest, now_ms: int) -> _Fill | _Refusal:
        if request.action == c.TRADE_ACTION_DEAL:
            return self._plan_deal(request, now_ms)
        if request.action in _LATER_ACTIONS:
            raise NotImplementedError(f"trade action {request.action} is not simulated yet")
        return _Refusal(c.TRADE_RETCODE_INVALID)

    def _plan_deal(self, request: TradeRequest, now_ms: int) -> _Fill | _Refusal:
        spec = SYMBOLS.get(request.symbol)
        if spec is None:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        if request.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
            return _Refusal(c.TRADE_RETCODE_INVALID_ORDER)
        volume = _normal_volume(spec, request.volume)
        if volume is None:
            return _Refusal(c.TRADE_RETCODE_INVALID_VOLUME)
        if not filling_allowed(spec, request.type_filling):
            return _Refusal(c.TRADE_RETCODE_INVALID_FILL)
        position = None
        if request.position:
            position = self._positions.get(request.position)
            if position is None:
                return _Refusal(c.TRADE_RETCODE_POSITION_CLOSED)
            if position.symbol != spec.name or position.type == request.type:
                return _Refusal(c.TRADE_RETCODE_INVALID)
            if volume > position.volume + _VOLUME_EPSILON:
                return _Refusal(c.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
        quote = self._feed.quote(spec.name)
        price = quote.ask if request.type == c.ORDER_TYPE_BUY else quote.bid
        if spec.exemode in (c.SYMBOL_TRADE_EXECUTION_REQUEST, c.SYMBOL_TRADE_EXECUTION_INSTANT):
            # The client quotes the price it accepts; the server fills at its own price when
            # that is within ``deviation`` points, and requotes otherwise.
            if not (request.price > 0 and math.isfinite(request.price)):
                return _Refusal(c.TRADE_RETCODE_INVALID_PRICE)
            if round(abs(request.price - price) / spec.point) > request.deviation:
                return _Refusal(c.TRADE_RETCODE_REQUOTE, quote=quote)
        deal = _Deal(spec, request, volume, quote, price, now_ms)
        if position is None:
            return self._plan_open(deal)
        return self._plan_close(deal, position)

    def _plan_open(self, deal: _Deal) -> _Fill | _Refusal:
        request = deal.request
        if not _stops_valid(deal.spec, request, deal.quote):
            return _Refusal(c.TRADE_RETCODE_INVALID_STOPS)
        ticket = self._next_order  # a position takes its opening order's ticket
        position = Position(
            ticket=ticket,
            time_msc=deal.now_ms,
            time_update_msc=deal.now_ms,
            type=request.type,
            magic=request.magic,
            identifier=ticket,
            reason=c.POSITION_REASON_EXPERT,
            volume=deal.volume,
            price_open=deal.price,
            sl=request.sl,
            tp=request.tp,
            swap=0.0,
            symbol=deal.spec.name,
            comment=request.comment,
            external_id="",
        )
        figures = self._valuation.figures(
            self.account, exposure_after(self._exposure, None, position)
        )
        if figures.margin_free < 0:
            return _Refusal(c.TRADE_RETCODE_NO_MONEY, figures=figures)
        return self._fill(
            deal, position=ticket, entry=c.DEAL_ENTRY_IN, profit=0.0, figures=figures, put=position
        )

    def _plan_close(self, deal: _Deal, position: Position) -> _Fill:
        profit = self._valuation.profit(
            deal.spec, position.type, deal.volume, position.price_open, deal.price
        )
        remaining = round(position.volume - deal.volume, 8)
        put = (
            position._replace(volume=remaining, time_update_msc=deal.now_ms)
            if remaining > 0
            else None
        )
        account = self.account._replace(balance=self._balance_after(profit))
        figures = self._valuation.figures(account, exposure_after(self._exposure, position, put))
        return self._fill(
            deal,
            position=position.ticket,
            entry=c.DEAL_ENTRY_OUT,
            profit=profit,
            figures=figures,
            put=put,
        )

    def _balance_after(self, profit: float) -> float:
        return round(self.account.balance + profit, self._valuation.digits)

    def _fill(
        self,
        deal: _Deal,
        *,
        position: int,
        entry: int,
        profit: float,
        figures: Figures,
        put: Position | None,
    ) -> _Fill:
        """The accepted deal: its order and deal records and the position it leaves (``put``,
        or None when it closes ``position``), as one transaction."""
        request, now_ms, time = deal.request, deal.now_ms, deal.now_ms // 1000
        order_ticket, deal_ticket = self._next_order, self._next_deal
        history_order = build(
            TradeOrder,
            {
                "ticket": order_ticket,
                "time_setup": time,
                "time_setup_msc": now_ms,
                "time_done": time,
                "time_done_msc": now_ms,
                "time_expiration": 0,
                "type": request.type,
                "type_time": request.type_time,
                "type_filling": request.type_filling,
                "state": c.ORDER_STATE_FILLED,
                "magic": request.magic,
                "position_id": position,
                "position_by_id": 0,
                "reason": c.ORDER_REASON_EXPERT,
                "volume_initial": deal.volume,
                "volume_current": 0.0,
                "price_open": request.price,
                "sl": request.sl,
                "tp": request.tp,
                "price_current": deal.price,
                "price_stoplimit": 0.0,
                "symbol": request.symbol,
                "comment": request.comment,
                "external_id": "",
            },
        )
        deal_record = build(
            TradeDeal,
            {
                "ticket": deal_ticket,
                "order": order_ticket,
                "time": time,
                "time_msc": now_ms,
                "type": request.type,  # DEAL_TYPE_BUY/SELL share ORDER_TYPE_BUY/SELL's values
                "entry": entry,
                "magic": request.magic,
                "position_id": position,
                "reason": c.DEAL_REASON_EXPERT,
                "volume": deal.volume,
                "price": deal.price,
                "commission": 0.0,
                "swap": 0.0,
                "profit": profit,
                "fee": 0.0,
                "symbol": request.symbol,
                "comment": request.comment,
                "external_id": "",
            },
        )
        tx = Transaction(
            balance=self._balance_after(profit),
            next_order=order_ticket + 1,
            next_deal=deal_ticket + 1,
            put_positions=() if put is None else (put,),
            drop_positions=(position,) if put is None else (),
            history_orders=(history_order,),
            deals=(deal_record,),
        )
        return _Fill(tx, order_ticket, deal_ticket, deal.volume, deal.price, deal.quote, figures)

    def close(self) -> None:
        """Saves the prices and closes the store."""
        self.store.save_prices(self._feed.state())
        self.store.close()


def _new_account(config: SimConfig) -> Account:
    return Account(
        login=config.login,
        name="Simulated Trader",
        server=config.server,
        company="SimBroker Ltd.",
        currency=config.currency,
        leverage=config.leverage,
        margin_mode=_MARGIN_MODES[config.margin_mode],
        trade_mode=_TRADE_MODES[config.trade_mode],
        balance=config.balance,
        credit=0.0,
    )


def _normal_volume(spec: SymbolSpec, volume: float) -> float | None:
    """``volume`` snapped to the symbol's step, or None when it breaks min/max/step (10014)."""
    if not spec.volume_min - _VOLUME_EPSILON <= volume <= spec.volume_max + _VOLUME_EPSILON:
        return None
    steps = round(volume / spec.volume_step)
    if abs(volume / spec.volume_step - steps) > 1e-7:
        return None
    return round(steps * spec.volume_step, 8)


def _stops_valid(spec: SymbolSpec, request: TradeRequest, quote: Quote) -> bool:
    """SL/TP of an opening deal: on the right side, ``stops_level`` points away at least.

    A buy is valued at the bid, so its SL must be <= bid - level and its TP >= bid + level; a
    sell at the ask, so its SL >= ask + level and its TP <= ask - level. 0 means no level.
    """
    sl, tp = request.sl, request.tp
    if not (0 <= sl < math.inf and 0 <= tp < math.inf):
        return False
    if request.type == c.ORDER_TYPE_BUY:
        sl_gap, tp_gap = quote.bid - sl, tp - quote.bid
    else:
        sl_gap, tp_gap = sl - quote.ask, quote.ask - tp
    min_gap = (spec.stops_level - 1e-6) * spec.point
    return (sl == 0 or sl_gap >= min_gap) and (tp == 0 or tp_gap >= min_gap)
