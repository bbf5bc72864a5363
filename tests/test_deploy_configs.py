"""deploy/ and the operator docs stay true to the code.

The example configs load, and name every option of the config classes with its default; the
Windows installer and the Wine script use only flags that exist; the commands, metric names,
JSON examples and signatures in the docs are the ones the code accepts and produces; and the
raw Python client in docs/PROTOCOL.md trades against a real gateway.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import hmac
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from loguru import logger
from prometheus_client import generate_latest

from gtw_server.__main__ import build_keygen_parser, build_parser
from gtw_server.config import (
    CONFIG_FILE_ENV,
    PATH_KEYS,
    GatewayConfig,
    LimitsConfig,
    Mt5Config,
    load_config,
)
from gtw_server.curve import keygen
from gtw_server.log import configure_logging
from gtw_server.service import SERVICE_NAME
from gtw_server.terminal.sim import SimConfig
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge
from inf_bridge.cli import build_parser as build_cli_parser
from inf_bridge.config import ClientConfig
from inf_bridge.config import load_config as load_client_config
from inf_bridge.metrics import bridge_registry
from inf_bridge.risk import RiskLimits
from protocol import (
    ACTIONS,
    ErrorCode,
    Open,
    Side,
    SignedRequest,
    decode_reply,
    decode_request,
    secret_key,
    signature,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GATEWAY_EXAMPLE = DEPLOY / "gateway.example.toml"
CLIENT_EXAMPLE = DEPLOY / "client.example.toml"
INSTALL = DEPLOY / "windows" / "install.ps1"
UNINSTALL = DEPLOY / "windows" / "uninstall.ps1"
WINE_SCRIPT = DEPLOY / "wine" / "run-gateway.sh"
PROTOCOL_DOC = ROOT / "docs" / "PROTOCOL.md"
OPERATIONS_DOC = ROOT / "docs" / "OPERATIONS.md"
DOCS = [
    PROTOCOL_DOC,
    OPERATIONS_DOC,
    DEPLOY / "linux" / "README.md",
    DEPLOY / "wine" / "README.md",
]
DOC_SECRET = "correct horse battery staple"  # the worked example's secret in PROTOCOL.md

GATEWAY_TABLES: dict[str, type[msgspec.Struct]] = {
    "gateway": GatewayConfig,
    "gateway.limits": LimitsConfig,
    "mt5": Mt5Config,
    "sim": SimConfig,
}
# A sub-table, and the loaded secrets (never in a file).
NOT_OPTIONS = {"limits", "secret", "operator_secret", "risk"}

_TABLE = re.compile(r"^\[([a-z0-9_.]+)\]\s*$")
_KEY_LINE = re.compile(r"^(?:# ?)?([a-z0-9_]+) = ")


# -- helpers ----------------------------------------------------------------------------------


def documented(path: Path) -> dict[str, dict[str, Any]]:
    """``{table: {key: value}}`` of every ``key = value`` line, commented out or not."""
    tables: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if table := _TABLE.match(line):
            current = tables.setdefault(table.group(1), {})
        elif key := _KEY_LINE.match(line):
            assert current is not None, f"{path.name}:{number}: a key outside any table"
            assert key.group(1) not in current, f"{path.name}:{number}: {key.group(1)} twice"
            current.update(tomllib.loads(line.removeprefix("#").strip()))
    return tables


def options(struct: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    return {f.name: f for f in msgspec.structs.fields(struct) if f.name not in NOT_OPTIONS}


def default_of(field: msgspec.structs.FieldInfo) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    return field.default_factory()


def uncommented(path: Path) -> str:
    """The file with every ``# key = value`` line made active."""
    return "\n".join(
        line.removeprefix("#").strip() if line.startswith("#") and _KEY_LINE.match(line) else line
        for line in path.read_text(encoding="utf-8").splitlines()
    )


