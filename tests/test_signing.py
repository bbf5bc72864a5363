"""Tests of ``protocol.signing`` against the "Risk signature" section of PROTOCOL.md.

Expected MACs are computed here, independently, with ``hmac``/``hashlib`` over canonical text
written out literally from the contract; the package is then checked against them. The module
doctest of ``protocol/signing.py`` is collected by pytest on its own (``--doctest-modules``).
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
    DEFAULT_MAX_FUTURE_MS,
    DEFAULT_TTL_MS,
    Close,
    ErrorCode,
    Filling,
    Open,
    PendingType,
    Ping,
    Place,
    ProtocolError,
    Side,
    SignatureError,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
    canonical,
    decode_request,
    encode,
    require_private,
    secret_from_file,
    secret_key,
    sign,
    signature,
    verify,
)

PROPERTY: Final = settings(max_examples=150, deadline=None)

KEY: Final = b"correct horse battery staple"
OTHER_KEY: Final = b"correct horse battery stapler"
TS: Final = 1_700_000_000_000  # ms


def mac(key: bytes, text: bytes) -> str:
    """The contract's ``<hex>``, computed without the package."""
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def expected_canonical(request: Open | Close, ts_ms: int) -> bytes:
    """PROTOCOL.md's canonical text, re-implemented from the prose for the property tests."""

    def number(value: float | None) -> str:
        return "" if value is None else "%.8f" % value

    def integer(value: int | None) -> str:
        return "" if value is None else "%d" % value

    if isinstance(request, Open):
        symbol, side, ticket = request.symbol, request.type.value, None
        price, sl, tp = request.price, request.sl, request.tp
    else:
        symbol, side, ticket = "", "", request.ticket
        price = sl = tp = None
    lines = [
        "v1",
        request.uuid,
        "OPEN" if isinstance(request, Open) else "CLOSE",
        symbol,
        side,
        number(request.volume),
        number(price),
        number(sl),
        number(tp),
        integer(request.deviation),
        integer(ticket),
        str(ts_ms),
    ]
    return "\n".join(lines).encode("utf-8")


# The requests of the known-answer tests.
OPEN_SL: Final = Open(
    uuid="ord-0001",
    timestamp=1_700_000_000.0,
    symbol="EURUSD",
    type=Side.BUY,
    volume=0.1,
    sl=1.05,
)
OPEN_SL_TEXT: Final = (
    b"v1\nord-0001\nOPEN\nEURUSD\nBUY\n0.10000000\n\n1.05000000\n\n\n\n1700000000000"
)

CLOSE_PARTIAL: Final = Close(uuid="cls-7", timestamp=1.0, ticket=987654321, volume=0.05)
CLOSE_PARTIAL_TEXT: Final = b"v1\ncls-7\nCLOSE\n\n\n0.05000000\n\n\n\n\n987654321\n1700000000123"

OPEN_FULL: Final = Open(
    uuid="A_z-9",
    timestamp=1.0,
    symbol="GOLD\u20ac",  # non-ASCII: the canonical text is UTF-8
    type=Side.SELL,
    volume=1.234567891,  # rounds to 8 decimals
    price=2034.5,
    sl=0.0,  # 0 is a value ("no level"), not an absent field
    tp=1999.999999999,
    deviation=0,  # likewise
    magic=77,  # not signed
    comment="not signed",  # not signed
)
OPEN_FULL_TEXT: Final = (
    b"v1\nA_z-9\nOPEN\nGOLD\xe2\x82\xac\nSELL\n1.23456789\n2034.50000000\n0.00000000\n"
    b"2000.00000000\n0\n\n42"
)

CLOSE_WHOLE: Final = Close(uuid="c", timestamp=1.0, ticket=1, deviation=30)
CLOSE_WHOLE_TEXT: Final = b"v1\nc\nCLOSE\n\n\n\n\n\n\n30\n1\n0"

