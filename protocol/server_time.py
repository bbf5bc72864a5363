"""The trade server's clock as the wire states it (docs/PROTOCOL.md, "Times"): MetaTrader 5
gives times on its trade server's clock, and PING tells its offset from UTC.

>>> describe_offset(7200), describe_offset(-12600), describe_offset(0)
('UTC+2', 'UTC-3:30', 'UTC')
"""

from __future__ import annotations

__all__ = ["describe_offset"]


def describe_offset(offset_s: int) -> str:
    """An offset from UTC (seconds) as people write it: ``UTC+2``, ``UTC-3:30``, ``UTC``."""
    if not offset_s:
        return "UTC"
    sign = "+" if offset_s > 0 else "-"
    hours, seconds = divmod(abs(offset_s), 3600)
    return f"UTC{sign}{hours}" + (f":{seconds // 60:02d}" if seconds else "")