def private_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def code_blocks(text: str, language: str | None = None) -> list[str]:
    """The fenced code blocks of a markdown text (of one language, if given)."""
    blocks = re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", text, flags=re.M | re.S)
    return [textwrap.dedent(body) for lang, body in blocks if language is None or lang == language]


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _is_cli(token: str) -> bool:
    return token == "mt5-bridge" or token.endswith("/bin/mt5-bridge")


def invocations(text: str, program: str) -> Iterator[list[str]]:
    """The arguments of each ``mt5-bridge ...`` (``program="mt5-bridge"``) or
    ``python -m gtw_server ...`` (``program="gtw_server"``) command in the text's code blocks
    and inline code spans; continuation lines are joined, shell comments dropped."""
    pieces = [
        line
        for block in code_blocks(text)
        for line in re.sub(r"\\\n\s*|`\n\s*", " ", block).splitlines()
    ]
    pieces += re.findall(r"`([^`\n]+)`", text)
    for piece in pieces:
        if program not in piece:
            continue
        try:
            tokens = shlex.split(piece, comments=True)
        except ValueError:  # not shell: PowerShell, prose
            continue
        for i, token in enumerate(tokens):
            if program == "mt5-bridge" and _is_cli(token):
                yield tokens[i + 1 :]
                break
            if program == "gtw_server" and tokens[i : i + 2] == ["-m", "gtw_server"]:
                yield tokens[i + 2 :]
                break


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def check_gtw_server_args(args: list[str], where: str) -> None:
    parser = build_keygen_parser() if args[:1] == ["keygen"] else build_parser()
    flags = {a.split("=")[0] for a in args if a.startswith("--")}
    unknown = flags - option_strings(parser)
    assert not unknown, f"{where}: python -m gtw_server {' '.join(args)}: no {unknown}"


# -- the example configs ---------------------------------------------------------------------


@pytest.mark.parametrize("table", GATEWAY_TABLES)
def test_gateway_example_names_every_option(table: str) -> None:
    shown = documented(GATEWAY_EXAMPLE)
    assert set(shown) == set(GATEWAY_TABLES)
    assert set(shown[table]) == set(options(GATEWAY_TABLES[table])), (
        f"[{table}] in {GATEWAY_EXAMPLE.name} must show exactly the fields of "
        f"{GATEWAY_TABLES[table].__name__}"
    )


