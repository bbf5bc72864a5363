"""The gateway's configuration: loaded once, from defaults, a TOML file, the environment and
flags (later sources win), and validated before anything starts.

A TOML file looks like this (every key optional; ``deploy/gateway.example.toml`` has them all)::

    [gateway]
    bind = "tcp://127.0.0.1:5555"
    terminal = "sim"              # or "mt5" on Windows
    data_dir = "var/gateway"
    secret_file = "secret.txt"    # or the environment variable MT5_BRIDGE_SECRET

    [gateway.limits]              # the gateway's own backstop -> RISK_REJECTED
    max_order_volume = 5.0
    symbols = ["EURUSD", "GBPUSD"]

    [sim]
    seed = 7

Each ``[gateway]`` key can also come from the environment as ``MT5_GATEWAY_<KEY>`` (for example
``MT5_GATEWAY_BIND``). The shared secret never comes from a flag's value or from the TOML text
itself, only from a file or ``MT5_BRIDGE_SECRET``, so that it does not end up in shell history,
process listings or a config checked into git.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from gtw_server.errors import ConfigError
from gtw_server.terminal.sim import SimConfig
from plumbing.config import Setting, layered, next_port, read_secret_file, read_toml
from plumbing.units import parse_age, parse_size
from protocol import Secret, secret_key, zone_problem

__all__ = [
    "Config",
    "GatewayConfig",
    "LimitsConfig",
    "Mt5Config",
    "Secret",
    "is_loopback",
    "load_config",
    "load_data_dir",
]

SECRET_ENV: Final = "MT5_BRIDGE_SECRET"
CONFIG_FILE_ENV: Final = "MT5_BRIDGE_GATEWAY_CONFIG"
GATEWAY_ENV_PREFIX: Final = "MT5_GATEWAY_"
_GATEWAY_FIELD: Final = re.compile(r"at `\$\.gateway\.(\w+)")

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
SymbolName = Annotated[str, Meta(min_length=1, max_length=29)]  # the terminal's limit


class LimitsConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[gateway.limits]``: the gateway's own backstop, whatever the strategy nodes check.

    An OPEN beyond a limit gets ``RISK_REJECTED``; CLOSE is never limited.
    """

    max_order_volume: Annotated[float, Meta(gt=0)] | None = None
    max_positions: Annotated[int, Meta(ge=0)] | None = None
    symbols: list[SymbolName] | None = None


class GatewayConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``[gateway]`` table.

    >>> GatewayConfig(bind="tcp://127.0.0.1:6000").signature_ttl_ms
    5000
    """

    bind: str = "tcp://127.0.0.1:5555"
    terminal: Literal["sim", "mt5"] = "sim"
    data_dir: str = "var/gateway"
    secret_file: str | None = None
    # HALT and RESUME must be signed with this secret instead of the order secret, so that a
    # stolen strategy node's secret cannot lift a halt.
    operator_secret_file: str | None = None
    signature_validation: bool = True
    signature_ttl_ms: Annotated[int, Meta(ge=100, le=600_000)] = 5000
    log_level: LogLevel = "INFO"
    # Human log lines also go to this file (relative paths are under data_dir), rotated.
    log_file: str | None = None
    log_rotation: str = "50 MB"
    log_retention: str = "30 days"
    # The most the rotated log files may take together; the oldest go first.
    log_retention_size: str = "1 GB"
    # A terminal call that takes longer than this is presumed hung.
    terminal_timeout_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    # How long an order whose call was lost may still be landing, before its absence from the
    # terminal's history and active orders counts as "not executed" (its uuid freed).
    reconcile_settle_s: Annotated[float, Meta(ge=0, le=600)] = 3.0
    # How long a graceful shutdown may take before the rest is abandoned.
    shutdown_timeout_s: Annotated[float, Meta(gt=0, le=600)] = 10.0
    max_message_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # How long the journal remembers a uuid (and so refuses to execute it twice).
    journal_retention_days: Annotated[float, Meta(gt=0, le=3650)] = 7.0
    # The terminal's history is the second ledger: before executing a uuid its journal does
    # not know, the gateway makes sure no order with its tag is in this much recent history.
    history_lookback_hours: Annotated[float, Meta(gt=0, le=24 * 31)] = 24.0
    # Terminal-bound requests waiting at once; beyond this, BUSY.
    max_queue: Annotated[int, Meta(ge=1, le=1_000_000)] = 1000
    # The dead-man's switch: halt new orders when no client has sent anything for this long.
    halt_after_silence_s: Annotated[float, Meta(gt=0)] | None = None
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    # CURVE: the server's certificate (a .key_secret file) and the allowed clients' public
    # certificates. Both, or neither.
    curve_secret_key: str | None = None
    curve_clients: str | None = None
    # Serve Prometheus metrics on metrics_host:metrics_port (off when no port is given).
    metrics_port: Annotated[int, Meta(ge=1, le=65535)] | None = None
    metrics_host: str = "127.0.0.1"
    # JSON-lines audit trail of every order's stages (relative paths are under data_dir).
    audit_file: str | None = "audit.jsonl"
    audit_rotation: str = "50 MB"
    audit_retention: str = "90 days"
    audit_retention_size: str = "5 GB"
    # Pin the account: refuse to trade when the terminal is logged in to another one.
    expect_login: Annotated[int, Meta(gt=0)] | None = None
    expect_server: str | None = None
    # A REAL (not DEMO or CONTEST) account is refused unless this is set.
    allow_real: bool = False
    # Market data (docs/PROTOCOL.md): the event socket (PUB; default the port after bind's,
    # "off" for none), how often the terminal is polled for what its subscribers want, how
    # many topics may be polled at once, and the most rows one GET_RATES or GET_TICKS (bars,
    # ticks) or GET_HISTORY (deals, orders) returns.
    events: str | None = None
    poll_interval_ms: Annotated[int, Meta(ge=5, le=60_000)] = 50
    max_topics: Annotated[int, Meta(ge=1, le=10_000)] = 256
    max_rows: Annotated[int, Meta(ge=1, le=10_000_000)] = 250_000
    # Trade events (docs/PROTOCOL.md, "Trade events"): how often the terminal is looked at for
    # deals, pending orders and the account; how often at most an account event is published
    # for equity alone; how long events are kept; and the longest a GET_ACCOUNT or
    # GET_POSITIONS asked ``fresh`` waits on the terminal before the last reading answers.
    trade_poll_ms: Annotated[int, Meta(ge=10, le=60_000)] = 250
    account_event_interval_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 1000
    events_retention_days: Annotated[float, Meta(gt=0, le=3650)] = 7.0
    read_timeout_ms: Annotated[int, Meta(ge=1, le=60_000)] = 1000
    # Names a strategy uses for the broker's symbols ({EURUSD = "EURUSD.m"}), for names that
    # resolving by suffix leaves ambiguous (docs/PROTOCOL.md, "Symbol names").
    symbols: dict[SymbolName, SymbolName] = msgspec.field(default_factory=dict)
    # The trade server's time zone (IANA, e.g. "EET"): the truth for converting its times,
    # daylight-saving changes and old dates included. Not set: learned from the terminal's
    # quotes (docs/PROTOCOL.md, "Times"); set, a learned offset that differs is a warning.
    server_timezone: str | None = None
    # Listen beyond loopback without CURVE. Anyone who can reach the port could then read
    # and send orders; only for a private network you trust completely.
    insecure: bool = False

    def __post_init__(self) -> None:
        zone = self.server_timezone
        if zone is not None and (why := zone_problem(zone, whole_hours=False)) is not None:
            raise msgspec.ValidationError(f"{why} - at `$.gateway.server_timezone`")

    @property
    def curve(self) -> bool:
        return self.curve_secret_key is not None

    @property
    def events_endpoint(self) -> str | None:
        """Where events are published: ``events``, else the port after ``bind``'s (a tcp
        ``bind`` with a port; else none); ``None`` when ``events = "off"``.

        >>> GatewayConfig(bind="tcp://127.0.0.1:6000").events_endpoint
        'tcp://127.0.0.1:6001'
        """
        if self.events is not None:
            return None if self.events == "off" else self.events
        return next_port(self.bind)


class Mt5Config(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``[mt5]`` table: how the worker finds and logs in to a real terminal.

    The password is read from the environment variable named by ``password_env``.
    """

    path: str | None = None
    login: Annotated[int, Meta(gt=0)] | None = None
    server: str | None = None
    password_env: str = "MT5_PASSWORD"
    timeout_ms: Annotated[int, Meta(ge=0, le=600_000)] = 60_000
    portable: bool = False


