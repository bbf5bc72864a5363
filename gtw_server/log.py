"""Logging for the gateway: loguru, human lines on stderr."""

from __future__ import annotations

import sys

from loguru import logger

__all__ = ["configure_logging"]

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | gateway | {message}"


def configure_logging(level: str) -> None:
    """Send the gateway's log lines at ``level`` and above to stderr."""
    logger.remove()
    logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
