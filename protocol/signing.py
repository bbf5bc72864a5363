"""Risk signatures: ``RISK_PASS:<hex>:<ts_ms>``, exactly as PROTOCOL.md defines them.

``<hex>`` is the lowercase hex HMAC-SHA256, under the shared secret, of the canonical text:
the lines ``v1``, uuid, action, symbol, type, volume, price, sl, tp, deviation, ticket, ts_ms
joined by ``\\n``; volume, price, sl and tp as ``%.8f``, deviation and ticket as decimal
integers, an absent field as an empty line. The timestamp is inside the MAC, so a signature
also proves when the strategy node's risk check passed, and a stale one can be refused.

The order-life-cycle commands (PLACE, MODIFY_POSITION, MODIFY_ORDER, CANCEL, CLOSE_BY: an
extension of v1) cover more fields: three lines more, before ts_ms: stoplimit (``%.8f``),
expiration (``GTC``, ``DAY`` or epoch seconds) and by (a ticket). Their ``ticket`` line is the
position's or the pending order's ticket, and a PLACE's ``type`` line its order type
(``BUY_LIMIT``). The twelve lines of OPEN, CLOSE, HALT, RESUME and PING are unchanged. An
OPEN, CLOSE or PLACE that gives ``type_filling`` or ``volume_rounding`` (extensions of v1)
has a line more for each, in that order, before ts_ms: its value (``IOC``, ``down``);
without them, its text is as before.

>>> from protocol import Side
>>> key = secret_key("correct horse battery staple")
>>> order = Open(uuid="a1", timestamp=0, symbol="EURUSD", type=Side.BUY, volume=0.1)
>>> signed = sign(key, order, ts_ms=1_700_000_000_000)
>>> verify(key, signed, now_ms=1_700_000_000_500)
1700000000000
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from typing import Final, TypeVar

import msgspec

from protocol.errors import SignatureExpired, SignatureInvalid, SignatureMissing
from protocol.messages import (
    Cancel,
    Close,
    CloseBy,
    ModifyOrder,
    ModifyPosition,
    Open,
    Place,
    Signable,
)

__all__ = [
    "DEFAULT_MAX_FUTURE_MS",
    "DEFAULT_TTL_MS",
    "MIN_SECRET_BYTES",
    "Secret",
    "canonical",
    "require_private",
    "secret_from_file",
    "secret_key",
    "sign",
    "signature",
    "verify",
]

DEFAULT_TTL_MS: Final = 5000
DEFAULT_MAX_FUTURE_MS: Final = 1000
_PREFIX: Final = "RISK_PASS:"
# One spelling per signature: no leading zeros in ts_ms.
_SIGNATURE_RE: Final = re.compile(r"RISK_PASS:([0-9a-f]{64}):(0|[1-9][0-9]{0,14})")

SignedT = TypeVar("SignedT", bound=Signable)


class Secret(bytes):
    """An HMAC key. Its repr and str never show the value, so it cannot leak into a log line,
    a config dump or an error message."""

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__


MIN_SECRET_BYTES: Final = 16


def secret_key(secret: str | bytes) -> Secret:
    """Turn a shared secret into the HMAC key: its UTF-8 bytes, surrounding whitespace stripped
    (bytes are a key already, taken as they are).

    A key shorter than ``MIN_SECRET_BYTES`` is refused: it could be guessed offline from one
    captured signature."""
    key = secret if isinstance(secret, bytes) else secret.strip().encode("utf-8")
    if not key:
        raise ValueError("the shared secret is empty")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the shared secret is {len(key)} bytes; at least {MIN_SECRET_BYTES} are required "
            '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
        )
    return Secret(key)


def require_private(path: str, mode: int, *, posix: bool = os.name == "posix") -> None:
    """Raise ``ValueError`` (saying how to fix it) when a key file's ``st_mode`` lets other
    users read it. Windows has no such mode bits; its ACLs are the installer's business."""
    if posix and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"the key file {path} can be read by other users (mode {stat.filemode(mode)}); "
            f"make it private with: chmod 600 {path}"
        )


