"""Security: CURVE and its allow-list, safe defaults, replay, tampering, secrets in logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from support import eventually_async, request, run_gateway, signed_open

from gtw_server.config import is_loopback, load_config
from gtw_server.curve import keygen
from gtw_server.errors import ConfigError
from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, GatewayTimeout
from protocol import Open, Side, encode, secret_key, sign


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """keys/gateway.*, keys/alice.*, keys/mallory.*; allowed/ holds only alice's public key."""
    directory = tmp_path / "keys"
    for name in ("gateway", "alice", "mallory"):
        keygen(directory, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(directory / "alice.key", allowed / "alice.key")
    return directory


def curve_gateway(tmp_path: Path, keys: Path, secret: str) -> GatewayProcess:
    return GatewayProcess(
        tmp_path / "gw",
        secret=secret,
        curve=(keys / "gateway.key_secret", tmp_path / "allowed", keys / "alice.key_secret"),
        log_file=tmp_path / "gateway.log",
    )


def node(gateway: GatewayProcess, keys: Path, secret: str, name: str) -> Bridge:
    return Bridge(
        gateway.endpoint,
        secret=secret,
        curve_server_key=keys / "gateway.key",
        curve_client_cert=keys / f"{name}.key_secret",
        request_timeout=0.5,
        heartbeat_timeout=0.5,
    )


async def answers(gateway: GatewayProcess, keys: Path, secret: str, name: str) -> bool:
    """Whether a new connection with ``name``'s key gets an answer to a PING."""
    async with node(gateway, keys, secret, name) as client:
        try:
            await client.ping()
        except GatewayTimeout:
            return False
        return True


def test_keygen_writes_an_owner_only_secret(tmp_path: Path) -> None:
    public, secret = keygen(tmp_path / "k", "node1")
    assert public.name == "node1.key" and secret.name == "node1.key_secret"
    if os.name == "posix":
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert stat.S_IMODE(public.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    with pytest.raises(ConfigError, match="exists already"):
        keygen(tmp_path / "k", "node1")
    result = subprocess.run(
        [sys.executable, "-m", "gtw_server", "keygen", str(tmp_path / "k2"), "--name", "gw"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and (tmp_path / "k2" / "gw.key_secret").exists()


async def test_only_listed_keys_get_answers(tmp_path: Path, keys: Path, secret: str) -> None:
    allowed = tmp_path / "allowed"
    keygen(keys, "bob")
    shutil.copy(keys / "bob.key", allowed / "bob.key")
    with curve_gateway(tmp_path, keys, secret) as gateway:
        async with node(gateway, keys, secret, "alice") as alice:
            assert await alice.ping() > 0
            assert (await alice.send_order("EURUSD", "BUY", 0.1)).ticket > 0

        async with node(gateway, keys, secret, "mallory") as mallory:  # a key not listed
            with pytest.raises(GatewayTimeout):
                await mallory.ping()
            assert mallory.health.state != "HEALTHY"

        async with Bridge(gateway.endpoint, secret=secret, request_timeout=0.5) as plain:
            with pytest.raises(GatewayTimeout):  # no CURVE at all: no answer either
                await plain.ping()

        # Allow mallory, and tell the gateway with SIGHUP. So that only the signal can let
        # her in, the file watch (every 2 s) is given nothing to see: her key replaces bob's
        # in his file, whose modification time is put back.
        if hasattr(signal, "SIGHUP"):
            replace_unseen(allowed / "bob.key", keys / "mallory.key")
            os.kill(gateway.pid, signal.SIGHUP)
        else:  # the file watch does it
            shutil.copy(keys / "mallory.key", allowed / "mallory.key")
        await eventually_async(lambda: answers(gateway, keys, secret, "mallory"), "mallory let in")

        # Revoke alice: her new connections are refused (open ones stay until they close).
        (allowed / "alice.key").unlink()

        async def alice_refused() -> bool:
            return not await answers(gateway, keys, secret, "alice")

        await eventually_async(alice_refused, "the file watch to revoke alice's key")
        assert await answers(gateway, keys, secret, "mallory")  # the gateway, as for mallory
    log = (tmp_path / "gateway.log").read_text()
    assert "CURVE on" in log and "1 client key(s) allowed" in log


def replace_unseen(path: Path, source: Path) -> None:
    """Give ``path`` the contents of ``source``, keeping its modification time."""
    before = path.stat()
    path.write_bytes(source.read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_unreadable_key_file_is_skipped_and_revocations_still_apply(
    tmp_path: Path, keys: Path
) -> None:
    import zmq
    import zmq.auth

    from gtw_server.curve import CurveServer

    allowed = tmp_path / "allowed"
    shutil.copy(keys / "mallory.key", allowed / "mallory.key")
    alice, _ = zmq.auth.load_certificate(keys / "alice.key")
    mallory, _ = zmq.auth.load_certificate(keys / "mallory.key")
    server = CurveServer(keys / "gateway.key_secret", allowed, zmq.Context.instance())
    try:
        assert server.allows(alice) and server.allows(mallory)
        (allowed / "garbage.key").write_text("not a certificate")
        (allowed / "mallory.key").unlink()  # revoked in the same change
        assert server.reload() == 1
        assert server.allows(alice) and not server.allows(mallory)
    finally:
        server.stop()


def test_public_bind_without_curve_is_refused(tmp_path: Path) -> None:
    result = run_gateway(
        "--bind",
        f"tcp://0.0.0.0:{free_port()}",
        "--data-dir",
        str(tmp_path),
        "--no-signature-validation",
    )
    assert result.returncode == 2
    assert "without CURVE" in result.stderr and "--insecure" in result.stderr
    assert not (tmp_path / "journal.sqlite3").exists()


def test_insecure_and_curve_settle_the_exposure_rule(tmp_path: Path) -> None:
    env = {"MT5_BRIDGE_SECRET": "x" * 16}
    config = load_config(env=env, overrides={"bind": "tcp://*:5555", "insecure": True})
    assert config.gateway.insecure
    with pytest.raises(ConfigError, match="both"):
        load_config(env=env, overrides={"curve_secret_key": str(tmp_path / "k")})
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://[::1]:5555")
    assert is_loopback("ipc:///tmp/gw") and is_loopback("tcp://localhost:1")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    assert not is_loopback("tcp://10.0.0.5:5555") and not is_loopback("tcp://eth0:5555")


def test_a_world_readable_curve_secret_is_refused(tmp_path: Path, keys: Path) -> None:
    (keys / "gateway.key_secret").chmod(0o644)
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    with pytest.raises(ConfigError, match="chmod 600"):
        from gtw_server.curve import CurveServer

        CurveServer(keys / "gateway.key_secret", tmp_path / "allowed", zmq.Context.instance())


def test_replays_and_tampering_are_refused(tmp_path: Path, secret: str) -> None:
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, args=["--signature-ttl-ms", "500"])
    with gateway:
        frame = signed_open(secret, "replay-1")
        assert request(gateway.endpoint, frame)["status"] == "FILLED"
        replay = request(gateway.endpoint, frame)  # within the TTL: the stored reply
        assert replay["status"] == "FILLED" and replay["duplicate"] is True
        time.sleep(0.7)  # past the 500 ms TTL: the scenario is the passing time
        stale = request(gateway.endpoint, frame)  # a captured order, replayed later
        assert stale["error_code"] == "SIGNATURE_EXPIRED"

        tampered = json.loads(signed_open(secret, "tamper-1"))
        tampered["volume"] = 5.0
        reply = request(gateway.endpoint, json.dumps(tampered).encode())
        assert reply["error_code"] == "SIGNATURE_INVALID"
        future = Open(uuid="future-1", timestamp=0.0, symbol="EURUSD", type=Side.BUY, volume=0.1)
        ahead = sign(secret_key(secret), future, int(time.time() * 1000) + 5000)
        assert request(gateway.endpoint, encode(ahead))["error_code"] == "SIGNATURE_EXPIRED"
        positions = request(
            gateway.endpoint,
            b'{"uuid": "pos", "action": "GET_POSITIONS", "timestamp": 1}',
        )
        assert len(positions["positions"]) == 1  # type: ignore[arg-type]


def test_secrets_never_reach_the_logs(tmp_path: Path, secret: str) -> None:
    log = tmp_path / "gateway.log"  # the process's stdout and stderr
    frames = [signed_open(secret, "logged-1"), signed_open("wrong-" + secret, "logged-2")]
    with GatewayProcess(tmp_path / "gw", secret=secret, log_file=log, log_level="TRACE") as gw:
        for frame in frames:
            request(gw.endpoint, frame)
        request(gw.endpoint, b'{"uuid": "x", "action": "OPEN", "timestamp": 1, "symbol": 5}')
    audit = tmp_path / "gw" / "audit.jsonl"
    assert "logged-1" in audit.read_text()  # the audit trail has the orders...
    for text in (log.read_text(), audit.read_text()):  # ...but no secret, and no signature
        assert secret not in text and secret_key(secret).hex() not in text
        assert "RISK_PASS:" not in text
        for frame in frames:
            signature = json.loads(frame)["risk_signature"]
            assert signature and signature not in text