KNOWN_ANSWERS: Final = [
    (OPEN_SL, TS, OPEN_SL_TEXT),
    (CLOSE_PARTIAL, TS + 123, CLOSE_PARTIAL_TEXT),
    (OPEN_FULL, 42, OPEN_FULL_TEXT),
    (CLOSE_WHOLE, 0, CLOSE_WHOLE_TEXT),
]
KNOWN_IDS: Final = ["open-sl", "close-partial", "open-all-fields", "close-whole"]


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("request_", "ts_ms", "text"), KNOWN_ANSWERS, ids=KNOWN_IDS)
def test_canonical_is_the_literal_contract_text(
    request_: Open | Close, ts_ms: int, text: bytes
) -> None:
    assert canonical(request_, ts_ms) == text
    assert text.count(b"\n") == 11  # twelve lines


@pytest.mark.parametrize(("request_", "ts_ms", "text"), KNOWN_ANSWERS, ids=KNOWN_IDS)
def test_signature_known_answer(request_: Open | Close, ts_ms: int, text: bytes) -> None:
    expected = f"RISK_PASS:{mac(KEY, text)}:{ts_ms}"
    assert signature(KEY, request_, ts_ms) == expected
    signed = sign(KEY, request_, ts_ms)
    assert signed.risk_signature == expected
    assert verify(KEY, signed, now_ms=ts_ms) == ts_ms


def test_signature_known_answer_pinned_hex() -> None:
    # Digests computed outside Python (openssl dgst -sha256 -hmac) from the same literal text.
    assert signature(KEY, OPEN_SL, TS) == (
        "RISK_PASS:4170162652c98c105aebbc754031daa2645cf34b17740b8b4d9c7605bba107b4:1700000000000"
    )
    assert signature(b"k", Close(uuid="u", timestamp=0, ticket=1), 0) == (
        "RISK_PASS:39b9936f53dc713aac600343d2543cc027cc0e8f7334024ada73a0501dc186ee:0"
    )


def test_a_signed_ping_has_every_order_field_empty() -> None:
    ping = Ping(uuid="p-1", timestamp=0)
    assert canonical(ping, TS) == b"v1\np-1\nPING\n\n\n\n\n\n\n\n\n1700000000000"
    signed = sign(KEY, ping, TS)
    assert signed.risk_signature == f"RISK_PASS:{mac(KEY, canonical(ping, TS))}:{TS}"
    assert verify(KEY, signed, now_ms=TS) == TS
    with pytest.raises(SignatureInvalid):
        verify(OTHER_KEY, signed, now_ms=TS)
    with pytest.raises(SignatureInvalid):  # a PING's signature is no HALT's
        verify(KEY, decode_request(encode(signed).replace(b'"PING"', b'"HALT"')), now_ms=TS)


def test_sign_returns_a_signed_copy() -> None:
    signed = sign(KEY, OPEN_FULL, TS)
    assert OPEN_FULL.risk_signature is None  # the original is untouched
    assert msgspec.structs.replace(signed, risk_signature=None) == OPEN_FULL
    # Re-signing (a retry, with a fresh ts_ms) ignores the old signature.
    resigned = sign(KEY, signed, TS + 10)
    assert resigned.risk_signature == signature(KEY, OPEN_FULL, TS + 10)
    assert verify(KEY, resigned, now_ms=TS + 10) == TS + 10


@pytest.mark.parametrize(
    "changes",
    [
        {"magic": 1},
        {"magic": None},
        {"comment": "changed"},
        {"comment": None},
        {"timestamp": 123.0},
        {"v": 1},
    ],
)
def test_unsigned_fields_do_not_affect_the_signature(changes: dict[str, Any]) -> None:
    signed = sign(KEY, OPEN_FULL, TS)
    assert verify(KEY, msgspec.structs.replace(signed, **changes), now_ms=TS) == TS


