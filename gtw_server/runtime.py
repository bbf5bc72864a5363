"""Platform choices, made in one place and testable by injecting ``platform``.

- **Event loop.** ``plumbing.loop`` (shared with the client): uvloop, or the selector loop on
  Windows.
- **Reload signal.** SIGHUP re-reads the CURVE allow-list, where the platform has one.
- **Stop signals.** SIGINT and SIGTERM everywhere, plus SIGBREAK on Windows (Ctrl+Break, and
  what a console window's close sends). asyncio's ``add_signal_handler`` exists only on POSIX;
  on Windows a plain ``signal.signal`` handler hands over to the loop thread-safely.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from types import FrameType

__all__ = ["install_reload_handler", "install_stop_handlers", "stop_signals"]


def stop_signals(platform: str = sys.platform) -> tuple[signal.Signals, ...]:
    """The signals that ask the gateway to shut down gracefully."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK") if platform == "win32" else ("SIGINT", "SIGTERM")
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


def install_stop_handlers(
    loop: asyncio.AbstractEventLoop,
    on_stop: Callable[[signal.Signals], None],
    platform: str = sys.platform,
) -> Callable[[], None]:
    """Call ``on_stop(sig)`` in the loop on each stop signal; return a function that undoes it."""
    signals = stop_signals(platform)
    if platform != "win32":
        for sig in signals:
            loop.add_signal_handler(sig, on_stop, sig)

        def remove() -> None:
            for sig in signals:
                loop.remove_signal_handler(sig)

        return remove

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_stop, signal.Signals(signum))

    previous = {sig: signal.signal(sig, handler) for sig in signals}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def install_reload_handler(
    loop: asyncio.AbstractEventLoop,
    on_reload: Callable[[], None],
    platform: str = sys.platform,
) -> Callable[[], None]:
    """Call ``on_reload()`` on SIGHUP, where there is one (not on Windows, where reloads come
    from watching files instead); return a function that undoes it."""
    if platform == "win32" or not hasattr(signal, "SIGHUP"):
        return lambda: None
    loop.add_signal_handler(signal.SIGHUP, on_reload)

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return remove
