"""Refusals that say how to fix the order: a volume the symbol does not take."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gtw_server.terminal import SimTerminal
from gtw_server.terminal.adapter import CloseOrder, OpenOrder, TerminalAdapter
from inf_bridge import Bridge, OrderRejected
from protocol import Side


@pytest.fixture
def mt5() -> SimTerminal:
    return SimTerminal()


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
    ("symbol", "volume", "asked", "takes"),
    [
        ("EURUSD", 0.013, "0.013", "0.01 to 500 lots in steps of 0.01"),
        ("US500", 0.05, "0.05", "0.1 to 1000 lots in steps of 0.1"),
        ("XAUUSD", 250.0, "250", "0.01 to 100 lots in steps of 0.01"),
    ],
    ids=["off-step", "below-min", "above-max"],
)
def test_an_invalid_volume_names_what_was_asked_and_the_symbols_limits(
    adapter: TerminalAdapter, symbol: str, volume: float, asked: str, takes: str
) -> None:
    outcome = adapter.open(buy(symbol, volume))
    assert (outcome.status, outcome.error_code) == ("REJECTED", "MT5_REJECTED")
    assert (outcome.retcode, outcome.comment) == (10014, "Invalid volume")
    assert outcome.error_msg == (
        "the terminal rejected the order: 10014 Invalid volume: "
        f"{asked} lots of {symbol}; the symbol takes {takes}"
    )


def test_an_invalid_partial_close_names_the_limits_without_asking_the_terminal_again(
    mt5: SimTerminal, adapter: TerminalAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limits come with the filling mode, looked up once per symbol: neither a fill nor a
    # refusal costs another symbol_info. Other refusals keep their words.
    opened = adapter.open(buy("EURUSD", 0.1))
    assert opened.ticket is not None
    made = calls_to(mt5, monkeypatch, "symbol_info", "symbols_get", "order_send")
    outcome = adapter.close(CloseOrder(ticket=opened.ticket, volume=0.015, comment="#c"))
    assert (outcome.error_code, outcome.retcode) == ("MT5_REJECTED", 10014)
    assert outcome.error_msg == (
        "the terminal rejected the order: 10014 Invalid volume: 0.015 lots of EURUSD; "
        "the symbol takes 0.01 to 500 lots in steps of 0.01"
    )
    assert made == ["order_send"]
    assert adapter.close(CloseOrder(ticket=opened.ticket, volume=0.05, comment="#c")).ticket
    assert made == ["order_send", "order_send"]
    too_dear = adapter.open(buy("XAUUSD", 100.0))  # a valid volume, but 235,000 USD of margin
    assert too_dear.error_msg == "the terminal rejected the order: 10019 No money"


async def test_the_limits_reach_the_client_through_a_gateway(bridge: Bridge) -> None:
    with pytest.raises(OrderRejected) as volume:
        await bridge.send_order("EURUSD", "BUY", 0.013)
    assert (volume.value.error_code, volume.value.retcode) == ("MT5_REJECTED", 10014)
    assert volume.value.message == (
        "the terminal rejected the order: 10014 Invalid volume: 0.013 lots of EURUSD; "
        "the symbol takes 0.01 to 500 lots in steps of 0.01"
    )
    assert await bridge.get_positions() == []