def test_signed_numbers_are_compared_at_8_decimals() -> None:
    # The contract formats volume/price/sl/tp with %.8f: values that agree to 8 decimals
    # share a signature. Pinned so that a change of that rule is a deliberate one.
    signed = sign(KEY, OPEN_SL, TS)
    nearly = msgspec.structs.replace(signed, volume=0.100000001, sl=1.050000004)
    assert verify(KEY, nearly, now_ms=TS) == TS
    different = msgspec.structs.replace(signed, volume=0.10000001)
    with pytest.raises(SignatureInvalid):
        verify(KEY, different, now_ms=TS)


def test_signature_survives_the_wire() -> None:
    for request in (OPEN_SL, OPEN_FULL, CLOSE_PARTIAL, CLOSE_WHOLE):
        decoded = decode_request(encode(sign(KEY, request, TS)))
        assert isinstance(decoded, (Open, Close))
        assert verify(KEY, decoded, now_ms=TS) == TS


# --------------------------------------------------------------------------------------------
# Tampering, wrong key
# --------------------------------------------------------------------------------------------

OPEN_BASE: Final = Open(
    uuid="tamper-1",
    timestamp=1.0,
    symbol="EURUSD",
    type=Side.BUY,
    volume=0.1,
    price=1.1,
    sl=1.0,
    tp=1.2,
    deviation=10,
)
CLOSE_BASE: Final = Close(uuid="tamper-2", timestamp=1.0, ticket=555, volume=0.5, deviation=10)

OPEN_TAMPERS: Final[list[tuple[str, Any]]] = [
    ("uuid", "tamper-2"),
    ("uuid", "Tamper-1"),
    ("symbol", "EURUSD.m"),
    ("symbol", "GBPUSD"),
    ("type", Side.SELL),
    ("volume", 1.0),
    ("volume", 0.11),
    ("price", 1.2),
    ("price", None),
    ("sl", 0.9),
    ("sl", 0.0),
    ("sl", None),
    ("tp", 1.3),
    ("tp", None),
    ("deviation", 11),
    ("deviation", 0),
    ("deviation", None),  # absent is an empty line, not the default 10
]
CLOSE_TAMPERS: Final[list[tuple[str, Any]]] = [
    ("uuid", "tamper-3"),
    ("ticket", 556),
    ("ticket", 55),
    ("volume", 0.25),
    ("volume", None),  # a partial close turned into a full one
    ("deviation", 100),
    ("deviation", None),
]


