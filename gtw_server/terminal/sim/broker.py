"""The simulated trade server and account: it plans and executes requests, answers queries,
and executes what the price path triggers.

The broker holds the account, the open positions and the active orders in memory (loaded from
the ``Store`` at start), plus the price feed and the valuation. A trade request is *planned*
first: checked against the server's rules (``rules``), and turned into either a refusal
(a retcode) or a ``Transaction`` with the account figures it would leave. ``order_check``
stops there; ``order_send`` commits the transaction and only then applies it in memory, so a
failed commit changes nothing. What a deal does to the positions is ``deals``.

Every call first brings the server up to the current time (``sync``): the price path since
the last call is scanned tick by tick (``prices``) for what it triggers (``triggers``):
pending orders, stop losses and take profits, expirations, and rollovers (``swaps``),
which are executed in time order, each as its own transaction; then a stop-out closes the
most losing position while the margin level is at or below ``margin_so_so`` (30%), deal
reason SO, comment ``[so <level>%/<equity>/<margin>]``. SL and TP closes are server orders
with reason SL/TP and the comment ``[sl <price>]`` / ``[tp <price>]`` (the level, at the
symbol's digits) on both the order and the deal, replacing the position's comment, as
MetaTrader 5 writes them.

The checks, in order, for every action: the symbol (10013), its trade mode (10017 disabled),
its market hours (10018; ``order_check`` does not look at them, as the real one does not).
Then per action:

- DEAL: order type (10035), volume min/max/step (10014), filling mode (10030), the position to
  close (10036, 10013 for a wrong symbol or direction, 10038 for too much volume), long/short/
  close-only for a deal that opens or grows exposure (10042/10043/10044), for Instant/Request
  execution the price (10015) and deviation (10004), the stops of a deal that opens (10016),
  and the free margin when the margin grows (10019).
- PENDING: order type (10035), volume, filling, expiration (10022), long/short/close-only,
  the number of orders (10033), the price against the market (10015), the stops against the
  price (10016). Placed orders answer 10009 (or 10008 with ``pending_retcode``); no margin is
  held until they trigger, when a lack of money rejects them (state REJECTED).
- MODIFY / REMOVE: the order (10013); the same checks as placing; 10025 when nothing changes.
- SLTP: the position (10036), stops against the current price (10016), 10025 for no change.
- CLOSE_BY: hedging only (10035; every simulated symbol's ``order_mode`` allows it); both
  positions (10036), same symbol and opposite directions (10013). Both close, by the smaller
  volume, at ``position_by``'s open price: two OUT_BY deals of one CLOSE_BY order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Final, NamedTuple, Protocol, TypeVar

from gtw_server.terminal.sim.account import (
    Account,
    Exposure,
    Figures,
    Position,
    Valuation,
    exposure_after,
)
from gtw_server.terminal.sim.config import SimConfig
from gtw_server.terminal.sim.deals import VOLUME_EPSILON, Deal, Effect, effect
from gtw_server.terminal.sim.prices import PriceFeed, Quote, Scan
from gtw_server.terminal.sim.rules import (
    PENDING_TYPES,
    direction_refusal,
    normal_volume,
    on_ticks,
    pending_filling_allowed,
    pending_price_valid,
    stops_valid,
)
from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.store import Store, Transaction
from gtw_server.terminal.sim.swaps import last_rollover, next_rollover, nights, swap_charge
from gtw_server.terminal.sim.symbols import (
    SYMBOL_EXPIRATION_ALL,
    SymbolSpec,
    filling_allowed,
    filling_used,
    group_filter,
)
from gtw_server.terminal.sim.symbols import symbol_info as _symbol_info
from gtw_server.terminal.sim.tape import Tape
from gtw_server.terminal.sim.triggers import (
    LIMIT_OF,
    Watch,
    expiry,
    fill_price,
    fires,
    stop_hit,
    watch,
)
from protocol import mt5_constants as c
from protocol.mt5_structs import (
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
    replaced,
)
from protocol.server_time import ServerClock

__all__ = ["FIRST_DEAL_TICKET", "FIRST_ORDER_TICKET", "STOP_OUT_LEVEL", "Broker", "first_tickets"]

# Separate ranges, so a deal ticket mistaken for a position ticket finds nothing.
# The tickets of a state made at the epoch; a later one starts past them by its creation time
# (``first_tickets``), so that tickets are unique across runs and resets, as a real server's
# are: a client keyed by ticket never sees one twice.
FIRST_ORDER_TICKET: Final = 100_000_001
_STOP_OUT_EVERY_MS: Final = 250  # the margin level is checked at most this often
FIRST_DEAL_TICKET: Final = 50_000_001
_TICKETS_PER_MS: Final = 10  # room for a state's orders before a later state's first
STOP_OUT_LEVEL: Final = 30.0  # margin_so_so, in percent
MARGIN_CALL_LEVEL: Final = 50.0  # margin_so_call: reported, nothing happens
ORDERS_LIMIT: Final = 200  # AccountInfo.limit_orders

_MARGIN_MODES: Final = {
    "hedging": c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
    "netting": c.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
}
_TRADE_MODES: Final = {
    "demo": c.ACCOUNT_TRADE_MODE_DEMO,
    "contest": c.ACCOUNT_TRADE_MODE_CONTEST,
    "real": c.ACCOUNT_TRADE_MODE_REAL,
}
SYMBOL_TRADE_MODES: Final = {
    "disabled": c.SYMBOL_TRADE_MODE_DISABLED,
    "longonly": c.SYMBOL_TRADE_MODE_LONGONLY,
    "shortonly": c.SYMBOL_TRADE_MODE_SHORTONLY,
    "closeonly": c.SYMBOL_TRADE_MODE_CLOSEONLY,
    "full": c.SYMBOL_TRADE_MODE_FULL,
}
_NO_FIGURES: Final = Figures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
# The execution modes in which the client quotes a price, and the dealer may requote it.
_QUOTED_EXECUTIONS: Final = (c.SYMBOL_TRADE_EXECUTION_REQUEST, c.SYMBOL_TRADE_EXECUTION_INSTANT)
_STOP_COMMENTS: Final = {c.DEAL_REASON_SL: "sl", c.DEAL_REASON_TP: "tp"}


class _Fill(NamedTuple):
    """A request the server accepts: what to commit, what to answer, the account after."""

    tx: Transaction
    retcode: int
    order: int
    deal: int
    volume: float
    price: float
    quote: Quote | None  # the bid and ask of the answer; None for the actions without a deal
    figures: Figures


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
    ahead of it by hand. The server's time never runs backwards: not when the clock jumps back,
    nor after a restart from a state that had gone further. ``symbols`` and ``tapes`` are the
    market's symbols and prices, the same for every account of the broker.
    """

    def __init__(
        self,
        store: Store,
        config: SimConfig,
        clock: Callable[[], float],
        *,
        symbols: Mapping[str, SymbolSpec],
        tapes: Mapping[str, Tape],
    ) -> None:
        created_ms = int(clock() * 1000)
        first_order, first_deal = first_tickets(created_ms)
        snapshot = store.load() or store.create(
            _new_account(config),
            next_order=first_order,
            next_deal=first_deal,
            deposit=_deposit(config.balance, created_ms, first_deal - 1),
            rolled_ms=last_rollover(created_ms),
        )
        held = {p.symbol for p in snapshot.positions} | {o.symbol for o in snapshot.orders}
        unknown = held - set(symbols)
        if unknown:  # a state file of another symbol_suffix
            store.close()
            raise RuntimeError(
                f"the state file holds positions or orders in {', '.join(sorted(unknown))},"
                " which this broker does not list (was symbol_suffix changed?); reset it"
            )
        self._symbols = symbols
        self.store = store
        self.account = snapshot.account
        self.netting = self.account.margin_mode == c.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
        self.sessions = Sessions(always_open=config.always_open)
        self.server = ServerClock(config.server_timezone)  # requests' expirations are on it
        self.trade_modes = {
            name + config.symbol_suffix: SYMBOL_TRADE_MODES[mode]
            for name, mode in config.symbol_trade_modes.items()
        }
        self._pending_retcode = config.pending_retcode
        self._execution = config.execution()
        self._slippage = random.Random(f"sim-slippage/{config.seed}")  # one draw per deal
        self._clock = clock
        self._offset = 0.0
        self._latest_ms = max(snapshot.prices.values(), default=0)
        self._positions: dict[int, Position] = {}
        self._exposure: dict[str, Exposure] = {}
        self._orders: dict[int, TradeOrder] = {}
        # What can fire, per symbol: positions with an SL or TP, and pending orders.
        self._armed: dict[str, dict[int, Position]] = {}
        self._pending: dict[str, dict[int, TradeOrder]] = {}
        self._watches: dict[str, Watch] = {}
        self._next_order = snapshot.next_order
        self._next_deal = snapshot.next_deal
        rolled_ms = snapshot.rolled_ms or last_rollover(self.now_ms())
        self._rollover_ms = next_rollover(rolled_ms)  # the next one to charge
        self._feed = PriceFeed(tapes, now_ms=self.now_ms(), stored=snapshot.prices)
        self._valuation = Valuation(
            self._symbols,
            self._feed,
            currency=self.account.currency,
            leverage=self.account.leverage,
        )
        self._stop_out_tick = -1  # the last quarter second the margin level was checked in
        self._apply(
            Transaction(
                balance=self.account.balance,
                next_order=self._next_order,
                next_deal=self._next_deal,
                put_positions=tuple(snapshot.positions),
                put_orders=tuple(snapshot.orders),
            )
        )
        if not snapshot.rolled_ms:  # a state from before swaps: it pays from the next rollover
            self._commit(self._tx(rolled_ms=rolled_ms))

    # -- time ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        now_ms = int((self._clock() + self._offset) * 1000)
        self._latest_ms = max(self._latest_ms, now_ms)
        return self._latest_ms

    def step(self, seconds: float) -> None:
        """Moves the broker's time ``seconds`` ahead of its clock, for good."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"step() needs a finite number of seconds >= 0, got {seconds!r}")
        self._offset += seconds

    def sync(self) -> int:
        """Brings the server to now: executes, in time order, what the prices triggered and
        what expired since the last call, then stops the account out if it must. Returns now
        in milliseconds."""
        now_ms = self.now_ms()
        while self._may_have_events(now_ms) and self._next_event(now_ms):
            pass  # each call executes one event
        self._feed.at(now_ms)
        self._stop_out(now_ms)
        return now_ms

    def _may_have_events(self, now_ms: int) -> bool:
        """A cheap first look: with nothing armed, no order and no rollover due, there is no
        event to scan the path for."""
        return bool(self._watches or self._orders) or self._rollover_ms <= now_ms

    def _next_event(self, now_ms: int) -> bool:
        """Executes the earliest event up to ``now_ms`` (a trigger, a rollover, an expiry);
        False when there is none."""
        expirations = [o.time_expiration for o in self._orders.values() if o.time_expiration]
        expiring_ms = 1000 * min(expirations) if expirations else now_ms + 1
        rollover_ms = self._rollover_ms
        until_ms = min(now_ms, expiring_ms, rollover_ms)
        first: tuple[str, Scan, Quote] | None = None
        scans: list[tuple[str, Scan]] = []
        for symbol, thresholds in self._watches.items():
            scan = self._feed.scan(symbol, until_ms, thresholds)
            scans.append((symbol, scan))
            if scan.quote is not None and (first is None or scan.time_ms < first[1].time_ms):
                first = (symbol, scan, scan.quote)
        if first is not None:
            symbol, scan, quote = first
            self._feed.at(scan.time_ms)
            self._feed.move(symbol, scan)
            self._fire(symbol, quote, scan.time_ms)
            self._stop_out(scan.time_ms)
            return True
        for symbol, scan in scans:  # nothing fired on the way: go to the end of the scan
            self._feed.move(symbol, scan)
        if rollover_ms <= min(now_ms, expiring_ms):
            self._feed.at(rollover_ms)
            self._roll_over(rollover_ms)
            self._stop_out(rollover_ms)
            return True
        if expiring_ms <= now_ms:
            self._feed.at(expiring_ms)
            self._expire(expiring_ms)
            return True
        return False

    def _roll_over(self, at_ms: int) -> None:
        """Charges the swap of the rollover at ``at_ms`` to every position open before it."""
        digits, count = self._valuation.digits, nights(at_ms)
        charged = []
        for position in self._positions.values():
            if position.time_msc >= at_ms:
                continue
            spec = self._symbols[position.symbol]
            point_value = self._valuation.tick_value(spec)
            charge = swap_charge(
                spec, position, nights=count, point_value=point_value, digits=digits
            )
            if charge:
                charged.append(position._replace(swap=round(position.swap + charge, digits)))
        if self._positions:
            # Stored even when every charge rounded to nothing: a netting position that was
            # open then and grows later must not pay this rollover again after a restart.
            # (With no positions there is nothing to store: any later one is younger.)
            self._commit(self._tx(put_positions=tuple(charged), rolled_ms=at_ms))
            self._stop_out_tick = -1  # swaps move the margin level too: look again
        self._rollover_ms = next_rollover(at_ms)

    # -- queries ------------------------------------------------------------------------

    def account_info(self) -> AccountInfo:
        self.sync()
        account = self.account
        figures = self._valuation.figures(account, self._exposure)
        return build(
            AccountInfo,
            {
                "login": account.login,
                "trade_mode": account.trade_mode,
                "leverage": account.leverage,
                "limit_orders": ORDERS_LIMIT,
                "margin_so_mode": c.ACCOUNT_STOPOUT_MODE_PERCENT,
                "trade_allowed": True,
                "trade_expert": True,
                "margin_mode": account.margin_mode,
                "currency_digits": self._valuation.digits,
                "fifo_close": False,
                **figures._asdict(),
                "margin_so_call": MARGIN_CALL_LEVEL,
                "margin_so_so": STOP_OUT_LEVEL,
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
        self.sync()
        quote = self._feed.quote(spec.name)
        tick_value = self._valuation.tick_value(spec)
        return _symbol_info(
            spec, quote, selected=selected, tick_value=tick_value, trade_mode=self._mode(spec)
        )

    def tick(self, spec: SymbolSpec) -> Tick:
        quote = self.quote(spec)
        flags = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        return Tick(
            (quote.time_msc // 1000, quote.bid, quote.ask, 0.0, 0, quote.time_msc, flags, 0.0)
        )

    def quote(self, spec: SymbolSpec) -> Quote:
        """The current quote (the market book and the rates build on it)."""
        self.sync()
        return self._feed.quote(spec.name)

    def positions(
        self, *, symbol: str | None, group: str | None, ticket: int | None
    ) -> tuple[TradePosition, ...]:
        self.sync()
        chosen = _select(self._positions, symbol=symbol, group=group, ticket=ticket)
        return tuple(self._position_info(position) for position in chosen)

    def positions_total(self) -> int:
        self.sync()
        return len(self._positions)

    def orders(
        self, *, symbol: str | None, group: str | None, ticket: int | None
    ) -> tuple[TradeOrder, ...]:
        self.sync()
        chosen = _select(self._orders, symbol=symbol, group=group, ticket=ticket)
        return tuple(
            replaced(order, price_current=self._order_price(order.symbol, order.type))
            for order in chosen
        )

    def orders_total(self) -> int:
        self.sync()
        return len(self._orders)

    def calc_margin(self, spec: SymbolSpec, volume: float, price: float) -> float:
        self.sync()
        return round(self._valuation.margin(spec, volume, price), self._valuation.digits)

    def calc_profit(
        self, spec: SymbolSpec, order_type: int, volume: float, price_open: float, price: float
    ) -> float:
        self.sync()
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

    def _order_price(self, symbol: str, order_type: int) -> float:
        """An order's current price: the ask for orders that buy, the bid for those that sell."""
        quote = self._feed.quote(symbol)
        return quote.ask if order_type % 2 == c.ORDER_TYPE_BUY else quote.bid

    def _mode(self, spec: SymbolSpec) -> int:
        return self.trade_modes.get(spec.name, c.SYMBOL_TRADE_MODE_FULL)

    # -- requests -----------------------------------------------------------------------

    def check(self, request: TradeRequest) -> OrderCheckResult:
        """``order_check``: the verdict, and the account as the request would leave it."""
        outcome = self._plan(request, self.sync(), executing=False)
        if isinstance(outcome, _Refusal):
            retcode, figures = outcome.retcode, outcome.figures or _NO_FIGURES
            comment = c.RETCODE_COMMENTS[retcode]
        else:
            retcode, figures, comment = 0, outcome.figures, "Done"
        money = (figures.balance, figures.equity, figures.profit, figures.margin)
        level = (figures.margin_free, figures.margin_level)
        return OrderCheckResult((retcode, *money, *level, comment, request))

    def send(
        self, request: TradeRequest, request_id: int, *, dealer: int | None = None
    ) -> OrderSendResult:
        """``order_send``: executes the request; the fill is committed before it is answered.

        ``dealer`` is the dealer's verdict on a request the server accepts (``faults``):
        reject it (10006), or requote it (10004) if it is a deal in Request or Instant execution.
        """
        outcome = self._plan(request, self.sync(), executing=True)
        if not isinstance(outcome, _Refusal) and dealer is not None:
            exemode = self._symbols[request.symbol].exemode
            outcome = _dealt(dealer, request, outcome, exemode) or outcome
        if isinstance(outcome, _Refusal):
            quote = outcome.quote
            bid, ask = (quote.bid, quote.ask) if quote else (0.0, 0.0)
            comment = c.RETCODE_COMMENTS[outcome.retcode]
            return OrderSendResult(
                (outcome.retcode, 0, 0, 0.0, 0.0, bid, ask, comment, request_id, 0, request)
            )
        self._commit(outcome.tx)
        bid, ask = (outcome.quote.bid, outcome.quote.ask) if outcome.quote else (0.0, 0.0)
        return OrderSendResult(
            (
                outcome.retcode,
                outcome.deal,
                outcome.order,
                outcome.volume,
                outcome.price,
                bid,
                ask,
                c.RETCODE_COMMENTS[outcome.retcode],
                request_id,
                0,
                request,
            )
        )

    def _plan(self, request: TradeRequest, now_ms: int, *, executing: bool) -> _Fill | _Refusal:
        """The server's verdict on ``request``; ``executing`` is False for ``order_check``,
        which does not look at market hours."""
        action = request.action
        if action == c.TRADE_ACTION_DEAL:
            return self._plan_deal(request, now_ms, executing)
        if action == c.TRADE_ACTION_PENDING:
            return self._plan_pending(request, now_ms, executing)
        if action in (c.TRADE_ACTION_MODIFY, c.TRADE_ACTION_REMOVE):
            return self._plan_order_change(request, now_ms, executing)
        if action == c.TRADE_ACTION_SLTP:
            return self._plan_sltp(request, now_ms, executing)
        if action == c.TRADE_ACTION_CLOSE_BY:
            return self._plan_close_by(request, now_ms, executing)
        return _Refusal(c.TRADE_RETCODE_INVALID)

    def _gate(self, spec: SymbolSpec, now_ms: int, executing: bool) -> _Refusal | None:
        """The symbol's trade mode and market hours, checked for every action."""
        if self.trade_modes and self._mode(spec) == c.SYMBOL_TRADE_MODE_DISABLED:
            return _Refusal(c.TRADE_RETCODE_TRADE_DISABLED)
        sessions = self.sessions
        if executing and not sessions.always_open and not sessions.is_open(spec, now_ms):
            return _Refusal(c.TRADE_RETCODE_MARKET_CLOSED)
        return None

    def _plan_deal(self, request: TradeRequest, now_ms: int, executing: bool) -> _Fill | _Refusal:
        spec = self._symbols.get(request.symbol)
        if spec is None:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        if refusal := self._gate(spec, now_ms, executing):
            return refusal
        side = request.type
        if side not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
            return _Refusal(c.TRADE_RETCODE_INVALID_ORDER)
        volume = normal_volume(spec, request.volume)
        if volume is None:
            return _Refusal(c.TRADE_RETCODE_INVALID_VOLUME)
        if not filling_allowed(spec, request.type_filling):
            return _Refusal(c.TRADE_RETCODE_INVALID_FILL)
        position = self._net_position(spec.name) if self.netting else None
        if request.position:
            named = self._positions.get(request.position)
            if named is None or (self.netting and named is not position):
                return _Refusal(c.TRADE_RETCODE_POSITION_CLOSED)
            if named.symbol != spec.name or named.type == side:
                return _Refusal(c.TRADE_RETCODE_INVALID)
            if volume > named.volume + VOLUME_EPSILON:
                return _Refusal(c.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
            position = named
        opens = (
            position is None or position.type == side or volume > position.volume + VOLUME_EPSILON
        )
        if opens and self.trade_modes and (retcode := direction_refusal(self._mode(spec), side)):
            return _Refusal(retcode)
        quote = self._feed.quote(spec.name)
        price = quote.ask if side == c.ORDER_TYPE_BUY else quote.bid
        if spec.exemode in _QUOTED_EXECUTIONS:
            # The client quotes the price it accepts; the server fills at its own price when
            # that is within ``deviation`` points, and requotes otherwise.
            priced = request.price > 0 and math.isfinite(request.price)
            if not (priced and on_ticks(spec, request.price)):
                return _Refusal(c.TRADE_RETCODE_INVALID_PRICE)
            if round(abs(request.price - price) / spec.point) > request.deviation:
                return _Refusal(c.TRADE_RETCODE_REQUOTE, quote=quote)
        elif executing and (slip := self._slip()):
            # Market execution: the server fills at the price it gets, which may be worse.
            worse = slip * spec.point if side == c.ORDER_TYPE_BUY else -slip * spec.point
            price = round(price + worse, spec.digits)
        reference = quote.bid if side == c.ORDER_TYPE_BUY else quote.ask
        if opens and not stops_valid(spec, side, request.sl, request.tp, reference):
            return _Refusal(c.TRADE_RETCODE_INVALID_STOPS)
        deal = Deal(
            spec,
            side,
            volume,
            price,
            now_ms,
            order=self._next_order,
            reason=c.DEAL_REASON_EXPERT,
            magic=request.magic,
            comment=request.comment,
            sl=request.sl if opens else 0.0,
            tp=request.tp if opens else 0.0,
        )
        result = effect(deal, position, netting=self.netting, valuation=self._valuation)
        figures = self._figures_after(result, self._commission(volume))
        if self._short_of_money(figures):
            return _Refusal(c.TRADE_RETCODE_NO_MONEY, figures=figures)
        order = self._filled_order(
            deal,
            result.position_id,
            price_open=request.price,
            type_filling=filling_used(spec, request.type_filling),
            type_time=request.type_time,
            sl=request.sl,
            tp=request.tp,
        )
        tx = self._deal_tx(deal, result, orders=(order,), next_order=deal.order + 1)
        return _Fill(
            tx, c.TRADE_RETCODE_DONE, deal.order, self._next_deal, volume, price, quote, figures
        )

    def _plan_pending(
        self, request: TradeRequest, now_ms: int, executing: bool
    ) -> _Fill | _Refusal:
        spec = self._symbols.get(request.symbol)
        if spec is None:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        if refusal := self._gate(spec, now_ms, executing):
            return refusal
        if request.type not in PENDING_TYPES:
            return _Refusal(c.TRADE_RETCODE_INVALID_ORDER)
        volume = normal_volume(spec, request.volume)
        if volume is None:
            return _Refusal(c.TRADE_RETCODE_INVALID_VOLUME)
        if not pending_filling_allowed(spec, request.type_filling):
            return _Refusal(c.TRADE_RETCODE_INVALID_FILL)
        if retcode := direction_refusal(self._mode(spec), request.type % 2):
            return _Refusal(retcode)
        if len(self._orders) >= ORDERS_LIMIT:
            return _Refusal(c.TRADE_RETCODE_LIMIT_ORDERS)
        ticket = self._next_order
        order = build(
            TradeOrder,
            {
                "ticket": ticket,
                "time_setup": now_ms // 1000,
                "time_setup_msc": now_ms,
                "time_done": 0,
                "time_done_msc": 0,
                "time_expiration": 0,
                "type": request.type,
                "type_time": request.type_time,
                "type_filling": filling_used(spec, request.type_filling),
                "state": c.ORDER_STATE_PLACED,
                "magic": request.magic,
                "position_id": 0,
                "position_by_id": 0,
                "reason": c.ORDER_REASON_EXPERT,
                "volume_initial": volume,
                "volume_current": volume,
                "price_open": 0.0,
                "sl": 0.0,
                "tp": 0.0,
                "price_current": 0.0,
                "price_stoplimit": 0.0,
                "symbol": spec.name,
                "comment": request.comment,
                "external_id": "",
            },
        )
        placed = self._order_terms(spec, order, request, now_ms)
        if isinstance(placed, _Refusal):
            return placed
        tx = self._tx(next_order=ticket + 1, put_orders=(placed,))
        return _Fill(tx, self._pending_retcode, ticket, 0, 0.0, 0.0, None, self._figures())

    def _order_terms(
        self, spec: SymbolSpec, order: TradeOrder, request: TradeRequest, now_ms: int
    ) -> TradeOrder | _Refusal:
        """``order`` with the price, stops and expiry of ``request``, if the server takes
        them: the rules of placing and of modifying an order."""
        if request.type_time > c.ORDER_TIME_SPECIFIED_DAY or not (
            SYMBOL_EXPIRATION_ALL & (1 << request.type_time)
        ):
            return _Refusal(c.TRADE_RETCODE_INVALID_EXPIRATION)
        # On the server's clock, as the request gives it and as a trading day ends there.
        server = self.server
        expiration = expiry(
            request.type_time, request.expiration, server.to_server_s(now_ms // 1000)
        )
        if expiration is None:
            return _Refusal(c.TRADE_RETCODE_INVALID_EXPIRATION)
        expiration = expiration and server.to_utc_s(expiration)
        stoplimit = request.stoplimit if order.type in LIMIT_OF else 0.0
        quote = self._feed.quote(spec.name)
        if not pending_price_valid(spec, order.type, request.price, stoplimit, quote):
            return _Refusal(c.TRADE_RETCODE_INVALID_PRICE)
        opens_at = stoplimit or request.price
        if not stops_valid(spec, order.type % 2, request.sl, request.tp, opens_at):
            return _Refusal(c.TRADE_RETCODE_INVALID_STOPS)
        return replaced(
            order,
            price_open=request.price,
            price_stoplimit=stoplimit,
            sl=request.sl,
            tp=request.tp,
            type_time=request.type_time,
            time_expiration=expiration,
            price_current=quote.ask if order.type % 2 == c.ORDER_TYPE_BUY else quote.bid,
        )

    def _plan_order_change(
        self, request: TradeRequest, now_ms: int, executing: bool
    ) -> _Fill | _Refusal:
        """TRADE_ACTION_MODIFY and TRADE_ACTION_REMOVE of an active order."""
        order = self._orders.get(request.order)
        if order is None:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        spec = self._symbols[order.symbol]
        if refusal := self._gate(spec, now_ms, executing):
            return refusal
        if request.action == c.TRADE_ACTION_REMOVE:
            canceled = self._closed_order(order, c.ORDER_STATE_CANCELED, now_ms)
            tx = self._tx(drop_orders=(order.ticket,), history_orders=(canceled,))
        else:
            changed = self._order_terms(spec, order, request, now_ms)
            if isinstance(changed, _Refusal):
                return changed
            if replaced(changed, price_current=order.price_current) == order:
                return _Refusal(c.TRADE_RETCODE_NO_CHANGES)
            tx = self._tx(put_orders=(changed,))
        return _Fill(tx, c.TRADE_RETCODE_DONE, order.ticket, 0, 0.0, 0.0, None, self._figures())

    def _plan_sltp(self, request: TradeRequest, now_ms: int, executing: bool) -> _Fill | _Refusal:
        if self.netting and not request.position:
            position = self._net_position(request.symbol)
        else:
            position = self._positions.get(request.position)
        if position is None:
            return _Refusal(c.TRADE_RETCODE_POSITION_CLOSED)
        if request.symbol and request.symbol != position.symbol:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        spec = self._symbols[position.symbol]
        if refusal := self._gate(spec, now_ms, executing):
            return refusal
        quote = self._feed.quote(spec.name)
        reference = quote.bid if position.type == c.POSITION_TYPE_BUY else quote.ask
        if not stops_valid(spec, position.type, request.sl, request.tp, reference):
            return _Refusal(c.TRADE_RETCODE_INVALID_STOPS)
        if (request.sl, request.tp) == (position.sl, position.tp):
            return _Refusal(c.TRADE_RETCODE_NO_CHANGES)
        changed = position._replace(sl=request.sl, tp=request.tp, time_update_msc=now_ms)
        tx = self._tx(put_positions=(changed,))
        return _Fill(tx, c.TRADE_RETCODE_DONE, 0, 0, 0.0, 0.0, None, self._figures())

    def _plan_close_by(
        self, request: TradeRequest, now_ms: int, executing: bool
    ) -> _Fill | _Refusal:
        if self.netting:
            return _Refusal(c.TRADE_RETCODE_INVALID_ORDER)
        position = self._positions.get(request.position)
        by = self._positions.get(request.position_by)
        if position is None or by is None:
            return _Refusal(c.TRADE_RETCODE_POSITION_CLOSED)
        if position is by or position.symbol != by.symbol or position.type == by.type:
            return _Refusal(c.TRADE_RETCODE_INVALID)
        spec = self._symbols[position.symbol]
        if refusal := self._gate(spec, now_ms, executing):
            return refusal
        volume, price, ticket = min(position.volume, by.volume), by.price_open, self._next_order
        deals: list[Deal] = []
        effects: list[Effect] = []
        for closed in (position, by):
            deal = Deal(
                spec,
                1 - closed.type,
                volume,
                price,
                now_ms,
                order=ticket,
                reason=c.DEAL_REASON_EXPERT,
                magic=request.magic,
                comment=request.comment,
            )
            deals.append(deal)
            effects.append(effect(deal, closed, netting=False, valuation=self._valuation))
        costs = 2 * self._commission(volume)  # two deals
        account = self.account._replace(
            balance=self._balance_after(*(e.profit + e.swap for e in effects), costs)
        )
        exposure = self._exposure
        for closed, result in zip((position, by), effects, strict=True):
            exposure = exposure_after(exposure, closed, result.put)
        order = replaced(
            self._filled_order(deals[0], position.identifier, price_open=price),
            type=c.ORDER_TYPE_CLOSE_BY,
            position_by_id=by.identifier,
        )
        records = tuple(
            self._deal_record(deal, result, self._next_deal + index, entry=c.DEAL_ENTRY_OUT_BY)
            for index, (deal, result) in enumerate(zip(deals, effects, strict=True))
        )
        tx = Transaction(
            balance=account.balance,
            next_order=ticket + 1,
            next_deal=self._next_deal + 2,
            put_positions=tuple(e.put for e in effects if e.put is not None),
            drop_positions=tuple(e.drop for e in effects if e.drop is not None),
            history_orders=(order,),
            deals=records,
        )
        figures = self._valuation.figures(account, exposure)
        quote = self._feed.quote(spec.name)
        return _Fill(
            tx, c.TRADE_RETCODE_DONE, ticket, records[0].ticket, volume, price, quote, figures
        )

    # -- what the prices trigger --------------------------------------------------------

    def _fire(self, symbol: str, quote: Quote, now_ms: int) -> None:
        """Executes what ``quote`` triggers on ``symbol``: pending orders first (in ticket
        order), then the SL/TP of its positions, including any that just opened."""
        for order in sorted(self._pending.get(symbol, {}).values()):
            if not fires(order, quote):
                continue
            if order.type in LIMIT_OF:
                limit = replaced(
                    order,
                    type=LIMIT_OF[order.type],
                    price_open=order.price_stoplimit,
                    price_stoplimit=0.0,
                )
                self._commit(self._tx(put_orders=(limit,)))
                if fires(limit, quote):
                    self._commit(self._triggered(limit, quote, now_ms))
            else:
                self._commit(self._triggered(order, quote, now_ms))
        for position in list(self._armed.get(symbol, {}).values()):
            reason = stop_hit(position, quote)
            if reason is not None:
                level = position.sl if reason == c.DEAL_REASON_SL else position.tp
                digits = self._symbols[symbol].digits
                comment = f"[{_STOP_COMMENTS[reason]} {level:.{digits}f}]"
                self._commit(self._closed_by_server(position, reason, comment, now_ms, level))

    def _triggered(self, order: TradeOrder, quote: Quote, now_ms: int) -> Transaction:
        """The fill of a triggered pending order, or its rejection for lack of money."""
        spec = self._symbols[order.symbol]
        price = fill_price(order, quote)
        deal = Deal(
            spec,
            order.type % 2,
            order.volume_current,
            price,
            now_ms,
            order=order.ticket,
            reason=c.DEAL_REASON_EXPERT,
            magic=order.magic,
            comment=order.comment,
            sl=order.sl,
            tp=order.tp,
        )
        position = self._net_position(spec.name) if self.netting else None
        result = effect(deal, position, netting=self.netting, valuation=self._valuation)
        if self._short_of_money(self._figures_after(result, self._commission(deal.volume))):
            rejected = self._closed_order(order, c.ORDER_STATE_REJECTED, now_ms)
            return self._tx(drop_orders=(order.ticket,), history_orders=(rejected,))
        filled = replaced(
            order,
            state=c.ORDER_STATE_FILLED,
            time_done=now_ms // 1000,
            time_done_msc=now_ms,
            volume_current=0.0,
            position_id=result.position_id,
            price_current=price,
        )
        return self._deal_tx(
            deal, result, orders=(filled,), next_order=self._next_order, drop_order=order.ticket
        )

    def _closed_by_server(
        self, position: Position, reason: int, comment: str, now_ms: int, level: float
    ) -> Transaction:
        """A whole position closed by the server (SL, TP, stop-out) at the market."""
        quote = self._feed.quote(position.symbol)
        price = quote.bid if position.type == c.POSITION_TYPE_BUY else quote.ask
        deal = Deal(
            self._symbols[position.symbol],
            1 - position.type,
            position.volume,
            price,
            now_ms,
            order=self._next_order,
            reason=reason,
            magic=position.magic,
            comment=comment,
        )
        result = effect(deal, position, netting=self.netting, valuation=self._valuation)
        order = self._filled_order(deal, result.position_id, price_open=level)
        return self._deal_tx(deal, result, orders=(order,), next_order=deal.order + 1)

    def _expire(self, now_ms: int) -> None:
        for order in sorted(self._orders.values()):
            if order.time_expiration and order.time_expiration * 1000 <= now_ms:
                expired = self._closed_order(order, c.ORDER_STATE_EXPIRED, now_ms)
                self._commit(self._tx(drop_orders=(order.ticket,), history_orders=(expired,)))

    def _stop_out(self, now_ms: int) -> None:
        """Closes the most losing position while the margin level is at or below the
        stop-out level. Only price moves and swaps lower the level (the server refuses any
        order that would leave the free margin negative), so it is checked once a quarter second and
        after a rollover."""
        tick = now_ms // _STOP_OUT_EVERY_MS
        if not self._positions or tick == self._stop_out_tick:
            return
        self._stop_out_tick = tick
        while self._positions:
            figures = self._valuation.figures(self.account, self._exposure)
            if figures.margin <= 0 or figures.margin_level > STOP_OUT_LEVEL:
                return
            tradable = [
                position
                for position in self._positions.values()
                if self.sessions.is_open(self._symbols[position.symbol], now_ms)
            ]
            if not tradable:
                return
            worst = min(tradable, key=lambda position: self._valuation.current(position)[1])
            level, equity, margin = figures.margin_level, figures.equity, figures.margin
            comment = f"[so {level:.2f}%/{equity:.2f}/{margin:.2f}]"
            price = self._valuation.current(worst)[0]
            self._commit(self._closed_by_server(worst, c.DEAL_REASON_SO, comment, now_ms, price))

    # -- building transactions -----------------------------------------------------------

    def _net_position(self, symbol: str) -> Position | None:
        """The position of ``symbol`` on a netting account."""
        for position in self._positions.values():
            if position.symbol == symbol:
                return position
        return None

    def _figures(self) -> Figures:
        return self._valuation.figures(self.account, self._exposure)

    def _figures_after(self, result: Effect, commission: float = 0.0) -> Figures:
        """The account figures once a deal's ``result`` (and ``commission``) is applied."""
        exposure = self._exposure
        if result.drop is not None:
            exposure = exposure_after(exposure, self._positions[result.drop], None)
        if result.put is not None:
            exposure = exposure_after(exposure, self._positions.get(result.put.ticket), result.put)
        account = self.account._replace(
            balance=self._balance_after(result.profit, result.swap, commission)
        )
        return self._valuation.figures(account, exposure)

    def _short_of_money(self, figures: Figures) -> bool:
        """Whether a deal leaving ``figures`` must be refused: it adds margin that the free
        margin cannot cover (deals that only release margin always go through)."""
        return figures.margin_free < 0 and figures.margin > self._figures().margin + 1e-9

    def _balance_after(self, *profits: float) -> float:
        return round(self.account.balance + sum(profits), self._valuation.digits)

    def _tx(
        self,
        *,
        next_order: int | None = None,
        put_positions: tuple[Position, ...] = (),
        put_orders: tuple[TradeOrder, ...] = (),
        drop_orders: tuple[int, ...] = (),
        history_orders: tuple[TradeOrder, ...] = (),
        rolled_ms: int | None = None,
    ) -> Transaction:
        """A transaction that moves no money and makes no deal."""
        return Transaction(
            balance=self.account.balance,
            next_order=self._next_order if next_order is None else next_order,
            next_deal=self._next_deal,
            put_positions=put_positions,
            put_orders=put_orders,
            drop_orders=drop_orders,
            history_orders=history_orders,
            rolled_ms=rolled_ms,
        )

    def _deal_tx(
        self,
        deal: Deal,
        result: Effect,
        *,
        orders: tuple[TradeOrder, ...],
        next_order: int,
        drop_order: int | None = None,
    ) -> Transaction:
        """One deal as a transaction: the history orders, the deal, the positions it leaves."""
        return Transaction(
            balance=self._balance_after(result.profit, result.swap, self._commission(deal.volume)),
            next_order=next_order,
            next_deal=self._next_deal + 1,
            put_positions=() if result.put is None else (result.put,),
            drop_positions=() if result.drop is None else (result.drop,),
            drop_orders=() if drop_order is None else (drop_order,),
            history_orders=orders,
            deals=(self._deal_record(deal, result, self._next_deal, entry=result.entry),),
        )

    def _commission(self, volume: float) -> float:
        """What a deal of ``volume`` lots costs (negative), in the account currency."""
        return -round(self._execution.commission_per_lot * volume, self._valuation.digits)

    def _slip(self) -> int:
        """The points a market-execution deal fills worse than the quote (one draw)."""
        most = self._execution.slippage_points
        return self._slippage.randint(0, most) if most else 0

    def _deal_record(self, deal: Deal, result: Effect, ticket: int, *, entry: int) -> TradeDeal:
        time = deal.now_ms // 1000
        return build(
            TradeDeal,
            {
                "ticket": ticket,
                "order": deal.order,
                "time": time,
                "time_msc": deal.now_ms,
                "type": deal.side,  # DEAL_TYPE_BUY/SELL share ORDER_TYPE_BUY/SELL's values
                "entry": entry,
                "magic": deal.magic,
                "position_id": result.position_id,
                "reason": deal.reason,
                "volume": deal.volume,
                "price": deal.price,
                "commission": self._commission(deal.volume),
                "swap": result.swap,
                "profit": result.profit,
                "fee": 0.0,
                "symbol": deal.spec.name,
                "comment": deal.comment,
                "external_id": "",
            },
        )

    @staticmethod
    def _filled_order(
        deal: Deal,
        position_id: int,
        *,
        price_open: float,
        type_filling: int = c.ORDER_FILLING_FOK,
        type_time: int = c.ORDER_TIME_GTC,
        sl: float = 0.0,
        tp: float = 0.0,
    ) -> TradeOrder:
        """The history record of a market order executed at once by ``deal``."""
        time = deal.now_ms // 1000
        return build(
            TradeOrder,
            {
                "ticket": deal.order,
                "time_setup": time,
                "time_setup_msc": deal.now_ms,
                "time_done": time,
                "time_done_msc": deal.now_ms,
                "time_expiration": 0,
                "type": deal.side,
                "type_time": type_time,
                "type_filling": type_filling,
                "state": c.ORDER_STATE_FILLED,
                "magic": deal.magic,
                "position_id": position_id,
                "position_by_id": 0,
                "reason": deal.reason,  # ORDER_REASON_* share DEAL_REASON_*'s values
                "volume_initial": deal.volume,
                "volume_current": 0.0,
                "price_open": price_open,
                "sl": sl,
                "tp": tp,
                "price_current": deal.price,
                "price_stoplimit": 0.0,
                "symbol": deal.spec.name,
                "comment": deal.comment,
                "external_id": "",
            },
        )

    def _closed_order(self, order: TradeOrder, state: int, now_ms: int) -> TradeOrder:
        """A pending order as it goes to the history unfilled (canceled, expired, rejected)."""
        return replaced(
            order,
            state=state,
            time_done=now_ms // 1000,
            time_done_msc=now_ms,
            price_current=self._order_price(order.symbol, order.type),
        )

    # -- committing ----------------------------------------------------------------------

    def _commit(self, tx: Transaction) -> None:
        """Writes ``tx`` to the store, then applies it in memory."""
        prices = self._feed.unsaved()
        self.store.commit(tx, prices)
        self._feed.saved(prices)
        self._apply(tx)

    def _apply(self, tx: Transaction) -> None:
        self.account = self.account._replace(balance=tx.balance)
        touched: set[str] = set()  # symbols whose triggers changed
        for ticket in tx.drop_positions:
            position = self._positions.pop(ticket)
            self._exposure = exposure_after(self._exposure, position, None)
            if self._armed.get(position.symbol, {}).pop(ticket, None) is not None:
                touched.add(position.symbol)
        for position in tx.put_positions:
            old = self._positions.get(position.ticket)
            self._positions[position.ticket] = position
            self._exposure = exposure_after(self._exposure, old, position)
            armed = self._armed.setdefault(position.symbol, {})
            if position.sl or position.tp:
                armed[position.ticket] = position
                touched.add(position.symbol)
            elif armed.pop(position.ticket, None) is not None:
                touched.add(position.symbol)
        for ticket in tx.drop_orders:
            order = self._orders.pop(ticket)
            del self._pending[order.symbol][ticket]
            touched.add(order.symbol)
        for order in tx.put_orders:
            self._orders[order.ticket] = order
            self._pending.setdefault(order.symbol, {})[order.ticket] = order
            touched.add(order.symbol)
        for symbol in touched:
            thresholds = watch(
                self._armed.get(symbol, {}).values(), self._pending.get(symbol, {}).values()
            )
            if thresholds is None:
                self._watches.pop(symbol, None)
            else:
                self._watches[symbol] = thresholds
        self._next_order, self._next_deal = tx.next_order, tx.next_deal

    def close(self) -> None:
        """Saves the prices and closes the store."""
        self.store.save_prices(self._feed.unsaved())
        self.store.close()


def _dealt(dealer: int, request: TradeRequest, fill: _Fill, exemode: int) -> _Refusal | None:
    """The dealer's refusal of an accepted request, or None when the verdict does not apply
    (``exemode``: the symbol's execution mode)."""
    if dealer == c.TRADE_RETCODE_REJECT:
        return _Refusal(dealer)
    if request.action == c.TRADE_ACTION_DEAL and exemode in _QUOTED_EXECUTIONS:
        return _Refusal(dealer, quote=fill.quote)
    return None


def first_tickets(created_ms: int) -> tuple[int, int]:
    """The first order and deal tickets of a state made at ``created_ms``."""
    offset = max(0, created_ms) * _TICKETS_PER_MS
    return FIRST_ORDER_TICKET + offset, FIRST_DEAL_TICKET + offset


def _deposit(balance: float, now_ms: int, ticket: int) -> TradeDeal:
    """The balance deal a new account starts its history with, as a broker's demo account
    does (its ``ticket`` comes just before the trades')."""
    return build(
        TradeDeal,
        {
            "ticket": ticket,
            "order": 0,
            "time": now_ms // 1000,
            "time_msc": now_ms,
            "type": c.DEAL_TYPE_BALANCE,
            "entry": c.DEAL_ENTRY_IN,
            "magic": 0,
            "position_id": 0,
            "reason": c.DEAL_REASON_CLIENT,
            "volume": 0.0,
            "price": 0.0,
            "commission": 0.0,
            "swap": 0.0,
            "profit": balance,
            "fee": 0.0,
            "symbol": "",
            "comment": "Deposit",
            "external_id": "",
        },
    )


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
