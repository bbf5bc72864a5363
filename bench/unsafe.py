"""The unsafe design: what every order would cost if exactly-once, authentication and
isolation were free, measured in the same run as the gateway (issue 18).

The seed's design, done well: one asyncio ROUTER on the gateway's own transport that decodes
each request with the project's codec and calls the same simulated terminal, through the same
``TerminalAdapter``, *inline* on its event loop: no journal, no signature check, no worker
process, no audit. OPEN and CLOSE are the gateway's orders (``executor.open_order``, the
same tag in the comment), so the terminal does the same work; GET_ACCOUNT and GET_POSITIONS
read the terminal there and then; PING answers at once. What the gateway adds on top of this
is the price of its guarantees.

    python -m bench.unsafe --bind tcp://127.0.0.1:6001 --sim '{"seed": 1}'

``UnsafeProcess`` runs it as a child process with a state file of its own, stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import zmq

from bench.floor import EchoServer, serve
from gtw_server.adapter import TerminalAdapter
from gtw_server.executor import close_order, open_order
from gtw_server.replies import ok, outcome_reply, rejected
from gtw_server.tagging import order_tag
from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.testing import ServerProcess, Value
from plumbing.loop import loop_factory
from protocol import (
    AnyRequest,
    Close,
    ErrorCode,
    GetAccount,
    GetPositions,
    Open,
    Ping,
    Reply,
)

__all__ = ["UnsafeProcess", "UnsafeServer", "main"]


class UnsafeServer(EchoServer):
    """The floor's server (its transport, decoding and sending), with PING, OPEN and CLOSE
    answered on the event loop, the terminal called in place."""

    def __init__(
        self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]], terminal: TerminalAdapter
    ) -> None:
        super().__init__(endpoint, context)
        self._terminal = terminal

    def start(self) -> None:
        self._terminal.connect()
        super().start()

    def _reply(self, request: AnyRequest) -> Reply:
        if isinstance(request, Ping):
            return ok(request, mt5_connected=True)
        if isinstance(request, GetAccount | GetPositions):
            return self._read(request)
        if isinstance(request, Open):
            outcome = self._terminal.open(open_order(request, order_tag(request.uuid)))
        elif isinstance(request, Close):
            outcome = self._terminal.close(close_order(request, order_tag(request.uuid)))
        else:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.UNKNOWN_ACTION,
                "the unsafe design answers PING, OPEN, CLOSE, GET_ACCOUNT and GET_POSITIONS",
            )
        return outcome_reply(request.uuid, request.action, outcome)

    def _read(self, request: GetAccount | GetPositions) -> Reply:
        """A read, from the terminal at once (no snapshot, no queue)."""
        if isinstance(request, GetAccount):
            return ok(request, account=self._terminal.account())
        return ok(request, positions=self._terminal.positions(request.symbol))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.unsafe",
        description="The benchmark's unsafe design: the simulator called inline, nothing else.",
    )
    parser.add_argument("--bind", required=True, help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:6001")
    parser.add_argument("--sim", default="{}", help="the [sim] settings, as a JSON object")
    parser.add_argument("--state", type=Path, help="the simulator's state file")
    args = parser.parse_args(argv)
    try:
        config = msgspec.convert(json.loads(args.sim), SimConfig)
    except (ValueError, msgspec.ValidationError) as exc:
        parser.error(f"--sim: {exc}")
    terminal = TerminalAdapter(SimTerminal(config=config, state_path=args.state))
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(
            serve("unsafe", args.bind, lambda context: UnsafeServer(args.bind, context, terminal))
        )


class UnsafeProcess(ServerProcess):
    """The unsafe design as a child process on a free loopback port, on the simulator with
    ``sim``'s settings and a state file in a directory of its own; stopped by its PID.

    >>> with UnsafeProcess({"always_open": True}) as unsafe:  # doctest: +SKIP
    ...     print(unsafe.endpoint)
    tcp://127.0.0.1:41235
    """

    name = "unsafe design"

    def __init__(self, sim: Mapping[str, Value], *, log_file: Path | None = None) -> None:
        super().__init__(log_file=log_file)
        self._sim = dict(sim)
        self._directory = tempfile.TemporaryDirectory(prefix="mt5-unsafe-")

    def command(self) -> list[str]:
        state = Path(self._directory.name) / "sim.sqlite3"
        sim = json.dumps(self._sim)
        return [
            sys.executable, "-m", "bench.unsafe", "--bind", self.endpoint, "--sim", sim,
            "--state", str(state),
        ]  # fmt: skip

    def stop(self, timeout: float = 20.0) -> int:
        code = super().stop(timeout)
        self._directory.cleanup()
        return code


if __name__ == "__main__":
    sys.exit(main())
