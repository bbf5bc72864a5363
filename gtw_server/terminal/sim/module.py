"""``install_as_metatrader5``: the simulated terminal as the ``MetaTrader5`` module, on any OS.

Code written for the official package (Windows only) runs unchanged on Linux against a
``SimTerminal``: ``install_as_metatrader5()`` puts a module named ``MetaTrader5`` in
``sys.modules``, so every later ``import MetaTrader5 as mt5``, in any module, gets it::

    >>> install_as_metatrader5(seed=7, balance=5_000, always_open=True)  # any day
    <module 'MetaTrader5' (simulated: gtw_server.terminal.sim)>
    >>> import MetaTrader5 as mt5
    >>> mt5.initialize(), mt5.account_info().balance, mt5.ORDER_TYPE_SELL
    (True, 5000.0, 1)
    >>> mt5.Buy("EURUSD", 0.1).retcode == mt5.TRADE_RETCODE_DONE
    True
    >>> mt5.Close("EURUSD"), mt5.positions_total()
    (True, 0)
    >>> uninstall_metatrader5()
    True
    >>> "MetaTrader5" in sys.modules
    False

The module holds what the package's does (docs/MT5_API.md sections 0 and 1): every function,
``Buy``/``Sell``/``Close`` included, every constant, the structure types, ``__version__`` and
``__author__``, all as plain attributes (no module ``__getattr__``), so that frameworks that copy
``vars(MetaTrader5)`` find them. Its functions behave as the package's built-in ones: copied
into a class (as aiomql's ``BaseMeta`` copies them) they are not bound to its instances and take
no ``self``.

``settings`` are the keys of the gateway's ``[sim]`` table (``SimConfig``), checked as that
table is: a bad one raises ``msgspec.ValidationError`` naming it. ``state`` is the simulator's
SQLite file (``SimTerminal(state_path=...)``): the account, positions and history survive a
restart there; ``None`` keeps them in memory for this process only (tickets never repeat: a new
state numbers past every earlier one). Installing again closes the previous simulator first
and replaces the module (modules that already imported it keep the old, closed one: import
again); ``uninstall_metatrader5()`` closes it and takes it out of ``sys.modules``, putting
back whatever ``MetaTrader5`` was there before. The simulator is also closed at interpreter
exit.

``python -m gtw_server.terminal.sim.module [--state FILE] [--sim KEY=VALUE]... SCRIPT [ARG]...``
runs an unmodified script against the simulator (``--sim`` values are TOML: ``seed=7``,
``always_open=false``, ``margin_mode=netting``).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import tomllib
from collections.abc import Sequence
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gtw_server.terminal.sim.config import SimConfig
from plumbing.builtin_like import BuiltinLike
from plumbing.script import run_script
from protocol.mt5 import BINARY_FUNCTIONS, package_names

if TYPE_CHECKING:
    from gtw_server.terminal.sim.terminal import SimTerminal

__all__ = ["FUNCTIONS", "MODULE_NAME", "install_as_metatrader5", "uninstall_metatrader5"]

MODULE_NAME: Final = "MetaTrader5"
AUTHOR: Final = "MetaQuotes Ltd."  # what the package reports since 5.0.45 or so

FUNCTIONS: Final = (*BINARY_FUNCTIONS, "Buy", "Sell", "Close")
"""Every function of the package's namespace: the binary's, then its ``__init__``'s helpers."""

_ORIGIN: Final = "simulated: gtw_server.terminal.sim"
_lock = threading.Lock()
_installed: tuple[ModuleType, SimTerminal] | None = None
_displaced: ModuleType | None = None  # sys.modules["MetaTrader5"] before install, put back after


