"""The event loop both programs run on: uvloop where it exists (Linux, macOS); on Windows
the selector loop, because the default proactor loop has no ``add_reader``, which ZeroMQ
sockets need. ``platform`` is injectable, so the choice is testable anywhere."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable

__all__ = ["LoopFactory", "loop_factory"]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(platform: str = sys.platform) -> LoopFactory:
    """The event loop the gateway and client should run on, for ``platform``."""
    if platform == "win32":
        return asyncio.SelectorEventLoop
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop
    factory: LoopFactory = uvloop.new_event_loop
    return factory
