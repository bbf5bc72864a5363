"""The plumbing both programs share and the wire contract does not cover.

``protocol`` is what crosses the wire; this package is what the node and the gateway each do on
their own machine in the same way: write the audit trail (``audit``) and rotate and prune its
files (``rotation``), replace small files durably (``files``), make functions that behave
as a C extension's built-ins (``builtin_like``) and run a script as ``python`` would
(``script``), layer settings from a TOML file,
the environment and flags and read secret files (``config``), read sizes and ages (``units``),
pick the event loop (``loop``) and read a ZeroMQ socket from it (``drain``). It imports only
``protocol``, and neither side's package (``tests/test_layers.py``).

The names below load their module when first used, so that importing one module of the
package loads no other: the terminal worker reads its configuration through ``config`` and
must not load ZeroMQ (``drain``) or loguru (``audit``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from plumbing.audit import AuditFile, add_audit_file, record, write_later
    from plumbing.builtin_like import BuiltinLike
    from plumbing.config import Setting, layered, next_port, read_secret_file, read_toml
    from plumbing.drain import EdgeDrain
    from plumbing.files import atomic_write
    from plumbing.loop import LoopFactory, loop_factory
    from plumbing.rotation import closed_files, prune, timestamped
    from plumbing.script import run_script
    from plumbing.units import parse_age, parse_size

_MODULE_OF: Final = {
    "AuditFile": "audit",
    "add_audit_file": "audit",
    "record": "audit",
    "write_later": "audit",
    "BuiltinLike": "builtin_like",
    "Setting": "config",
    "layered": "config",
    "next_port": "config",
    "read_secret_file": "config",
    "read_toml": "config",
    "EdgeDrain": "drain",
    "atomic_write": "files",
    "LoopFactory": "loop",
    "loop_factory": "loop",
    "closed_files": "rotation",
    "prune": "rotation",
    "timestamped": "rotation",
    "run_script": "script",
    "parse_age": "units",
    "parse_size": "units",
}

__all__ = [
    "AuditFile",
    "BuiltinLike",
    "EdgeDrain",
    "LoopFactory",
    "Setting",
    "add_audit_file",
    "atomic_write",
    "closed_files",
    "layered",
    "loop_factory",
    "next_port",
    "parse_age",
    "parse_size",
    "prune",
    "read_secret_file",
    "read_toml",
    "record",
    "run_script",
    "timestamped",
    "write_later",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'plumbing' has no attribute {name!r}")
    return getattr(import_module(f"plumbing.{module}"), name)
