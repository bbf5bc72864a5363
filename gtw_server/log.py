"""Logging for the gateway: loguru, human lines on stderr and, optionally, a rotated file
(what a Windows service, which has no console, writes to)."""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

__all__ = ["configure_logging"]

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | gateway | {message}"


def configure_logging(
    level: str,
    *,
    file: Path | None = None,
    rotation: str = "50 MB",
    retention: str = "30 days",
    console: bool = True,
) -> None:
    """Send the gateway's log lines at ``level`` and above to stderr and/or ``file``.

    ``diagnose`` stays off: it would print variable values, secrets included, in tracebacks.
    """
    logger.remove()
    if console and sys.stderr is not None:  # a service process may have no stderr at all
        logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            file,
            level=level,
            format=_FORMAT,
            rotation=rotation,
            retention=retention,
            backtrace=False,
            diagnose=False,
        )
