"""Sizes and ages as operators write them in config files: ``"50 MB"``, ``"90 days"``.

>>> parse_size("1.5 KB", "audit rotation"), parse_age("2 weeks", "log retention")
(1536, 1209600)
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_age", "parse_size"]

_SIZE_UNITS: Final = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_AGE_UNITS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}


def parse_size(text: str, what: str) -> int:
    """``"50 MB"`` -> bytes; ``ValueError`` naming ``what``."""
    return _parse(text, _SIZE_UNITS, what)


def parse_age(text: str, what: str) -> int:
    """``"90 days"`` -> seconds; ``ValueError`` naming ``what``."""
    return _parse(text, _AGE_UNITS, what)


def _parse(text: str, units: dict[str, int], what: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+?)s?\s*", text)
    unit = match.group(2) if match else ""
    factor = units.get(unit.upper() if units is _SIZE_UNITS else unit.lower())
    if match is None or factor is None:
        raise ValueError(f"{what} {text!r}: expected a number and one of {', '.join(units)}")
    return int(float(match.group(1)) * factor)
