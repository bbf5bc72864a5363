"""The wire contract shared by the strategy node and the gateway: messages, codec, errors, signing.

No I/O happens in this package; both sides import it, and so can any Python tool that wants to
speak to a gateway without the rest of the project.
"""

from protocol.codec import decode_reply, decode_request, encode, encode_reply, encode_request
from protocol.errors import (
    DecodeError,
    ErrorCode,
    ProtocolError,
    SignatureError,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
)
from protocol.messages import (
    ACTIONS,
    PROTOCOL_VERSION,
    Account,
    AnyRequest,
    Close,
    GatewayInfo,
    GetAccount,
    GetOrder,
    GetPositions,
    Open,
    Ping,
    Position,
    Reply,
    Request,
    Side,
    SignedRequest,
    Status,
)
from protocol.signing import (
    DEFAULT_MAX_FUTURE_MS,
    DEFAULT_TTL_MS,
    canonical,
    secret_key,
    sign,
    signature,
    verify,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_FUTURE_MS",
    "DEFAULT_TTL_MS",
    "PROTOCOL_VERSION",
    "Account",
    "AnyRequest",
    "Close",
    "DecodeError",
    "ErrorCode",
    "GatewayInfo",
    "GetAccount",
    "GetOrder",
    "GetPositions",
    "Open",
    "Ping",
    "Position",
    "ProtocolError",
    "Reply",
    "Request",
    "Side",
    "SignatureError",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureMissing",
    "SignedRequest",
    "Status",
    "canonical",
    "decode_reply",
    "decode_request",
    "encode",
    "encode_reply",
    "encode_request",
    "secret_key",
    "sign",
    "signature",
    "verify",
]
