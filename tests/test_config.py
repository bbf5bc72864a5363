"""The gateway's configuration: sources, precedence, validation and the secret's rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gtw_server.config import Secret, load_config
from gtw_server.errors import ConfigError


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_defaults_need_a_secret() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(env={})
    message = str(excinfo.value)
    assert "--secret-file" in message and "MT5_BRIDGE_SECRET" in message
    assert "--no-signature-validation" in message


def test_secret_from_environment_is_stripped_and_hidden() -> None:
    config = load_config(env={"MT5_BRIDGE_SECRET": "  hunter2-hunter2-hunter2\n"})
    assert config.secret == b"hunter2-hunter2-hunter2"
    assert isinstance(config.secret, Secret)
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.secret)
    assert config.gateway.bind == "tcp://127.0.0.1:5555"
    assert config.gateway.terminal == "sim"


def test_secret_file_wins_over_environment(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secret", "from-file-from-file\n")
    config = load_config(
        env={"MT5_BRIDGE_SECRET": "from-env-from-env"}, overrides={"secret_file": str(secret_file)}
    )
    assert config.secret == b"from-file-from-file"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secret", "s3cret", mode=0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {secret_file}"):
        load_config(env={}, overrides={"secret_file": str(secret_file)})


def test_empty_or_missing_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is empty"):
        load_config(env={}, overrides={"secret_file": str(write(tmp_path / "s", "  \n"))})
    with pytest.raises(ConfigError, match="cannot read the secret file"):
        load_config(env={}, overrides={"secret_file": str(tmp_path / "absent")})


def test_no_signature_validation_needs_no_secret() -> None:
    config = load_config(env={}, overrides={"signature_validation": False})
    assert config.secret is None


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "gw.toml",
        '[gateway]\nbind = "tcp://127.0.0.1:6001"\nsignature_ttl_ms = 2000\n'
        'log_level = "DEBUG"\n[sim]\nseed = 9\nleverage = 500\n',
    )
    env = {"MT5_BRIDGE_SECRET": "x" * 16, "MT5_GATEWAY_SIGNATURE_TTL_MS": "3000"}
    config = load_config(
        config_file=config_file, env=env, overrides={"log_level": "WARNING", "bind": None}
    )
    assert config.gateway.bind == "tcp://127.0.0.1:6001"  # file (the flag was not given)
    assert config.gateway.signature_ttl_ms == 3000  # environment over file
    assert config.gateway.log_level == "WARNING"  # flag over file
    assert config.sim.seed == 9 and config.sim.leverage == 500


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[gateway]\nsignature_ttl_ms = 5\n", "$.gateway.signature_ttl_ms"),
        ('[gateway]\nterminal = "mt4"\n', "$.gateway.terminal"),
        ("[gateway]\nbogus = 1\n", "bogus"),
        ("[sim]\nleverage = 0\n", "$.sim.leverage"),
        ("[mt5]\nlogin = -3\n", "$.mt5.login"),
        ("[nonsense]\n", "nonsense"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, toml: str, field: str) -> None:
    config_file = write(tmp_path / "gw.toml", toml)
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_file=config_file, env={"MT5_BRIDGE_SECRET": "x" * 16})
    assert field in str(excinfo.value)
    assert str(config_file) in str(excinfo.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(config_file=write(tmp_path / "gw.toml", "[gateway\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "nope.toml", env={})


def test_secret_in_config_text_is_refused(tmp_path: Path) -> None:
    config_file = write(tmp_path / "gw.toml", '[gateway]\nsecret = "oops"\n')
    with pytest.raises(ConfigError, match="must not contain the secret"):
        load_config(config_file=config_file, env={})


def test_unknown_gateway_environment_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="MT5_GATEWAY_BINDD"):
        load_config(env={"MT5_BRIDGE_SECRET": "x" * 16, "MT5_GATEWAY_BINDD": "tcp://x"})


def test_paths_in_the_file_are_relative_to_it_and_a_bom_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    write(folder / "secret", "\ufeffs3cret-s3cret-s3cret\n")  # as Windows tools write it
    config_file = folder / "gw.toml"
    config_file.write_bytes(b'\xef\xbb\xbf[gateway]\ndata_dir = "data"\nsecret_file = "secret"\n')
    config = load_config(config_file=config_file, env={}, overrides={"bind": None})
    assert config.data_dir == folder / "data"
    assert config.secret == b"s3cret-s3cret-s3cret"
    flagged = load_config(config_file=config_file, env={}, overrides={"data_dir": "here"})
    assert flagged.data_dir == Path("here")  # a flag is relative to where it is typed


def test_rotation_retention_and_data_dir_are_checked_at_load(tmp_path: Path) -> None:
    env = {"MT5_BRIDGE_SECRET": "s" * 16}
    with pytest.raises(ConfigError, match=r"\[gateway\] audit_rotation 'fifty'"):
        load_config(env={**env, "MT5_GATEWAY_AUDIT_ROTATION": "fifty"})
    with pytest.raises(ConfigError, match=r"\[gateway\] log_retention '30 fortnights'"):
        load_config(env=env, overrides={"log_retention": "30 fortnights"})
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        load_config(env=env, overrides={"data_dir": str(a_file / "gateway")})
    config = load_config(env=env, overrides={"audit_rotation": "10 MB", "log_retention": "2 weeks"})
    assert config.gateway.audit_rotation == "10 MB"


def test_the_operator_secret_is_read_like_the_secret_and_must_differ(tmp_path: Path) -> None:
    env = {"MT5_BRIDGE_SECRET": "the-order-secret-of-the-nodes"}
    operator = write(tmp_path / "operator", "the-operators-own-secret\n")
    config = load_config(env=env, overrides={"operator_secret_file": str(operator)})
    assert config.operator_secret == b"the-operators-own-secret"
    assert "the-operators-own-secret" not in repr(config)
    assert load_config(env=env).operator_secret is None
    same = write(tmp_path / "same", "the-order-secret-of-the-nodes")
    with pytest.raises(ConfigError, match=r"operator_secret_file .* holds the order secret"):
        load_config(env=env, overrides={"operator_secret_file": str(same)})
    public = write(tmp_path / "public", "the-operators-own-secret", mode=0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {public}"):
        load_config(env=env, overrides={"operator_secret_file": str(public)})
    short = write(tmp_path / "short", "op")
    with pytest.raises(ConfigError, match="at least 16"):
        load_config(env=env, overrides={"operator_secret_file": str(short)})


def test_a_bad_value_names_the_source_it_came_from(tmp_path: Path) -> None:
    config_file = write(tmp_path / "gw.toml", "[gateway]\nsignature_ttl_ms = 3000\n")
    env = {"MT5_BRIDGE_SECRET": "x" * 16, "MT5_GATEWAY_SIGNATURE_TTL_MS": "soon"}
    with pytest.raises(
        ConfigError, match=r"\(from MT5_GATEWAY_SIGNATURE_TTL_MS\).*signature_ttl_ms"
    ):
        load_config(config_file=config_file, env=env)
    with pytest.raises(ConfigError, match=rf"in {config_file}: .*signature_ttl_ms"):
        write(config_file, "[gateway]\nsignature_ttl_ms = 1\n")
        load_config(config_file=config_file, env={"MT5_BRIDGE_SECRET": "x" * 16})
    with pytest.raises(ConfigError, match=r"\(from --signature-ttl-ms\)"):
        load_config(env=env, overrides={"signature_ttl_ms": -5})
