"""Order tags: a short mark derived from a request's uuid, put first in the terminal comment.

The tag is how the gateway recognises its own orders in the terminal's positions and history
after a crash, so it must survive what brokers do to comments: they append text (``[sl
1.0842]``, ``[tp]``) or cut the end. Hence the tag comes first and is short: ``#`` and eight
base32 characters (40 bits of SHA-256 of the uuid), leaving 20 of the terminal's 29 characters
for the trader's own comment. The full comment is kept in the journal when it does not fit.

>>> order_tag("demo-1")
'#nma4grg3'
>>> terminal_comment("#nma4grg3", "breakout long")
'#nma4grg3 breakout long'
>>> tag_of("#nma4grg3 breakout [sl 1.08]")
'#nma4grg3'
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

__all__ = ["COMMENT_LIMIT", "order_tag", "tag_of", "terminal_comment"]

COMMENT_LIMIT: Final = 29  # UTF-16 code units, as the MetaTrader5 binding counts them
_TAG_RE: Final = re.compile(r"#[a-z2-7]{8}")


def order_tag(uuid: str) -> str:
    """The tag of the request ``uuid``: ``#`` and 8 lowercase base32 characters."""
    digest = hashlib.sha256(uuid.encode("utf-8")).digest()[:5]
    return "#" + base64.b32encode(digest).decode("ascii").lower()


def terminal_comment(tag: str, comment: str | None) -> str:
    """The comment sent to the terminal: the tag, then as much of ``comment`` as fits."""
    if not comment:
        return tag
    return _clip_utf16(f"{tag} {comment}", COMMENT_LIMIT)


def tag_of(comment: str) -> str | None:
    """The tag a terminal comment starts with, or ``None``."""
    match = _TAG_RE.match(comment)
    return match.group(0) if match else None


def _clip_utf16(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-16 code units without splitting a character."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index].rstrip()
    return text
