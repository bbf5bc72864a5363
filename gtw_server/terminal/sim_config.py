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

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["SimConfig"]

Rate = Annotated[float, Meta(ge=0, le=1)]
Seconds = Annotated[float, Meta(ge=0, le=10 * 365 * 86400)]


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the simulated terminal behaves. The defaults are a ready USD demo account.

    The account fields (``login`` to ``trade_mode``) seed a *new* state file; a terminal that
    opens an existing file keeps the account stored there.

    Fault switches (documented here, implemented by the full-depth simulator; the terminal
    refuses a non-default value until then rather than silently ignoring it):

    - ``order_latency_ms``: how long ``order_send`` takes after the fill is committed,
      spent holding the GIL (as the real binary does) unless ``order_latency_holds_gil`` is off.
    - ``hang_on_order``: the Nth ``order_send`` (1-based) commits its fill, then never returns.
    - ``disconnect_at_s`` / ``disconnect_for_s``: the terminal goes away that many seconds after
      start, and comes back after the given time.
    - ``requote_rate`` / ``reject_rate``: the share of orders answered with 10004 / 10006.
    - ``always_open``: markets never close; ``False`` means real sessions and weekends.
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
    always_open: bool = True
    order_latency_ms: Annotated[float, Meta(ge=0, le=600_000)] = 0.0
    order_latency_holds_gil: bool = True
    hang_on_order: Annotated[int, Meta(ge=0)] = 0
    disconnect_at_s: Seconds | None = None
    disconnect_for_s: Seconds = 0.0
    requote_rate: Rate = 0.0
    reject_rate: Rate = 0.0

    def __post_init__(self) -> None:
        # msgspec checks constraints only when decoding or converting; check each field the
        # same way here so that building the object in code is checked too.
        for field in msgspec.structs.fields(self):
            try:
                msgspec.convert(getattr(self, field.name), field.type)
            except msgspec.ValidationError as exc:
                raise msgspec.ValidationError(f"{exc} - at `$.{field.name}`") from None
