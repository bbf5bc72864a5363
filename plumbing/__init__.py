"""The plumbing both programs share and the wire contract does not cover.

``protocol`` is what crosses the wire; this package is what the node and the gateway each do on
their own machine in the same way: write the audit trail (``audit``) and rotate and prune its
files (``rotation``), replace small files durably (``files``), layer settings from a TOML file,
the environment and flags and read secret files (``config``), read sizes and ages (``units``),
pick the event loop (``loop``) and read a ZeroMQ socket from it (``drain``). It imports only
``protocol``, and neither side's package (``tests/test_layers.py``).
"""

from plumbing.audit import AuditFile, add_audit_file, record
from plumbing.config import Setting, layered, read_secret_file, read_toml
from plumbing.files import atomic_write
from plumbing.loop import loop_factory
from plumbing.rotation import closed_files, prune, timestamped
from plumbing.units import parse_age, parse_size

# Not re-exported: ``plumbing.drain`` loads ZeroMQ, which the terminal worker process, which
# imports this package for its configuration, has no use for.

__all__ = [
    "AuditFile",
    "Setting",
    "add_audit_file",
    "atomic_write",
    "closed_files",
    "layered",
    "loop_factory",
    "parse_age",
    "parse_size",
    "prune",
    "read_secret_file",
    "read_toml",
    "record",
    "timestamped",
]
