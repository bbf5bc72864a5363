"""Refusals that say how to fix the order: a volume the symbol does not take, a symbol the
terminal does not know."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from gtw_server.adapter import CloseOrder, OpenOrder, TerminalAdapter
from gtw_server.terminal.sim import SimConfig, SimTerminal
from inf_bridge import Bridge, OrderRejected
from protocol import Side


@pytest.fixture
def mt5() -> SimTerminal:
    return SimTerminal(config=SimConfig(always_open=True))


@pytest.fixture
def adapter(mt5: SimTerminal) -> TerminalAdapter:
    adapter = TerminalAdapter(mt5)
    assert adapter.connect().connected
    return adapter


def buy(symbol: str, volume: float) -> OpenOrder:
    return OpenOrder(symbol=symbol, side=Side.BUY, volume=volume, comment="#refusal")


def calls_to(mt5: SimTerminal, monkeypatch: pytest.MonkeyPatch, *names: str) -> list[str]:
    """The names of ``mt5``'s methods among ``names`` called from now on, in order."""
    made: list[str] = []
    for name in names:
        method: Callable[..., object] = getattr(mt5, name)

        def recording(
            *args: object, _name: str = name, _method: Callable[..., object] = method
        ) -> object:
            made.append(_name)
            return _method(*args)

        monkeypatch.setattr(mt5, name, recording)
    return made


@pytest.mark.parametrize(
    ("symbol", "volume", "said", "takes"),
    [
        (
            "EURUSD",
            0.013,
            "0.013 lots is not a whole number of steps of 0.01: send 0.01 or 0.02",
            "0.01 to 500 lots in steps of 0.01",
        ),
        (
            "US500",
            0.05,
            "0.05 lots is below the minimum of 0.1",
            "0.1 to 1000 lots in steps of 0.1",
        ),
        (
            "XAUUSD",
            250.0,
            "250 lots is above the maximum of 100",
            "0.01 to 100 lots in steps of 0.01",
        ),
    ],
    ids=["off-step", "below-min", "above-max"],
)
def test_an_invalid_volume_is_refused_before_the_terminal_saying_what_the_symbol_takes(  # noqa: PLR0917
    mt5: SimTerminal,
    adapter: TerminalAdapter,
    monkeypatch: pytest.MonkeyPatch,
    symbol: str,
    volume: float,
    said: str,
    takes: str,
) -> None:
    made = calls_to(mt5, monkeypatch, "order_send")
    outcome = adapter.open(buy(symbol, volume))
    assert (outcome.status, outcome.error_code, outcome.retcode) == (
        "REJECTED",
        "INVALID_VOLUME",
        None,
    )
    assert outcome.error_msg is not None and outcome.error_msg.startswith(said)
    assert outcome.error_msg.endswith(f": {symbol} takes {takes}")
    assert made == []  # nothing was sent


