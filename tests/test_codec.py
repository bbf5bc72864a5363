"""Tests of ``protocol.codec`` against the wire contract in PROTOCOL.md.

Round trips of every request and reply, the error code of every kind of malformed frame (and
that an INVALID_REQUEST message names the bad field), the uuid echo rules, bounded messages,
and fuzzing: whatever bytes arrive, ``decode_request`` returns a request or raises
``DecodeError``, never anything else.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocol import (
    ACTIONS,
    PROTOCOL_VERSION,
    Account,
    AnyRequest,
    Close,
    DecodeError,
    ErrorCode,
    GatewayInfo,
    GetAccount,
    GetOrder,
    GetPositions,
    Open,
    Ping,
    Position,
    ProtocolError,
    Reply,
    Side,
    Status,
    decode_reply,
    decode_request,
    encode,
    encode_reply,
    encode_request,
    validation_message,
)
from protocol.messages import Uuid

FAST: Final = settings(max_examples=150, deadline=None)
FUZZ: Final = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# No message may grow with the input. The largest legitimate one is an UNKNOWN_ACTION message
# whose 40 echoed characters are all non-printable (repr turns each into up to 10 characters),
# followed by the list of actions.
MESSAGE_BOUND: Final = 40 * 10 + len(", ".join(ACTIONS)) + 40

UUID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")  # PROTOCOL.md, written out independently
ALL_CODES: Final = frozenset(ErrorCode)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

# One valid frame per action, as a third-party client would write it, every optional field set.
VALID_FIELDS: Final[dict[str, dict[str, Any]]] = {
    "PING": {"risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000"},
    "OPEN": {
        "symbol": "EURUSD",
        "type": "BUY",
        "volume": 0.1,
        "price": 1.0825,
        "sl": 1.05,
        "tp": 1.1,
        "deviation": 10,
        "magic": 7,
        "comment": "c",
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "CLOSE": {
        "ticket": 42,
        "volume": 0.05,
        "deviation": 5,
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "HALT": {
        "reason": "news",
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "RESUME": {"risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000"},
    "PLACE": {
        "symbol": "EURUSD",
        "type": "BUY_STOP_LIMIT",
        "volume": 0.1,
        "price": 1.0900,
        "stoplimit": 1.0890,
        "sl": 1.08,
        "tp": 1.1,
        "expiration": 1800000000,
        "magic": 7,
        "comment": "c",
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "MODIFY_POSITION": {
        "ticket": 42,
        "sl": 1.05,
        "tp": 1.1,
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "MODIFY_ORDER": {
        "ticket": 43,
        "price": 1.0800,
        "stoplimit": 1.0810,
        "sl": 1.07,
        "tp": 1.1,
        "expiration": "DAY",
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "CANCEL": {"ticket": 43, "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000"},
    "CLOSE_BY": {
        "ticket": 42,
        "by": 44,
        "risk_signature": "RISK_PASS:" + "0" * 64 + ":1700000000000",
    },
    "GET_ACCOUNT": {"fresh": True, "after": 1700000000.5},
    "GET_POSITIONS": {"symbol": "EURUSD", "fresh": False, "after": 1700000000.5},
    "GET_EVENTS": {"since": 41, "limit": 500},
    "MT5_READ": {
        "function": "copy_rates_range",
        "args": ["EURUSD", 16385, 1700000000, 1700003600],
        "kwargs": {},
    },
    "GET_ORDER": {"order_uuid": "ord-1"},
    "GET_SYMBOLS": {"group": "*USD*,!EUR*"},
    "GET_SYMBOL": {"symbol": "EURUSD"},
    "GET_TICK": {"symbols": ["EURUSD", "GBPUSD"]},
    "GET_RATES": {
        "symbol": "EURUSD",
        "timeframe": "M1",
        "count": 100,
        "start_pos": 0,
        "date_from": 1700000000,
        "date_to": 1700003600,
    },
    "GET_TICKS": {
        "symbol": "EURUSD",
        "date_from": 1700000000,
        "count": 100,
        "date_to": 1700003600,
        "flags": "INFO",
    },
    "GET_ORDERS": {"symbol": "EURUSD", "group": "*USD*", "ticket": 7},
    "GET_HISTORY": {
        "kind": "ORDERS",
        "date_from": 1700000000,
        "date_to": 1700003600,
        "group": "*USD*",
        "ticket": 7,
        "position": 8,
    },
}
GOOD_UUID: Final = "req-1"


def frame(kind: str, /, **fields: Any) -> dict[str, Any]:
    """A valid request of action ``kind`` as a dict, ``fields`` overriding or adding keys."""
    obj: dict[str, Any] = {"uuid": GOOD_UUID, "action": kind, "timestamp": 1_700_000_000.25}
    obj.update(VALID_FIELDS[kind])
    obj.update(fields)
    return obj


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def with_literal(obj: dict[str, Any], field: str, literal: str) -> bytes:
    """``obj`` as JSON with ``field``'s value written as the raw JSON text ``literal``."""
    marker = "\x00LITERAL\x00"
    text = json.dumps({**obj, field: marker})
    return text.replace(json.dumps(marker), literal).encode("utf-8")


def decode_error(data: bytes) -> DecodeError:
    """Decode ``data``, which must fail, and return the ``DecodeError``."""
    with pytest.raises(DecodeError) as info:
        decode_request(data)
    return info.value


