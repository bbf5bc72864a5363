"""The import rules of the house, checked by walking every module's imports (``ast``).

- ``protocol`` (the wire contract) imports none of the other packages.
- ``plumbing`` (what both sides share beyond the contract) imports only ``protocol``.
- ``inf_bridge`` runs on the strategy node and never imports ``gtw_server``; ``gtw_server``
  runs next to the terminal and never imports ``inf_bridge``.
- ``gtw_server/terminal/`` is a leaf: it imitates or describes the terminal and imports
  nothing from the rest of the gateway.
- A live gateway never loads the simulator, and its terminal worker (a process started
  again at every restart) loads neither the client nor ZeroMQ.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import plumbing

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``path`` (the module ``name``; by default, from its
    place in the repository), relative ones resolved."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# package -> the project's packages it must never import
NEVER = {
    "protocol": ("plumbing", "inf_bridge", "gtw_server", "bench"),
    "plumbing": ("inf_bridge", "gtw_server", "bench"),
    "inf_bridge": ("gtw_server", "bench"),
    "gtw_server": ("inf_bridge", "bench"),
}


def test_each_package_imports_only_what_it_may() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for package, forbidden in NEVER.items()
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imports(path)
        if any(within(module, other) for other in forbidden)
    ]
    assert broken == []


def test_the_rules_see_every_kind_of_import(tmp_path: Path) -> None:
    """The walk finds imports however they are written, relative and nested ones included."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import inf_bridge.client\nfrom inf_bridge import Bridge\nfrom . import terminal\n"
        "def f():\n    from .terminal import sim\n",
        encoding="utf-8",
    )
    found = [module for _, module in imports(sample, "gtw_server.sample")]
    assert found == ["inf_bridge.client", "inf_bridge", "gtw_server", "gtw_server.terminal"]


def test_the_terminal_package_is_a_leaf() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "gtw_server" / "terminal").rglob("*.py"))
        for line, module in imports(path)
        if within(module, "gtw_server") and not within(module, "gtw_server.terminal")
    ]
    assert broken == []


def test_a_live_gateway_does_not_load_the_simulator() -> None:
    code = (
        "import sys\n"
        "import gtw_server.__main__, gtw_server.server, gtw_server.worker\n"
        "from gtw_server.worker import _build_adapter, WorkerSpec\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('gtw_server.terminal'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    # [sim] is part of every configuration; the simulator itself is not loaded.
    assert set(loaded) <= {
        "gtw_server.terminal",
        "gtw_server.terminal.sim",
        "gtw_server.terminal.sim.config",
        "protocol.mt5_constants",
        "protocol.mt5_structs",
    }
    assert "gtw_server.terminal.sim.terminal" not in loaded


def test_the_terminal_worker_loads_neither_the_client_nor_zeromq() -> None:
    code = (
        "import sys\n"
        "import gtw_server.worker\n"  # what a spawned worker imports to run worker_main
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('inf_bridge', 'zmq', 'prometheus_client', 'rich'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert loaded == []


def test_plumbing_names_every_module_s_public_names_and_loads_only_what_is_used() -> None:
    code = (
        "import sys, plumbing.config\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('plumbing.'))))\n"
        "import importlib, plumbing\n"
        "print(' '.join(sorted(name for name in plumbing.__all__ if getattr(plumbing, name) is not "
        "getattr(importlib.import_module('plumbing.' + plumbing._MODULE_OF[name]), name))))\n"
    )
    loaded, misplaced = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert loaded.split() == ["plumbing.config"]
    assert misplaced == ""
    exported = set(plumbing.__all__)
    for module in {f"plumbing.{name}" for name in plumbing._MODULE_OF.values()}:
        assert set(importlib.import_module(module).__all__) <= exported, module