@pytest.mark.parametrize(("field", "value"), OPEN_TAMPERS)
def test_tampered_open_is_invalid(field: str, value: Any) -> None:
    signed = sign(KEY, OPEN_BASE, TS)
    assert verify(KEY, signed, now_ms=TS) == TS
    tampered = msgspec.structs.replace(signed, **{field: value})
    with pytest.raises(SignatureInvalid) as info:
        verify(KEY, tampered, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize(("field", "value"), CLOSE_TAMPERS)
def test_tampered_close_is_invalid(field: str, value: Any) -> None:
    signed = sign(KEY, CLOSE_BASE, TS)
    assert verify(KEY, signed, now_ms=TS) == TS
    tampered = msgspec.structs.replace(signed, **{field: value})
    with pytest.raises(SignatureInvalid) as info:
        verify(KEY, tampered, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", 1.1), ("sl", 1.0), ("tp", 1.2), ("deviation", 10), ("volume", 0.5)],
)
def test_adding_an_absent_field_is_invalid(field: str, value: Any) -> None:
    base: Open | Close = CLOSE_PARTIAL if field == "volume" else OPEN_SL
    base = msgspec.structs.replace(base, **{field: None})
    signed = sign(KEY, base, TS)
    with pytest.raises(SignatureInvalid):
        verify(KEY, msgspec.structs.replace(signed, **{field: value}), now_ms=TS)


def test_a_filling_policy_is_one_line_more_and_cannot_be_changed_added_or_dropped() -> None:
    with_ioc = msgspec.structs.replace(OPEN_BASE, type_filling=Filling.IOC)
    before = canonical(OPEN_BASE, TS).split(b"\n")
    assert canonical(with_ioc, TS).split(b"\n") == [*before[:-1], b"IOC", before[-1]]
    signed, plain = sign(KEY, with_ioc, TS), sign(KEY, OPEN_BASE, TS)
    assert verify(KEY, signed, now_ms=TS) == TS
    for changed in (
        msgspec.structs.replace(signed, type_filling=Filling.RETURN),  # a remainder left on
        msgspec.structs.replace(signed, type_filling=None),
        msgspec.structs.replace(plain, type_filling=Filling.FOK),
    ):
        with pytest.raises(SignatureInvalid):
            verify(KEY, changed, now_ms=TS)
    for base in (CLOSE_BASE, PLACE_FOR_FILLING):
        filled = sign(KEY, msgspec.structs.replace(base, type_filling="RETURN"), TS)
        assert canonical(filled, TS).split(b"\n")[-2] == b"RETURN"
        with pytest.raises(SignatureInvalid):
            verify(KEY, msgspec.structs.replace(filled, type_filling=Filling.IOC), now_ms=TS)


PLACE_FOR_FILLING: Final = Place(
    uuid="tamper-4",
    timestamp=1.0,
    symbol="EURUSD",
    type=PendingType.BUY_LIMIT,
    volume=0.1,
    price=1.05,
)


@pytest.mark.parametrize("delta", [1, -1, 1000, -1000, 10**9])
@pytest.mark.parametrize("base", [OPEN_BASE, CLOSE_BASE], ids=["open", "close"])
def test_tampered_ts_ms_is_invalid(base: Open | Close, delta: int) -> None:
    signed = sign(KEY, base, TS)
    assert signed.risk_signature is not None
    prefix, _, ts_text = signed.risk_signature.rpartition(":")
    assert int(ts_text) == TS
    forged = msgspec.structs.replace(signed, risk_signature=f"{prefix}:{TS + delta}")
    # now is set to the forged time, so only the MAC can refuse it
    with pytest.raises(SignatureInvalid):
        verify(KEY, forged, now_ms=TS + delta)


def test_flipped_hex_digit_is_invalid() -> None:
    signed = sign(KEY, OPEN_BASE, TS)
    assert signed.risk_signature is not None
    text = signed.risk_signature
    for position in (len("RISK_PASS:"), len("RISK_PASS:") + 31, len("RISK_PASS:") + 63):
        flipped = "1" if text[position] != "1" else "2"
        forged = text[:position] + flipped + text[position + 1 :]
        with pytest.raises(SignatureInvalid):
            verify(KEY, msgspec.structs.replace(signed, risk_signature=forged), now_ms=TS)


def test_signature_of_another_request_is_invalid() -> None:
    open_signature = signature(KEY, OPEN_BASE, TS)
    close = msgspec.structs.replace(CLOSE_BASE, uuid=OPEN_BASE.uuid, risk_signature=open_signature)
    with pytest.raises(SignatureInvalid):
        verify(KEY, close, now_ms=TS)


@pytest.mark.parametrize("base", [OPEN_BASE, CLOSE_BASE], ids=["open", "close"])
@pytest.mark.parametrize("wrong", [OTHER_KEY, b"x", KEY.upper(), KEY + b" ", KEY[:-1]])
def test_wrong_key_is_invalid(base: Open | Close, wrong: bytes) -> None:
    signed = sign(KEY, base, TS)
    with pytest.raises(SignatureInvalid) as info:
        verify(wrong, signed, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


# --------------------------------------------------------------------------------------------
# Time window
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_contracts() -> None:
    assert DEFAULT_TTL_MS == 5000
    assert DEFAULT_MAX_FUTURE_MS == 1000


@pytest.mark.parametrize("base", [OPEN_BASE, CLOSE_BASE], ids=["open", "close"])
@pytest.mark.parametrize("age", [0, 1, 4999, 5000, -1, -999, -1000])
def test_within_the_default_window_is_accepted(base: Open | Close, age: int) -> None:
    signed = sign(KEY, base, TS)
    assert verify(KEY, signed, now_ms=TS + age) == TS


@pytest.mark.parametrize("base", [OPEN_BASE, CLOSE_BASE], ids=["open", "close"])
@pytest.mark.parametrize("age", [5001, 6000, 10**9, -1001, -5000, -(10**9)])
def test_outside_the_default_window_is_expired(base: Open | Close, age: int) -> None:
    signed = sign(KEY, base, TS)
    with pytest.raises(SignatureExpired) as info:
        verify(KEY, signed, now_ms=TS + age)
    assert info.value.code is ErrorCode.SIGNATURE_EXPIRED


@pytest.mark.parametrize(
    ("ttl_ms", "age", "ok"),
    [
        (250, 250, True),
        (250, 251, False),
        (0, 0, True),
        (0, 1, False),
        (60_000, 6000, True),  # the default would have refused it
        (60_000, 60_000, True),
        (60_000, 60_001, False),
    ],
)
def test_custom_ttl(ttl_ms: int, age: int, ok: bool) -> None:
    signed = sign(KEY, OPEN_BASE, TS)
    if ok:
        assert verify(KEY, signed, now_ms=TS + age, ttl_ms=ttl_ms) == TS
    else:
        with pytest.raises(SignatureExpired):
            verify(KEY, signed, now_ms=TS + age, ttl_ms=ttl_ms)


@pytest.mark.parametrize(
    ("max_future_ms", "ahead", "ok"),
    [(0, 0, True), (0, 1, False), (1000, 1000, True), (1000, 1001, False), (5000, 5000, True)],
)
def test_custom_max_future(max_future_ms: int, ahead: int, ok: bool) -> None:
    signed = sign(KEY, CLOSE_BASE, TS)
    if ok:
        assert verify(KEY, signed, now_ms=TS - ahead, max_future_ms=max_future_ms) == TS
    else:
        with pytest.raises(SignatureExpired):
            verify(KEY, signed, now_ms=TS - ahead, max_future_ms=max_future_ms)


@pytest.mark.parametrize("age", [DEFAULT_TTL_MS + 1, 10**9, -(DEFAULT_MAX_FUTURE_MS + 1)])
def test_expired_and_wrong_key_is_invalid_not_expired(age: int) -> None:
    signed = sign(OTHER_KEY, OPEN_BASE, TS)
    with pytest.raises(SignatureInvalid):
        verify(KEY, signed, now_ms=TS + age)


def test_expired_and_tampered_is_invalid_not_expired() -> None:
    signed = sign(KEY, OPEN_BASE, TS)
    with pytest.raises(SignatureInvalid):
        verify(KEY, msgspec.structs.replace(signed, volume=9.0), now_ms=TS + 10**6)


# --------------------------------------------------------------------------------------------
# Missing and malformed signatures
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [OPEN_BASE, CLOSE_BASE], ids=["open", "close"])
def test_missing_signature(base: Open | Close) -> None:
    assert base.risk_signature is None
    with pytest.raises(SignatureMissing) as info:
        verify(KEY, base, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_MISSING
    assert base.action in info.value.message


def test_empty_signature_is_refused_as_missing_or_invalid() -> None:
    with pytest.raises(SignatureError) as info:
        verify(KEY, msgspec.structs.replace(OPEN_BASE, risk_signature=""), now_ms=TS)
    assert info.value.code in {ErrorCode.SIGNATURE_MISSING, ErrorCode.SIGNATURE_INVALID}


def _digits(number: int, alphabet: str) -> str:
    return str(number).translate(str.maketrans("0123456789", alphabet))


_GOOD: Final = signature(KEY, OPEN_BASE, TS)
_HEX: Final = _GOOD.split(":")[1]
MALFORMED: Final = {
    "wrong-prefix": f"RISK_FAIL:{_HEX}:{TS}",
    "lowercase-prefix": f"risk_pass:{_HEX}:{TS}",
    "no-prefix": f"{_HEX}:{TS}",
    "prefix-without-colon": f"RISK_PASS{_HEX}:{TS}",
    "uppercase-hex": f"RISK_PASS:{_HEX.upper()}:{TS}",
    "mixed-case-hex": f"RISK_PASS:{_HEX[:32]}{_HEX[32:].upper()}:{TS}",
    "short-hex": f"RISK_PASS:{_HEX[:-1]}:{TS}",
    "half-hex": f"RISK_PASS:{_HEX[:32]}:{TS}",
    "long-hex": f"RISK_PASS:{_HEX}0:{TS}",
    "non-hex": f"RISK_PASS:{_HEX[:-1]}g:{TS}",
    "empty-hex": f"RISK_PASS::{TS}",
    "non-numeric-ts": f"RISK_PASS:{_HEX}:abc",
    "float-ts": f"RISK_PASS:{_HEX}:{TS}.0",
    "exponent-ts": f"RISK_PASS:{_HEX}:1.7e12",
    "negative-ts": f"RISK_PASS:{_HEX}:-{TS}",
    "plus-ts": f"RISK_PASS:{_HEX}:+{TS}",
    "underscore-ts": f"RISK_PASS:{_HEX}:{TS:_}",
    # int() would read these digits, the contract's ts_ms is ASCII decimal
    "arabic-indic-digits-ts": f"RISK_PASS:{_HEX}:{_digits(TS, '٠١٢٣٤٥٦٧٨٩')}",
    "fullwidth-digits-ts": f"RISK_PASS:{_HEX}:{_digits(TS, '０１２３４５６７８９')}",
    "empty-ts": f"RISK_PASS:{_HEX}:",
    "no-ts": f"RISK_PASS:{_HEX}",
    "extra-part": f"{_GOOD}:1",
    "trailing-newline": f"{_GOOD}\n",
    "leading-space": f" {_GOOD}",
    "trailing-space": f"{_GOOD} ",
    "inner-space": f"RISK_PASS: {_HEX}:{TS}",
    "only-prefix": "RISK_PASS:",
    "garbage": "x",
    "colons": "::",
}


def test_malformed_fixtures_start_from_a_valid_signature() -> None:
    signed = msgspec.structs.replace(OPEN_BASE, risk_signature=_GOOD)
    assert verify(KEY, signed, now_ms=TS) == TS
    assert mac(KEY, canonical(OPEN_BASE, TS)) == _HEX


@pytest.mark.parametrize("value", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_signature_is_invalid(value: str) -> None:
    request = msgspec.structs.replace(OPEN_BASE, risk_signature=value)
    with pytest.raises(SignatureInvalid) as info:
        verify(KEY, request, now_ms=TS)
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


# --------------------------------------------------------------------------------------------
# Exceptions and the shared secret
# --------------------------------------------------------------------------------------------


def test_exception_codes_and_hierarchy() -> None:
    assert SignatureMissing.code is ErrorCode.SIGNATURE_MISSING
    assert SignatureInvalid.code is ErrorCode.SIGNATURE_INVALID
    assert SignatureExpired.code is ErrorCode.SIGNATURE_EXPIRED
    for cls in (SignatureMissing, SignatureInvalid, SignatureExpired):
        assert issubclass(cls, SignatureError)
        assert issubclass(cls, ProtocolError)
        error = cls("why")
        assert error.message == "why"
        assert str(error) == "why"


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("correct horse battery", b"correct horse battery"),
        ("  correct-horse-battery  ", b"correct-horse-battery"),
        ("correct-horse-battery\n", b"correct-horse-battery"),  # as read from a secret file
        ("\t\r\n correct-horse-battery \r\n", b"correct-horse-battery"),
        ("cl\u00e9-" + "x" * 11, b"cl\xc3\xa9-" + b"x" * 11),  # UTF-8: 16 bytes, 15 characters
        ("0" * 64, b"0" * 64),
    ],
)
def test_secret_key(secret: str, key: bytes) -> None:
    assert secret_key(secret) == key


@pytest.mark.parametrize("secret", ["", " ", "\n", " \t\r\n ", "\u3000"])
def test_empty_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        secret_key(secret)


@pytest.mark.parametrize("secret", ["hunter2", "x" * 15, " 15-bytes-secret ", "\u00e9" * 7])
def test_a_secret_under_16_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match=r"at least 16 are required .*token_hex"):
        secret_key(secret)


