"""``python -m inf_bridge.mt5 [--endpoint E] [--config FILE] SCRIPT [ARG]...``: run a script
written for the ``MetaTrader5`` package, unchanged, through the gateway.

``inf_bridge.mt5`` is installed as ``MetaTrader5`` first, so the script's ``import
MetaTrader5`` gets it; its ``initialize()`` then connects with ``--endpoint`` and
``--config`` if given, else the client's usual configuration (``MT5_BRIDGE_ENDPOINT``,
``MT5_BRIDGE_SECRET_FILE``, the config file). The connection is closed when the script ends.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from inf_bridge.config import CONFIG_ENV, ENV_PREFIX
from plumbing.script import run_script


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m inf_bridge.mt5",
        description="Run a script written for the MetaTrader5 package through the gateway.",
    )
    parser.add_argument("--endpoint", help="the gateway (default: the client's configuration)")
    parser.add_argument("--config", help="the client's configuration file")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    # What the script's own initialize() reads, as a shell's variables would set it.
    if options.endpoint:
        os.environ[f"{ENV_PREFIX}ENDPOINT"] = options.endpoint
    if options.config:
        os.environ[CONFIG_ENV] = options.config
    module = import_module("inf_bridge.mt5")  # the module itself, which the script imports
    module.install()
    try:
        run_script(options.script, options.args)
    finally:
        module.shutdown()
        module.uninstall()


if __name__ == "__main__":
    main(sys.argv[1:])
