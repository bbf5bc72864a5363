"""The client's configuration: loaded once, from defaults, a TOML file, the environment and
flags (later sources win), and validated before anything connects.

The file is the one given (``--config FILE``), else ``$MT5_BRIDGE_CONFIG``, else
``~/.config/mt5-bridge/config.toml`` (under ``$XDG_CONFIG_HOME`` if set; ``%APPDATA%`` on
Windows) when it exists. Every key is optional::

    [bridge]
    endpoint = "tcp://192.0.2.10:5555"
    secret_file = "secret"                          # relative paths: next to this file
    operator_secret_file = "operator-secret"        # signs HALT and RESUME (the kill switch)
    request_timeout = 2.0                           # seconds per round trip
    curve_server_key = "keys/gateway.key"           # the gateway's public certificate
    curve_client_cert = "keys/client.key_secret"    # this client's secret certificate

    [risk]                                          # the RiskMonitor's limits (RiskLimits)
    max_order_volume = 1.0
    symbols = ["EURUSD", "XAUUSD"]
    daily_loss_file = "day-start.json"              # relative paths: next to this file

The ``[risk]`` table holds the limits every order of a ``Bridge`` built from this configuration
passes (``RiskLimits``' fields; none by default); they come only from the file. Each
``[bridge]`` key can also come from the environment as ``MT5_BRIDGE_<KEY>``
(``MT5_BRIDGE_ENDPOINT``, ``MT5_BRIDGE_SECRET_FILE``, ...), and a flag named after it
(``--endpoint``, ``--secret-file``) overrides both. The shared secret never comes from a flag's
value or from the TOML text, only from a file or from ``MT5_BRIDGE_SECRET``, so that it stays
out of shell history, process listings and config files checked into git. The secret file that
the highest source names wins; ``MT5_BRIDGE_SECRET`` counts as the environment's choice (below
``MT5_BRIDGE_SECRET_FILE``). The operator's secret (for a gateway with
``operator_secret_file``) comes only from a file: ``operator_secret_file``,
``MT5_BRIDGE_OPERATOR_SECRET_FILE``, ``--operator-secret-file``, with the same rules as the
shared secret's file (private, not empty, 16 bytes at least).

    config = load_config()           # raises ConfigError naming the bad field
    async with Bridge(config.endpoint, **config.bridge_options()) as bridge:
        ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta, Struct

from inf_bridge.curve import load_curve_keys
from inf_bridge.errors import ConfigError
from inf_bridge.risk import RiskLimits
from plumbing.config import layered, read_secret_file, read_toml
from protocol import Secret, secret_key

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "SECRET_ENV",
    "ClientConfig",
    "ConfigError",
    "Secret",
    "default_config_file",
    "load_config",
]

CONFIG_ENV: Final = "MT5_BRIDGE_CONFIG"
SECRET_ENV: Final = "MT5_BRIDGE_SECRET"
ENV_PREFIX: Final = "MT5_BRIDGE_"
TABLE: Final = "bridge"
RISK_TABLE: Final = "risk"

Endpoint = Annotated[str, Meta(pattern=r"^(tcp://\S+:\d{1,5}|ipc://\S+)\Z")]
_PATH_FIELDS: Final = (
    "secret_file",
    "operator_secret_file",
    "curve_server_key",
    "curve_client_cert",
)
_CURVE_FIELDS: Final = ("curve_server_key", "curve_client_cert")
# msgspec states a failed pattern as the regex itself; an operator needs an example instead.
_EXPECTED: Final = {"endpoint": "a ZeroMQ endpoint such as tcp://127.0.0.1:5555 or ipc://PATH"}


class ClientConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to reach and authenticate to the gateway.

    >>> ClientConfig().endpoint
    'tcp://127.0.0.1:5555'

    ``secret`` is the loaded shared secret (``None`` when none is configured: queries still
    work, and a gateway started with ``--no-signature-validation`` accepts orders);
    ``operator_secret`` the loaded operator's secret, which signs HALT and RESUME (``None``:
    the shared secret signs them); ``risk`` the ``[risk]`` table's limits (``None``: none).
    """

    endpoint: Endpoint = "tcp://127.0.0.1:5555"
    secret_file: str | None = None
    operator_secret_file: str | None = None
    request_timeout: Annotated[float, Meta(gt=0, le=3600)] = 2.0
    curve_server_key: str | None = None
    curve_client_cert: str | None = None
    secret: Secret | None = None
    operator_secret: Secret | None = None
    risk: RiskLimits | None = None

    def bridge_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Bridge(config.endpoint, **config.bridge_options())``.

        The operator's secret and the CURVE certificates are passed only when configured, so
        a configuration without them works with any version of ``Bridge``.
        """
        options: dict[str, Any] = {"secret": self.secret, "request_timeout": self.request_timeout}
        if self.operator_secret is not None:
            options["operator_secret"] = self.operator_secret
        if self.risk is not None:
            options["risk"] = self.risk
        if self.curve_server_key is not None and self.curve_client_cert is not None:
            options["curve_server_key"] = self.curve_server_key
            options["curve_client_cert"] = self.curve_client_cert
        return options


_FIELD_TYPES: Final = {
    field.name: field.type
    for field in msgspec.structs.fields(ClientConfig)
    if field.name not in ("secret", "operator_secret", "risk")
}


def default_config_file(
    env: Mapping[str, str] | None = None, platform: str = sys.platform
) -> Path | None:
    """The config file to read when none is given: ``$MT5_BRIDGE_CONFIG`` (which must exist),
    else the user's own file if there is one."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    if platform == "win32":
        base = Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "mt5-bridge" / "config.toml"
    return path if path.is_file() else None