def test_secret_from_a_file_with_a_newline_verifies_with_the_bare_secret() -> None:
    signed = sign(secret_key("hunter2-hunter2-hunter2\n"), OPEN_BASE, TS)
    assert verify(secret_key("hunter2-hunter2-hunter2"), signed, now_ms=TS) == TS
    with pytest.raises(SignatureInvalid):
        verify(secret_key("hunter3-hunter3-hunter3"), signed, now_ms=TS)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

uuids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
volumes = st.floats(min_value=0, max_value=1_000_000, exclude_min=True)
prices = st.floats(min_value=0, max_value=1e12, exclude_min=True, exclude_max=True)
stops = st.floats(min_value=0, max_value=1e12, exclude_max=True)
deviations = st.integers(min_value=0, max_value=1_000_000)
tickets = st.integers(min_value=1, max_value=2**63 - 1)
symbols = st.text(min_size=1, max_size=29)
timestamps_ms = st.integers(min_value=0, max_value=10**15 - 1)
# HMAC pads a short key with zero bytes, so b"k" and b"k\0" are the same key by design.
keys = st.binary(min_size=1, max_size=64).filter(lambda key: key.rstrip(b"\0") == key)

opens = st.builds(
    Open,
    uuid=uuids,
    timestamp=st.floats(min_value=0, max_value=1e10),
    symbol=symbols,
    type=st.sampled_from(Side),
    volume=volumes,
    price=st.none() | prices,
    sl=st.none() | stops,
    tp=st.none() | stops,
    deviation=st.none() | deviations,
    magic=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    comment=st.none() | st.text(max_size=64),
)
closes = st.builds(
    Close,
    uuid=uuids,
    timestamp=st.floats(min_value=0, max_value=1e10),
    ticket=tickets,
    volume=st.none() | volumes,
    deviation=st.none() | deviations,
)
signed_requests: st.SearchStrategy[Open | Close] = opens | closes