def secret_from_file(
    path: str, mode: int, text: str, *, posix: bool = os.name == "posix"
) -> Secret:
    """The HMAC key from a secret file's contents, once its ``st_mode`` shows it is private.

    Both sides read their secret file themselves (this package does no I/O) and hand the
    mode and text here, so the rules and the messages are the same everywhere. Raises
    ``ValueError`` with a message that says how to fix the file.
    """
    require_private(path, mode, posix=posix)
    if not text.strip():
        raise ValueError(f"the secret file {path} is empty")
    return secret_key(text)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.8f}"


def _integer(value: int | None) -> str:
    return "" if value is None else str(value)


def canonical(request: Signable, ts_ms: int) -> bytes:
    """The bytes the HMAC covers for ``request`` signed at ``ts_ms``.

    HALT, RESUME and PING (extensions of the contract) have every order field empty.
    """
    symbol = price = sl = tp = volume = deviation = ticket = None
    side: str | None = None
    extended = isinstance(request, Place | ModifyPosition | ModifyOrder | Cancel | CloseBy)
    stoplimit = expiration = by = filling = rounding = None
    if isinstance(request, Open | Close | Place):
        filling, rounding = request.type_filling, request.volume_rounding
    if isinstance(request, Open):
        symbol, side, volume = request.symbol, request.type, request.volume
        price, sl, tp, deviation = request.price, request.sl, request.tp, request.deviation
    elif isinstance(request, Close):
        volume, deviation, ticket = request.volume, request.deviation, request.ticket
    elif isinstance(request, Place):
        symbol, side, volume, price = request.symbol, request.type, request.volume, request.price
        sl, tp, stoplimit, expiration = (
            request.sl,
            request.tp,
            request.stoplimit,
            request.expiration,
        )
    elif isinstance(request, ModifyOrder):
        ticket, price, sl, tp = request.ticket, request.price, request.sl, request.tp
        stoplimit, expiration = request.stoplimit, request.expiration
    elif isinstance(request, ModifyPosition):
        ticket, sl, tp = request.ticket, request.sl, request.tp
    elif isinstance(request, Cancel):
        ticket = request.ticket
    elif isinstance(request, CloseBy):
        ticket, by = request.ticket, request.by
    lines = [
        "v1",
        request.uuid,
        request.action,
        symbol or "",
        "" if side is None else str(side),  # a plain "BUY" as well as Side.BUY
        _number(volume),
        _number(price),
        _number(sl),
        _number(tp),
        _integer(deviation),
        _integer(ticket),
    ]
    if extended:
        lines += [_number(stoplimit), "" if expiration is None else str(expiration), _integer(by)]
    # A line each, only when given: signatures made before they existed stay as they were.
    lines += [str(value) for value in (filling, rounding) if value is not None]
    lines.append(str(ts_ms))
    return "\n".join(lines).encode("utf-8")


def signature(key: bytes, request: Signable, ts_ms: int) -> str:
    """The ``risk_signature`` value for ``request`` signed at ``ts_ms``."""
    digest = hmac.new(key, canonical(request, ts_ms), hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}:{ts_ms}"


def sign(key: bytes, request: SignedT, ts_ms: int) -> SignedT:
    """Return a copy of ``request`` carrying its risk signature."""
    return msgspec.structs.replace(request, risk_signature=signature(key, request, ts_ms))


def verify(
    key: bytes,
    request: Signable,
    *,
    now_ms: int,
    ttl_ms: int = DEFAULT_TTL_MS,
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
) -> int:
    """Check ``request.risk_signature``; return its ``ts_ms`` or raise a ``SignatureError``.

    The MAC is checked first, with a constant-time compare, so that only an authentic
    signature is ever reported as expired.
    """
    value = request.risk_signature
    if not value:
        raise SignatureMissing(f"{request.action} requires a risk_signature")
    match = _SIGNATURE_RE.fullmatch(value)
    if match is None:
        raise SignatureInvalid("risk_signature is not of the form RISK_PASS:<hex>:<ts_ms>")
    ts_ms = int(match.group(2))
    expected = hmac.new(key, canonical(request, ts_ms), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group(1)):
        raise SignatureInvalid("risk_signature does not match the request")
    age_ms = now_ms - ts_ms
    if age_ms > ttl_ms:
        raise SignatureExpired(f"risk_signature is {age_ms} ms old; the limit is {ttl_ms} ms")
    if -age_ms > max_future_ms:
        raise SignatureExpired(
            f"risk_signature is {-age_ms} ms in the future; the limit is {max_future_ms} ms"
        )
    return ts_ms
