"""The set of workers a server offers, looked up case-insensitively as the seed's URLs are."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from tasky.workers.base import Worker
from tasky.workers.modules import import_worker_module


class WorkerRegistry:
    def __init__(self) -> None:
        self._by_key: dict[str, Worker] = {}

    def register(self, cls: type[Worker]) -> None:
        cls.check_definition()
        key = cls.name.lower()
        if key in self._by_key:
            raise ValueError(f"two workers are named {cls.name!r}")
        self._by_key[key] = cls()

    def get(self, name: str) -> Worker | None:
        return self._by_key.get(name.lower())

    def names(self) -> list[str]:
        return [w.name for w in self._by_key.values()]

    def __iter__(self) -> Iterator[Worker]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def register_module(self, module: ModuleType | str) -> int:
        """Register the Worker classes a module exports.

        Those named in its ``__all__`` if it has one, else every one it defines (not the ones it
        merely imports, so importing a worker to subclass it does not register it twice). A name
        is looked up as :func:`~tasky.workers.modules.import_worker_module` explains.
        """
        if isinstance(module, str):
            module = import_worker_module(module)
        exported = getattr(module, "__all__", None)
        if exported is not None:
            candidates = [getattr(module, name) for name in exported]
        else:
            candidates = [
                v for v in vars(module).values() if getattr(v, "__module__", "") == module.__name__
            ]
        found = 0
        for value in candidates:
            if isinstance(value, type) and issubclass(value, Worker) and value.name:
                self.register(value)
                found += 1
        if found == 0:
            raise ValueError(f"module {module.__name__} defines no workers")
        return found


def default_registry() -> WorkerRegistry:
    registry = WorkerRegistry()
    registry.register_module("tasky.workers.examples")
    return registry