def install_as_metatrader5(
    state: str | os.PathLike[str] | None = None, **settings: Any
) -> ModuleType:
    """Installs a simulated terminal as ``sys.modules["MetaTrader5"]`` and returns the module.

    ``settings`` are ``[sim]`` keys (``SimConfig``), ``state`` the SQLite state file (``None``:
    in memory). Bad settings raise before anything changes; otherwise a previous installation
    is closed first, and if opening ``state`` then fails, nothing is installed.
    """
    global _installed, _displaced  # noqa: PLW0603 (one installation per process)
    config = msgspec.convert(settings, SimConfig)  # raises before anything changes
    with _lock:
        _uninstall()
        from gtw_server.terminal.sim.terminal import SimTerminal  # noqa: PLC0415 (lazily)

        terminal = SimTerminal(state_path=state, config=config)
        try:
            module = _build(terminal)
        except BaseException:
            terminal.close()
            raise
        _displaced = sys.modules.get(MODULE_NAME)
        sys.modules[MODULE_NAME] = module
        _installed = module, terminal
        return module


def uninstall_metatrader5() -> bool:
    """Closes the installed simulator and removes its module from ``sys.modules``, putting back
    what was there before. False if nothing was installed. Idempotent."""
    with _lock:
        return _uninstall()


def _uninstall() -> bool:
    global _installed, _displaced  # noqa: PLW0603 (one installation per process)
    if _installed is None:
        return False
    module, terminal = _installed
    _installed = None
    try:
        terminal.close()
    finally:
        if sys.modules.get(MODULE_NAME) is module:  # unless someone replaced it since
            if _displaced is None:
                del sys.modules[MODULE_NAME]
            else:
                sys.modules[MODULE_NAME] = _displaced
        _displaced = None
    return True


@atexit.register
def _close_at_exit() -> None:
    installed = _installed
    if installed is not None:
        installed[1].close()  # saves the prices; the module stays importable


def _build(terminal: SimTerminal) -> ModuleType:
    """The module: ``terminal``'s methods as functions, the constants and structure types."""
    from protocol.mt5_helpers import helpers_for  # noqa: PLC0415 (lazily)

    module = ModuleType(
        MODULE_NAME,
        "The MetaTrader5 package's surface over a simulated terminal (gtw_server.terminal.sim),"
        " installed by gtw_server.terminal.sim.module.install_as_metatrader5().",
    )
    namespace = vars(module)
    # importlib.util.find_spec finds it; its origin shows in the repr, as "(built-in)" does
    namespace["__spec__"] = ModuleSpec(MODULE_NAME, None, origin=_ORIGIN)
    namespace["__version__"] = terminal.__version__
    namespace["__author__"] = AUTHOR
    namespace.update(package_names())

    def _doc(name: str) -> str:
        doc: str | None = getattr(type(terminal), name).__doc__
        return doc or f"The package's ``{name}``, on the simulated terminal (``SimTerminal``)."

    for name in BINARY_FUNCTIONS:
        namespace[name] = BuiltinLike(
            MODULE_NAME, name, getattr(terminal, name), _doc(name), "simulated"
        )
    # The package's Buy/Sell/Close are Python functions of its __init__ that call the module's
    # own functions (as globals): these call this module's, so a patched one is used too.
    for name, target in helpers_for(module).items():
        namespace[name] = BuiltinLike(MODULE_NAME, name, target, _doc(name), "simulated")
    return module


def _setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a TOML value; a bare word is a string (``margin_mode=netting``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def main(argv: Sequence[str] | None = None) -> None:
    """Runs a script with the simulator installed as ``MetaTrader5``."""
    parser = argparse.ArgumentParser(
        prog="python -m gtw_server.terminal.sim.module",
        description="Run a script written for the MetaTrader5 package against the simulator.",
    )
    parser.add_argument("--state", help="the simulator's SQLite state file (default: memory)")
    parser.add_argument(
        "--sim",
        action="append",
        default=[],
        type=_setting,
        metavar="KEY=VALUE",
        help="a [sim] setting, the value in TOML (seed=7, always_open=false); repeatable",
    )
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    try:
        install_as_metatrader5(options.state, **dict(options.sim))
    except msgspec.ValidationError as exc:
        parser.error(f"--sim: {exc}")
    try:
        run_script(options.script, options.args)
    finally:
        uninstall_metatrader5()


if __name__ == "__main__":
    # The installation's state lives in the module imported under its own name, which the
    # script may import too, not in this copy run as __main__.
    import_module("gtw_server.terminal.sim.module").main()
