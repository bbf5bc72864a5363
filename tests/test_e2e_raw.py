"""End to end with raw ZeroMQ sockets and JSON written by hand from PROTOCOL.md.

Nothing here imports the project's client or protocol code: this is what a third-party client
(an MQL5 expert, a C# tool, a script) sees. Signatures are computed with ``hmac`` from the
canonical text exactly as PROTOCOL.md spells it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from gtw_server.testing import GatewayProcess


def risk_signature(secret: str, fields: list[str]) -> str:
    """RISK_PASS:<hex>:<ts_ms> over v1, uuid, action, symbol, type, volume, price, sl, tp,
    deviation, ticket, ts_ms (the caller passes the middle ten, already formatted)."""
    ts_ms = int(time.time() * 1000)
    canonical = "\n".join(["v1", *fields, str(ts_ms)]).encode()
    digest = hmac.new(secret.strip().encode(), canonical, hashlib.sha256).hexdigest()
    return f"RISK_PASS:{digest}:{ts_ms}"


class RawClient:
    """A REQ or DEALER socket: the gateway answers both on the envelope they came with."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock

    def send_raw(self, *frames: bytes) -> dict[str, Any]:
        self.sock.send_multipart(list(frames))
        assert self.sock.poll(5000), "no reply within 5 s"
        reply = self.sock.recv_multipart()
        document: dict[str, Any] = json.loads(reply[-1])
        return document

    def send(self, text: str) -> dict[str, Any]:
        return self.send_raw(text.encode())


@pytest.fixture(params=[zmq.REQ, zmq.DEALER], ids=["REQ", "DEALER"])
def raw(request: pytest.FixtureRequest, gateway: GatewayProcess) -> Iterator[RawClient]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(request.param)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(gateway.endpoint)
    yield RawClient(sock)
    sock.close()


def now() -> float:
    return time.time()


def test_ping(raw: RawClient) -> None:
    reply = raw.send(f'{{"uuid": "raw-ping-1", "action": "PING", "timestamp": {now()}}}')
    assert reply["uuid"] == "raw-ping-1"
    assert reply["action"] == "PING"
    assert reply["status"] == "OK"
    assert reply["mt5_connected"] is True
    assert isinstance(reply["timestamp"], float)
    assert "authenticated" not in reply  # an unsigned PING asks nothing about the secret


@pytest.mark.parametrize(
    ("key", "age_ms", "authenticated", "auth_error"),
    [
        ("right", 0, True, None),
        ("wrong", 0, False, "SIGNATURE_INVALID"),
        ("right", 60_000, False, "SIGNATURE_EXPIRED"),
    ],
)
def test_a_signed_ping_says_whether_the_secret_is_accepted(  # noqa: PLR0917
    raw: RawClient, secret: str, key: str, age_ms: int, authenticated: bool, auth_error: str | None
) -> None:
    # A PING is signed like HALT: every order field empty.
    ts_ms = int(time.time() * 1000) - age_ms
    canonical = "\n".join(["v1", "raw-ping-2", "PING", *[""] * 8, str(ts_ms)]).encode()
    used = secret if key == "right" else "an-entirely-different-secret"
    mac = hmac.new(used.encode(), canonical, hashlib.sha256).hexdigest()
    reply = raw.send(
        '{"uuid": "raw-ping-2", "action": "PING", "timestamp": %f, '
        '"risk_signature": "RISK_PASS:%s:%d"}' % (now(), mac, ts_ms)
    )
    assert reply["status"] == "OK" and reply["mt5_connected"] is True  # answered either way
    assert reply["authenticated"] is authenticated
    assert reply.get("auth_error") == auth_error
    assert ("error_msg" in reply) is (not authenticated)


