"""``MetaTrader5`` on Linux, backed by the gateway: code written for the package, unchanged.

The module has the package's functions, every constant and the structure types, as plain
attributes (frameworks such as aiomql copy ``vars(MetaTrader5)``), and its functions behave
as the package's built-ins (``plumbing.builtin_like``)::

    import inf_bridge.mt5
    inf_bridge.mt5.install()           # _sys.modules["MetaTrader5"] is this module from now on
    import MetaTrader5 as mt5

    mt5.initialize()                   # the gateway: MT5_BRIDGE_ENDPOINT, MT5_BRIDGE_SECRET_FILE
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 100)
    print(mt5.account_info().balance, mt5.last_error())

or ``python -m inf_bridge.mt5 SCRIPT.py`` for a script as it is. Every read function is
called in the gateway's terminal with the script's own arguments (MT5_READ,
docs/PROTOCOL.md), so its forms, checks and errors are the package's, and ``last_error()``
is the terminal's; what only the bridge can fail (no gateway, a timeout) is reported with
the package's codes (``inf_bridge.mt5.session``).

What differs (docs/MT5_MODULE.md): ``initialize()`` connects to the gateway, not to a
terminal: ``path`` and ``portable`` are the gateway's business and ignored, ``timeout`` (ms)
bounds each call's wait for the gateway, and
``login``/``server`` are checked against the account the gateway's terminal is logged in to
(``False`` and ``(-6, ...)`` naming that account when they differ), never used to log in;
``password`` is never sent. ``order_send`` (and the package's ``Buy``, ``Sell`` and ``Close``,
which call it) goes through the ``Bridge``: the RiskMonitor (the client config's ``[risk]``),
a uuid, a signature, exactly-once execution (``inf_bridge.mt5.orders``).
"""

# The helpers below are imported under private names: frameworks copy this module's
# namespace (vars()) and scripts star-import it, and both should find the package's names
# (no ``from __future__ import annotations`` either: it would be one more name).
import atexit as _atexit
import os as _os
import sys as _sys
from types import ModuleType as _ModuleType
from typing import Any as _Any
from typing import Final as _Final

from inf_bridge.errors import BridgeError as _BridgeError
from inf_bridge.errors import ConfigError as _ConfigError
from inf_bridge.mt5 import session as _session_module
from plumbing.builtin_like import BuiltinLike as _BuiltinLike
from protocol import READ_FUNCTIONS as _READ_FUNCTIONS
from protocol import mt5_constants as _constants
from protocol.mt5 import package_names as _package_names
from protocol.mt5_helpers import helpers_for as _helpers_for

_MODULE_NAME: _Final = "MetaTrader5"
_ORIGIN: _Final = "inf_bridge.mt5: through the gateway"
_CURVE_KEYWORDS: _Final = ("curve_server_key", "curve_client_cert")
_INITIALIZE_KEYWORDS: _Final = frozenset(
    {"path", "login", "password", "server", "timeout", "portable", "endpoint", "secret", "config"}
    | set(_CURVE_KEYWORDS)
)

__version__: _Final = _constants.PACKAGE_VERSION
__author__: _Final = "MetaQuotes Ltd."

_session = _session_module.Session()
# A forked child has no connection (its copy has no loop thread); one open at exit is closed.
_os.register_at_fork(after_in_child=_session.forget)
_atexit.register(_session.close)
_displaced: _ModuleType | None = None  # _sys.modules["MetaTrader5"] before install()


def _initialize(*args: _Any, **kwargs: _Any) -> bool:
    """Connect to the gateway (``endpoint``, ``secret``, ``curve_server_key``,
    ``curve_client_cert`` and ``config``: the client's settings, else its configuration file
    and ``MT5_BRIDGE_*``); ``timeout`` (ms) is how long each call
    may wait for the gateway; ``login`` and ``server``, if given, must be the account the
    gateway's terminal is logged in to. ``path`` and ``portable`` are the gateway's business."""
    if len(args) > 1:
        raise TypeError(f"initialize() takes at most 1 positional argument ({len(args)} given)")
    unknown = sorted(set(kwargs) - _INITIALIZE_KEYWORDS)
    if unknown:
        raise TypeError(f"initialize() got an unexpected keyword argument {unknown[0]!r}")
    try:
        _session.connect(
            endpoint=kwargs.get("endpoint"),
            secret=kwargs.get("secret"),
            config=kwargs.get("config"),
            timeout_s=kwargs["timeout"] / 1000 if kwargs.get("timeout") else None,
            curve={key: kwargs[key] for key in _CURVE_KEYWORDS if kwargs.get(key)},
        )
    except (_BridgeError, _ConfigError, OSError) as exc:
        _session.error = (-10003, f"IPC initialize failed, {exc}")
        return False
    if not _logged_in_as(kwargs.get("login"), kwargs.get("server")):
        _session.close()
        return False
    return True


