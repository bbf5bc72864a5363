"""`make demo`: start a gateway on the simulator, run the example strategy, stop the gateway.

Everything happens on this machine: the gateway listens on a free loopback port, orders are
signed with a secret generated for this run, and the simulated broker account, the journal
and both audit trails live in a temporary directory that is removed afterwards.

With ``--keep`` (``make demo KEEP=1``) the gateway stays up after the strategy, and the demo
prints how to drive it with ``mt5-bridge`` or your own strategy; Ctrl+C stops it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategy import run

from gtw_server.testing import GatewayProcess
from inf_bridge import add_audit_file


def show_life(uuid: str, *audit_files: Path) -> None:
    """Print one order's stages from the node's and the gateway's audit files, in time order."""
    events = [
        json.loads(line)
        for path in audit_files
        for line in path.read_text(encoding="utf-8").splitlines()
        if f'"{uuid}"' in line
    ]
    print(f"8. AUDIT: the life of order {uuid}, from both audit files (JSON lines):")
    for event in sorted(events, key=lambda e: e["time"]):
        print(f"  {event['time'][11:23]}  {event['source']:<7}  {event['message']}")


def keep_up(gateway: GatewayProcess, secret: str, work: Path) -> None:
    """Leave the gateway running for the user until Ctrl+C (or until it exits)."""
    secret_file = work / "secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    print(
        "\nThe gateway stays up. In another shell:\n"
        f"  export MT5_BRIDGE_ENDPOINT={gateway.endpoint} MT5_BRIDGE_SECRET_FILE={secret_file}\n"
        "  .venv/bin/mt5-bridge watch        # or ping, positions, open, halt, ...\n"
        "Ctrl+C here stops it."
    )
    # Ctrl+C, or a SIGTERM, ends the wait (and then the gateway), even where the shell
    # started this process with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while gateway.returncode is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def main(argv: list[str]) -> int:
    keep = "--keep" in argv
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="mt5-bridge-demo-") as tmp:
        work = Path(tmp)
        logger.remove()  # the demo prints its own story; the audit goes to files
        add_audit_file(work / "node-audit.jsonl", source="node")
        gateway = GatewayProcess(
            work / "gateway",
            secret=secret,
            sim={"seed": 42, "always_open": True},  # the demo runs on a Sunday too
            log_file=work / "gateway.log",
        )
        print(f"Starting the gateway on the simulated terminal ({gateway.endpoint}) ...")
        gateway.start()
        log = (work / "gateway.log").read_text(encoding="utf-8")
        banner = next(line for line in log.splitlines() if "gateway ready" in line)
        print(f"Gateway is up (pid {gateway.pid}); it logged:\n  {banner.split('| ', 3)[-1]}\n")
        try:
            fills = asyncio.run(run(gateway.endpoint, secret, gateway.events_endpoint))
            if keep:
                keep_up(gateway, secret, work)
        finally:
            print("\nStopping the gateway (SIGTERM) ...")
            code = gateway.stop()
            print(f"Gateway stopped with exit code {code}.\n")
        show_life(fills[0].uuid, work / "node-audit.jsonl", work / "gateway" / "audit.jsonl")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