def test_the_simulator_page_describes_every_setting() -> None:
    """docs/SIMULATOR.md's table has a row for each ``[sim]`` key, and no other."""
    page = (ROOT / "docs" / "SIMULATOR.md").read_text(encoding="utf-8")
    table = page.split("## Every setting", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert sorted(rows) == sorted(options(SimConfig))
    assert len(rows) == len(set(rows))


def test_client_example_names_every_option() -> None:
    assert set(documented(CLIENT_EXAMPLE)) == {"bridge", "risk"}
    assert set(documented(CLIENT_EXAMPLE)["bridge"]) == set(options(ClientConfig))
    assert set(documented(CLIENT_EXAMPLE)["risk"]) == set(options(RiskLimits))


@pytest.mark.parametrize(
    ("path", "table", "struct"),
    [(GATEWAY_EXAMPLE, table, struct) for table, struct in GATEWAY_TABLES.items()]
    + [(CLIENT_EXAMPLE, "bridge", ClientConfig), (CLIENT_EXAMPLE, "risk", RiskLimits)],
)
def test_examples_show_the_defaults(path: Path, table: str, struct: type[msgspec.Struct]) -> None:
    """Each line shows the default; a field without one (None, empty) shows a valid example."""
    for name, value in documented(path)[table].items():
        field = options(struct)[name]
        shown = msgspec.convert(value, field.type, strict=False)  # valid, whatever it is
        default = default_of(field)
        if default not in (None, {}, []):
            assert shown == default, f"[{table}] {name} shows {value!r}; the default is {default!r}"


def test_the_gateway_example_loads_as_the_defaults() -> None:
    config = load_config(
        config_file=GATEWAY_EXAMPLE, env={"MT5_BRIDGE_SECRET": "s3cret-s3cret-s3cret"}
    )
    assert config.gateway == GatewayConfig()
    assert config.mt5 == Mt5Config()
    assert config.sim == SimConfig()
    assert config.secret == secret_key("s3cret-s3cret-s3cret")


def test_the_gateway_example_loads_with_every_line_uncommented(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(uncommented(GATEWAY_EXAMPLE), encoding="utf-8")
    secret = private_file(tmp_path / "secret.txt", "s3cret-s3cret-s3cret")
    operator = private_file(tmp_path / "operator.txt", "the-operators-own-secret")
    config = load_config(
        config_file=path,
        env={},
        overrides={"secret_file": str(secret), "operator_secret_file": str(operator)},
    )
    objects = {
        "gateway": config.gateway,
        "gateway.limits": config.gateway.limits,
        "mt5": config.mt5,
        "sim": config.sim,
    }
    for table, values in documented(GATEWAY_EXAMPLE).items():
        fields = options(GATEWAY_TABLES[table])
        for name, value in values.items():
            if name not in ("secret_file", "operator_secret_file"):
                expected = msgspec.convert(value, fields[name].type, strict=False)
                if table == "gateway" and name in PATH_KEYS and not Path(value).is_absolute():
                    expected = str(path.parent / value)  # relative to the file (not on Windows)
                assert getattr(objects[table], name) == expected, f"[{table}] {name}"
    assert config.secret == secret_key("s3cret-s3cret-s3cret")


def test_the_examples_load_saved_with_a_bom(tmp_path: Path) -> None:
    """As Notepad's "UTF-8 with BOM" saves them; the example says that is fine."""
    assert "with or without a byte-order mark" in GATEWAY_EXAMPLE.read_text(encoding="utf-8")
    for example in (GATEWAY_EXAMPLE, CLIENT_EXAMPLE):
        (tmp_path / example.name).write_bytes(b"\xef\xbb\xbf" + example.read_bytes())
    env = {"MT5_BRIDGE_SECRET": "s3cret-s3cret-s3cret"}
    gateway = load_config(config_file=tmp_path / GATEWAY_EXAMPLE.name, env=env)
    assert gateway.gateway == GatewayConfig()
    assert load_client_config(config_file=tmp_path / CLIENT_EXAMPLE.name, env={}) == ClientConfig()


def test_the_client_example_loads(tmp_path: Path) -> None:
    assert load_client_config(config_file=CLIENT_EXAMPLE, env={}) == ClientConfig()
    path = tmp_path / "client.toml"
    path.write_text(uncommented(CLIENT_EXAMPLE), encoding="utf-8")
    private_file(tmp_path / "secret", "s3cret-s3cret-s3cret")
    private_file(tmp_path / "operator-secret", "the-operators-own-secret")
    keygen(tmp_path / "keys", "gateway")
    keygen(tmp_path / "keys", "node")
    config = load_client_config(config_file=path, env={})
    assert config.endpoint == "tcp://127.0.0.1:5555"
    assert config.request_timeout == 2.0
    assert config.secret == secret_key("s3cret-s3cret-s3cret")
    assert config.operator_secret == secret_key("the-operators-own-secret")
    assert config.curve_server_key == str(tmp_path / "keys" / "gateway.key")
    assert config.curve_client_cert == str(tmp_path / "keys" / "node.key_secret")
    assert config.risk is not None and config.risk.symbols == ["EURUSD", "XAUUSD"]
    assert config.risk.daily_loss_file == str(tmp_path / "day-start.json")  # next to the file
    assert config.bridge_options()["risk"] == config.risk


# -- the Windows installer --------------------------------------------------------------------


def test_the_installer_does_every_step() -> None:
    script = INSTALL.read_text(encoding="utf-8")
    steps = {
        "strict mode": r"Set-StrictMode -Version Latest",
        "stop on errors": r"\$ErrorActionPreference = 'Stop'",
        "a venv": r"'-m', 'venv'",
        "the package with the mt5 extra": re.escape("'install', '--upgrade', \"$($Source)[mt5]\""),
        "pywin32's post-install, if needed": r"pywin32_postinstall",
        "a random secret": r"System\.Security\.Cryptography\.RandomNumberGenerator",
        "no BOM in written files": r"UTF8Encoding\(\$false\)",
        "ACLs": r"icacls\.exe",
        "SYSTEM and Administrators by SID": r"\*S-1-5-18'.*\n.*\*S-1-5-32-544'",
        "CURVE keys": r"'-m', 'gtw_server', 'keygen'",
        "the allowed-clients directory": r"\$ClientsDir = Join-Path \$DataDir 'clients'",
        "gateway.toml from the example": r"gateway\.example\.toml",
        "the service": r"'-m', 'gtw_server\.service', '--startup', 'auto', 'install'",
        "its environment key": r"HKLM:\\SYSTEM\\CurrentControlSet\\Services\\\$ServiceName",
        "REG_MULTI_SZ": r"-PropertyType MultiString",
        "the config variable": re.escape(f'"{CONFIG_FILE_ENV}=$ConfigFile"'),
        "restart on failure": re.escape(
            "'failure', $ServiceName, 'reset=', '86400', 'actions=', "
            "'restart/5000/restart/10000/restart/60000'"
        ),
        "failure flag": re.escape("'failureflag', $ServiceName, '1'"),
        "the firewall, for the listed nodes only": r"-RemoteAddress \$AllowFrom ",
        "no open-to-all address": r"\$OpenToAll = @\('Any', '\*', '0\.0\.0\.0/0', '::/0'",
        "start": r"Start-Service -Name \$ServiceName",
        "the account asked for when not given": r"Get-Credential -UserName",
        "built-in accounts by SID": re.escape(
            "$BuiltInServiceAccounts = @('S-1-5-18', 'S-1-5-19', 'S-1-5-20')"
        ),
        "built-in accounts refused": r"-in \$BuiltInServiceAccounts\) \{\s*throw \(\"refusing",
        "the account set on the service": r"StartName\s*= \$ServiceAccount",
        "Log on as a service": r"SeServiceLogonRight = \*\$Sid",
        "through the local policy": r"'secedit\.exe' @\('/configure'",
        "the terminal's folder writable by the account": re.escape(
            "'icacls.exe' @($terminalDir, '/grant', \"*${ServiceSid}:(OI)(CI)M\""
        ),
        "the terminal's first set-up as the account": re.escape(
            "Start-Process -FilePath $TerminalPath -ArgumentList '/portable' -Credential"
        ),
    }
    missing = [step for step, pattern in steps.items() if not re.search(pattern, script)]
    assert not missing, f"install.ps1 lacks: {missing}"
    assert f"$ServiceName = '{SERVICE_NAME}'" in script
    assert f"$ServiceName = '{SERVICE_NAME}'" in UNINSTALL.read_text(encoding="utf-8")


def script_parameters(script: Path) -> dict[str, str]:
    """``{name: default}`` of a script's ``param(...)`` block (``""`` for none)."""
    block = re.search(r"(?ms)^param\((.*?)^\)", script.read_text(encoding="utf-8"))
    assert block, f"{script.name} has no param block"
    found = re.findall(r"\$(\w+)(?:\s*=\s*(.+?))?,?$", block.group(1), flags=re.M)
    return dict(found)


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=lambda p: p.name)
def test_every_script_parameter_is_described(script: Path) -> None:
    described = re.findall(r"^\.PARAMETER (\w+)$", script.read_text(encoding="utf-8"), flags=re.M)
    assert described == list(script_parameters(script))


def test_operations_lists_the_installer_parameters_with_their_defaults() -> None:
    text = section(OPERATIONS_DOC.read_text(encoding="utf-8"), "## Install on Windows")
    rows = {
        name: default.strip()
        for name, default in re.findall(r"^\| `-(\w+)` \|([^|]*)\|", text, flags=re.M)
    }
    parameters = script_parameters(INSTALL)
    assert set(rows) == set(parameters)
    assert "LocalSystem" not in rows["ServiceCredential"]  # never the default
    assert parameters["ServiceCredential"] == "$null"
    assert "none" in rows["AllowFrom"] and "warn" in rows["AllowFrom"]


def test_the_installer_waits_for_the_log_file_the_service_writes(tmp_path: Path) -> None:
    """On Windows the log file is named by its start time; the installer looks for that."""
    pattern = re.search(r"\$LogPattern = '([^']+)'", INSTALL.read_text(encoding="utf-8"))
    assert pattern
    try:
        configure_logging("INFO", file=tmp_path / "gateway.log", console=False, platform="win32")
        logger.info("gateway ready")
    finally:
        logger.remove()
        logger.add(sys.stderr)
    (written,) = tmp_path.iterdir()
    assert fnmatch.fnmatch(written.name, pattern.group(1))
    assert "gateway ready" in written.read_text(encoding="utf-8")


def test_the_installer_warns_without_allow_from_and_again_at_the_end() -> None:
    script = INSTALL.read_text(encoding="utf-8")
    warning = script.index('Add-Warning ("No firewall rule for the gateway')
    assert script.rindex("if (@($AllowFrom).Length -gt 0)", 0, warning) < warning
    repeated = script.index("$Warnings | ForEach-Object")
    assert repeated > script.index("Write-Host 'Then, from the node: mt5-bridge ping'")
    assert re.search(r"function Add-Warning.*?\$Warnings\.Add\(\$Message\)", script, re.S)


def module_calls(script: Path) -> Iterator[tuple[str, list[str]]]:
    """``(module, args)`` of each ``python -m gtw_server...`` call in a script: PowerShell
    argument arrays (quoted items only) or shell command lines."""
    text = re.sub(r"\\\n\s*", " ", script.read_text(encoding="utf-8"))
    for line in text.splitlines():
        if script.suffix == ".ps1":
            tokens = re.findall(r"'([^']*)'", line)
        else:
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue
        for i in range(len(tokens) - 1):
            if tokens[i] == "-m" and tokens[i + 1].startswith("gtw_server"):
                yield tokens[i + 1], tokens[i + 2 :]


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL, WINE_SCRIPT], ids=lambda p: p.name)
def test_scripts_use_only_existing_gateway_flags(script: Path) -> None:
    calls = list(module_calls(script))
    assert calls, f"{script.name} runs no python -m gtw_server command"
    for module, args in calls:
        if module == "gtw_server.service":  # pywin32's HandleCommandLine: options, command
            assert {a for a in args if a.startswith("--")} <= {"--startup"}, args
            assert args[-1] in {"install", "remove", "start", "stop", "update", "debug"}, args
        elif script.suffix == ".ps1":  # variables are not quoted: check the flags only
            assert module == "gtw_server"
            check_gtw_server_args(args, script.name)
        else:  # a whole command line: parse it
            assert module == "gtw_server"
            build_parser().parse_args([a for a in args if a != "$@"])


