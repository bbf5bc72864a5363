"""`make demo`: start a gateway on the simulator, run the example strategy, stop the gateway.

Everything happens on this machine: the gateway listens on a free loopback port, orders are
signed with a secret generated for this run, and the simulated broker account, the journal
and both audit trails live in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
from pathlib import Path

from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategy import run

from gtw_server.process import GatewayProcess
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


def main() -> int:
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="mt5-bridge-demo-") as tmp:
        work = Path(tmp)
        logger.remove()  # the demo prints its own story; the audit goes to files
        add_audit_file(work / "node-audit.jsonl", source="node")
        gateway = GatewayProcess(
            work / "gateway", secret=secret, sim={"seed": 42}, log_file=work / "gateway.log"
        )
        print(f"Starting the gateway on the simulated terminal ({gateway.endpoint}) ...")
        gateway.start()
        log = (work / "gateway.log").read_text(encoding="utf-8")
        banner = next(line for line in log.splitlines() if "gateway ready" in line)
        print(f"Gateway is up (pid {gateway.pid}); it logged:\n  {banner.split('| ', 3)[-1]}\n")
        try:
            fills = asyncio.run(run(gateway.endpoint, secret))
        finally:
            print("\nStopping the gateway (SIGTERM) ...")
            code = gateway.stop()
            print(f"Gateway stopped with exit code {code}.\n")
        show_life(fills[0].uuid, work / "node-audit.jsonl", work / "gateway" / "audit.jsonl")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
