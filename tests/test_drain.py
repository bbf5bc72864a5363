"""EdgeDrain reads every queued message of a ZeroMQ socket from the event loop, in batches, and
never leaves one stranded: not behind a send that swallowed the edge, not behind a handler that
raised. A stranded message is a gateway that stops reading until the next one arrives."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import zmq
from support import eventually_async

from plumbing.drain import EdgeDrain


@pytest.fixture
async def pair() -> AsyncIterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    """Two connected PAIR sockets: the drained one, and the one that writes to it."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    drained, writer = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    address = f"inproc://drain-{uuid.uuid4().hex}"
    drained.bind(address)
    writer.connect(address)
    yield drained, writer
    writer.close(linger=0)
    drained.close(linger=0)


async def test_every_queued_message_is_read_in_batches_that_let_the_loop_run(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    drained, writer = pair
    for n in range(10):
        writer.send(b"%d" % n)
    seen: list[bytes] = []
    turns: list[int] = []  # how many had been read each time another callback ran
    drain = EdgeDrain(drained, batch=3)

    def other() -> None:
        turns.append(len(seen))
        if len(seen) < 10:
            asyncio.get_running_loop().call_soon(other)

    asyncio.get_running_loop().call_soon(other)
    drain.start(lambda frames: seen.append(frames[0]))
    await eventually_async(lambda: len(seen) == 10, "all ten read")
    drain.stop()
    assert seen == [b"%d" % n for n in range(10)]
    assert any(0 < n < 10 for n in turns)  # others ran between batches


async def test_a_handler_that_raises_strands_nothing(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    drained, writer = pair
    raised: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: raised.append(context["exception"]))
    seen: list[bytes] = []

    def handle(frames: list[bytes]) -> None:
        seen.append(frames[0])
        if frames[0] == b"bad":
            raise ValueError("a handler's bug")

    drain = EdgeDrain(drained)
    drain.start(handle)
    await asyncio.sleep(0.05)  # its first look is over: the next comes with the next message
    for body in (b"a", b"bad", b"b", b"c"):
        writer.send(body)
    # Nothing else arrives: before, "b" and "c" waited for a next message that never came.
    await eventually_async(lambda: len(seen) == 4, "the messages after the bad one read")
    drain.stop()
    assert seen == [b"a", b"bad", b"b", b"c"]
    assert [type(exc) for exc in raised] == [ValueError]  # said, by the loop


async def test_a_message_that_arrives_while_replying_is_read(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    drained, writer = pair
    seen: list[bytes] = []
    drain = EdgeDrain(drained, batch=1)  # a turn of the loop between any two

    def echo(frames: list[bytes]) -> None:
        seen.append(frames[0])
        if len(seen) < 50:  # a pipelining peer: its next request is in before this reply
            writer.send(b"%d" % len(seen))
        drained.send(frames[0])  # may take in the announcement of that request
        drain.after_send()

    drain.start(echo)
    writer.send(b"0")
    await eventually_async(lambda: len(seen) == 50, "fifty requests read, with no other wake-up")
    drain.stop()
    assert seen == [b"%d" % n for n in range(50)]
    assert [writer.recv() for _ in range(50)] == seen


async def test_a_socket_that_cannot_be_read_is_not_read_again_and_again() -> None:
    class Broken:
        """A socket whose context was terminated under it (ETERM at every read)."""

        closed = False
        reads = 0

        def __init__(self, fd: int) -> None:
            self.fd = fd

        def fileno(self) -> int:
            return self.fd

        def recv_multipart(self, flags: int) -> list[bytes]:
            self.reads += 1
            raise zmq.ZMQError(zmq.ETERM)

    read_end, write_end = os.pipe()
    broken = Broken(read_end)
    raised: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: raised.append(context["exception"]))
    drain = EdgeDrain(broken)  # type: ignore[arg-type]
    try:
        drain.start(lambda frames: None)
        await asyncio.sleep(0.05)  # many turns of the loop
        drain.stop()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert broken.reads == 1  # said once (by the loop), not read at every turn
    assert [type(exc) for exc in raised] == [zmq.ZMQError]
