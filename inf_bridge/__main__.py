"""``python -m inf_bridge``: the operator CLI (``inf_bridge.cli``), installed as ``mt5-bridge``."""

from __future__ import annotations

import sys

from inf_bridge.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
