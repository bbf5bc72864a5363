"""The client's CURVE keys: the gateway's public key, and this node's own certificate.

``curve_server_key`` is the gateway's public certificate file (``gateway.key``) or the key
itself (40 Z85 characters); ``curve_client_cert`` is this node's secret certificate file
(``node.key_secret``, made by ``python -m gtw_server keygen``), whose public half must be
in the gateway's ``--curve-clients`` directory. The gateway's secret certificate
(``gateway.key_secret``) is refused as ``curve_server_key``: it must never leave the gateway's
box, and a node that has it could impersonate the gateway.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import zmq.auth

from protocol import require_private

__all__ = ["CurveKeys", "load_curve_keys"]

CurveKeys = tuple[bytes, bytes, bytes]  # (server public, client public, client secret)
_Z85_KEY_LENGTH: Final = 40


def _server_public_key(server_key: str | bytes | os.PathLike[str]) -> bytes:
    if isinstance(server_key, bytes | str) and len(server_key) == _Z85_KEY_LENGTH:
        candidate = Path(os.fsdecode(server_key))
        if not candidate.exists():
            return server_key.encode("ascii") if isinstance(server_key, str) else server_key
    path = os.fsdecode(server_key)
    public, secret = zmq.auth.load_certificate(path)
    if secret is not None:
        raise ValueError(
            f"{path} is the gateway's SECRET key: a node needs only the gateway's public key "
            "(gateway.key); the secret key must never leave the gateway's box"
        )
    return public


def load_curve_keys(
    server_key: str | bytes | os.PathLike[str], client_cert: str | os.PathLike[str]
) -> CurveKeys:
    """Read the keys for a CURVE connection; ``ValueError``/``OSError`` say what is wrong."""
    path = Path(client_cert)
    require_private(str(path), path.stat().st_mode)
    public, secret = zmq.auth.load_certificate(path)
    if secret is None:
        raise ValueError(f"{path} holds only a public key; give this node's .key_secret file")
    return _server_public_key(server_key), public, secret