def test_the_installer_edits_the_example_into_a_loadable_config(tmp_path: Path) -> None:
    """Replay install.ps1's Set-TomlValue edits, with its regex, on the example."""
    script = INSTALL.read_text(encoding="utf-8")
    keys = re.findall(r"Set-TomlValue \$text '([a-z_]+)'", script)
    assert set(keys) >= {"terminal", "data_dir", "secret_file", "log_file", "curve_secret_key"}
    assert set(keys) >= {"path", "portable"}  # the gateway starts the terminal, portable
    secret = private_file(tmp_path / "secret.txt", "s3cret-s3cret-s3cret")
    terminal = r"C:\Program Files\Broker MetaTrader 5\terminal64.exe"
    values = {
        "terminal": '"mt5"',
        "bind": '"tcp://0.0.0.0:5555"',
        "data_dir": f"'{tmp_path / 'data'}'",
        "secret_file": f"'{secret}'",
        "log_file": '"gateway.log"',
        "curve_secret_key": f"'{tmp_path / 'keys' / 'gateway.key_secret'}'",
        "curve_clients": f"'{tmp_path / 'clients'}'",
        "metrics_port": "9464",
        "metrics_host": '"0.0.0.0"',
        "path": f"'{terminal}'",
        "portable": "true",
    }
    text = GATEWAY_EXAMPLE.read_text(encoding="utf-8")
    for key in keys:
        assert key in options(GatewayConfig) | options(Mt5Config), f"install.ps1 sets {key}"
        pattern = rf"(?m)^[ \t]*#?[ \t]*{re.escape(key)}[ \t]*=.*$"
        assert len(re.findall(pattern, text)) == 1, f"{key}: install.ps1 needs exactly one line"
        line = f"{key} = {values[key]}"
        text = re.sub(pattern, line.replace("\\", "\\\\"), text)
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(config_file=path, env={})
    gateway = config.gateway
    assert gateway.terminal == "mt5"
    assert gateway.curve and gateway.curve_clients == str(tmp_path / "clients")
    assert gateway.log_file == "gateway.log"
    assert gateway.metrics_port == 9464
    assert config.mt5.path == terminal and config.mt5.portable
    # uninstall.ps1 finds the terminal the service started by the same line.
    found = re.search(r'\$config -match "([^"]+)"', UNINSTALL.read_text(encoding="utf-8"))
    assert found
    terminal_line = re.search(found.group(1).replace("\\t", "\t"), text)
    assert terminal_line and terminal_line.group(1) == terminal