def test_open_close_and_queries(raw: RawClient, secret: str) -> None:
    sig = risk_signature(secret, ["raw-open-1", "OPEN", "EURUSD", "BUY", "0.20000000"] + [""] * 5)
    opened = raw.send(
        '{"uuid": "raw-open-1", "action": "OPEN", "timestamp": %f, "symbol": "EURUSD", '
        '"type": "BUY", "volume": 0.2, "comment": "raw", "risk_signature": "%s"}' % (now(), sig)
    )
    assert opened["status"] == "FILLED", opened
    assert opened["uuid"] == "raw-open-1" and opened["action"] == "OPEN"
    assert opened["volume"] == 0.2 and opened["retcode"] == 10009
    ticket = opened["ticket"]
    assert ticket > 0 and opened["order"] > 0 and opened["deal"] > 0 and opened["price"] > 0

    positions = raw.send(
        f'{{"uuid": "raw-pos-1", "action": "GET_POSITIONS", "timestamp": {now()}}}'
    )
    assert positions["status"] == "OK"
    (position,) = [p for p in positions["positions"] if p["ticket"] == ticket]
    for field in (
        "symbol",
        "type",
        "volume",
        "price_open",
        "price_current",
        "sl",
        "tp",
        "profit",
        "swap",
        "magic",
        "comment",
        "time",
    ):
        assert field in position
    assert position["type"] == "BUY" and position["volume"] == 0.2

    account = raw.send(f'{{"uuid": "raw-acct-1", "action": "GET_ACCOUNT", "timestamp": {now()}}}')
    assert account["status"] == "OK"
    for field in (
        "login",
        "server",
        "currency",
        "leverage",
        "balance",
        "equity",
        "margin",
        "margin_free",
        "margin_level",
        "profit",
        "trade_mode",
        "trade_allowed",
    ):
        assert field in account["account"]
    assert account["account"]["trade_mode"] == "DEMO"

    fields = ["raw-close-1", "CLOSE", "", "", "0.05000000", "", "", "", "", str(ticket)]
    partial = raw.send(
        '{"uuid": "raw-close-1", "action": "CLOSE", "timestamp": %f, "ticket": %d, '
        '"volume": 0.05, "risk_signature": "%s"}' % (now(), ticket, risk_signature(secret, fields))
    )
    assert partial["status"] == "FILLED", partial
    assert partial["ticket"] == ticket and partial["volume"] == 0.05

    fields = ["raw-close-2", "CLOSE", "", "", "", "", "", "", "", str(ticket)]
    whole = raw.send(
        '{"uuid": "raw-close-2", "action": "CLOSE", "timestamp": %f, "ticket": %d, '
        '"risk_signature": "%s"}' % (now(), ticket, risk_signature(secret, fields))
    )
    assert whole["status"] == "FILLED", whole
    assert whole["volume"] == pytest.approx(0.15)

    order = raw.send(
        f'{{"uuid": "raw-get-1", "action": "GET_ORDER", "timestamp": {now()}, '
        f'"order_uuid": "raw-open-1"}}'
    )
    assert order["uuid"] == "raw-get-1" and order["action"] == "GET_ORDER"
    assert order["status"] == "FILLED" and order["ticket"] == ticket
    assert order["order_uuid"] == "raw-open-1" and order["order_action"] == "OPEN"

    repeat = raw.send(
        '{"uuid": "raw-open-1", "action": "OPEN", "timestamp": %f, "symbol": "EURUSD", '
        '"type": "BUY", "volume": 0.2, "comment": "raw", "risk_signature": "%s"}'
        % (
            now(),
            risk_signature(
                secret, ["raw-open-1", "OPEN", "EURUSD", "BUY", "0.20000000"] + [""] * 5
            ),
        )
    )
    assert repeat["status"] == "FILLED" and repeat["duplicate"] is True
    assert repeat["ticket"] == ticket


@pytest.mark.parametrize(
    ("payload", "code", "echo"),
    [
        ("not json at all", "INVALID_JSON", None),
        ('["PING"]', "INVALID_REQUEST", None),
        ('{"uuid": "bad-1", "action": "FLY", "timestamp": 1}', "UNKNOWN_ACTION", "bad-1"),
        (
            '{"uuid": "bad-2", "action": "PING", "timestamp": 1, "v": 2}',
            "UNSUPPORTED_VERSION",
            "bad-2",
        ),
        (
            '{"uuid": "bad-3", "action": "OPEN", "timestamp": 1, "symbol": "EURUSD", '
            '"type": "BUY", "volume": "lots"}',
            "INVALID_REQUEST",
            "bad-3",
        ),
        ('{"uuid": "bad 4", "action": "PING", "timestamp": 1}', "INVALID_REQUEST", None),
        (
            '{"uuid": "bad-5", "action": "OPEN", "timestamp": 1, "symbol": "EURUSD", '
            '"type": "BUY", "volume": 0.1}',
            "SIGNATURE_MISSING",
            "bad-5",
        ),
        (
            '{"uuid": "bad-6", "action": "GET_ORDER", "timestamp": 1, "order_uuid": "nope"}',
            "ORDER_NOT_FOUND",
            "bad-6",
        ),
    ],
)
def test_bad_requests_get_precise_rejections(
    raw: RawClient, payload: str, code: str, echo: str | None
) -> None:
    reply = raw.send(payload)
    assert reply["status"] == "REJECTED"
    assert reply["error_code"] == code
    assert reply["uuid"] == echo
    assert reply["error_msg"]


def test_bad_field_is_named(raw: RawClient) -> None:
    reply = raw.send(
        '{"uuid": "bad-7", "action": "CLOSE", "timestamp": 1, "ticket": -5, "risk_signature": "x"}'
    )
    assert reply["error_code"] == "INVALID_REQUEST"
    assert "ticket" in reply["error_msg"]


