"""The installed version of the project (one distribution: both sides share it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("mt5-bridge")
except PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0.0.0+source"
