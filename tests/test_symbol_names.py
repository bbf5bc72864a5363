"""``gtw_server.symbol_names``: which of a broker's names is a strategy's name plus a suffix."""

from __future__ import annotations

import pytest

from gtw_server.symbol_names import close_names
from protocol.symbol_names import same_symbol, suffixed


@pytest.mark.parametrize(
    ("name", "broker", "is_it"),
    [
        ("EURUSD", "EURUSD.m", True),
        ("EURUSD", "EURUSD-ECN", True),
        ("EURUSD", "EURUSD_i", True),
        ("EURUSD", "EURUSD#", True),
        ("EURUSD", "EURUSD+", True),
        ("EURUSD", "EURUSDm", True),
        ("EURUSD", "EURUSDpro", True),
        ("EURUSD", "EURUSDc2", True),
        ("US30", "US30.cash", True),
        ("EURUSD", "EURUSD", False),  # the name itself is no suffixed name
        ("EUR", "EURUSD", False),  # capitals: another instrument
        ("US30", "US300", False),  # digits alone: another instrument
        ("EURUSD", "EURUSDX", False),
        ("GER40", "ger40.cash", False),  # case matters, as in the terminal
        ("EURUSD", "EURUSDprofessional", False),  # a word of nine letters is a name
    ],
)
def test_a_suffix_is_a_separator_and_anything_or_a_short_lower_case_word(
    name: str, broker: str, is_it: bool
) -> None:
    assert suffixed(name, [broker]) == ([broker] if is_it else [])


def test_a_found_order_is_the_requests_by_its_name_its_map_or_its_suffix() -> None:
    mapped = {"GOLD": "XAUUSD.m", "EURUSD": "EURUSD.raw"}
    assert same_symbol("GOLD", "XAUUSD.m", mapped)
    assert same_symbol("EURUSD", "EURUSD.raw", mapped)
    assert not same_symbol("EURUSD", "EURUSD.m", mapped)  # the map is what it trades
    assert same_symbol("GBPUSD", "GBPUSD.m", mapped) and same_symbol("GBPUSD", "GBPUSD", {})
    assert not same_symbol("GBPUSD", "GBPJPY", {})


def test_close_names_put_the_same_name_with_another_suffix_first() -> None:
    known = ["US500.cash", "US30.cash", "GER40.cash", "EURUSD.m"]
    assert close_names("US30.m", known) == ["US30.cash"]
    assert close_names("EURUSDX", ["EURUSD", "EURJPY"]) == ["EURUSD"]
