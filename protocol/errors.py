"""Error codes of the wire contract, and the exceptions of the ``protocol`` package.

Exception tree::

    ProtocolError                 base of everything this package raises
    ├── DecodeError               bytes that are not a valid request (carries an ErrorCode)
    └── SignatureError            a risk signature that does not authorise its request
        ├── SignatureMissing        SIGNATURE_MISSING
        ├── SignatureInvalid        SIGNATURE_INVALID: malformed, wrong key or tampered fields
        └── SignatureExpired        SIGNATURE_EXPIRED: older than the TTL, or from the future

Every exception carries ``code``, the ``ErrorCode`` a gateway puts in its ``REJECTED`` reply,
so a caller never maps exception types to codes by hand.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DecodeError",
    "ErrorCode",
    "ProtocolError",
    "SignatureError",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureMissing",
]


class ErrorCode(StrEnum):
    """The ``error_code`` of a ``REJECTED`` reply (PROTOCOL.md, "Error codes")."""

    INVALID_JSON = "INVALID_JSON"
    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_EXPIRED = "SIGNATURE_EXPIRED"
    DUPLICATE_UUID = "DUPLICATE_UUID"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    POSITION_NOT_FOUND = "POSITION_NOT_FOUND"
    SYMBOL_NOT_FOUND = "SYMBOL_NOT_FOUND"  # a market-data request for a symbol the terminal lacks
    SYMBOL_AMBIGUOUS = "SYMBOL_AMBIGUOUS"  # no such symbol, and several are it plus a suffix
    TOO_LARGE = "TOO_LARGE"  # more rows than the gateway's max_rows: ask for fewer
    INVALID_PRICE = "INVALID_PRICE"  # a pending order's price on the wrong side of the market
    INVALID_EXPIRATION = "INVALID_EXPIRATION"  # an expiration in the past, or not allowed
    INVALID_VOLUME = "INVALID_VOLUME"  # off the symbol's step or out of its range: not sent
    NO_CHANGES = "NO_CHANGES"  # a modification that asks for what is already there
    MT5_DISCONNECTED = "MT5_DISCONNECTED"
    MT5_REJECTED = "MT5_REJECTED"
    RISK_REJECTED = "RISK_REJECTED"
    TRADING_HALTED = "TRADING_HALTED"
    BUSY = "BUSY"
    JOURNAL_UNAVAILABLE = "JOURNAL_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ProtocolError(Exception):
    """Base of the ``protocol`` package's exceptions."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DecodeError(ProtocolError):
    """Bytes that could not become a request.

    ``uuid`` and ``action`` hold what could be read of the request, so that the rejection can
    still echo them; both are ``None`` when nothing trustworthy was found.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        uuid: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.uuid = uuid
        self.action = action

    def __repr__(self) -> str:
        return f"DecodeError({self.code.value}, {self.message!r})"


class SignatureError(ProtocolError):
    """A risk signature that does not authorise the request it came with."""


class SignatureMissing(SignatureError):
    code = ErrorCode.SIGNATURE_MISSING


class SignatureInvalid(SignatureError):
    code = ErrorCode.SIGNATURE_INVALID


class SignatureExpired(SignatureError):
    code = ErrorCode.SIGNATURE_EXPIRED
