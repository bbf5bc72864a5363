"""A function that behaves as a C extension's built-in: the ``MetaTrader5`` package's are.

Code written for the package relies on that without knowing it: aiomql copies the module's
functions into a class, and a Python function stored in a class becomes a method (``self``
first); a built-in does not. ``BuiltinLike`` is never bound: stored in a class it is returned
as it is, so it takes no ``self``, and ``inspect.isroutine`` is true of it, as of a built-in.
``__wrapped__`` is the target, so ``inspect.signature`` gives the target's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BuiltinLike"]


class BuiltinLike:
    """``module.name``, calling ``target``; ``origin`` shows in its repr (``"simulated"``)."""

    def __init__(
        self, module: str, name: str, target: Callable[..., Any], doc: str | None, origin: str
    ) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = module
        self.__doc__ = doc
        self.__wrapped__ = target
        self._origin = origin

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> BuiltinLike:
        return self  # never bound

    def __repr__(self) -> str:
        return f"<function {self.__module__}.{self.__name__} ({self._origin})>"