def test_an_invalid_partial_close_is_refused_without_asking_the_terminal(
    mt5: SimTerminal, adapter: TerminalAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limits come with the filling mode, looked up once per symbol: neither a fill nor a
    # refusal costs another symbol_info. Other refusals keep their words.
    opened = adapter.open(buy("EURUSD", 0.1))
    assert opened.ticket is not None
    made = calls_to(mt5, monkeypatch, "symbol_info", "symbols_get", "order_send")
    outcome = adapter.close(CloseOrder(ticket=opened.ticket, volume=0.015, comment="#c"))
    assert (outcome.error_code, outcome.retcode) == ("INVALID_VOLUME", None)
    assert outcome.error_msg == (
        "0.015 lots is not a whole number of steps of 0.01: send 0.01 or 0.02, or ask for "
        'volume_rounding="down": EURUSD takes 0.01 to 500 lots in steps of 0.01'
    )
    assert made == []
    rounded = adapter.close(
        CloseOrder(ticket=opened.ticket, volume=0.015, comment="#c", volume_down=True)
    )
    assert (rounded.volume, rounded.volume_requested) == (0.01, 0.015)
    assert adapter.close(CloseOrder(ticket=opened.ticket, volume=0.05, comment="#c")).ticket
    assert made == ["order_send", "order_send"]
    too_dear = adapter.open(buy("XAUUSD", 100.0))  # a valid volume, but 235,000 USD of margin
    assert too_dear.error_msg == "the terminal rejected the order: 10019 No money"


@pytest.mark.parametrize(
    ("asked", "known", "suggestion"),
    [
        ("EURUSDX", None, "; did you mean EURUSD?"),  # a typo
        ("eurusd", None, "; did you mean EURUSD?"),  # the case
        ("EURUSD.m", None, "; did you mean EURUSD?"),  # a suffix this terminal's names lack
        # A broker whose names all carry a suffix (a name that is one of them plus a suffix is
        # resolved instead: below).
        ("AUDUSDX", ["AUDUSD.m", "AUDCAD.m", "EURUSD.m"], "; did you mean AUDUSD.m?"),
    ],
)
def test_an_unknown_symbol_suggests_the_close_names_the_terminal_knows(
    adapter: TerminalAdapter,
    monkeypatch: pytest.MonkeyPatch,
    asked: str,
    known: list[str] | None,
    suggestion: str,
) -> None:
    if known is not None:
        listing = tuple(SimpleNamespace(name=name) for name in known)
        monkeypatch.setattr(adapter.mt5, "symbols_get", lambda group=None: listing)
    outcome = adapter.open(buy(asked, 0.1))
    assert (outcome.status, outcome.error_code) == ("REJECTED", "MT5_REJECTED")
    assert outcome.error_msg == f"symbol {asked!r} is not known to the terminal{suggestion}"
    assert adapter.mt5.positions_total() == 0


def test_the_symbol_list_is_asked_for_only_to_refuse_and_guesses_nothing_far(
    mt5: SimTerminal, adapter: TerminalAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = calls_to(mt5, monkeypatch, "symbols_get")
    assert adapter.open(buy("GER40", 0.1)).status == "FILLED"  # selected on the way
    assert made == []
    typo = adapter.open(buy("EURUSDX", 0.1))
    assert typo.error_msg == "symbol 'EURUSDX' is not known to the terminal; did you mean EURUSD?"
    assert made == ["symbols_get", "symbols_get"]  # for a suffixed name, then for close ones
    nothing_close = adapter.open(buy("NOSUCH", 0.1))
    assert nothing_close.error_msg == "symbol 'NOSUCH' is not known to the terminal"
    monkeypatch.setattr(mt5, "symbols_get", lambda group=None: None)  # the call failed
    unlisted = adapter.open(buy("EURUSDX", 0.1))
    assert unlisted.error_msg == "symbol 'EURUSDX' is not known to the terminal"


async def test_both_refusals_reach_the_client_through_a_gateway(bridge: Bridge) -> None:
    with pytest.raises(OrderRejected) as volume:
        await bridge.send_order("EURUSD", "BUY", 0.013)
    assert (volume.value.error_code, volume.value.retcode) == ("INVALID_VOLUME", None)
    assert volume.value.message == (
        "0.013 lots is not a whole number of steps of 0.01: send 0.01 or 0.02, or ask for "
        'volume_rounding="down": EURUSD takes 0.01 to 500 lots in steps of 0.01'
    )
    with pytest.raises(OrderRejected) as unknown:
        await bridge.send_order("EURUSDX", "BUY", 0.1)
    assert (unknown.value.error_code, unknown.value.retcode) == ("MT5_REJECTED", None)
    assert unknown.value.message == (
        "symbol 'EURUSDX' is not known to the terminal; did you mean EURUSD?"
    )
    assert await bridge.get_positions() == []


@pytest.fixture
def suffixed_broker() -> TerminalAdapter:
    """A broker whose every symbol ends in ``.m``, with a ``[gateway] symbols`` entry."""
    adapter = TerminalAdapter(
        SimTerminal(config=SimConfig(always_open=True, symbol_suffix=".m")),
        symbols={"GOLD": "XAUUSD.m"},
    )
    assert adapter.connect().connected
    return adapter


def test_a_name_without_the_brokers_suffix_trades_the_brokers_symbol(
    suffixed_broker: TerminalAdapter,
) -> None:
    bought = suffixed_broker.open(buy("EURUSD", 0.1))
    assert (bought.status, bought.resolved) == ("FILLED", "EURUSD.m")
    (position,) = suffixed_broker.mt5.positions_get()
    assert position.symbol == "EURUSD.m"
    exact = suffixed_broker.open(buy("EURUSD.m", 0.1))  # the broker's own name: nothing said
    assert (exact.status, exact.resolved) == ("FILLED", None)
    mapped = suffixed_broker.open(buy("GOLD", 0.01))
    assert (mapped.status, mapped.resolved) == ("FILLED", "XAUUSD.m")


def test_a_name_two_symbols_carry_is_refused_with_both(
    suffixed_broker: TerminalAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = suffixed_broker.mt5.symbols_get()
    extra = (*listed, SimpleNamespace(name="EURUSDpro"))
    monkeypatch.setattr(suffixed_broker.mt5, "symbols_get", lambda group=None: extra)
    outcome = suffixed_broker.open(buy("EURUSD", 0.1))
    assert (outcome.status, outcome.error_code) == ("REJECTED", "SYMBOL_AMBIGUOUS")
    assert outcome.error_msg == (
        "'EURUSD' is not a symbol of this broker, and 2 are it with a suffix: EURUSD.m, "
        "EURUSDpro; name one (or map EURUSD in [gateway] symbols)"
    )
    assert suffixed_broker.mt5.positions_total() == 0
    # A tail of capitals is another symbol, not a suffix.
    assert suffixed_broker.open(buy("EUR", 0.1)).error_code == "MT5_REJECTED"


def test_read_filters_are_remembered_for_the_trade_watchers_look(
    suffixed_broker: TerminalAdapter,
) -> None:
    """``names`` (sent with each look, for GET_POSITIONS answered from it): the map, the names
    resolved, and the filters that select by the name as it is; these last are unsigned, from
    anyone, so only so many are kept. A reconnect forgets all but the map."""
    assert suffixed_broker.names == {"GOLD": "XAUUSD.m"}
    assert suffixed_broker.filter_name("EURUSD") == "EURUSD.m"
    assert suffixed_broker.filter_name("NOPE") == "NOPE"
    assert suffixed_broker.filter_name("GOLD") == "XAUUSD.m"
    assert suffixed_broker.names == {"GOLD": "XAUUSD.m", "EURUSD": "EURUSD.m", "NOPE": "NOPE"}
    for n in range(1_000):
        assert suffixed_broker.filter_name(f"NOPE{n}") == f"NOPE{n}"
    assert len(suffixed_broker.names) == 2 + 256
    assert suffixed_broker.connect().connected
    assert suffixed_broker.names == {"GOLD": "XAUUSD.m"}
