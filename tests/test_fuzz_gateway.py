"""Fuzzing a live gateway: thousands of generated and mutated payloads, including signed
orders with one signed field changed. Every payload gets a reply (or, when oversized, a
drop), the gateway stays up, and the book does not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gtw_server.testing import GatewayProcess
from protocol import Close, Open, Side, encode, secret_key, sign

SECRET: Final = "fuzz-secret-of-the-fuzz-gateway"
EXAMPLES: Final = 700  # per strategy; four strategies make a few thousand payloads
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SIGNED_FIELDS: Final = ("uuid", "symbol", "type", "volume", "price", "sl", "tp", "deviation")


class Client:
    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.tickets: list[int] = []  # positions opened before fuzzing, for CLOSEs to aim at

    def ask(self, *frames: bytes) -> dict[str, Any]:
        self.sock.send_multipart(list(frames))
        assert self.sock.poll(5000), f"no reply to {frames[0][:80]!r}"
        # An empty first frame reads as a REQ delimiter, so the reply comes back after one.
        reply: dict[str, Any] = json.loads(self.sock.recv_multipart()[-1])
        return reply


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, Client]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "gw"
    with GatewayProcess(data_dir, secret=SECRET) as gateway:
        client = Client(gateway.endpoint)
        client.tickets = [open_position(client, f"seed-{n}") for n in range(2)]
        before = book(client)
        yield gateway, client
        assert gateway.returncode is None, "the gateway died under fuzzing"
        pong = client.ask(query("PING"))
        assert pong["status"] == "OK" and not pong["gateway"].get("halted"), pong  # omitted: False
        assert book(client) == before, "a fuzzed payload changed the book"
        client.sock.close()


def open_position(client: Client, uuid: str) -> int:
    now = time.time()
    order = Open(uuid=uuid, timestamp=now, symbol="EURUSD", type=Side.BUY, volume=0.1)
    reply = client.ask(encode(sign(secret_key(SECRET), order, int(now * 1000))))
    assert reply["status"] == "FILLED", reply
    return int(reply["ticket"])


def query(action: str, **fields: Any) -> bytes:
    request = {"uuid": "q", "action": action, "timestamp": time.time(), **fields}
    return json.dumps(request).encode()


def book(client: Client) -> tuple[Any, Any]:
    """The positions (what an order could change of them; prices move on their own) and the
    balance, read from the terminal now."""
    account = client.ask(query("GET_ACCOUNT", fresh=True))["account"]
    positions = client.ask(query("GET_POSITIONS", fresh=True))["positions"]
    fields = ("ticket", "symbol", "type", "volume", "price_open", "sl", "tp")
    return sorted(tuple(p[f] for f in fields) for p in positions), account["balance"]


def check(reply: dict[str, Any]) -> None:
    assert reply["status"] in {"REJECTED", "OK", "PENDING"}, reply  # never FILLED
    if reply["status"] == "REJECTED":
        assert reply["error_code"] and reply["error_msg"]
        assert "Traceback" not in reply["error_msg"] and SECRET not in reply["error_msg"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "uuid",
        "action",
        "timestamp",
        "v",
        "symbol",
        "type",
        "volume",
        "price",
        "sl",
        "tp",
        "deviation",
        "magic",
        "comment",
        "ticket",
        "order_uuid",
        "risk_signature",
        "reason",
    ]
) | st.text(max_size=10)
actions = st.sampled_from(
    ["OPEN", "CLOSE", "HALT", "RESUME", "PING", "GET_ORDER", "open", "DELETE", ""]
)


@FUZZ
@given(payload=st.binary(max_size=300))
def test_random_bytes(fuzzed: tuple[GatewayProcess, Client], payload: bytes) -> None:
    check(fuzzed[1].ask(payload))


@FUZZ
@given(obj=st.dictionaries(keys, json_values, max_size=10), action=actions)
def test_random_objects(
    fuzzed: tuple[GatewayProcess, Client], obj: dict[str, Any], action: str
) -> None:
    obj.setdefault("action", action)
    if obj.get("action") in ("OPEN", "CLOSE", "HALT", "RESUME"):
        obj.pop("risk_signature", None)  # unsigned, so nothing can pass as authentic
    check(fuzzed[1].ask(json.dumps(obj).encode()))


orders = st.builds(
    Open,
    uuid=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    timestamp=st.just(0.0),
    symbol=st.sampled_from(["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]),
    type=st.sampled_from(Side),
    volume=st.sampled_from([0.01, 0.1, 1.0]),
    sl=st.none() | st.just(0.5),
    deviation=st.none() | st.integers(0, 50),
)
mutations = st.sampled_from(SIGNED_FIELDS) | st.sampled_from(["signature", "ticket"])


def mutate(order: dict[str, Any], field: str) -> None:
    """Change one signed field of an order, keeping its signature."""
    if field == "signature":
        sig = order["risk_signature"]
        order["risk_signature"] = sig[:20] + ("0" if sig[20] != "0" else "1") + sig[21:]
    elif field == "ticket":
        order["action"], order["ticket"] = "CLOSE", 1
        for name in ("symbol", "type", "sl", "price", "tp", "magic", "comment"):
            order.pop(name, None)
    elif field == "uuid":
        order["uuid"] += "x"
    elif field == "symbol":
        order["symbol"] = "GBPUSD" if order["symbol"] != "GBPUSD" else "EURUSD"
    elif field == "type":
        order["type"] = "SELL" if order["type"] == "BUY" else "BUY"
    elif field == "deviation":
        order["deviation"] = (order.get("deviation") or 0) + 1
    else:  # volume, price, sl, tp
        order[field] = (order.get(field) or 1.0) * 1.5


@FUZZ
@given(order=orders, field=mutations)
def test_signed_orders_with_one_field_changed(
    fuzzed: tuple[GatewayProcess, Client], order: Open, field: str
) -> None:
    now = time.time()
    signed = sign(
        secret_key(SECRET), msgspec.structs.replace(order, timestamp=now), int(now * 1000)
    )
    obj = json.loads(encode(signed))
    mutate(obj, field)
    reply = fuzzed[1].ask(json.dumps(obj).encode())
    check(reply)
    assert reply["status"] == "REJECTED"
    assert reply["error_code"] in {"SIGNATURE_INVALID", "INVALID_REQUEST"}


@FUZZ
@given(frames=st.lists(st.binary(max_size=60), min_size=2, max_size=4))
def test_multi_frame_messages(fuzzed: tuple[GatewayProcess, Client], frames: list[bytes]) -> None:
    if frames[0] == b"":  # that is REQ's delimiter: the body is what follows
        frames[0] = b"x"
    reply = fuzzed[1].ask(*frames)
    assert reply["status"] == "REJECTED" and reply["error_code"] == "INVALID_REQUEST"


def test_closing_with_a_forged_signature_does_nothing(
    fuzzed: tuple[GatewayProcess, Client],
) -> None:
    close = Close(uuid="forged-close", timestamp=time.time(), ticket=fuzzed[1].tickets[0])
    forged = sign(secret_key("not-" + SECRET), close, int(time.time() * 1000))
    assert fuzzed[1].ask(encode(forged))["error_code"] == "SIGNATURE_INVALID"
