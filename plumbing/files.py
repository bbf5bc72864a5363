"""Writing a small file so that a crash or a power cut leaves either the old content or the
new, never a torn mix: a private temporary file beside it, written and fsynced, renamed over
it, and the directory fsynced so that the rename itself survives.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, data: bytes, *, platform: str = sys.platform) -> None:
    """Replace ``path``'s content with ``data``, durably. Raises ``OSError``; the temporary
    file never outlives a failure. Two processes writing the same path at once each use a
    temporary file of their own, so the last rename wins whole."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if platform != "win32":  # Windows cannot open a directory; its rename is journaled by NTFS
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
