"""The simulated terminal: ``SimTerminal``, with the ``MetaTrader5`` package's surface, over a
simulated trade server (``broker``) whose state survives restarts (``store``).

``SimConfig`` (the gateway's ``[sim]`` table) is light and imported at once; the simulator
itself only when ``SimTerminal`` (or ``install_as_metatrader5``, which puts it in
``sys.modules["MetaTrader5"]``: docs/SIMULATOR.md) is first asked for, so that parsing a
configuration does not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gtw_server.terminal.sim.config import SimConfig

if TYPE_CHECKING:
    from gtw_server.terminal.sim.module import install_as_metatrader5, uninstall_metatrader5
    from gtw_server.terminal.sim.terminal import SimTerminal

__all__ = ["SimConfig", "SimTerminal", "install_as_metatrader5", "uninstall_metatrader5"]


def __getattr__(name: str) -> Any:
    if name == "SimTerminal":
        from gtw_server.terminal.sim.terminal import SimTerminal  # noqa: PLC0415 (lazily)

        return SimTerminal
    if name in ("install_as_metatrader5", "uninstall_metatrader5"):
        from gtw_server.terminal.sim import module  # noqa: PLC0415 (lazily)

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