def names(field: str, message: str) -> bool:
    """Whether ``message`` names ``field`` as a whole word (``uuid`` is not in ``order_uuid``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(field)}(?![A-Za-z0-9_])", message) is not None


def check_outcome(data: bytes) -> AnyRequest | DecodeError:
    """The contract for any input: a request, or a DecodeError with a sane code and message."""
    try:
        request = decode_request(data)
    except DecodeError as exc:
        assert exc.code in ALL_CODES
        assert isinstance(exc.message, str)
        assert len(exc.message) <= MESSAGE_BOUND
        assert exc.uuid is None or UUID_RE.fullmatch(exc.uuid)
        assert exc.action is None or exc.action in ACTIONS
        # A gateway must always be able to put the error into a REJECTED reply.
        reply = Reply(
            uuid=exc.uuid,
            action=exc.action,
            status=Status.REJECTED,
            timestamp=1.0,
            error_code=exc.code,
            error_msg=exc.message,
        )
        assert decode_reply(encode_reply(reply)) == reply
        return exc
    assert isinstance(request, typing.get_args(AnyRequest))
    assert request.v == PROTOCOL_VERSION
    assert UUID_RE.fullmatch(request.uuid)
    if isinstance(request, GetOrder):
        assert UUID_RE.fullmatch(request.order_uuid)
    assert decode_request(encode(request)) == request
    return request


# --------------------------------------------------------------------------------------------
# Strategies: valid requests, in the ranges the messages module documents
# --------------------------------------------------------------------------------------------

uuids = st.from_regex(UUID_RE, fullmatch=True)
timestamps = st.floats(min_value=0, max_value=1e11, exclude_max=True)
volumes = st.floats(min_value=0, max_value=1_000_000, exclude_min=True)
prices = st.floats(min_value=0, max_value=1e12, exclude_min=True, exclude_max=True)
stops = st.floats(min_value=0, max_value=1e12, exclude_max=True)
deviations = st.integers(min_value=0, max_value=1_000_000)
magics = st.integers(min_value=0, max_value=2**63 - 1)
tickets = st.integers(min_value=1, max_value=2**63 - 1)
symbols = st.text(min_size=1, max_size=29)
comments = st.text(max_size=64)
signature_texts = st.text(max_size=256)
sides = st.sampled_from(Side)

pings = st.builds(Ping, uuid=uuids, timestamp=timestamps)
opens = st.builds(
    Open,
    uuid=uuids,
    timestamp=timestamps,
    symbol=symbols,
    type=sides,
    volume=volumes,
    price=st.none() | prices,
    sl=st.none() | stops,
    tp=st.none() | stops,
    deviation=st.none() | deviations,
    magic=st.none() | magics,
    comment=st.none() | comments,
    risk_signature=st.none() | signature_texts,
)
closes = st.builds(
    Close,
    uuid=uuids,
    timestamp=timestamps,
    ticket=tickets,
    volume=st.none() | volumes,
    deviation=st.none() | deviations,
    risk_signature=st.none() | signature_texts,
)
get_accounts = st.builds(GetAccount, uuid=uuids, timestamp=timestamps)
get_positions = st.builds(
    GetPositions, uuid=uuids, timestamp=timestamps, symbol=st.none() | symbols
)
get_orders = st.builds(GetOrder, uuid=uuids, timestamp=timestamps, order_uuid=uuids)
requests: st.SearchStrategy[AnyRequest] = st.one_of(
    pings, opens, closes, get_accounts, get_positions, get_orders
)

# Replies
finite = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
accounts = st.builds(
    Account,
    login=int64,
    server=st.text(),
    currency=st.text(max_size=3),
    leverage=int64,
    balance=finite,
    equity=finite,
    margin=finite,
    margin_free=finite,
    margin_level=finite,
    profit=finite,
    trade_mode=st.sampled_from(["DEMO", "CONTEST", "REAL"]),
    trade_allowed=st.booleans(),
    credit=finite,
    name=st.text(),
    company=st.text(),
    margin_mode=st.sampled_from(["HEDGING", "NETTING", "EXCHANGE"]),
)
positions = st.builds(
    Position,
    ticket=int64,
    symbol=st.text(),
    type=sides,
    volume=finite,
    price_open=finite,
    price_current=finite,
    sl=finite,
    tp=finite,
    profit=finite,
    swap=finite,
    magic=int64,
    comment=st.text(),
    time=int64,
)
gateway_infos = st.builds(
    GatewayInfo,
    version=st.text(),
    terminal=st.sampled_from(["SIM", "LIVE"]),
    signature_validation=st.booleans(),
    warnings=st.lists(st.text(), max_size=3),
)
replies = st.builds(
    Reply,
    uuid=st.none() | uuids,
    action=st.none() | st.sampled_from(sorted(ACTIONS)),
    status=st.sampled_from(Status),
    timestamp=finite,
    error_code=st.none() | st.sampled_from([code.value for code in ErrorCode]),
    error_msg=st.none() | st.text(),
    retcode=st.none() | int64,
    comment=st.none() | st.text(),
    duplicate=st.booleans(),
    mt5_connected=st.none() | st.booleans(),
    gateway=st.none() | gateway_infos,
    ticket=st.none() | int64,
    order=st.none() | int64,
    deal=st.none() | int64,
    volume=st.none() | finite,
    price=st.none() | finite,
    order_uuid=st.none() | uuids,
    order_action=st.none() | st.sampled_from(["OPEN", "CLOSE"]),
    account=st.none() | accounts,
    positions=st.none() | st.lists(positions, max_size=3),
)

# Arbitrary JSON
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
REQUEST_KEYS: Final = sorted(
    {"uuid", "action", "timestamp", "v"}
    | {key for fields in VALID_FIELDS.values() for key in fields}
)


# --------------------------------------------------------------------------------------------
# The message set
# --------------------------------------------------------------------------------------------


def test_actions_are_exactly_the_contracts() -> None:
    contract = {"PING", "OPEN", "CLOSE", "GET_ACCOUNT", "GET_POSITIONS", "GET_ORDER"}
    extensions = {"HALT", "RESUME"}  # added to the contract by the gateway's kill switch
    # Market data (issue 15), read-only
    extensions |= {"GET_SYMBOLS", "GET_SYMBOL", "GET_TICK", "GET_RATES", "GET_TICKS"}
    extensions |= {"GET_ORDERS", "GET_HISTORY"}  # pending orders and the history (issue 16)
    # The order life cycle (issue 16), signed and journaled like OPEN
    extensions |= {"PLACE", "MODIFY_POSITION", "MODIFY_ORDER", "CANCEL", "CLOSE_BY"}
    extensions |= {"GET_EVENTS"}  # trade events replayed (issue 16)
    extensions |= {"MT5_READ"}  # a read function of the MetaTrader5 package (issue 19)
    assert set(ACTIONS) == contract | extensions
    assert PROTOCOL_VERSION == 1


def test_error_codes_are_exactly_the_contracts() -> None:
    assert {code.value for code in ErrorCode} == {
        "INVALID_JSON",
        "INVALID_REQUEST",
        "UNKNOWN_ACTION",
        "UNSUPPORTED_VERSION",
        "SIGNATURE_MISSING",
        "SIGNATURE_INVALID",
        "SIGNATURE_EXPIRED",
        "DUPLICATE_UUID",
        "ORDER_NOT_FOUND",
        "POSITION_NOT_FOUND",
        "INVALID_PRICE",
        "INVALID_EXPIRATION",
        "NO_CHANGES",
        "MT5_DISCONNECTED",
        "MT5_REJECTED",
        "RISK_REJECTED",
        "TRADING_HALTED",
        "BUSY",
        "INTERNAL",
    } | {
        "JOURNAL_UNAVAILABLE",  # an extension: an order the journal could not record
        "SYMBOL_NOT_FOUND",  # market data (issue 15): a symbol the terminal does not know
        "TOO_LARGE",  # market data: more rows than the gateway's max_rows
        "INVALID_VOLUME",  # issue 20: a volume off the symbol's step or range, not sent
        "SYMBOL_AMBIGUOUS",  # issue 20: several of the broker's symbols are the name + suffix
    }
    assert all(code == code.value for code in ErrorCode)  # a StrEnum: usable as the wire string


@pytest.mark.parametrize(
    ("cls", "action"),
    [
        (Ping, "PING"),
        (Open, "OPEN"),
        (Close, "CLOSE"),
        (GetAccount, "GET_ACCOUNT"),
        (GetPositions, "GET_POSITIONS"),
        (GetOrder, "GET_ORDER"),
    ],
)
def test_each_action_decodes_to_its_class(cls: type[AnyRequest], action: str) -> None:
    request = decode_request(dumps(frame(action)))
    assert type(request) is cls
    assert request.action == action
    assert request.uuid == GOOD_UUID
    assert request.timestamp == 1_700_000_000.25
    assert request.v == 1


def test_encode_request_and_encode_reply_are_encode() -> None:
    assert encode_request is encode
    assert encode_reply is encode


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@FAST
@given(requests)
def test_request_round_trip(request: AnyRequest) -> None:
    data = encode(request)
    decoded = decode_request(data)
    assert decoded == request
    assert type(decoded) is type(request)
    wire = json.loads(data)
    assert wire["action"] == request.action
    assert wire["uuid"] == request.uuid
    assert set(wire) <= set(REQUEST_KEYS)  # the contract's field names, nothing renamed


@FAST
@given(replies)
def test_reply_round_trip(reply: Reply) -> None:
    data = encode_reply(reply)
    decoded = decode_reply(data)
    assert decoded == reply
    wire = json.loads(data)
    # "Every reply carries uuid (... null when ...), action (... or null), status, timestamp."
    assert {"uuid", "action", "status", "timestamp"} <= set(wire)
    assert wire["status"] == reply.status.value


def test_open_wire_format_uses_the_contract_names() -> None:
    request = Open(
        uuid="o-1",
        timestamp=1_700_000_000.0,
        symbol="EURUSD",
        type=Side.SELL,
        volume=0.25,
        price=1.1,
        sl=1.2,
        tp=1.0,
        deviation=20,
        magic=99,
        comment="hello",
        risk_signature="sig",
    )
    assert json.loads(encode(request)) == {
        "uuid": "o-1",
        "action": "OPEN",
        "timestamp": 1_700_000_000.0,
        "symbol": "EURUSD",
        "type": "SELL",
        "volume": 0.25,
        "price": 1.1,
        "sl": 1.2,
        "tp": 1.0,
        "deviation": 20,
        "magic": 99,
        "comment": "hello",
        "risk_signature": "sig",
    }
    # Absent optional fields are left out, and so is the default version.
    minimal = Close(uuid="c-1", timestamp=1.0, ticket=5)
    assert json.loads(encode(minimal)) == {
        "uuid": "c-1",
        "action": "CLOSE",
        "timestamp": 1.0,
        "ticket": 5,
    }


def test_third_party_frame_decodes() -> None:
    # Integers where numbers are expected, an explicit v, keys in any order, whitespace.
    data = (
        b' { "action" : "OPEN", "volume": 1, "type": "SELL", "symbol": "XAUUSD", "v": 1,\n'
        b' "timestamp": 1700000000, "uuid": "A-z_09", "sl": 0, "deviation": 3 } \n'
    )
    assert decode_request(data) == Open(
        uuid="A-z_09",
        timestamp=1_700_000_000.0,
        symbol="XAUUSD",
        type=Side.SELL,
        volume=1.0,
        sl=0.0,
        deviation=3,
    )


def test_optional_fields_may_be_absent_or_null() -> None:
    nulls = frame("GET_POSITIONS", symbol=None, fresh=False, after=None)
    assert decode_request(dumps(nulls)) == GetPositions(uuid=GOOD_UUID, timestamp=1_700_000_000.25)
    bare = {"uuid": "x", "action": "GET_POSITIONS", "timestamp": 0}
    assert decode_request(dumps(bare)) == GetPositions(uuid="x", timestamp=0.0)
    close = {"uuid": "x", "action": "CLOSE", "timestamp": 0, "ticket": 1}
    assert decode_request(dumps(close)) == Close(uuid="x", timestamp=0.0, ticket=1)


@pytest.mark.parametrize("action", ["OPEN", "CLOSE"])
def test_unsigned_order_still_decodes_so_the_gateway_can_say_signature_missing(
    action: str,
) -> None:
    obj = frame(action)
    del obj["risk_signature"]
    request = decode_request(dumps(obj))
    assert isinstance(request, (Open, Close))
    assert request.risk_signature is None


@pytest.mark.parametrize(
    "uuid", ["a", "Z", "0", "-", "_", "A" * 64, "0123456789-_abcXYZ", "--__--"]
)
def test_uuid_edge_values_are_accepted(uuid: str) -> None:
    assert decode_request(dumps(frame("PING", uuid=uuid))).uuid == uuid
    request = decode_request(dumps(frame("GET_ORDER", order_uuid=uuid)))
    assert isinstance(request, GetOrder)
    assert request.order_uuid == uuid


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("OPEN", "volume", 5e-324),  # the smallest positive float is > 0
        ("OPEN", "volume", 1_000_000),
        ("OPEN", "sl", 0),  # 0 means "no level"
        ("OPEN", "tp", 0),
        ("OPEN", "deviation", 0),
        ("OPEN", "magic", 0),
        ("OPEN", "magic", 2**63 - 1),
        ("CLOSE", "ticket", 1),
        ("CLOSE", "ticket", 2**63 - 1),
        ("PING", "timestamp", 0),
        ("OPEN", "symbol", "X" * 29),
        ("OPEN", "comment", ""),
        ("OPEN", "symbol", "GER40.cash ü"),
    ],
)
def test_boundary_values_are_accepted(action: str, field: str, value: Any) -> None:
    request = decode_request(dumps(frame(action, **{field: value})))
    assert getattr(request, field) == value


# --------------------------------------------------------------------------------------------
# Replies, as a third-party gateway or an older/newer one might send them
# --------------------------------------------------------------------------------------------


def test_reply_with_unreadable_request_encodes_null_uuid_and_action() -> None:
    reply = Reply(
        uuid=None,
        action=None,
        status=Status.REJECTED,
        timestamp=1.5,
        error_code=ErrorCode.INVALID_JSON,
        error_msg="bad",
    )
    assert json.loads(encode_reply(reply)) == {
        "uuid": None,
        "action": None,
        "status": "REJECTED",
        "timestamp": 1.5,
        "error_code": "INVALID_JSON",
        "error_msg": "bad",
    }


def test_reply_decoding_tolerates_added_fields_and_minimal_objects() -> None:
    # PROTOCOL.md: "Anything may be added (new optional fields ...)"; the account and position
    # objects carry "at least" the listed fields.
    data = dumps(
        {
            "uuid": "q-1",
            "action": "GET_ACCOUNT",
            "status": "OK",
            "timestamp": 1_700_000_000.5,
            "a_field_from_the_future": {"x": [1, 2]},
            "account": {
                "login": 123,
                "server": "Demo",
                "currency": "USD",
                "leverage": 100,
                "balance": 1000,
                "equity": 1001.5,
                "margin": 0,
                "margin_free": 1001.5,
                "margin_level": 0,
                "profit": 1.5,
                "trade_mode": "DEMO",
                "trade_allowed": True,
                "another_new_field": "x",
            },
        }
    )
    reply = decode_reply(data)
    assert reply.status is Status.OK
    assert reply.account is not None
    assert reply.account.login == 123
    assert reply.account.trade_mode == "DEMO"
    assert reply.account.equity == 1001.5


def test_reply_of_each_status_decodes() -> None:
    filled = decode_reply(
        b'{"uuid":"o-1","action":"OPEN","status":"FILLED","timestamp":1.0,"ticket":11,'
        b'"order":12,"deal":13,"volume":0.1,"price":1.1,"retcode":10009,"duplicate":true}'
    )
    assert (filled.status, filled.ticket, filled.order, filled.deal) == (Status.FILLED, 11, 12, 13)
    assert (filled.volume, filled.price, filled.retcode) == (0.1, 1.1, 10009)
    assert filled.duplicate is True
    pending = decode_reply(b'{"uuid":"o-1","action":"OPEN","status":"PENDING","timestamp":1}')
    assert pending.status is Status.PENDING
    assert pending.duplicate is False
    positions = decode_reply(
        b'{"uuid":"p","action":"GET_POSITIONS","status":"OK","timestamp":1,"positions":[{'
        b'"ticket":1,"symbol":"EURUSD","type":"SELL","volume":0.1,"price_open":1.1,'
        b'"price_current":1.09,"sl":0,"tp":0,"profit":10,"swap":-0.1,"magic":0,"comment":"",'
        b'"time":1700000000}]}'
    )
    assert positions.positions is not None
    assert positions.positions[0].type is Side.SELL
    assert positions.positions[0].price_current == 1.09
    ping = decode_reply(
        b'{"uuid":"p","action":"PING","status":"OK","timestamp":1,"mt5_connected":false}'
    )
    assert ping.mt5_connected is False


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"uuid":null,"action":null,"timestamp":1}',  # status missing
        b'{"uuid":null,"action":null,"status":"MAYBE","timestamp":1}',
        b'{"uuid":null,"action":null,"status":"OK","timestamp":"now"}',
    ],
)
def test_reply_that_is_not_one_raises_msgspec_decode_error(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_reply(data)


def test_reply_with_invalid_utf8_raises_msgspec_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_reply(b'{"uuid":"\xff","action":null,"status":"OK","timestamp":1}')


# --------------------------------------------------------------------------------------------
# INVALID_JSON
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"{",
        b"}",
        b'{"uuid":"a",',
        b"nope",
        b"{'uuid': 'a', 'action': 'PING', 'timestamp': 1}",  # Python, not JSON
        b'{"uuid":"a","action":"PING","timestamp":1,}',  # trailing comma
        b'{"uuid":"a","action":"PING","timestamp":1} {}',  # two documents
        b'{"uuid":"a","action":"PING","timestamp":1} x',
        b'{"uuid":"a","action":"PING","timestamp":01}',  # leading zero
        b'{"uuid":"a","action":"PING","timestamp":NaN}',
        b'{"uuid":"a","action":"PING","timestamp":Infinity}',
        b'{"uuid":"a","action":"PING","timestamp":-Infinity}',
        b'{"uuid":"a\\x41","action":"PING","timestamp":1}',  # not a JSON escape
        b'{"uuid":"a\\ud800","action":"PING","timestamp":1}',  # lone surrogate escape
        b"\xff",
        b"\xff\xfe{\x00}\x00",  # UTF-16 with a BOM
        '{"uuid":"a","action":"PING","timestamp":1}'.encode("utf-16-le"),
        b"\x00",
        b"{\xff}",
        b"\x80{}",
    ],
)
def test_not_json_or_not_utf8_is_invalid_json(data: bytes) -> None:
    error = decode_error(data)
    assert error.code is ErrorCode.INVALID_JSON
    assert error.uuid is None
    assert error.action is None


INVALID_UTF8_IN_STRINGS: Final = [
    b'"\xff"',
    b'{"uuid":"ab\xff","action":"PING","timestamp":1}',
    b'{"uuid":"a","action":"PING\xff","timestamp":1}',
    b'{"uuid":"a","action":"PING","timestamp":1,"x\xff":1}',
    b'{"uuid":"a","action":"OPEN","symbol":"EUR\xc0\xaf","type":"BUY","volume":1,"timestamp":1}',
    b'{"uuid":"a","action":"GET_POSITIONS","symbol":"\xed\xa0\x80","timestamp":1}',  # surrogate
    b'{"uuid":"a","action":"GET_POSITIONS","symbol":"\xe2\x82","timestamp":1}',  # truncated
]


@pytest.mark.parametrize("data", INVALID_UTF8_IN_STRINGS)
def test_invalid_utf8_inside_a_string_is_invalid_json(data: bytes) -> None:
    assert decode_error(data).code is ErrorCode.INVALID_JSON


# --------------------------------------------------------------------------------------------
# INVALID_REQUEST: not an object, no usable action
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"null", b"true", b"0", b"-1.5", b'"PING"', b"[]", b'[{"action":"PING"}]', b'""'],
)
def test_json_that_is_not_an_object_is_invalid_request(data: bytes) -> None:
    error = decode_error(data)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert "object" in error.message
    assert error.uuid is None


@pytest.mark.parametrize(
    "action", ["<absent>", None, 1, 0, 1.5, True, False, [], ["PING"], {"PING": 1}]
)
def test_missing_or_non_string_action_is_invalid_request(action: Any) -> None:
    obj = frame("PING")
    if action == "<absent>":
        del obj["action"]
    else:
        obj["action"] = action
    error = decode_error(dumps(obj))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("action", error.message), error.message
    assert error.uuid == GOOD_UUID
    assert error.action is None


def test_empty_object_is_invalid_request_naming_action() -> None:
    error = decode_error(b"{}")
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("action", error.message)


# --------------------------------------------------------------------------------------------
# UNKNOWN_ACTION, UNSUPPORTED_VERSION
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["", "ping", "Ping", "PING ", " PING", "OPEN\n", "DELETE", "MODIFY", "GET ORDER"]
)
def test_unknown_action(action: str) -> None:
    error = decode_error(dumps(frame("PING", action=action)))
    assert error.code is ErrorCode.UNKNOWN_ACTION
    assert error.uuid == GOOD_UUID
    assert error.action is None  # an unknown action is not echoed as if it were one
    assert repr(action) in error.message


def test_unknown_action_wins_over_other_problems() -> None:
    # No valid timestamp and an unknown field: the action is what the client must fix first.
    error = decode_error(b'{"uuid":"u","action":"TELEPORT","timestamp":"x","zzz":1}')
    assert error.code is ErrorCode.UNKNOWN_ACTION


@pytest.mark.parametrize("version", [0, 2, 3, -1, 100, 2**40, 10**30])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_other_version_is_unsupported_version(version: int, action: str) -> None:
    error = decode_error(dumps(frame(action, v=version)))
    assert error.code is ErrorCode.UNSUPPORTED_VERSION
    assert error.uuid == GOOD_UUID
    assert error.action == action
    assert len(error.message) <= MESSAGE_BOUND


def test_version_is_checked_before_the_fields_a_newer_version_may_have() -> None:
    # A v2 client sends fields v1 does not know: it must learn that v2 is unsupported.
    error = decode_error(dumps(frame("OPEN", v=2, volume="lots", trailing_stop=5)))
    assert error.code is ErrorCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("version", ["1", "2", 1.5, True, False, None, [1], {"major": 1}])
def test_non_integer_version_is_invalid_request_naming_v(version: Any) -> None:
    error = decode_error(dumps(frame("PING", v=version)))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("v", error.message), error.message


def test_explicit_version_one_is_the_default() -> None:
    assert decode_request(dumps(frame("PING", v=1))) == decode_request(dumps(frame("PING")))


# --------------------------------------------------------------------------------------------
# INVALID_REQUEST naming the field: uuid, wrong types, ranges, missing and unknown fields
# --------------------------------------------------------------------------------------------

BAD_UUIDS: Final[list[Any]] = [
    "",
    "a" * 65,
    "a b",
    "a/b",
    "a.b",
    "a:b",
    "é",
    "ａ",  # a full-width letter
    "١٢٣",  # Arabic-Indic digits: \d would accept them
    "abc\t",
    " abc",
    "a\x00",
    123,
    1.5,
    True,
    None,
    ["a"],
    {"a": 1},
]


@pytest.mark.parametrize("uuid", BAD_UUIDS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_bad_uuid_is_invalid_request_naming_uuid(action: str, uuid: Any) -> None:
    error = decode_error(dumps(frame(action, uuid=uuid)))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("uuid", error.message), error.message
    assert error.uuid is None  # an invalid uuid is never echoed


@pytest.mark.parametrize("uuid", BAD_UUIDS)
def test_bad_order_uuid_is_invalid_request_naming_order_uuid(uuid: Any) -> None:
    error = decode_error(dumps(frame("GET_ORDER", order_uuid=uuid)))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("order_uuid", error.message), error.message
    assert error.uuid == GOOD_UUID
    assert error.action == "GET_ORDER"


@pytest.mark.parametrize(
    ("obj", "code", "field"),
    [
        (frame("GET_ORDER", uuid="abc\n"), ErrorCode.INVALID_REQUEST, "uuid"),
        (frame("GET_ORDER", order_uuid="abc\n"), ErrorCode.INVALID_REQUEST, "order_uuid"),
        (frame("OPEN", uuid="a" * 63 + "\n"), ErrorCode.INVALID_REQUEST, "uuid"),
        (frame("PING", uuid="abc\n", v=2), ErrorCode.UNSUPPORTED_VERSION, "v"),
    ],
    ids=["uuid", "order_uuid", "uuid-64-chars", "echoed-with-v2"],
)
def test_uuid_with_trailing_newline_is_rejected_and_not_echoed(
    obj: dict[str, Any], code: ErrorCode, field: str
) -> None:
    error = decode_error(dumps(obj))
    assert error.code is code
    assert error.uuid == (GOOD_UUID if field == "order_uuid" else None)
    if code is ErrorCode.INVALID_REQUEST:
        assert names(field, error.message)


STRING_FIELDS: Final = [
    ("OPEN", "symbol"),
    ("OPEN", "comment"),
    ("OPEN", "risk_signature"),
    ("CLOSE", "risk_signature"),
    ("GET_POSITIONS", "symbol"),
    ("GET_ORDER", "order_uuid"),
]
NUMBER_FIELDS: Final = [
    ("OPEN", "volume"),
    ("OPEN", "price"),
    ("OPEN", "sl"),
    ("OPEN", "tp"),
    ("CLOSE", "volume"),
    *((action, "timestamp") for action in sorted(ACTIONS)),
]
INTEGER_FIELDS: Final = [
    ("OPEN", "deviation"),
    ("OPEN", "magic"),
    ("CLOSE", "ticket"),
    ("CLOSE", "deviation"),
]
NOT_STRINGS: Final[list[Any]] = [1, 0, 1.5, True, False, [], ["EURUSD"], {"s": "EURUSD"}]
NOT_NUMBERS: Final[list[Any]] = ["1", "0.1", "NaN", "Infinity", "1e999", "", True, False, [], {}]
NOT_INTEGERS: Final[list[Any]] = ["1", "10", 1.5, 0.5, 1e300, True, False, [], {}]

WRONG_TYPES: Final = [
    *((a, f, v) for a, f in STRING_FIELDS for v in NOT_STRINGS),
    *((a, f, v) for a, f in NUMBER_FIELDS for v in NOT_NUMBERS),
    *((a, f, v) for a, f in INTEGER_FIELDS for v in NOT_INTEGERS),
    *(("OPEN", "type", v) for v in ["buy", "Buy", "LONG", "", "BUY ", 0, 1, True, [], {}]),
    # null where a value is required
    *(
        (a, f, None)
        for a, f in [
            ("PING", "timestamp"),
            ("OPEN", "symbol"),
            ("OPEN", "type"),
            ("OPEN", "volume"),
            ("CLOSE", "ticket"),
            ("GET_ORDER", "order_uuid"),
        ]
    ),
]


@pytest.mark.parametrize(("action", "field", "value"), WRONG_TYPES)
def test_wrong_type_is_invalid_request_naming_the_field(
    action: str, field: str, value: Any
) -> None:
    error = decode_error(dumps(frame(action, **{field: value})))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names(field, error.message), error.message
    assert error.uuid == GOOD_UUID
    assert error.action == action


OUT_OF_RANGE: Final = [
    # PROTOCOL.md and the brief: volume is a positive number of lots
    ("OPEN", "volume", 0),
    ("OPEN", "volume", 0.0),
    ("OPEN", "volume", -0.0),
    ("OPEN", "volume", -0.1),
    ("OPEN", "volume", -1e300),
    ("CLOSE", "volume", 0),
    ("CLOSE", "volume", -1),
    # bounds the messages module adds (PROTOCOL.md does not state them)
    ("OPEN", "volume", 1_000_000.5),
    ("OPEN", "volume", 1e308),
    ("OPEN", "price", 0),
    ("OPEN", "price", -1.1),
    ("OPEN", "price", 1e12),
    ("OPEN", "price", 1.7e308),
    ("OPEN", "sl", -0.5),
    ("OPEN", "tp", -1),
    ("OPEN", "sl", 1e300),
    ("OPEN", "deviation", -1),
    ("OPEN", "deviation", 1_000_001),
    ("CLOSE", "deviation", -10),
    ("OPEN", "magic", -1),
    ("OPEN", "magic", 2**63),
    ("CLOSE", "ticket", 0),
    ("CLOSE", "ticket", -5),
    ("CLOSE", "ticket", 2**63),
    ("CLOSE", "ticket", 2**64),
    ("CLOSE", "ticket", 10**100),
    ("PING", "timestamp", -1),
    ("PING", "timestamp", -1e-300),
    ("PING", "timestamp", 1e11),
    ("OPEN", "timestamp", 1e300),
    ("OPEN", "symbol", ""),
    ("OPEN", "symbol", "X" * 30),
    ("GET_POSITIONS", "symbol", ""),
    ("OPEN", "comment", "c" * 65),
    ("OPEN", "risk_signature", "s" * 257),
    ("CLOSE", "risk_signature", "s" * 257),
]


@pytest.mark.parametrize(("action", "field", "value"), OUT_OF_RANGE)
def test_out_of_range_is_invalid_request_naming_the_field(
    action: str, field: str, value: Any
) -> None:
    error = decode_error(dumps(frame(action, **{field: value})))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names(field, error.message), error.message
    assert error.uuid == GOOD_UUID
    assert error.action == action


HUGE_LITERALS: Final = [
    ("OPEN", "volume", "1e999", ErrorCode.INVALID_REQUEST),
    ("OPEN", "volume", "-1e999", ErrorCode.INVALID_REQUEST),
    ("OPEN", "price", "1e400", ErrorCode.INVALID_REQUEST),
    ("OPEN", "sl", "1E999", ErrorCode.INVALID_REQUEST),
    ("OPEN", "tp", "1e999", ErrorCode.INVALID_REQUEST),
    ("CLOSE", "volume", "1e999", ErrorCode.INVALID_REQUEST),
    ("PING", "timestamp", "1e999", ErrorCode.INVALID_REQUEST),
    ("CLOSE", "ticket", "1" + "0" * 5000, ErrorCode.INVALID_REQUEST),
    ("OPEN", "deviation", "9" * 5000, ErrorCode.INVALID_REQUEST),
    ("PING", "v", "2" + "0" * 5000, ErrorCode.UNSUPPORTED_VERSION),
]


@pytest.mark.parametrize(("action", "field", "literal", "code"), HUGE_LITERALS)
def test_huge_number_is_rejected_without_crashing(
    action: str, field: str, literal: str, code: ErrorCode
) -> None:
    error = decode_error(with_literal(frame(action), field, literal))
    assert error.code is code
    assert len(error.message) <= MESSAGE_BOUND


@pytest.mark.parametrize(("action", "field", "literal", "code"), HUGE_LITERALS)
def test_huge_number_is_invalid_request_naming_the_field(
    action: str, field: str, literal: str, code: ErrorCode
) -> None:
    error = decode_error(with_literal(frame(action), field, literal))
    assert error.code is code
    if code is ErrorCode.INVALID_REQUEST:
        assert names(field, error.message), error.message


MISSING: Final = [
    *((action, "uuid") for action in sorted(ACTIONS)),
    *((action, "timestamp") for action in sorted(ACTIONS)),
    ("OPEN", "symbol"),
    ("OPEN", "type"),
    ("OPEN", "volume"),
    ("CLOSE", "ticket"),
    ("GET_ORDER", "order_uuid"),
]


@pytest.mark.parametrize(("action", "field"), MISSING)
def test_missing_required_field_is_invalid_request_naming_it(action: str, field: str) -> None:
    obj = frame(action)
    del obj[field]
    error = decode_error(dumps(obj))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names(field, error.message), error.message
    assert error.uuid == (None if field == "uuid" else GOOD_UUID)
    assert error.action == action


UNKNOWN_FIELDS: Final = [
    ("PING", "foo"),
    ("PING", "symbol"),
    ("PING", "reason"),
    ("OPEN", "ticket"),
    ("OPEN", "Symbol"),
    ("OPEN", "order_uuid"),
    ("OPEN", "stop_loss"),
    ("OPEN", "status"),
    ("CLOSE", "symbol"),
    ("CLOSE", "price"),
    ("CLOSE", "type"),
    ("GET_ACCOUNT", "volume"),
    ("GET_POSITIONS", "ticket"),
    ("GET_ORDER", "Order_uuid"),
    ("GET_ORDER", "uuid2"),
]


@pytest.mark.parametrize(("action", "field"), UNKNOWN_FIELDS)
@pytest.mark.parametrize("value", [1, "x", None, [], {"a": [1]}])
def test_unknown_field_is_invalid_request_naming_it(action: str, field: str, value: Any) -> None:
    error = decode_error(dumps(frame(action, **{field: value})))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names(field, error.message), error.message
    assert error.uuid == GOOD_UUID
    assert error.action == action


def test_error_message_is_the_exception_text() -> None:
    error = decode_error(dumps(frame("OPEN", volume=0)))
    assert isinstance(error, ProtocolError)
    assert str(error) == error.message
    assert error.code.value in repr(error)


# --------------------------------------------------------------------------------------------
# Deep nesting
# --------------------------------------------------------------------------------------------

DEPTH: Final = 100_000
PREFIX: Final = b'{"uuid":"deep-1","action":"OPEN","timestamp":1,'


@pytest.mark.parametrize(
    "data",
    [
        b"[" * DEPTH,
        b"[" * DEPTH + b"]" * DEPTH,
        b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        b'{"a":' * DEPTH,
        PREFIX + b'"x":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        PREFIX + b'"symbol":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        PREFIX + b'"v":' + b'{"v":' * DEPTH + b"1" + b"}" * DEPTH + b"}",
        b'{"action":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    ],
    ids=[
        "open-arrays",
        "arrays",
        "objects",
        "open-objects",
        "in-unknown-field",
        "in-symbol",
        "in-v",
        "in-action",
    ],
)
def test_deep_nesting_does_not_crash(data: bytes) -> None:
    limit = sys.getrecursionlimit()
    error = decode_error(data)
    # A parser may refuse excessive depth (RFC 8259, section 9): INVALID_JSON or INVALID_REQUEST.
    assert error.code in {ErrorCode.INVALID_JSON, ErrorCode.INVALID_REQUEST}
    assert len(error.message) <= MESSAGE_BOUND
    assert sys.getrecursionlimit() == limit
    # and the decoder still works afterwards
    assert decode_request(dumps(frame("PING"))).uuid == GOOD_UUID


def test_moderate_nesting_in_an_unknown_field_names_it() -> None:
    data = PREFIX.replace(b"OPEN", b"PING") + b'"x":' + b"[" * 200 + b"]" * 200 + b"}"
    error = decode_error(data)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert names("x", error.message)
    assert error.uuid == "deep-1"


# --------------------------------------------------------------------------------------------
# Echo rules and bounded messages
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        (frame("OPEN", volume=0), ErrorCode.INVALID_REQUEST),
        (frame("OPEN", symbol=5), ErrorCode.INVALID_REQUEST),
        (frame("PING", extra=1), ErrorCode.INVALID_REQUEST),
        (frame("PING", action="NOPE"), ErrorCode.UNKNOWN_ACTION),
        (frame("PING", action=7), ErrorCode.INVALID_REQUEST),
        ({"uuid": GOOD_UUID, "timestamp": 1}, ErrorCode.INVALID_REQUEST),
        (frame("CLOSE", v=2), ErrorCode.UNSUPPORTED_VERSION),
        (frame("CLOSE", v=2, ticket="x"), ErrorCode.UNSUPPORTED_VERSION),
    ],
)
def test_valid_uuid_is_echoed_on_every_error_path(obj: dict[str, Any], code: ErrorCode) -> None:
    error = decode_error(dumps(obj))
    assert error.code is code
    assert error.uuid == GOOD_UUID
    for bad in ("", "a b", "x" * 65, "abc\t", 12, None):
        error = decode_error(dumps({**obj, "uuid": bad}))
        assert error.uuid is None, bad


@FAST
@given(uuid=st.text(max_size=70) | uuids)
def test_uuid_is_echoed_iff_it_is_valid(uuid: str) -> None:
    error = decode_error(dumps(frame("OPEN", uuid=uuid, volume=-1)))
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.uuid == (uuid if UUID_RE.fullmatch(uuid) else None)


ATTACKER: Final = 10_000


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        (frame("PING", action="A" * ATTACKER), ErrorCode.UNKNOWN_ACTION),
        (frame("PING", action="\x00" * ATTACKER), ErrorCode.UNKNOWN_ACTION),
        (frame("PING", action="\U000e0001" * ATTACKER), ErrorCode.UNKNOWN_ACTION),
        (frame("PING", uuid="u" * ATTACKER), ErrorCode.INVALID_REQUEST),
        (frame("PING", **{"K" * ATTACKER: 1}), ErrorCode.INVALID_REQUEST),
        (frame("OPEN", symbol="S" * ATTACKER), ErrorCode.INVALID_REQUEST),
        (frame("OPEN", comment="C" * ATTACKER), ErrorCode.INVALID_REQUEST),
        (frame("OPEN", type="T" * ATTACKER), ErrorCode.INVALID_REQUEST),
        (frame("PING", v="9" * ATTACKER), ErrorCode.INVALID_REQUEST),
        (frame("PING", v=int("9" * 4000)), ErrorCode.UNSUPPORTED_VERSION),
        (frame("PING", action="B" * ATTACKER, v=3), ErrorCode.UNKNOWN_ACTION),
    ],
    ids=[
        "action",
        "action-nul",
        "action-astral",
        "uuid",
        "unknown-key",
        "symbol",
        "comment",
        "type",
        "v-string",
        "v-4000-digits",
        "action-and-v",
    ],
)
def test_attacker_length_strings_are_clipped(obj: dict[str, Any], code: ErrorCode) -> None:
    error = decode_error(dumps(obj))
    assert error.code is code
    assert len(error.message) <= MESSAGE_BOUND


def test_unknown_action_echo_is_clipped_to_a_short_prefix() -> None:
    error = decode_error(dumps(frame("PING", action="Z" * ATTACKER)))
    assert "Z" * 40 in error.message  # enough to recognise it
    assert "Z" * 41 not in error.message
    assert len(error.message) < 100 + len(", ".join(ACTIONS))  # the 40 and the list of actions


# --------------------------------------------------------------------------------------------
# Fuzzing: decode_request returns a request or raises DecodeError, nothing else
# --------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200).map(lambda b: b.replace(b'"', b"")))
@example(b"")
@example(b"\xff\xfe\xfd")
@example(b"{\x80}")
def test_any_bytes_without_strings_decode_or_raise_decode_error(data: bytes) -> None:
    check_outcome(data)


@FUZZ
@given(st.text(max_size=200).map(lambda t: t.encode("utf-8")))
def test_any_utf8_text_decodes_or_raises_decode_error(data: bytes) -> None:
    check_outcome(data)


@FUZZ
@given(st.binary(max_size=200))
@example(b'"\x80"')
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check_outcome(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(REQUEST_KEYS) | st.text(max_size=12), json_values))
def test_any_json_object_decodes_or_raises_decode_error(obj: dict[str, Any]) -> None:
    outcome = check_outcome(dumps(obj))
    if not isinstance(obj.get("action"), str):
        assert isinstance(outcome, DecodeError)
        assert outcome.code is ErrorCode.INVALID_REQUEST


@FUZZ
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    extra=st.dictionaries(st.sampled_from(REQUEST_KEYS) | st.text(max_size=12), json_values),
)
def test_valid_request_with_arbitrary_fields_decodes_or_raises_decode_error(
    action: str, extra: dict[str, Any]
) -> None:
    obj = {**frame(action), **extra}
    outcome = check_outcome(dumps(obj))
    if isinstance(outcome, DecodeError):
        assert outcome.code is not ErrorCode.INVALID_JSON  # it is JSON
        if isinstance(obj["uuid"], str) and UUID_RE.fullmatch(obj["uuid"]):
            assert outcome.uuid == obj["uuid"]


@FUZZ
@given(action=st.sampled_from(sorted(ACTIONS)), data=st.data())
def test_one_bad_field_is_named(action: str, data: st.DataObject) -> None:
    obj = frame(action)
    field = data.draw(st.sampled_from(sorted(set(obj) - {"action"})), label="field")
    value = data.draw(json_values, label="value")
    obj[field] = value
    outcome = check_outcome(dumps(obj))
    if isinstance(outcome, DecodeError):
        if field == "v" and type(value) is int:
            assert outcome.code is ErrorCode.UNSUPPORTED_VERSION
        else:
            assert outcome.code is ErrorCode.INVALID_REQUEST
            assert names(field, outcome.message), outcome.message
    else:
        assert getattr(outcome, field) == value


@pytest.mark.parametrize(
    ("frame", "said"),
    [
        (
            b'{"uuid": "no spaces", "action": "PING", "timestamp": 1}',
            "Expected `str` of 1-64 letters, digits, '_' or '-' - at `$.uuid`",
        ),
        (
            b'{"uuid": "h1", "action": "HALT", "timestamp": 1, "reason": "a\\u202eb"}',
            "Expected `str` without control characters (no newline, tab, escape or direction "
            "override) - at `$.reason`",
        ),
    ],
)
def test_a_failed_pattern_is_said_in_words_not_as_its_regex(frame: bytes, said: str) -> None:
    with pytest.raises(DecodeError) as excinfo:
        decode_request(frame)
    assert excinfo.value.message == said
    # the same words wherever the contract's types are checked: the client, the CLI
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.convert("no spaces", Uuid)
    assert validation_message(refused.value) == "Expected `str` of 1-64 letters, digits, '_' or '-'"