OPEN_FIELDS: Final[dict[str, st.SearchStrategy[Any]]] = {
    "uuid": uuids,
    "symbol": symbols,
    "type": st.sampled_from(Side),
    "volume": volumes,
    "price": st.none() | prices,
    "sl": st.none() | stops,
    "tp": st.none() | stops,
    "deviation": st.none() | deviations,
}
CLOSE_FIELDS: Final[dict[str, st.SearchStrategy[Any]]] = {
    "uuid": uuids,
    "ticket": tickets,
    "volume": st.none() | volumes,
    "deviation": st.none() | deviations,
}


@PROPERTY
@given(request=signed_requests, key=keys, ts_ms=timestamps_ms)
def test_canonical_and_signature_match_the_contract(
    request: Open | Close, key: bytes, ts_ms: int
) -> None:
    text = expected_canonical(request, ts_ms)
    assert canonical(request, ts_ms) == text
    assert signature(key, request, ts_ms) == f"RISK_PASS:{mac(key, text)}:{ts_ms}"


@PROPERTY
@given(request=signed_requests, key=keys, ts_ms=timestamps_ms)
def test_sign_then_verify_succeeds(request: Open | Close, key: bytes, ts_ms: int) -> None:
    signed = sign(key, request, ts_ms)
    assert verify(key, signed, now_ms=ts_ms) == ts_ms
    assert verify(key, signed, now_ms=ts_ms + DEFAULT_TTL_MS) == ts_ms
    assert verify(key, signed, now_ms=ts_ms - DEFAULT_MAX_FUTURE_MS) == ts_ms
    # and after a trip over the wire, as the gateway sees it
    decoded = decode_request(encode(signed))
    assert isinstance(decoded, (Open, Close))
    assert verify(key, decoded, now_ms=ts_ms) == ts_ms


