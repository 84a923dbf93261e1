"""The Worker API: the seed's Worker interface, made Pythonic.

A worker is a subclass of :class:`Worker` with a ``perform(config, task)`` method, or a function
decorated with :func:`worker`. ``perform`` may be ``async def`` (runs in the server's event loop)
or a plain function (runs in a thread pool). Its return value is any JSON value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Mode = Literal["async", "thread", "process", "command"]
ACTIONS = frozenset({"cancel", "pause", "resume"})


class EmptyConfig(BaseModel):
    """No configuration needed."""

    model_config = ConfigDict(extra="forbid")


class Worker:
    """Base class for a task type.

    Class attributes describe the worker; the engine makes one instance per server.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    usage: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = EmptyConfig
    max_tasks: ClassVar[int] = 10
    # How many tasks may wait (Queued or Paused) before a submit gets 429; None: the server's
    # --max-queued.
    max_queued: ClassVar[int | None] = None
    # Days a finished task is kept before it is pruned; None: the server's --retention-days,
    # 0: forever.
    retention_days: ClassVar[float | None] = None
    # None: inferred from perform (async def -> "async", plain def -> "thread").
    mode: ClassVar[Mode | None] = None
    actions: ClassVar[frozenset[str]] = frozenset({"cancel"})
    enabled: ClassVar[bool] = True
    # Safe to run again after a server crash interrupted it (otherwise such a task is Failed).
    idempotent: ClassVar[bool] = False
    timeout: ClassVar[float | None] = None
    retries: ClassVar[int] = 0
    retry_backoff: ClassVar[float] = 1.0
    retry_backoff_max: ClassVar[float] = 300.0
    # Process and command modes: seconds between SIGTERM and SIGKILL when a task is stopped.
    kill_grace: ClassVar[float] = 5.0

    def perform(self, config: Any, task: Any) -> Any:
        # check_definition refuses a worker that does not override this, so it is never called.
        raise TypeError(f"worker {self.name} defines no perform method")

    @classmethod
    def execution_mode(cls) -> Mode:
        if cls.mode is not None:
            return cls.mode
        return "async" if _is_coroutine_function(cls.perform) else "thread"

    @classmethod
    def supports(cls, action: str) -> bool:
        if action == "run":
            return True
        return action in cls.actions

    @classmethod
    def check_definition(cls) -> None:
        if not cls.name or not cls.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"worker {cls.__qualname__} needs a name of letters, digits, - or _")
        if cls.max_tasks < 1:
            raise ValueError(f"worker {cls.name}: max_tasks must be at least 1")
        if cls.max_queued is not None and cls.max_queued < 1:
            raise ValueError(f"worker {cls.name}: max_queued must be at least 1")
        if cls.retention_days is not None and not cls.retention_days >= 0:
            raise ValueError(f"worker {cls.name}: retention_days cannot be negative")
        unknown = set(cls.actions) - ACTIONS
        if unknown:
            raise ValueError(f"worker {cls.name}: unknown actions {sorted(unknown)}")
        if ("pause" in cls.actions) != ("resume" in cls.actions):
            raise ValueError(f"worker {cls.name}: pause and resume go together")
        if not 0 <= cls.kill_grace <= 3600:
            raise ValueError(f"worker {cls.name}: kill_grace must be between 0 and 3600 seconds")
        if cls.mode != "command" and cls.perform is Worker.perform:
            raise ValueError(f"worker {cls.name} needs a perform(config, task) method")
        if cls.mode == "command" and not callable(getattr(cls, "command_line", None)):
            raise ValueError(f"worker {cls.name}: command mode needs a CommandWorker subclass")
        if cls.mode == "process":
            # The task's process imports the class by module and name, so it must be reachable.
            if inspect.iscoroutinefunction(cls.perform):
                raise ValueError(f"worker {cls.name}: process mode needs a plain def perform")
            if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
                raise ValueError(
                    f"worker {cls.name}: process mode needs a class defined at the top level "
                    "of an importable module"
                )


def worker(
    name: str,
    *,
    description: str = "",
    config: type[BaseModel] = Worker.Config,
    max_tasks: int = Worker.max_tasks,
    mode: Mode | None = Worker.mode,
    actions: frozenset[str] | set[str] = Worker.actions,
    idempotent: bool = Worker.idempotent,
    timeout: float | None = Worker.timeout,
    retries: int = Worker.retries,
    retry_backoff: float = Worker.retry_backoff,
    kill_grace: float = Worker.kill_grace,
    retention_days: float | None = Worker.retention_days,
) -> Callable[[Callable[..., Any]], type[Worker]]:
    """Turn ``func(config, task)`` into a Worker class (the defaults are :class:`Worker`'s)."""

    def wrap(func: Callable[..., Any]) -> type[Worker]:
        if inspect.iscoroutinefunction(func):

            async def perform_async(self: Worker, cfg: Any, task: Any) -> Any:
                return await func(cfg, task)

            perform: Callable[..., Any] = perform_async
        else:

            def perform_sync(self: Worker, cfg: Any, task: Any) -> Any:
                return func(cfg, task)

            perform = perform_sync
        attrs: dict[str, Any] = {
            "name": name,
            "description": description or (func.__doc__ or "").strip(),
            "Config": config,
            "max_tasks": max_tasks,
            "mode": mode,
            "actions": frozenset(actions),
            "idempotent": idempotent,
            "timeout": timeout,
            "retries": retries,
            "retry_backoff": retry_backoff,
            "kill_grace": kill_grace,
            "retention_days": retention_days,
            "perform": perform,
            "__module__": func.__module__,
            "__doc__": func.__doc__,
        }
        cls: type[Worker] = type(func.__name__, (Worker,), attrs)
        cls.check_definition()
        return cls

    return wrap


@functools.cache
def _is_coroutine_function(perform: Callable[..., Any]) -> bool:
    """inspect.iscoroutinefunction, remembered: each run asks for its worker's mode, and the
    inspection cost 1.5 us of the event loop per task (of ~40 for a no-op task)."""
    return inspect.iscoroutinefunction(perform)
