"""One codec for both sides: bytes <-> typed messages.

``decode_request`` either returns a typed request or raises ``DecodeError`` with the exact
error code PROTOCOL.md names and a message that names the bad field. The common case (a valid
request) costs one msgspec call; only a failure pays for a second, diagnostic parse.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any, Final

import msgspec

from protocol.errors import DecodeError, ErrorCode
from protocol.messages import ACTIONS, PROTOCOL_VERSION, AnyRequest, Reason, Reply, Uuid

__all__ = [
    "decode_reply",
    "decode_request",
    "encode",
    "encode_reply",
    "encode_request",
    "validation_message",
]

_request_decoder: Final = msgspec.json.Decoder(AnyRequest)
_reply_decoder: Final = msgspec.json.Decoder(Reply)
_encoder: Final = msgspec.json.Encoder()
_UUID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ECHO_LIMIT: Final = 40  # never echo more than this much of an attacker's string
_MESSAGE_LIMIT: Final = 200
# What parsing an arbitrary frame can raise: msgspec's errors, ValueError (invalid UTF-8
# inside a string, the stdlib's refusals) and RecursionError (deep nesting).
_INT_DIGITS: Final = 4000  # below the interpreter's default int-from-str limit (4300)
_JSON_ERRORS: Final = (msgspec.DecodeError, ValueError, RecursionError)
# msgspec states a failed pattern as the regex itself; its type's description says it in words.
_PATTERN_WORDS: Final = {
    f"matching regex {meta.pattern!r}": meta.description
    for meta in (typing.get_args(kind)[1] for kind in (Uuid, Reason))
}


def encode(message: msgspec.Struct) -> bytes:
    """Encode any message (request or reply) as one JSON frame."""
    return _encoder.encode(message)


encode_request = encode
encode_reply = encode


def decode_reply(data: bytes) -> Reply:
    """Decode a reply frame; raises ``msgspec.DecodeError`` when it is not one."""
    try:
        return _reply_decoder.decode(data)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"invalid UTF-8 in a string: {exc.reason}") from None


def decode_request(data: bytes) -> AnyRequest:
    """Decode and validate one request frame, or raise ``DecodeError``."""
    try:
        request: AnyRequest = _request_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _diagnose(data, exc) from None
    if request.v != PROTOCOL_VERSION:
        raise _unsupported_version(request.v, request.uuid, request.action)
    return request


def _diagnose(data: bytes, exc: Exception) -> DecodeError:
    """Say precisely why ``data`` is not a request, with whatever can be echoed."""
    try:
        obj = _parse_untyped(data)
    except _JSON_ERRORS as parse_exc:
        return DecodeError(ErrorCode.INVALID_JSON, _json_error(parse_exc))
    if not isinstance(obj, dict):
        return DecodeError(ErrorCode.INVALID_REQUEST, "a request must be a JSON object")

    raw_uuid = obj.get("uuid")
    uuid = raw_uuid if isinstance(raw_uuid, str) and _UUID_RE.fullmatch(raw_uuid) else None
    action = obj.get("action")
    if action is None:
        return DecodeError(
            ErrorCode.INVALID_REQUEST, "Object missing required field `action`", uuid=uuid
        )
    if not isinstance(action, str):
        return DecodeError(ErrorCode.INVALID_REQUEST, "Expected `str` - at `$.action`", uuid=uuid)
    if action not in ACTIONS:
        return DecodeError(
            ErrorCode.UNKNOWN_ACTION,
            f"unknown action {_clip(action)!r}; expected one of {', '.join(sorted(ACTIONS))}",
            uuid=uuid,
        )
    version = obj.get("v", PROTOCOL_VERSION)
    if type(version) is int and version != PROTOCOL_VERSION:
        return _unsupported_version(version, uuid, action)
    if isinstance(exc, RecursionError):
        return DecodeError(ErrorCode.INVALID_REQUEST, "request is nested too deeply", uuid=uuid)
    return DecodeError(
        ErrorCode.INVALID_REQUEST,
        _clip(validation_message(exc), _MESSAGE_LIMIT),
        uuid=uuid,
        action=action,
    )


def validation_message(exc: Exception) -> str:
    """msgspec's account of a failed check (it names the field, e.g. "Expected `float` > 0.0 -
    at `$.volume`"), with a failed pattern said in words."""
    message = str(exc)
    for regex, words in _PATTERN_WORDS.items():
        message = message.replace(regex, words)
    return message


def _parse_untyped(data: bytes) -> Any:
    """The JSON document as plain Python values, for diagnosis only.

    msgspec refuses numbers beyond the float and int64 ranges even untyped; the standard
    library reads them (as ``inf`` or big ints), while still refusing NaN and Infinity,
    which are not JSON.
    """
    try:
        return msgspec.json.decode(data)
    except msgspec.ValidationError:
        return json.loads(data, parse_constant=_not_json, parse_int=_diagnostic_int)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _diagnostic_int(text: str) -> int:
    # An integer longer than int() will parse is cut: it only needs to be classified (an
    # int, not 1), never used.
    return int(text[:_INT_DIGITS])


def _unsupported_version(version: Any, uuid: str | None, action: str | None) -> DecodeError:
    return DecodeError(
        ErrorCode.UNSUPPORTED_VERSION,
        f"protocol version {_clip(str(version))} is not supported; this gateway speaks "
        f"v{PROTOCOL_VERSION}",
        uuid=uuid,
        action=action,
    )


def _json_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "JSON is nested too deeply"
    return _clip(f"not a UTF-8 JSON document: {exc}", _MESSAGE_LIMIT)


def _clip(text: str, limit: int = _ECHO_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
