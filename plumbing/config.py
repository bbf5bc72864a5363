"""How both programs read their settings: one TOML table, the environment and flags, later
sources winning, each value remembered with where it came from; and secret files.

Each side says which keys its table has and how to convert them (the gateway converts its
whole configuration at once, the client key by key); the layering, the file's quirks (a BOM,
paths relative to the file) and the messages are the same on both sides.

>>> settings = layered(
...     ["bind", "log_level"],
...     table="gateway",
...     file_values={"bind": "tcp://127.0.0.1:6000"},
...     file=Path("/etc/gw/gateway.toml"),
...     env={"MT5_GATEWAY_LOG_LEVEL": "DEBUG"},
...     env_prefix="MT5_GATEWAY_",
...     overrides={"bind": None},
... )
>>> for key, setting in settings.items():
...     print(f"{key} = {setting.value!r} from {setting.source}")
bind = 'tcp://127.0.0.1:6000' from [gateway] bind in /etc/gw/gateway.toml
log_level = 'DEBUG' from MT5_GATEWAY_LOG_LEVEL
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from protocol import Secret, secret_from_file

__all__ = ["Setting", "layered", "next_port", "read_secret_file", "read_toml"]


class Setting(NamedTuple):
    """A value, and the source it came from, as an operator would look for it."""

    value: Any
    source: str


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in ``path``; ``ValueError`` naming the file and what is wrong."""
    try:
        # utf-8-sig: Windows editors (and PowerShell 5's Set-Content) start files with a BOM.
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from None


def read_secret_file(path: Path) -> Secret:
    """The HMAC key in ``path``, once its mode shows that only its owner can read it (POSIX);
    ``ValueError`` saying how to fix the file."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the secret
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the secret file {path} is not UTF-8 text") from None
    return secret_from_file(str(path), mode, text)  # the same rules everywhere


def layered(
    keys: Collection[str],
    *,
    table: str,
    file_values: Mapping[str, Any],
    file: Path | None,
    env: Mapping[str, str],
    env_prefix: str,
    overrides: Mapping[str, Any],
    relative: Collection[str] = (),
) -> dict[str, Setting]:
    """The settings of one table: the file's ``[table]`` values (``file_values``), then the
    environment (``env_prefix`` + the key in capitals; set but empty counts as unset), then
    ``overrides`` (flags by key; ``None``: not given). The ``relative`` keys, when the file
    gives them as relative paths, are resolved against its directory: a service's working
    directory is nobody's choice.
    """
    settings = {
        key: Setting(_from(file, value) if key in relative else value, f"[{table}] {key} in {file}")
        for key, value in file_values.items()
    }
    for key in keys:
        name = env_prefix + key.upper()
        if env.get(name):
            settings[key] = Setting(env[name], name)
    for key, value in overrides.items():
        if value is not None:
            settings[key] = Setting(value, "--" + key.replace("_", "-"))
    return settings


def _from(file: Path | None, value: Any) -> Any:
    """A path the file gives, relative to the file's directory."""
    if file is None or not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(file.parent / path)


def next_port(endpoint: str) -> str | None:
    """``endpoint`` with the port after its own (tcp with a numeric port), else ``None``: where
    a gateway publishes its events by default, next to its order socket.

    >>> next_port("tcp://127.0.0.1:5555")
    'tcp://127.0.0.1:5556'
    """
    scheme, _, rest = endpoint.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not port.isdigit() or not 0 < int(port) < 65535:
        return None
    return f"tcp://{host}:{int(port) + 1}"
