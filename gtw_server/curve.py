"""CURVE: ZeroMQ's encryption and client authentication, for the gateway's ROUTER socket.

The gateway holds a certificate (``--curve-secret-key``, a ``.key_secret`` file as
``zmq.auth.create_certificates`` writes it) and a directory of the public certificates of
the strategy nodes it lets in (``--curve-clients``). A ZAP handler checks each connecting
client's key against that directory: an unknown key, or a client that does not speak CURVE,
gets no answer at all. The directory is read again on SIGHUP, and whenever its contents
change, so keys are added and revoked without a restart. Each file is read on its own: one
that cannot be read is skipped with an ERROR naming it, and the others still apply (so a stray
file never holds back a revocation).

``python -m gtw_server keygen DIR --name NAME`` writes a key pair (``NAME.key`` to hand out,
``NAME.key_secret`` to keep, owner-only).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

import zmq
import zmq.auth
from loguru import logger
from zmq.auth.thread import ThreadAuthenticator

from gtw_server.errors import ConfigError
from protocol import require_private

__all__ = ["CurveServer", "keygen"]

_WATCH_INTERVAL_S: Final = 2.0


class CurveServer:
    """The gateway's CURVE identity and its client allow-list."""

    def __init__(
        self, secret_cert: Path, clients_dir: Path, context: zmq.Context[zmq.Socket[bytes]]
    ) -> None:
        self.clients_dir = clients_dir
        self.public_key, self.secret_key = _load_secret_certificate(secret_cert)
        if not clients_dir.is_dir():
            raise ConfigError(f"--curve-clients {clients_dir} is not a directory")
        self._allowed = _AllowList()
        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self._allowed)
        self._seen = self._fingerprint()
        self.reload()

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        """Make ``sock`` a CURVE server with this identity (before it binds)."""
        sock.curve_secretkey = self.secret_key
        sock.curve_publickey = self.public_key
        sock.curve_server = True

    def reload(self) -> int:
        """Read the allow-list again; returns how many client keys it holds."""
        keys = set()
        for path in sorted(self.clients_dir.glob("*.key")):
            try:
                public, _ = zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:
                logger.error("CURVE: skipped {}, not a readable public key: {}", path, exc)
                continue
            keys.add(public)
        self._allowed.keys = frozenset(keys)  # one swap: the ZAP thread sees old or new
        logger.info("CURVE: {} client key(s) allowed from {}", len(keys), self.clients_dir)
        return len(keys)

    def allows(self, public_key: bytes) -> bool:
        """Whether a client with this (Z85) public key may connect now."""
        return self._allowed.callback("*", public_key)

    async def watch(self) -> None:
        """Reload whenever the allow-list directory changes (the way to do it on Windows,
        which has no SIGHUP)."""
        while True:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            seen = self._fingerprint()
            if seen != self._seen:
                self._seen = seen
                self.reload()

    def stop(self) -> None:
        self._auth.stop()

    def _fingerprint(self) -> frozenset[tuple[str, int]]:
        return frozenset(
            (p.name, p.stat().st_mtime_ns) for p in self.clients_dir.glob("*.key") if p.is_file()
        )


class _AllowList:
    """The ZAP handler's credentials provider: the Z85 public keys let in."""

    def __init__(self) -> None:
        self.keys: frozenset[bytes] = frozenset()

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


def _load_secret_certificate(path: Path) -> tuple[bytes, bytes]:
    try:
        require_private(str(path), path.stat().st_mode)
        public, secret = zmq.auth.load_certificate(path)
    except ValueError as exc:
        raise ConfigError(f"--curve-secret-key: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"--curve-secret-key: cannot read {path}: {exc.strerror}") from None
    if secret is None:
        raise ConfigError(
            f"--curve-secret-key {path} holds only a public key; give the .key_secret file"
        )
    return public, secret


def keygen(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (owner-only) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / f"{name}.key_secret").exists():
        raise ConfigError(f"{directory / name}.key_secret exists already; pick another name")
    public, secret = zmq.auth.create_certificates(directory, name)
    for path in (public, secret):  # the directory is owner-only too
        os.chmod(path, 0o600)
    return Path(public), Path(secret)
