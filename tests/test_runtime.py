"""Platform choices, covered on Linux by injecting the platform."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest
from support import eventually_async

from gtw_server.runtime import install_reload_handler, install_stop_handlers, stop_signals
from plumbing.loop import loop_factory


def test_windows_runs_on_the_selector_loop_without_uvloop() -> None:
    assert loop_factory("win32") is asyncio.SelectorEventLoop


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not installed on Windows")
def test_posix_runs_on_uvloop() -> None:
    import uvloop

    assert loop_factory("linux") is uvloop.new_event_loop


def test_posix_without_uvloop_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes the import fail
    assert loop_factory("linux") is asyncio.new_event_loop


def test_stop_signals_per_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stop_signals("linux") == (signal.SIGINT, signal.SIGTERM)
    # SIGBREAK exists only on Windows; give this Linux process one to see it is picked up.
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    assert stop_signals("win32") == (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


async def test_posix_handlers_use_the_loop() -> None:
    loop = asyncio.get_running_loop()
    seen: list[signal.Signals] = []
    remove = install_stop_handlers(loop, seen.append, platform="linux")
    try:
        signal.raise_signal(signal.SIGTERM)
        await eventually_async(lambda: seen, "the handler to run")
    finally:
        remove()
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_windows_handlers_use_signal_and_hand_over_to_the_loop() -> None:
    loop = asyncio.get_running_loop()
    seen: list[signal.Signals] = []
    before = signal.getsignal(signal.SIGINT)
    remove = install_stop_handlers(loop, seen.append, platform="win32")
    try:
        assert callable(signal.getsignal(signal.SIGINT))  # a plain handler, not the loop's
        signal.raise_signal(signal.SIGINT)
        await eventually_async(lambda: seen, "the handler to run")
    finally:
        remove()
    assert seen == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) == before


async def test_reload_on_sighup_where_there_is_one() -> None:
    loop = asyncio.get_running_loop()
    reloads: list[bool] = []
    assert install_reload_handler(loop, lambda: reloads.append(True), platform="win32")() is None
    remove = install_reload_handler(loop, lambda: reloads.append(True), platform="linux")
    try:
        signal.raise_signal(signal.SIGHUP)
        await eventually_async(lambda: reloads, "the handler to run")
    finally:
        remove()
    assert reloads == [True]