@PROPERTY
@given(request=signed_requests, key=keys, ts_ms=timestamps_ms, data=st.data())
def test_changing_one_signed_field_fails(
    request: Open | Close, key: bytes, ts_ms: int, data: st.DataObject
) -> None:
    fields = OPEN_FIELDS if isinstance(request, Open) else CLOSE_FIELDS
    field = data.draw(st.sampled_from(sorted(fields)), label="field")
    value = data.draw(fields[field], label="value")
    signed = sign(key, request, ts_ms)
    tampered = msgspec.structs.replace(signed, **{field: value})
    if expected_canonical(tampered, ts_ms) == expected_canonical(request, ts_ms):
        # Same canonical text (e.g. equal to 8 decimals): the contract says it is the same order.
        assert verify(key, tampered, now_ms=ts_ms) == ts_ms
    else:
        with pytest.raises(SignatureInvalid):
            verify(key, tampered, now_ms=ts_ms)


@PROPERTY
@given(
    request=signed_requests,
    key=keys,
    ts_ms=timestamps_ms,
    delta=st.integers(min_value=-DEFAULT_MAX_FUTURE_MS, max_value=DEFAULT_MAX_FUTURE_MS).filter(
        bool
    ),
)
def test_changing_ts_ms_fails(request: Open | Close, key: bytes, ts_ms: int, delta: int) -> None:
    signed = sign(key, request, ts_ms)
    forged_ts = ts_ms + delta
    if forged_ts < 0:
        forged_ts = ts_ms + abs(delta)
    forged = msgspec.structs.replace(
        signed, risk_signature=f"RISK_PASS:{mac(key, canonical(request, ts_ms))}:{forged_ts}"
    )
    with pytest.raises(SignatureInvalid):
        verify(key, forged, now_ms=ts_ms)


