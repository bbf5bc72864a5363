"""``gtw_server.fitting``: prices onto the symbol's tick grid, volumes never guessed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtw_server.fitting import SymbolTerms, VolumeRefused, fit_prices, fit_volume

FX = SymbolTerms(
    filling=0, volume_min=0.01, volume_max=500.0, volume_step=0.01, tick_size=1e-5, digits=5
)
INDEX = SymbolTerms(  # a quarter-point grid, as many index CFDs have
    filling=1, volume_min=0.1, volume_max=50.0, volume_step=0.1, tick_size=0.25, digits=2
)


def test_noise_is_fitted_and_said_and_whole_ticks_are_left_alone() -> None:
    request = {"symbol": "EURUSD", "price": 1.08512, "sl": 1.0849999999, "tp": 0.0}
    fitted, changes = fit_prices(request, FX)
    assert fitted == {"symbol": "EURUSD", "price": 1.08512, "sl": 1.085, "tp": 0.0}
    assert changes == ["sl 1.0849999999 to 1.085"]
    assert request["sl"] == 1.0849999999  # the caller's dict is not changed
    on_grid, none = fit_prices({"price": 5001.25, "stoplimit": 5000.5}, INDEX)
    assert none == [] and on_grid == {"price": 5001.25, "stoplimit": 5000.5}
    snapped, said = fit_prices({"price": 5001.3, "sl": 4990.1}, INDEX)
    assert snapped == {"price": 5001.25, "sl": 4990.0}
    assert said == ["price 5001.3 to 5001.25", "sl 4990.1 to 4990.0"]


def test_a_symbol_without_a_grid_keeps_its_prices() -> None:
    terms = SymbolTerms(
        filling=0, volume_min=1, volume_max=10, volume_step=1, tick_size=0.0, digits=2
    )
    assert fit_prices({"price": 1.23456}, terms) == ({"price": 1.23456}, [])


@given(ticks=st.integers(1, 10**7), noise=st.floats(-0.49, 0.49))
def test_a_fitted_price_is_the_nearest_whole_tick(ticks: int, noise: float) -> None:
    price = (ticks + noise) * FX.tick_size
    fitted, _ = fit_prices({"price": price}, FX)
    assert fitted["price"] == round(ticks * FX.tick_size, 5)
    again, changes = fit_prices(fitted, FX)  # fitting twice changes nothing
    assert again == fitted and changes == []


@pytest.mark.parametrize("volume", [0.01, 0.1, 0.3, 1.0, 2.57, 500.0, 0.1 + 0.2])
def test_volumes_on_the_step_pass_as_they_are(volume: float) -> None:
    assert fit_volume(volume, FX, down=False) == volume
    assert fit_volume(volume, FX, down=True) == volume


@pytest.mark.parametrize(
    ("volume", "down", "said"),
    [
        (0.123, False, "not a whole number of steps of 0.01: send 0.12 or 0.13, or ask for"),
        (0.005, False, "0.005 lots is below the minimum of 0.01"),
        (0.005, True, "0.005 lots is below the minimum of 0.01"),
        (600.0, True, "600 lots is above the maximum of 500"),
        (499.999, False, "send 499.99 or 500, or ask"),
    ],
)
def test_volumes_the_symbol_does_not_take_are_refused_saying_what_to_send(
    volume: float, down: bool, said: str
) -> None:
    with pytest.raises(VolumeRefused) as refused:
        fit_volume(volume, FX, down=down)
    assert said in str(refused.value)


@given(steps=st.integers(1, 10**13))
def test_a_fine_step_takes_every_whole_number_of_steps(steps: int) -> None:
    # A crypto CFD in steps of 1e-8 lots: a double's own precision, not the step's, decides.
    terms = SymbolTerms(
        filling=0, volume_min=1e-8, volume_max=1e5, volume_step=1e-8, tick_size=0.01, digits=2
    )
    volume = round(steps * 1e-8, 8)
    assert fit_volume(volume, terms, down=False) == volume
    assert fit_volume(volume, terms, down=True) == volume


def test_rounding_down_never_rounds_up_and_never_below_the_minimum() -> None:
    assert fit_volume(0.129, FX, down=True) == 0.12
    assert fit_volume(0.35, INDEX, down=True) == 0.3
    terms = SymbolTerms(
        filling=0, volume_min=0.15, volume_max=10, volume_step=0.1, tick_size=0.01, digits=2
    )
    with pytest.raises(VolumeRefused, match=r"rounds down to 0\.1, below the minimum of 0\.15"):
        fit_volume(0.17, terms, down=True)