def test_two_body_frames_are_refused(raw: RawClient) -> None:
    reply = raw.send_raw(b'{"uuid": "a", "action": "PING", "timestamp": 1}', b"extra")
    assert reply["status"] == "REJECTED"
    assert reply["error_code"] == "INVALID_REQUEST"


def test_the_filling_policy_a_closes_magic_and_the_terminals_whole_answer(
    raw: RawClient, secret: str
) -> None:
    # US500 takes IOC only: FOK is the terminal's 10030, with nothing executed. type_filling
    # is signed as one line more before ts_ms; magic and comment are not signed.
    def open_us500(uuid: str, filling: str) -> dict[str, Any]:
        fields = [uuid, "OPEN", "US500", "BUY", "1.00000000", *[""] * 5, filling]
        sig = risk_signature(secret, fields)
        return raw.send(
            '{"uuid": "%s", "action": "OPEN", "timestamp": %f, "symbol": "US500", "type": "BUY", '
            '"volume": 1.0, "type_filling": "%s", "risk_signature": "%s"}'
            % (uuid, now(), filling, sig)
        )

    refused = open_us500("raw-fill-1", "FOK")
    assert refused["status"] == "REJECTED" and refused["retcode"] == 10030, refused
    assert refused["error_code"] == "MT5_REJECTED" and "request_id" in refused
    unknown = open_us500("raw-fill-2", "ALL")
    assert unknown["status"] == "REJECTED" and unknown["error_code"] == "INVALID_REQUEST"
    assert "$.type_filling" in unknown["error_msg"], unknown
    opened = open_us500("raw-fill-3", "IOC")
    assert opened["status"] == "FILLED", opened
    assert 0 < opened["bid"] < opened["ask"] and opened["request_id"] > refused["request_id"]
    assert opened["retcode_external"] == 0 and opened["price"] == opened["ask"]
    ticket = opened["ticket"]
    fields = ["raw-fill-4", "CLOSE", "", "", "", "", "", "", "", str(ticket), "IOC"]
    closed = raw.send(
        '{"uuid": "raw-fill-4", "action": "CLOSE", "timestamp": %f, "ticket": %d, '
        '"magic": 77, "comment": "target", "type_filling": "IOC", "risk_signature": "%s"}'
        % (now(), ticket, risk_signature(secret, fields))
    )
    assert closed["status"] == "FILLED" and closed["price"] == closed["bid"], closed
    history = raw.send(
        '{"uuid": "raw-fill-5", "action": "GET_HISTORY", "timestamp": %f, "position": %d}'
        % (now(), ticket)
    )
    opening, closing = history["deals"]
    assert (opening["magic"], closing["magic"]) == (0, 77), history
    assert closing["comment"].endswith(" target") and closing["ticket"] == closed["deal"]
    stored = raw.send(
        '{"uuid": "raw-fill-6", "action": "GET_ORDER", "timestamp": %f, "order_uuid": "%s"}'
        % (now(), "raw-fill-3")
    )
    assert (stored["bid"], stored["ask"]) == (opened["bid"], opened["ask"])  # journaled


def test_a_volume_off_the_step_is_refused_or_rounded_down_when_asked_and_signed(
    raw: RawClient, secret: str
) -> None:
    def open_eurusd(uuid: str, rounding: str | None, signed: list[str]) -> dict[str, Any]:
        fields = [uuid, "OPEN", "EURUSD", "BUY", "0.12300000", *[""] * 5, *signed]
        extra = "" if rounding is None else f', "volume_rounding": "{rounding}"'
        return raw.send(
            '{"uuid": "%s", "action": "OPEN", "timestamp": %f, "symbol": "EURUSD", "type": "BUY", '
            '"volume": 0.123%s, "risk_signature": "%s"}'
            % (uuid, now(), extra, risk_signature(secret, fields))
        )

    refused = open_eurusd("raw-vol-1", None, [])
    assert refused["status"] == "REJECTED" and refused["error_code"] == "INVALID_VOLUME"
    assert "0.01 to 500 lots in steps of 0.01" in refused["error_msg"] and "retcode" not in refused
    unsigned = open_eurusd("raw-vol-2", "down", [])  # the rounding is signed when given
    assert unsigned["error_code"] == "SIGNATURE_INVALID"
    upward = open_eurusd("raw-vol-3", "up", ["up"])
    assert upward["error_code"] == "INVALID_REQUEST" and "$.volume_rounding" in upward["error_msg"]
    rounded = open_eurusd("raw-vol-4", "down", ["down"])
    assert rounded["status"] == "FILLED", rounded
    assert (rounded["volume"], rounded["volume_requested"]) == (0.12, 0.123)
    positions = raw.send(
        f'{{"uuid": "raw-vol-5", "action": "GET_POSITIONS", "timestamp": {now()}, "fresh": true}}'
    )
    assert [p["volume"] for p in positions["positions"]] == [0.12]  # only the rounded one