# -- the docs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_parse(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    placeholders = {"TICKET": "100000001"}
    for found in invocations(text, "mt5-bridge"):
        args = [placeholders.get(a, a) for a in found]
        if not args:
            continue
        try:
            build_cli_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{doc.name}: `mt5-bridge {' '.join(args)}` does not parse")
    for args in invocations(text, "gtw_server"):
        check_gtw_server_args(args, doc.name)


def test_the_protocol_doc_names_every_error_code_and_action() -> None:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    assert not [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert not [action for action in ACTIONS if f"`{action}`" not in text]


def test_the_protocol_doc_json_examples_decode() -> None:
    key = secret_key(DOC_SECRET)
    decoder = json.JSONDecoder()
    count = 0
    for block in code_blocks(PROTOCOL_DOC.read_text(encoding="utf-8"), "json"):
        position = 0
        while position < len(block.rstrip()):
            obj, end = decoder.raw_decode(block, position)
            position = end + len(block[end:]) - len(block[end:].lstrip())
            count += 1
            raw = json.dumps(obj).encode()
            if "status" in obj:
                decode_reply(raw)
                continue
            request = decode_request(raw)
            if obj.get("risk_signature"):
                assert isinstance(request, SignedRequest)
                ts_ms = int(obj["risk_signature"].rsplit(":", 1)[1])
                verify(key, request, now_ms=ts_ms)
    assert count >= 15


def test_the_protocol_doc_signatures_are_right() -> None:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    key = secret_key(DOC_SECRET)
    canonicals = re.findall(r'`"(v1\\n[^"`]*)"`', text)
    assert len(canonicals) >= 3
    for escaped in canonicals:
        canonical = escaped.replace("\\n", "\n")
        mac = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
        assert f"RISK_PASS:{mac}:{canonical.rsplit(chr(10), 1)[1]}" in text, escaped
    order = Open(
        uuid="doc-0001", timestamp=0, symbol="EURUSD", type=Side.BUY, volume=0.1, sl=1.085,
        deviation=10,
    )  # fmt: skip
    assert signature(key, order, 1_700_000_000_000) in text
    snippet = next(b for b in code_blocks(text, "python") if "from protocol import" in b)
    run = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert run.stdout.strip() in text


@pytest.fixture(scope="module")
def metrics_gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, int]]:
    """A gateway on the simulator with metrics on; its secret is ``doc-secret-doc-secret``."""
    data = tmp_path_factory.mktemp("gateway")
    port = free_port()
    process = GatewayProcess(
        data, secret="doc-secret-doc-secret", sim={"seed": 3}, gateway={"metrics_port": port}
    )
    with process:
        yield process, port