def load_config(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ClientConfig:
    """Build the configuration: defaults < the config file (``config_file``, else
    ``default_config_file(env)``) < ``env`` < ``overrides`` (flags, by field name; ``None``
    means not given). Raises ``ConfigError`` naming the bad field.
    """
    env = os.environ if env is None else env
    if config_file is not None:
        path: Path | None = Path(config_file).expanduser()
        path_source = "--config"
    else:
        path = default_config_file(env)
        path_source = CONFIG_ENV
    document = _read_document(path, path_source) if path is not None else {}
    settings = layered(
        _FIELD_TYPES,
        table=TABLE,
        file_values=_bridge_table(document, path) if path is not None else {},
        file=path,
        env=env,
        env_prefix=ENV_PREFIX,
        overrides=overrides or {},
        relative=_PATH_FIELDS,
    )
    secret_value = env.get(SECRET_ENV)
    chosen = settings.get("secret_file")
    if secret_value is not None and chosen is not None and chosen.source.startswith(f"[{TABLE}]"):
        # The environment chose the secret itself: a secret_file from the TOML file is outranked.
        del settings["secret_file"]
    values = {key: _convert(key, value, source) for key, (value, source) in settings.items()}
    where = {key: setting.source for key, setting in settings.items()}

    _check_curve(values, where)
    if values.get("secret_file"):
        secret: Secret | None = _read_secret_file(Path(values["secret_file"]), where["secret_file"])
    elif secret_value is not None:
        try:
            secret = secret_key(secret_value)
        except ValueError as exc:
            raise ConfigError(f"{SECRET_ENV}: {exc}") from None
    else:
        secret = None
    operator_file = values.get("operator_secret_file")
    operator_secret = (
        _read_secret_file(Path(operator_file), where["operator_secret_file"])
        if operator_file
        else None
    )
    risk = _risk_limits(document, path) if path is not None else None
    return ClientConfig(**values, secret=secret, operator_secret=operator_secret, risk=risk)


def _read_document(path: Path, source: str) -> dict[str, Any]:
    """The TOML file at ``path``, checked for unknown tables."""
    try:
        document = read_toml(path)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    unknown = sorted(set(document) - {TABLE, RISK_TABLE})
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key or table {unknown[0]!r}; "
            f"the client's settings go in the [{TABLE}] table, its limits in [{RISK_TABLE}]"
        )
    return document


def _risk_limits(document: Mapping[str, Any], path: Path) -> RiskLimits | None:
    """The ``[risk]`` table as ``RiskLimits`` (its relative ``daily_loss_file`` next to the
    file), or ``None`` when there is none; ``ConfigError`` naming a bad key."""
    table = document.get(RISK_TABLE)
    if not table:  # none, or empty: no limits
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: {RISK_TABLE} must be a table ([{RISK_TABLE}])")
    loss_file = table.get("daily_loss_file")
    if isinstance(loss_file, str) and loss_file:
        table = {**table, "daily_loss_file": str((path.parent / loss_file).expanduser())}
    try:
        return msgspec.convert(table, RiskLimits)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"config file {path}: [{RISK_TABLE}] {exc}") from None


def _bridge_table(document: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The ``[bridge]`` table, checked for unknown keys."""
    table = document.get(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: {TABLE} must be a table ([{TABLE}])")
    if "secret" in table or "operator_secret" in table:
        raise ConfigError(
            f"config file {path} must not contain the secret itself: put it in a file named by "
            f"[{TABLE}] secret_file (the operator's: operator_secret_file), or in the "
            f"environment as {SECRET_ENV}"
        )
    for key in table:
        if key not in _FIELD_TYPES:
            raise ConfigError(
                f"config file {path}: unknown key [{TABLE}] {key}; "
                f"known keys: {', '.join(_FIELD_TYPES)}"
            )
    return table


def _convert(key: str, raw: Any, source: str) -> Any:
    """``raw`` as the type of field ``key``; an empty path means none."""
    try:
        # strict=False lets environment strings such as "2.5" become typed values.
        value = msgspec.convert(raw, _FIELD_TYPES[key], strict=False)
    except msgspec.ValidationError as exc:
        expected = _EXPECTED.get(key)
        detail = f"expected {expected}" if expected else str(exc)
        raise ConfigError(f"{source}: invalid value {raw!r}: {detail}") from None
    if key in _PATH_FIELDS and isinstance(value, str):
        # Empty means "none", not the current directory. (The file's relative paths were
        # resolved against its directory by ``layered``.)
        return str(Path(value).expanduser()) if value else None
    return value


def _check_curve(values: Mapping[str, Any], where: Mapping[str, str]) -> None:
    given = [key for key in _CURVE_FIELDS if values.get(key)]
    if len(given) == 1:
        (missing,) = set(_CURVE_FIELDS) - set(given)
        raise ConfigError(
            f"{where[given[0]]}: CURVE needs both curve_server_key and curve_client_cert; "
            f"{missing} is not set"
        )
    for key in given:
        if not Path(values[key]).is_file():
            raise ConfigError(f"{where[key]}: no such file {values[key]}")
    if given:  # read them now, so that a bad key is a one-line error, not a failed connect
        try:
            load_curve_keys(values["curve_server_key"], values["curve_client_cert"])
        except (ValueError, OSError) as exc:  # each message names the file
            raise ConfigError(f"CURVE keys: {exc}") from None


def _read_secret_file(path: Path, source: str) -> Secret:
    try:  # the same rules (and messages) as the gateway's
        return read_secret_file(path)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
