"""The account's records and its money maths: profit, margin and currency conversion.

The formulas are those of docs/MT5_API.md section 4:

- profit of a buy ``(close - open) * contract * lots``, of a sell the opposite, in the symbol's
  profit currency, valued at the bid for buys and the ask for sells; the account's profit is
  computed from per-symbol sums (``Exposure``), so it may differ by rounding cents from the
  sum of the positions' rounded profits;
- margin ``lots * contract / leverage`` in the margin currency (FOREX), or
  ``lots * contract * price / leverage`` (CFD-leverage), at the ask for buys and the bid for
  sells; on a hedging account the overlapping volume of a symbol is charged at
  ``margin_hedged / contract_size`` of the full rate on each leg;
- equity = balance + credit + profit; free margin = equity - margin; margin level =
  equity / margin * 100, or 0 without margin.

Amounts are converted to the account currency through the symbol itself when it quotes that
currency pair (so ``order_calc_*`` use the price they are given), otherwise through the
current quote of a pair that does (bid to multiply, ask to divide), crossing via USD if
needed. Money is rounded to the currency's digits where MetaTrader rounds it: each position's
profit, each deal's profit, the balance and the margin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from gtw_server.terminal.sim.prices import PriceFeed, Quote
from gtw_server.terminal.sim.symbols import SymbolSpec
from protocol import mt5_constants as c

__all__ = ["Account", "Exposure", "Figures", "Position", "Valuation", "exposure_after"]

_CURRENCY_DIGITS: Final[Mapping[str, int]] = {"JPY": 0}  # 2 for every other currency


class Account(NamedTuple):
    """The stored part of the account; everything else in ``AccountInfo`` is computed."""

    login: int
    name: str
    server: str
    company: str
    currency: str
    leverage: int
    margin_mode: int
    trade_mode: int
    balance: float
    credit: float


class Position(NamedTuple):
    """The stored part of an open position; its current price and profit are computed."""

    ticket: int
    time_msc: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    swap: float
    symbol: str
    comment: str
    external_id: str


class Exposure(NamedTuple):
    """The open positions of one symbol, summed: all the account figures need of them, so
    they cost the same with ten positions or ten thousand.

    Sums are rounded after each change so that opening and closing leaves exact zeros.
    """

    buy_volume: float = 0.0
    buy_cost: float = 0.0  # sum of volume * price_open
    sell_volume: float = 0.0
    sell_cost: float = 0.0
    swap: float = 0.0

    def changed(self, position: Position, sign: int) -> Exposure:
        """With ``position`` added (``sign`` 1) or removed (-1)."""
        volume = sign * position.volume
        cost = volume * position.price_open
        swap = round(self.swap + sign * position.swap, 10)
        if position.type == c.POSITION_TYPE_BUY:
            buy_volume, buy_cost = (
                round(self.buy_volume + volume, 10),
                round(self.buy_cost + cost, 10),
            )
            return Exposure(buy_volume, buy_cost, self.sell_volume, self.sell_cost, swap)
        sell_volume, sell_cost = (
            round(self.sell_volume + volume, 10),
            round(self.sell_cost + cost, 10),
        )
        return Exposure(self.buy_volume, self.buy_cost, sell_volume, sell_cost, swap)


_NOTHING: Final = Exposure()


class Figures(NamedTuple):
    """The money figures of an account as ``AccountInfo`` and ``OrderCheckResult`` show them."""

    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float


class Valuation:
    """Values positions and orders of one account at the feed's current quotes."""

    def __init__(
        self, specs: Mapping[str, SymbolSpec], feed: PriceFeed, *, currency: str, leverage: int
    ) -> None:
        self._specs = specs
        self._feed = feed
        self._leverage = leverage
        self.digits = _CURRENCY_DIGITS.get(currency, 2)
        pairs: dict[tuple[str, str], str] = {}
        for spec in specs.values():  # the first pair of two currencies converts them
            if spec.calc_mode == c.SYMBOL_CALC_MODE_FOREX:
                pairs.setdefault((spec.currency_base, spec.currency_profit), spec.name)
        # For each currency the symbols use: the pairs that convert it to the account
        # currency, each with True when the rate is divided by (the account currency is base).
        self._routes: dict[str, tuple[tuple[str, bool], ...]] = {}
        for spec in specs.values():
            for ccy in (spec.currency_profit, spec.currency_margin):
                self._routes[ccy] = _route(pairs, ccy, currency)

    def rate(self, currency: str, spec: SymbolSpec, price: float) -> float:
        """Units of account currency for one unit of ``currency``; ``spec`` is priced at
        ``price`` when it is itself the conversion pair."""
        rate = 1.0
        for name, divide in self._routes[currency]:
            if name == spec.name:
                pair_price = price
            else:
                quote = self._feed.quote(name)
                pair_price = quote.ask if divide else quote.bid
            rate = rate / pair_price if divide else rate * pair_price
        return rate

    def profit(
        self, spec: SymbolSpec, order_type: int, volume: float, price_open: float, price: float
    ) -> float:
        """Profit of ``volume`` lots opened at ``price_open`` and valued at ``price``."""
        move = price - price_open if order_type % 2 == c.ORDER_TYPE_BUY else price_open - price
        return self._money(spec, move * volume, price)

    def _money(self, spec: SymbolSpec, lots_move: float, price: float) -> float:
        """A price move times lots, in the account currency, rounded as MetaTrader does."""
        amount = lots_move * spec.contract_size * self.rate(spec.currency_profit, spec, price)
        return round(amount, self.digits)

    def margin(self, spec: SymbolSpec, volume: float, price: float) -> float:
        """Margin of ``volume`` lots at ``price``, unrounded (sums are rounded)."""
        amount = volume * spec.contract_size / self._leverage
        if spec.calc_mode == c.SYMBOL_CALC_MODE_CFDLEVERAGE:
            amount *= price
        return amount * self.rate(spec.currency_margin, spec, price)

    def tick_value(self, spec: SymbolSpec) -> float:
        """Value of one tick of one lot in the account currency, at the current bid."""
        bid = self._feed.quote(spec.name).bid
        return spec.point * spec.contract_size * self.rate(spec.currency_profit, spec, bid)

    def current(self, position: Position) -> tuple[float, float]:
        """``(price_current, profit)`` of an open position: bid for buys, ask for sells."""
        spec = self._specs[position.symbol]
        quote = self._feed.quote(position.symbol)
        price = quote.bid if position.type == c.POSITION_TYPE_BUY else quote.ask
        return price, self.profit(spec, position.type, position.volume, position.price_open, price)

    def figures(self, account: Account, exposure: Mapping[str, Exposure]) -> Figures:
        """The account's money figures with this exposure (not necessarily the current one:
        ``order_check`` asks about the positions an order would leave)."""
        profit = margin = 0.0
        for symbol, held in exposure.items():
            spec, quote = self._specs[symbol], self._feed.quote(symbol)
            # Each side at once: the sum of (price - open) * lots is price * lots - cost.
            profit += self._money(spec, held.buy_volume * quote.bid - held.buy_cost, quote.bid)
            profit += self._money(spec, held.sell_cost - held.sell_volume * quote.ask, quote.ask)
            profit += held.swap
            margin += self._symbol_margin(spec, quote, held.buy_volume, held.sell_volume)
        digits = self.digits
        margin, profit = round(margin, digits), round(profit, digits)
        equity = round(account.balance + account.credit + profit, digits)
        return Figures(
            balance=account.balance,
            credit=account.credit,
            profit=profit,
            equity=equity,
            margin=margin,
            margin_free=round(equity - margin, digits),
            margin_level=equity / margin * 100 if margin else 0.0,
        )

    def _symbol_margin(self, spec: SymbolSpec, quote: Quote, buy: float, sell: float) -> float:
        hedged = min(buy, sell)
        hedged_margin = (
            (self.margin(spec, hedged, quote.ask) + self.margin(spec, hedged, quote.bid))
            * spec.margin_hedged
            / spec.contract_size
        )
        if buy >= sell:
            return hedged_margin + self.margin(spec, buy - hedged, quote.ask)
        return hedged_margin + self.margin(spec, sell - hedged, quote.bid)


def exposure_after(
    exposure: Mapping[str, Exposure], removed: Position | None, added: Position | None
) -> dict[str, Exposure]:
    """``exposure`` with one position changed: ``removed`` taken out, ``added`` put in (either
    may be None); a symbol left with nothing is dropped."""
    result = dict(exposure)
    for position, sign in ((removed, -1), (added, 1)):
        if position is not None:
            held = result.get(position.symbol, _NOTHING).changed(position, sign)
            if any(held):
                result[position.symbol] = held
            else:
                del result[position.symbol]
    return result


def _route(
    pairs: Mapping[tuple[str, str], str], source: str, target: str
) -> tuple[tuple[str, bool], ...]:
    """The pairs that convert ``source`` into ``target``: none, one, or two via USD."""
    if source == target:
        return ()
    if (source, target) in pairs:
        return ((pairs[source, target], False),)
    if (target, source) in pairs:
        return ((pairs[target, source], True),)
    if "USD" not in (source, target):
        return _route(pairs, source, "USD") + _route(pairs, "USD", target)
    raise ValueError(f"no symbol converts {source} into {target}")
