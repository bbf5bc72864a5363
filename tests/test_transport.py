"""The ROUTER transport's bound on large answers, on real sockets: a peer that does not read
holds at most ``_LARGE_BYTES`` of them in the gateway (``send`` refuses the rest and says so),
a peer that reads is refused only while it is behind, one answer larger than the whole budget
still goes to a peer that holds none, and replies that may not be refused never are."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
import zmq
from support import eventually

from gtw_server.dispatch import _QUERIES
from gtw_server.transport import _LARGE_BYTES, _SWEEP_PEERS, RouterTransport
from protocol import ACTIONS, Read

BIG = b"x" * 46_000  # a GET_POSITIONS reply on a book of 200 positions


@pytest.fixture
def transport() -> Iterator[RouterTransport]:
    router = RouterTransport("tcp://127.0.0.1:*", max_message_bytes=1 << 20, linger_ms=0)
    yield router
    router.close()


def dealer(transport: RouterTransport, identity: bytes, *, reads: bool) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, identity)
    if not reads:  # nor lets its own libzmq read for it: everything stays with the gateway
        sock.setsockopt(zmq.RCVHWM, 1)
        sock.setsockopt(zmq.RCVBUF, 4096)
    sock.connect(transport.endpoint)
    sock.send(b"hello")  # the ROUTER knows a peer once it has heard from it
    return sock


def heard(transport: RouterTransport, count: int) -> None:
    """Read the first ``count`` messages the ROUTER gets: their peers are routable then."""
    for _ in range(count):
        assert transport._sock.poll(5000), "a peer did not connect"
        transport._sock.recv_multipart()


def test_a_deaf_peer_holds_its_budget_of_large_answers_and_no_more(
    transport: RouterTransport,
) -> None:
    deaf = dealer(transport, b"deaf", reads=False)
    heard(transport, 1)
    try:
        sent = [transport.send([b"deaf", BIG], refusable=True) for _ in range(400)]  # 18 MB
        held = sum(n for t, n in transport._large[b"deaf"] if not t.done)
        assert held <= _LARGE_BYTES + len(BIG)
        assert sent.count(False) >= 400 - (_LARGE_BYTES * 8) // len(BIG)  # refused, and said so
        assert transport.dropped_replies == 0
    finally:
        deaf.close()


def test_a_reading_peer_is_refused_only_while_behind(transport: RouterTransport) -> None:
    reader = dealer(transport, b"reader", reads=True)
    heard(transport, 1)
    try:
        sent = [transport.send([b"reader", BIG], refusable=True) for _ in range(200)]  # 9 MB
        got = 0
        while reader.poll(2000):
            reader.recv()
            got += 1
            if got == sent.count(True):
                break
        assert got == sent.count(True)  # what was not refused arrived
        # caught up: its budget is free again
        eventually(lambda: transport.send([b"reader", BIG], refusable=True), "accepted again")
    finally:
        reader.close()


def test_replies_that_may_not_be_refused_are_not(transport: RouterTransport) -> None:
    deaf = dealer(transport, b"deaf", reads=False)
    heard(transport, 1)
    try:
        assert all(transport.send([b"deaf", BIG]) for _ in range(100))  # libzmq's queue holds
        assert b"deaf" not in transport._large
    finally:
        deaf.close()


def test_one_reply_larger_than_the_budget_still_goes(transport: RouterTransport) -> None:
    reader = dealer(transport, b"reader", reads=True)
    heard(transport, 1)
    huge = b"y" * (_LARGE_BYTES * 2)
    try:
        assert transport.send([b"reader", huge], refusable=True)
        assert reader.poll(5000)
        assert reader.recv() == huge
        assert transport.dropped_replies == 0
    finally:
        reader.close()


def test_peers_that_left_are_forgotten(transport: RouterTransport) -> None:
    for n in range(600):  # one after another, as clients come and go
        sock = dealer(transport, b"peer-%d" % n, reads=True)
        try:
            heard(transport, 1)
            assert transport.send([b"peer-%d" % n, BIG], refusable=True)
            assert sock.poll(5000)
            sock.recv()
        finally:
            sock.close()
    # each peer's answer had gone: past _SWEEP_PEERS peers, the record of them was swept
    assert len(transport._large) <= _SWEEP_PEERS + 1


def test_every_read_only_answer_is_refusable_and_no_order_reply_is() -> None:
    """A large answer to a read may be refused BUSY when its peer holds its share unread; a
    reply to anything that changes the book never is (the budget is only for the reads)."""
    reads = {str(kind.__struct_config__.tag) for kind in typing.get_args(Read)}
    assert {"GET_ORDERS", "GET_HISTORY", "GET_RATES", "GET_TICKS"} <= reads
    assert reads | {"GET_ACCOUNT", "GET_POSITIONS", "GET_EVENTS"} == _QUERIES
    commands = {"PLACE", "MODIFY_POSITION", "MODIFY_ORDER", "CANCEL", "CLOSE_BY"}
    assert not _QUERIES & {"OPEN", "CLOSE", "HALT", "RESUME", "PING", "GET_ORDER", *commands}
    assert _QUERIES <= ACTIONS
