"""`make demo`: start a gateway on the simulator, run the example strategy, stop the gateway.

Everything happens on this machine: the gateway listens on a free loopback port, signs are
checked with a secret generated for this run, and the simulated broker account lives in a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategy import run

from gtw_server.process import GatewayProcess


def main() -> int:
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="mt5-bridge-demo-") as tmp:
        gateway = GatewayProcess(Path(tmp), secret=secret, sim={"seed": 42})
        print(f"Starting the gateway on the simulated terminal ({gateway.endpoint}) ...")
        gateway.start()
        print(f"Gateway is up (pid {gateway.pid}); orders are signed with a fresh secret.\n")
        try:
            asyncio.run(run(gateway.endpoint, secret))
        finally:
            print("\nStopping the gateway (SIGTERM) ...")
            code = gateway.stop()
            print(f"Gateway stopped with exit code {code}.")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
