"""Runs inside the task process: the program a process-mode task runs, isolated (started by
:mod:`tasky.engine.isolated_start`; the server's side is :mod:`tasky.engine.process`).

It reads one JSON line on stdin (which worker, its config, the task's identity), runs the
worker's ``perform`` and reports back on its original stdout as JSON lines::

    {"type": "progress", "fraction": 0.5, "message": "..."}
    {"type": "log", "line": "..."}
    {"type": "result", "value": <any JSON>}
    {"type": "error", "error": "ValueError: ...", "traceback": "Traceback (most recent ..."}

Its own stdout is redirected to stderr first, so ``print`` and the output of anything it runs
end up in the task's log instead of corrupting the protocol. Nothing is pickled either way.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tasky.engine.tracebacks import format_failure
from tasky.net.addresses import OutboundPolicy
from tasky.workers.context import TaskCancelled, _ContextBase
from tasky.workers.modules import load_origin
from tasky.workers.paths import Roots
from tasky.workers.strict import validate_config

# A progress report at most this often (seconds); the latest value is never lost.
_PROGRESS_EVERY = 0.1
# Sleep in slices this long; a slice that took much longer means the process was stopped.
_SLEEP_SLICE = 0.05
_STOPPED_SLACK = 0.25
_PR_SET_PDEATHSIG = 1


class _Channel:
    """Writes protocol messages; safe from several threads of the worker."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._pending_progress: tuple[float | None, str | None] | None = None
        self._last_progress = 0.0

    def send(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message) + b"\n"
        with self._lock:
            self._out.write(data)
            self._out.flush()

    # ContextSink
    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        now = time.monotonic()
        self._pending_progress = (fraction, message)
        if now - self._last_progress >= _PROGRESS_EVERY:
            self.flush_progress()

    def flush_progress(self) -> None:
        pending, self._pending_progress = self._pending_progress, None
        if pending is not None:
            self._last_progress = time.monotonic()
            self.send({"type": "progress", "fraction": pending[0], "message": pending[1]})

    def log(self, task_id: str, line: str) -> None:
        self.send({"type": "log", "line": line})


class ProcessTaskContext(_ContextBase):
    """What a process-mode ``perform`` sees: the thread-mode API, run in its own process.

    Pause and cancel need no cooperation here: the server stops and signals the process. A
    ``checkpoint()`` is still honoured (it raises once cancelled) so code can share a worker
    body between modes.
    """

    paused = False

    def checkpoint(self) -> None:
        if self._cancel_reason is not None:
            raise TaskCancelled(self._cancel_reason)

    def sleep(self, seconds: float) -> None:
        """Sleep; time spent paused (the process stopped) does not count."""
        deadline = time.monotonic() + seconds
        while True:
            self.checkpoint()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, _SLEEP_SLICE)
            started = time.monotonic()
            time.sleep(step)
            took = time.monotonic() - started
            if took > step + _STOPPED_SLACK:
                deadline += took - step

    def _cancel(self, reason: str) -> None:
        self._cancel_reason = reason


def _die_with_parent(parent: int) -> None:
    """If the server dies (even by SIGKILL), take the whole process group down with it."""
    if not sys.platform.startswith("linux"):
        return
    signal.signal(signal.SIGHUP, lambda *_: os.killpg(0, signal.SIGKILL))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.killpg(0, signal.SIGKILL)


def _load_worker(module_name: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def main() -> int:
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray output (print, programs it runs) goes to the log, not the protocol
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    channel = _Channel(protocol)
    start = orjson.loads(sys.stdin.buffer.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _die_with_parent(int(start["parent"]))

    task = start["task"]
    ctx = ProcessTaskContext(task["id"], task["attempt"], task["worker"], channel)
    ctx.roots = Roots((Path(r) for r in task["roots"]), (Path(p) for p in task["protected"]))
    ctx.outbound = OutboundPolicy.parse(task["outbound_allow"])

    def on_term(signum: int, frame: object) -> None:
        ctx._cancel("canceled")
        raise TaskCancelled("canceled")

    signal.signal(signal.SIGTERM, on_term)
    try:
        for origin in start["imports"]:
            load_origin(origin)
        cls = _load_worker(start["module"], start["qualname"])
        model = validate_config(cls.Config, start["config"])
        value = cls().perform(model, ctx)
        channel.flush_progress()
        try:
            channel.send({"type": "result", "value": value})
        except TypeError as exc:
            channel.send({"type": "error", "error": f"the result is not JSON: {exc}"})
            return 1
        return 0
    except TaskCancelled:
        return 143  # 128 + SIGTERM, as a shell reports a process ended by SIGTERM
    except BaseException as exc:
        traceback.print_exc()
        channel.flush_progress()
        text = str(exc) or type(exc).__name__
        channel.send(
            {
                "type": "error",
                "error": f"{type(exc).__name__}: {text}",
                "traceback": format_failure(exc),
            }
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