class Config(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the gateway needs to start. ``secret`` is ``None`` only when signature
    validation is off; ``operator_secret`` is ``None`` when HALT and RESUME are signed with
    ``secret``."""

    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    sim: SimConfig = msgspec.field(default_factory=SimConfig)
    mt5: Mt5Config = msgspec.field(default_factory=Mt5Config)
    secret: Secret | None = None
    operator_secret: Secret | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.gateway.data_dir)


def load_config(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration: defaults < ``config_file`` < ``env`` < ``overrides``.

    ``overrides`` holds ``[gateway]`` keys given as flags. Raises ``ConfigError`` naming the
    bad field.
    """
    env = os.environ if env is None else env
    raw, settings = _gateway_settings(config_file, env, overrides or {})
    raw["gateway"] = {key: setting.value for key, setting in settings.items()}
    try:
        # strict=False lets environment strings such as "5000" or "false" become typed values.
        config = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        source = f" in {config_file}" if config_file else ""
        bad = _GATEWAY_FIELD.search(str(exc))
        setting = settings.get(bad.group(1)) if bad else None
        if setting is not None and not setting.source.startswith("[gateway]"):
            source = f" (from {setting.source})"  # the environment or a flag, not the file
        raise ConfigError(f"invalid configuration{source}: {exc}") from None
    _check_exposure(config.gateway)
    _check_files(config.gateway)
    secret = _load_secret(config.gateway, env)
    if secret is None and config.gateway.signature_validation:
        raise ConfigError(
            "no shared secret: give one with --secret-file FILE (a file readable only by you), "
            f"[gateway] secret_file in the config, or the environment variable {SECRET_ENV}; "
            "or turn signatures off with --no-signature-validation (tests and demos only)"
        )
    operator_secret = None
    if config.gateway.operator_secret_file:
        operator_secret = _read_secret_file(Path(config.gateway.operator_secret_file))
        if operator_secret == secret:
            raise ConfigError(
                f"[gateway] operator_secret_file {config.gateway.operator_secret_file} holds the "
                "order secret: the operator's key must differ from the one every strategy node has"
            )
    return msgspec.structs.replace(config, secret=secret, operator_secret=operator_secret)


def load_data_dir(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    override: str | None = None,
) -> Path:
    """Only ``[gateway] data_dir``, from the same sources as ``load_config``: what the
    journal commands need, without the secret or the rest being readable by their user."""
    env = os.environ if env is None else env
    _, settings = _gateway_settings(config_file, env, {"data_dir": override})
    data_dir = settings["data_dir"].value if "data_dir" in settings else GatewayConfig().data_dir
    if not isinstance(data_dir, str):
        raise ConfigError(
            f"invalid configuration: [gateway] data_dir must be a string, not {data_dir!r}"
        )
    return Path(data_dir)


def is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint can only be reached from this machine."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    return scheme == "tcp" and (host in ("localhost", "::1") or host.startswith("127."))


def _check_files(gateway: GatewayConfig) -> None:
    """What would otherwise fail only once the gateway writes its first file."""
    for field, parse in (
        ("log_rotation", parse_size),
        ("log_retention", parse_age),
        ("log_retention_size", parse_size),
        ("audit_rotation", parse_size),
        ("audit_retention", parse_age),
        ("audit_retention_size", parse_size),
    ):
        try:
            parse(getattr(gateway, field), f"[gateway] {field}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    data_dir = Path(gateway.data_dir)
    existing = next((p for p in (data_dir, *data_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"[gateway] data_dir {data_dir}: {existing} is a file, not a directory")


def _check_exposure(gateway: GatewayConfig) -> None:
    if (gateway.curve_secret_key is None) != (gateway.curve_clients is None):
        raise ConfigError(
            "CURVE needs both --curve-secret-key (the gateway's .key_secret file) and "
            "--curve-clients (the directory of allowed client .key files)"
        )
    if gateway.curve or gateway.insecure:
        return
    for name, endpoint in (("bind", gateway.bind), ("events", gateway.events_endpoint)):
        if endpoint is not None and not is_loopback(endpoint):
            what = "read and send orders" if name == "bind" else "read every price and state"
            raise ConfigError(
                f"refusing to listen on {endpoint} ([gateway] {name}) without CURVE: anyone "
                f"who can reach that port could {what}. Turn CURVE on "
                "(--curve-secret-key and --curve-clients; `python -m gtw_server keygen` makes "
                "the keys), bind 127.0.0.1, or, on a network you trust completely, pass "
                "--insecure"
            )


# [gateway] paths that a TOML file gives relative to itself (log and audit files are relative
# to data_dir instead). A service's working directory is nobody's choice (System32).
PATH_KEYS: Final = (
    "data_dir",
    "secret_file",
    "operator_secret_file",
    "curve_secret_key",
    "curve_clients",
)


def _gateway_settings(
    config_file: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Setting]]:
    """The config file's tables, and the ``[gateway]`` settings layered over its own."""
    file = Path(config_file) if config_file else None
    try:
        raw: dict[str, Any] = read_toml(file) if file is not None else {}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "secret" in raw or "secret" in raw.get("gateway", {}):
        raise ConfigError(
            "the config file must not contain the secret itself: put it in a file named by "
            f"[gateway] secret_file or --secret-file, or in the environment as {SECRET_ENV}"
        )
    fields = [field.name for field in msgspec.structs.fields(GatewayConfig)]
    for name in env:
        key = name[len(GATEWAY_ENV_PREFIX) :].lower()
        if name.startswith(GATEWAY_ENV_PREFIX) and key not in fields:
            raise ConfigError(f"unknown environment variable {name}: no [gateway] {key}")
    settings = layered(
        fields,
        table="gateway",
        file_values=raw.get("gateway", {}),
        file=file,
        env=env,
        env_prefix=GATEWAY_ENV_PREFIX,
        overrides=overrides,
        relative=PATH_KEYS,
    )
    return raw, settings


def _load_secret(gateway: GatewayConfig, env: Mapping[str, str]) -> Secret | None:
    if gateway.secret_file:
        return _read_secret_file(Path(gateway.secret_file))
    value = env.get(SECRET_ENV)
    if value is None:
        return None
    try:
        return secret_key(value)
    except ValueError as exc:
        raise ConfigError(f"the environment variable {SECRET_ENV}: {exc}") from None


def _read_secret_file(path: Path) -> Secret:
    try:
        return read_secret_file(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