@PROPERTY
@given(
    request=signed_requests,
    key=keys,
    other=keys,
    ts_ms=timestamps_ms,
    age=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_wrong_key_fails_as_invalid_whatever_the_age(
    request: Open | Close, key: bytes, other: bytes, ts_ms: int, age: int
) -> None:
    if other == key:
        other = key + b"!"
    signed = sign(key, request, ts_ms)
    with pytest.raises(SignatureInvalid):
        verify(other, signed, now_ms=ts_ms + age)


def test_key_file_privacy_is_checked_on_posix_and_left_to_acls_on_windows() -> None:
    world_readable, private = 0o100644, 0o100600
    with pytest.raises(ValueError, match="chmod 600 /k"):
        require_private("/k", world_readable, posix=True)
    require_private("/k", private, posix=True)
    require_private(r"C:\k", world_readable, posix=False)  # no mode bits there: ACLs decide
    with pytest.raises(ValueError, match="can be read by other users"):
        secret_from_file("/s", world_readable, "a-long-enough-secret", posix=True)
    assert secret_from_file(r"C:\s", world_readable, "a-long-enough-secret\r\n", posix=False) == (
        secret_key("a-long-enough-secret")
    )
    with pytest.raises(ValueError, match="is empty"):
        secret_from_file(r"C:\s", private, " \n", posix=False)
