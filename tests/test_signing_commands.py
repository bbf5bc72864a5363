"""Risk signatures of the order-life-cycle commands (PLACE, MODIFY_POSITION, MODIFY_ORDER,
CANCEL, CLOSE_BY), and what each command's ``problem()`` refuses.

Their canonical text is v1's twelve lines with three more before ts_ms: stoplimit (``%.8f``),
expiration (``GTC``, ``DAY`` or epoch seconds) and by (a ticket). The expected texts below are
written out by hand and their MACs computed here with ``hmac``; the worked examples' digests
were computed outside Python (``openssl dgst -sha256 -hmac``), so the docs can quote them.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Cancel,
    Close,
    CloseBy,
    ErrorCode,
    Halt,
    ModifyOrder,
    ModifyPosition,
    Open,
    PendingType,
    Ping,
    Place,
    Resume,
    Side,
    SignatureInvalid,
    canonical,
    decode_request,
    encode,
    secret_key,
    sign,
    signature,
    verify,
)

PROPERTY: Final = settings(max_examples=150, deadline=None)
KEY: Final = secret_key("correct horse battery staple")
TS: Final = 1_700_000_000_000  # ms
LifeCycle = Place | ModifyPosition | ModifyOrder | Cancel | CloseBy


def mac(key: bytes, text: bytes) -> str:
    return hmac.new(key, text, hashlib.sha256).hexdigest()


# -- the worked examples (docs) ---------------------------------------------------------------

PLACE: Final = Place(
    uuid="plc-0001",
    timestamp=1_700_000_000.0,
    symbol="EURUSD",
    type=PendingType.BUY_STOP_LIMIT,
    volume=0.1,
    price=1.085,
    stoplimit=1.084,
    sl=1.08,
    tp=1.095,
    expiration=1_700_086_400,
    magic=7,  # not signed
    comment="breakout",  # not signed
)
PLACE_TEXT: Final = (
    b"v1\nplc-0001\nPLACE\nEURUSD\nBUY_STOP_LIMIT\n0.10000000\n1.08500000\n1.08000000\n"
    b"1.09500000\n\n\n1.08400000\n1700086400\n\n1700000000000"
)
MODIFY_POSITION: Final = ModifyPosition(
    uuid="mdp-0001", timestamp=1_700_000_000.0, ticket=123456789, sl=1.081, tp=0.0
)
MODIFY_POSITION_TEXT: Final = (
    b"v1\nmdp-0001\nMODIFY_POSITION\n\n\n\n\n1.08100000\n0.00000000\n\n123456789\n\n\n\n"
    b"1700000000000"
)
MODIFY_ORDER: Final = ModifyOrder(
    uuid="mdo-0001",
    timestamp=1_700_000_000.0,
    ticket=123456790,
    price=1.086,
    stoplimit=1.085,
    expiration="DAY",
)
MODIFY_ORDER_TEXT: Final = (
    b"v1\nmdo-0001\nMODIFY_ORDER\n\n\n\n1.08600000\n\n\n\n123456790\n1.08500000\nDAY\n\n"
    b"1700000000000"
)
CANCEL: Final = Cancel(uuid="cnl-0001", timestamp=1_700_000_000.0, ticket=123456790)
CANCEL_TEXT: Final = b"v1\ncnl-0001\nCANCEL\n\n\n\n\n\n\n\n123456790\n\n\n\n1700000000000"
CLOSE_BY: Final = CloseBy(
    uuid="clb-0001", timestamp=1_700_000_000.0, ticket=123456789, by=123456791
)
CLOSE_BY_TEXT: Final = (
    b"v1\nclb-0001\nCLOSE_BY\n\n\n\n\n\n\n\n123456789\n\n\n123456791\n1700000000000"
)

WORKED: Final[list[tuple[LifeCycle, bytes, str]]] = [
    (PLACE, PLACE_TEXT, "7a75eff8f9e683779027916aca518edc54b2f0ea1b3c895e2ee7a6e0fc861f30"),
    (
        MODIFY_POSITION,
        MODIFY_POSITION_TEXT,
        "fccf5f424797c05c984b701dd5ce03a7814136eefaa4b1efc581001bb0a87c5d",
    ),
    (
        MODIFY_ORDER,
        MODIFY_ORDER_TEXT,
        "11ca3dd017d77f1072661cabcccd69c45de6f832a013f0a39cef4179e49a5c5c",
    ),
    (CANCEL, CANCEL_TEXT, "5a57d326761d0ee1bfc24384e3f8eb52874cfaef5ebe225adecd769d34ac7a2c"),
    (CLOSE_BY, CLOSE_BY_TEXT, "508c6c3dd6fd451b1e8a18e1563a884d3b52ed98d57fbcb1087b9f0dd94420be"),
]
WORKED_IDS: Final = [request.action for request, _, _ in WORKED]

# -- more known answers: fields absent, the other expirations, every line used --------------

KNOWN: Final[list[tuple[LifeCycle, int, bytes]]] = [
    (
        Place(
            uuid="p2",
            timestamp=0.0,
            symbol="GBPUSD",
            type=PendingType.SELL_LIMIT,
            volume=1.0,
            price=1.27,
        ),
        0,
        b"v1\np2\nPLACE\nGBPUSD\nSELL_LIMIT\n1.00000000\n1.27000000\n\n\n\n\n\n\n\n0",
    ),
    (
        Place(
            uuid="p3",
            timestamp=0.0,
            symbol="XAUUSD",
            type="SELL_STOP",  # type: ignore[arg-type]  # a plain string
            volume=0.25,
            price=2034.5,
            sl=0.0,
            expiration="GTC",
        ),
        42,
        b"v1\np3\nPLACE\nXAUUSD\nSELL_STOP\n0.25000000\n2034.50000000\n0.00000000\n\n\n\n\nGTC\n"
        b"\n42",
    ),
    (
        ModifyPosition(uuid="m2", timestamp=0.0, ticket=7, tp=1.2),
        TS,
        b"v1\nm2\nMODIFY_POSITION\n\n\n\n\n\n1.20000000\n\n7\n\n\n\n1700000000000",
    ),
    (
        ModifyOrder(
            uuid="m3",
            timestamp=0.0,
            ticket=8,
            price=1.1,
            stoplimit=1.09,
            sl=1.05,
            tp=1.2,
            expiration=1_700_003_600,
        ),
        TS,
        b"v1\nm3\nMODIFY_ORDER\n\n\n\n1.10000000\n1.05000000\n1.20000000\n\n8\n1.09000000\n"
        b"1700003600\n\n1700000000000",
    ),
    (
        ModifyOrder(uuid="m4", timestamp=0.0, ticket=8, expiration="GTC"),
        TS,
        b"v1\nm4\nMODIFY_ORDER\n\n\n\n\n\n\n\n8\n\nGTC\n\n1700000000000",
    ),
]


@pytest.mark.parametrize(("request_", "text", "hex_"), WORKED, ids=WORKED_IDS)
def test_worked_examples_canonical_text_and_signature(
    request_: LifeCycle, text: bytes, hex_: str
) -> None:
    assert canonical(request_, TS) == text
    assert text.count(b"\n") == 14  # fifteen lines
    assert mac(KEY, text) == hex_
    expected = f"RISK_PASS:{hex_}:{TS}"
    assert signature(KEY, request_, TS) == expected
    signed = sign(KEY, request_, TS)
    assert signed.risk_signature == expected
    assert verify(KEY, signed, now_ms=TS) == TS


@pytest.mark.parametrize(("request_", "ts_ms", "text"), KNOWN)
def test_canonical_is_the_literal_text(request_: LifeCycle, ts_ms: int, text: bytes) -> None:
    assert canonical(request_, ts_ms) == text
    assert text.count(b"\n") == 14
    signed = sign(KEY, request_, ts_ms)
    assert signed.risk_signature == f"RISK_PASS:{mac(KEY, text)}:{ts_ms}"
    assert verify(KEY, signed, now_ms=ts_ms) == ts_ms


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (
            Open(
                uuid="ord-0001", timestamp=0.0, symbol="EURUSD", type=Side.BUY, volume=0.1, sl=1.05
            ),
            b"v1\nord-0001\nOPEN\nEURUSD\nBUY\n0.10000000\n\n1.05000000\n\n\n\n1700000000000",
        ),
        (
            Close(uuid="cls-7", timestamp=0.0, ticket=987654321, volume=0.05, deviation=10),
            b"v1\ncls-7\nCLOSE\n\n\n0.05000000\n\n\n\n10\n987654321\n1700000000000",
        ),
        (
            Halt(uuid="h", timestamp=0.0, reason="drill"),
            b"v1\nh\nHALT\n\n\n\n\n\n\n\n\n1700000000000",
        ),
        (Resume(uuid="r", timestamp=0.0), b"v1\nr\nRESUME\n\n\n\n\n\n\n\n\n1700000000000"),
        (Ping(uuid="p", timestamp=0.0), b"v1\np\nPING\n\n\n\n\n\n\n\n\n1700000000000"),
    ],
    ids=["OPEN", "CLOSE", "HALT", "RESUME", "PING"],
)
def test_the_twelve_lines_of_v1_are_unchanged(
    request_: Open | Close | Halt | Resume | Ping, text: bytes
) -> None:
    assert canonical(request_, TS) == text
    assert text.count(b"\n") == 11  # twelve lines, no stoplimit, expiration or by


# -- tampering ------------------------------------------------------------------------------

TAMPERS: Final[list[tuple[LifeCycle, str, Any]]] = [
    (PLACE, "uuid", "plc-0002"),
    (PLACE, "symbol", "EURUSD.m"),
    (PLACE, "type", PendingType.SELL_STOP_LIMIT),
    (PLACE, "type", PendingType.BUY_STOP),
    (PLACE, "volume", 1.0),
    (PLACE, "price", 1.0851),
    (PLACE, "stoplimit", 1.0841),
    (PLACE, "stoplimit", None),
    (PLACE, "sl", 1.07),
    (PLACE, "sl", 0.0),
    (PLACE, "sl", None),
    (PLACE, "tp", 1.2),
    (PLACE, "tp", None),
    (PLACE, "expiration", 1_700_086_401),
    (PLACE, "expiration", "GTC"),
    (PLACE, "expiration", "DAY"),
    (PLACE, "expiration", None),
    (MODIFY_POSITION, "uuid", "mdp-0002"),
    (MODIFY_POSITION, "ticket", 123456788),
    (MODIFY_POSITION, "sl", 1.082),
    (MODIFY_POSITION, "sl", 0.0),
    (MODIFY_POSITION, "sl", None),  # "leave it" is not "set it"
    (MODIFY_POSITION, "tp", 1.1),
    (MODIFY_POSITION, "tp", None),  # 0 removes the level; absent keeps it
    (MODIFY_ORDER, "uuid", "mdo-0002"),
    (MODIFY_ORDER, "ticket", 123456791),
    (MODIFY_ORDER, "price", 1.0861),
    (MODIFY_ORDER, "price", None),
    (MODIFY_ORDER, "stoplimit", 1.0),
    (MODIFY_ORDER, "stoplimit", None),
    (MODIFY_ORDER, "sl", 1.08),
    (MODIFY_ORDER, "tp", 0.0),
    (MODIFY_ORDER, "expiration", "GTC"),
    (MODIFY_ORDER, "expiration", 1_700_086_400),
    (MODIFY_ORDER, "expiration", None),
    (CANCEL, "uuid", "cnl-0002"),
    (CANCEL, "ticket", 123456791),
    (CANCEL, "ticket", 12345679),
    (CLOSE_BY, "uuid", "clb-0002"),
    (CLOSE_BY, "ticket", 123456788),
    (CLOSE_BY, "by", 123456792),
]


def _tamper_id(case: tuple[LifeCycle, str, Any]) -> str:
    request, field, value = case
    return f"{request.action}-{field}-{value}"


@pytest.mark.parametrize(("base", "field", "value"), TAMPERS, ids=map(_tamper_id, TAMPERS))
def test_changing_what_executes_breaks_the_signature(
    base: LifeCycle, field: str, value: Any
) -> None:
    signed = sign(KEY, base, TS)
    assert verify(KEY, signed, now_ms=TS) == TS
    tampered = msgspec.structs.replace(signed, **{field: value})
    with pytest.raises(SignatureInvalid) as info:
        verify(KEY, tampered, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


def test_close_by_with_its_tickets_swapped_is_another_request() -> None:
    signed = sign(KEY, CLOSE_BY, TS)
    swapped = msgspec.structs.replace(signed, ticket=CLOSE_BY.by, by=CLOSE_BY.ticket)
    with pytest.raises(SignatureInvalid):
        verify(KEY, swapped, now_ms=TS)


@pytest.mark.parametrize(
    ("signed_for", "replayed_on"),
    [
        (
            Close(uuid="x-1", timestamp=0.0, ticket=123456790),
            Cancel(uuid="x-1", timestamp=0.0, ticket=123456790),
        ),
        (
            Cancel(uuid="x-1", timestamp=0.0, ticket=123456790),
            Close(uuid="x-1", timestamp=0.0, ticket=123456790),
        ),
        (
            ModifyPosition(uuid="x-2", timestamp=0.0, ticket=5, sl=1.0, tp=2.0),
            ModifyOrder(uuid="x-2", timestamp=0.0, ticket=5, sl=1.0, tp=2.0),
        ),
        (
            CloseBy(uuid="x-3", timestamp=0.0, ticket=5, by=6),
            Close(uuid="x-3", timestamp=0.0, ticket=5),
        ),
        (
            Open(uuid="x-4", timestamp=0.0, symbol="EURUSD", type=Side.BUY, volume=0.1, price=1.08),
            Place(
                uuid="x-4",
                timestamp=0.0,
                symbol="EURUSD",
                type=PendingType.BUY_LIMIT,
                volume=0.1,
                price=1.08,
            ),
        ),
    ],
    ids=[
        "close-as-cancel",
        "cancel-as-close",
        "position-as-order",
        "close-by-as-close",
        "open-as-place",
    ],
)
def test_a_signature_does_not_carry_over_to_another_command(
    signed_for: Any, replayed_on: Any
) -> None:
    stolen = signature(KEY, signed_for, TS)
    with pytest.raises(SignatureInvalid):
        verify(KEY, msgspec.structs.replace(replayed_on, risk_signature=stolen), now_ms=TS)


@pytest.mark.parametrize(
    "changes", [{"magic": 8}, {"magic": None}, {"comment": "other"}, {"timestamp": 5.0}]
)
def test_a_places_unsigned_fields_leave_the_signature_valid(changes: dict[str, Any]) -> None:
    signed = sign(KEY, PLACE, TS)
    assert verify(KEY, msgspec.structs.replace(signed, **changes), now_ms=TS) == TS


@pytest.mark.parametrize("request_", [r for r, _, _ in WORKED], ids=WORKED_IDS)
def test_signed_commands_survive_the_wire(request_: LifeCycle) -> None:
    decoded = decode_request(encode(sign(KEY, request_, TS)))
    assert type(decoded) is type(request_)
    assert verify(KEY, decoded, now_ms=TS) == TS
    assert canonical(decoded, TS) == canonical(request_, TS)


# -- properties: the text is the fields, each on its line -------------------------------------

LINES: Final = (
    "symbol",
    "type",
    "volume",
    "price",
    "sl",
    "tp",
    "deviation",
    "ticket",
    "stoplimit",
    "expiration",
    "by",
)
NUMBERS: Final = {"volume", "price", "sl", "tp", "stoplimit"}


def expected_canonical(request: LifeCycle, ts_ms: int) -> bytes:
    """The fifteen lines, from whichever of the fields the command has (absent: empty)."""

    def line(name: str) -> str:
        value = getattr(request, name, None)
        if value is None:
            return ""
        if name in NUMBERS:
            return "%.8f" % value
        if isinstance(value, PendingType):
            return value.value
        return "%d" % value if isinstance(value, int) else value

    lines = ["v1", request.uuid, request.action, *map(line, LINES), str(ts_ms)]
    return "\n".join(lines).encode("utf-8")


uuids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
volumes = st.floats(min_value=0, max_value=1_000_000, exclude_min=True)
prices = st.floats(min_value=0, max_value=1e12, exclude_min=True, exclude_max=True)
stops = st.floats(min_value=0, max_value=1e12, exclude_max=True)
tickets = st.integers(min_value=1, max_value=2**63 - 1)
expirations = st.sampled_from(["GTC", "DAY"]) | st.integers(min_value=1, max_value=10**11 - 1)
FIELDS: Final[dict[str, st.SearchStrategy[Any]]] = {
    "uuid": uuids,
    "symbol": st.text(min_size=1, max_size=29),
    "type": st.sampled_from(PendingType),
    "volume": volumes,
    "price": prices,
    "stoplimit": st.none() | prices,
    "sl": st.none() | stops,
    "tp": st.none() | stops,
    "expiration": st.none() | expirations,
    "ticket": tickets,
    "by": tickets,
}
SIGNED: Final[dict[type[LifeCycle], tuple[str, ...]]] = {
    Place: ("uuid", "symbol", "type", "volume", "price", "stoplimit", "sl", "tp", "expiration"),
    ModifyPosition: ("uuid", "ticket", "sl", "tp"),
    ModifyOrder: ("uuid", "ticket", "price", "stoplimit", "sl", "tp", "expiration"),
    Cancel: ("uuid", "ticket"),
    CloseBy: ("uuid", "ticket", "by"),
}


def _optional(kind: type[LifeCycle], name: str) -> st.SearchStrategy[Any]:
    strategy = FIELDS[name]
    return st.none() | strategy if kind is ModifyOrder and name == "price" else strategy


commands: st.SearchStrategy[LifeCycle] = st.one_of(
    *(
        st.builds(kind, timestamp=st.just(0.0), **{n: _optional(kind, n) for n in names})
        for kind, names in SIGNED.items()
    )
)
timestamps_ms = st.integers(min_value=0, max_value=10**15 - 1)


@PROPERTY
@given(request=commands, ts_ms=timestamps_ms)
def test_canonical_has_every_field_on_its_line(request: LifeCycle, ts_ms: int) -> None:
    text = expected_canonical(request, ts_ms)
    assert canonical(request, ts_ms) == text
    assert signature(KEY, request, ts_ms) == f"RISK_PASS:{mac(KEY, text)}:{ts_ms}"


@PROPERTY
@given(request=commands, ts_ms=timestamps_ms, data=st.data())
def test_changing_one_signed_field_fails(
    request: LifeCycle, ts_ms: int, data: st.DataObject
) -> None:
    kind = type(request)
    field = data.draw(st.sampled_from(SIGNED[kind]), label="field")
    value = data.draw(_optional(kind, field), label="value")
    signed = sign(KEY, request, ts_ms)
    tampered = msgspec.structs.replace(signed, **{field: value})
    if expected_canonical(tampered, ts_ms) == expected_canonical(request, ts_ms):
        assert verify(KEY, tampered, now_ms=ts_ms) == ts_ms  # the same order, to 8 decimals
    else:
        with pytest.raises(SignatureInvalid):
            verify(KEY, tampered, now_ms=ts_ms)


# -- problem(): the combinations that make no request ---------------------------------------


def _place(kind: PendingType | str, stoplimit: float | None) -> Place:
    return Place(
        uuid="p",
        timestamp=0.0,
        symbol="EURUSD",
        type=kind,  # type: ignore[arg-type]  # a plain string too
        volume=0.1,
        price=1.08,
        stoplimit=stoplimit,
    )


@pytest.mark.parametrize("kind", [k for k in PendingType if k.stop_limit])
def test_a_stop_limit_place_needs_its_stoplimit(kind: PendingType) -> None:
    problem = _place(kind, None).problem()
    assert problem is not None and "needs stoplimit" in problem and str(kind) in problem
    assert _place(kind, 1.079).problem() is None
    assert _place(kind.value, None).problem() == problem  # spelled as a plain string


@pytest.mark.parametrize("kind", [k for k in PendingType if not k.stop_limit])
def test_only_a_stop_limit_place_takes_a_stoplimit(kind: PendingType) -> None:
    problem = _place(kind, 1.079).problem()
    assert problem is not None and "stoplimit belongs to" in problem and str(kind) in problem
    assert _place(kind, None).problem() is None


def test_modify_position_must_change_sl_or_tp() -> None:
    problem = ModifyPosition(uuid="m", timestamp=0.0, ticket=1).problem()
    assert problem is not None and "sl, tp or both" in problem
    changes: list[dict[str, Any]] = [
        {"sl": 1.0},
        {"tp": 2.0},
        {"sl": 0.0},  # 0 removes a level: a change
        {"tp": 0.0},
        {"sl": 1.0, "tp": 2.0},
    ]
    for change in changes:
        assert ModifyPosition(uuid="m", timestamp=0.0, ticket=1, **change).problem() is None


def test_modify_order_must_change_something() -> None:
    nothing = ModifyOrder(uuid="m", timestamp=0.0, ticket=1)
    problem = nothing.problem()
    assert problem is not None
    for name in ("price", "stoplimit", "sl", "tp", "expiration"):
        assert name in problem
    changes: list[dict[str, Any]] = [
        {"price": 1.1},
        {"stoplimit": 1.09},
        {"sl": 0.0},
        {"tp": 0.0},
        {"expiration": "GTC"},
        {"expiration": "DAY"},
        {"expiration": 1_700_086_400},
    ]
    for change in changes:
        assert ModifyOrder(uuid="m", timestamp=0.0, ticket=1, **change).problem() is None


def test_cancel_is_always_a_request() -> None:
    assert Cancel(uuid="c", timestamp=0.0, ticket=1).problem() is None


def test_close_by_refuses_a_position_closed_by_itself() -> None:
    problem = CloseBy(uuid="c", timestamp=0.0, ticket=77, by=77).problem()
    assert problem is not None and "77" in problem and "by itself" in problem
    assert CloseBy(uuid="c", timestamp=0.0, ticket=77, by=78).problem() is None


def test_problem_is_judged_after_decoding_a_signed_request() -> None:
    # A well-formed, validly signed request can still make no request: the gateway asks
    # problem() after decoding (INVALID_REQUEST), whatever the signature says.
    bad = sign(KEY, CloseBy(uuid="c", timestamp=0.0, ticket=77, by=77), TS)
    decoded = decode_request(encode(bad))
    assert isinstance(decoded, CloseBy)
    assert verify(KEY, decoded, now_ms=TS) == TS
    assert decoded.problem() is not None