def _login(*args: _Any, **kwargs: _Any) -> bool:
    """Check that the gateway's terminal is logged in to ``login`` (on ``server``, if given):
    the gateway logs in to its one account itself, and never takes a password from here."""
    names = ("login", "password", "server", "timeout")
    given = dict(zip(names, args, strict=False)) | kwargs
    if "login" not in given:
        raise TypeError("login() missing required argument 'login' (pos 1)")
    return _logged_in_as(given["login"], given.get("server"))


def _logged_in_as(login: _Any, server: _Any) -> bool:
    account = _session.read("account_info", (), {})
    if account is None:
        return False
    if (login is not None and login != account.login) or (
        server is not None and server != account.server
    ):
        code, message = _session_module.AUTHORIZATION_FAILED
        _session.error = (
            code,
            f"{message}: the gateway's terminal is logged in to {account.login} on "
            f"{account.server}, not {login} on {server or account.server} (inf_bridge.mt5 "
            "checks the account, it does not log in)",
        )
        return False
    return True


def _shutdown() -> bool:
    """Close the connection to the gateway (the terminal stays up: it is the gateway's)."""
    _session.close()
    _session.error = _session_module.SUCCESS
    return True


def _order_send(*args: _Any, **kwargs: _Any) -> _Any:
    """Send an order (one request dict, or its keys as keyword arguments) as the signed,
    exactly-once command it is (``inf_bridge.mt5.orders``); the package's ``OrderSendResult``,
    or ``None`` (``last_error()``)."""
    if args and kwargs:
        _session.error = (-2, "Unnamed arguments not allowed")
        return None
    if len(args) > 1:
        _session.error = (-2, "Invalid number of arguments")
        return None
    request = args[0] if args else kwargs
    if not isinstance(request, dict):
        _session.error = (-2, "Invalid arguments")
        return None
    return _session.order_send(request)


def _last_error() -> tuple[int, str]:
    """The last call's ``(code, message)``, as the package's."""
    return _session.error


def _reader(name: str) -> _BuiltinLike:
    def call(*args: _Any, **kwargs: _Any) -> _Any:
        return _session.read(name, args, kwargs)

    doc = f"The package's ``{name}``, answered by the gateway's terminal (MT5_READ)."
    return _BuiltinLike(_MODULE_NAME, name, call, doc, _ORIGIN)


def install() -> _ModuleType:
    """Make ``import MetaTrader5`` give this module, in every module from now on; returns
    it. ``uninstall()`` puts back what was there."""
    global _displaced  # noqa: PLW0603 (one installation per process)
    module = _sys.modules[__name__]
    if _sys.modules.get(_MODULE_NAME) is not module:
        _displaced = _sys.modules.get(_MODULE_NAME)
        _sys.modules[_MODULE_NAME] = module
    return module


def uninstall() -> bool:
    """Take this module out of ``_sys.modules["MetaTrader5"]``; False if it was not there."""
    global _displaced  # noqa: PLW0603
    if _sys.modules.get(_MODULE_NAME) is not _sys.modules[__name__]:
        return False
    if _displaced is None:
        del _sys.modules[_MODULE_NAME]
    else:
        _sys.modules[_MODULE_NAME] = _displaced
    _displaced = None
    return True


def _fill(namespace: dict[str, _Any]) -> None:
    """The package's names, as plain attributes of this module, and in ``__all__``."""
    package = _package_names()
    namespace.update(package)
    names = list(package)
    for name, target in (
        ("initialize", _initialize),
        ("login", _login),
        ("shutdown", _shutdown),
        ("last_error", _last_error),
        ("order_send", _order_send),
        # The package's own Python helpers, calling this module's functions.
        *_helpers_for(_sys.modules[__name__]).items(),
    ):
        namespace[name] = _BuiltinLike(_MODULE_NAME, name, target, target.__doc__, _ORIGIN)
        names.append(name)
    for name in sorted(_READ_FUNCTIONS):
        namespace[name] = _reader(name)
        names.append(name)
    namespace["__all__"] = names  # ``from MetaTrader5 import *``: the package's names


_fill(globals())
