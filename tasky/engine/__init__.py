"""The engine: runs the tasks the store holds (see tasky.engine.core).

``Engine`` is loaded on first use: a task's own process imports modules of this package (its
child side) and must not pay for, or be exposed to, the whole engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasky.engine.core import Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from tasky.engine.core import Engine

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