def test_the_raw_python_client_in_the_protocol_doc_trades(
    metrics_gateway: tuple[GatewayProcess, int],
) -> None:
    gateway, _ = metrics_gateway
    text = section(PROTOCOL_DOC.read_text(encoding="utf-8"), "## A raw client in Python")
    code = code_blocks(text, "python")[0]
    assert len(code.strip().splitlines()) <= 15
    assert "import zmq" in code and "protocol" not in code and "inf_bridge" not in code
    run = subprocess.run(
        [sys.executable, "-c", code.replace("tcp://127.0.0.1:5555", gateway.endpoint)],
        env={**os.environ, "MT5_BRIDGE_SECRET": "doc-secret-doc-secret"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    reply = json.loads(run.stdout)
    assert reply["status"] == "FILLED", reply
    assert reply["action"] == "OPEN" and reply["volume"] == 0.1


def test_documented_metric_names_exist(metrics_gateway: tuple[GatewayProcess, int]) -> None:
    _, port = metrics_gateway
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        exposed = response.read().decode()
    exposed += generate_latest(bridge_registry(Bridge("tcp://127.0.0.1:1", secret=None))).decode()
    names = set(re.findall(r"^(mt5_\w+?)(?:\{| )", exposed, flags=re.M))
    names |= set(re.findall(r"^# TYPE (mt5_\w+) ", exposed, flags=re.M))
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    documented_names = set(re.findall(r"\b(mt5_(?:gateway|bridge)_[a-z0-9_]+)", text))
    assert documented_names, "OPERATIONS.md names no metric"
    assert not documented_names - names, f"not exposed: {documented_names - names}"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_links_in_the_docs_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if target.startswith(("http://", "https://")):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        assert linked.exists(), f"{doc.name}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{doc.name}: no anchor {target}"


def test_the_documented_wheel_build_works(tmp_path: Path) -> None:
    """OPERATIONS.md's command builds the wheel its install examples name."""
    text = section(OPERATIONS_DOC.read_text(encoding="utf-8"), "## Install on Windows")
    command = next(
        line.split()
        for block in code_blocks(text, "sh")
        for line in block.splitlines()
        if "pip wheel" in line
    )
    assert command[:3] == ["python", "-m", "pip"] and command[-3:] == ["-w", "dist", "."]
    subprocess.run(
        [sys.executable, *command[1:-2], str(tmp_path), str(ROOT)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    named = re.findall(r"-Source C:\\dist\\(mt5_bridge-[^ ]+\.whl)", text)
    assert named and all(
        fnmatch.fnmatch(wheel.name, re.sub(r"\d+\.\d+\.\d+", "*", n)) for n in named
    )
    with zipfile.ZipFile(wheel) as built:
        assert {"gtw_server/service.py", "plumbing/audit.py", "protocol/codec.py"} <= set(
            built.namelist()
        )


def test_the_docs_show_windows_log_files_named_by_start_time() -> None:
    """On Windows the gateway never writes data\\gateway.log nor data\\audit.jsonl."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert not re.findall(r"data\\(?:gateway\.log|audit\.jsonl)\b", text)
    follow = r"data\gateway.*.log | Sort-Object LastWriteTime | Select-Object -Last 1 | Get-Content"
    assert follow + " -Tail 50 -Wait" in text
