"""Process mode: each task runs its worker's ``perform`` in a fresh Python process.

The child (:mod:`tasky.engine.task_process`) leads its own process group, so CPU-bound work never
blocks the server and can be paused (SIGSTOP) or stopped (SIGTERM, then SIGKILL) at any moment
without its cooperation. Progress, log lines and the result come back as JSON lines on a pipe;
the server treats them as untrusted input: anything that is not a well-formed message is logged
as text, never executed or unpickled.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from tasky.engine.child_supervisor import (
    MAX_LINE_BYTES,
    ChildHandle,
    finish_child,
    launch,
    read_lines,
    text_of,
)
from tasky.engine.handle import RunOutcome, RunSink
from tasky.engine.procgroup import describe_exit
from tasky.engine.tracebacks import cap_traceback
from tasky.net.addresses import DEFAULT_POLICY, OutboundPolicy
from tasky.store.records import TaskRecord
from tasky.workers.base import Worker
from tasky.workers.modules import origin_of
from tasky.workers.paths import as_roots
from tasky.workers.secrets import stored_config

# The largest message (a result, mostly) the child may send.
_MAX_MESSAGE = 16 * 1024 * 1024
_STDERR_TAIL = 5
_NOTHING = object()
# Tasky as the task process loads it: from where this server's Tasky lives, by path.
_ENGINE_DIR = Path(__file__).resolve().parent
_TASKY_ROOT = str(_ENGINE_DIR.parent.parent)
_START = str(_ENGINE_DIR / "isolated_start.py")


def child_argv() -> list[str]:
    """Isolated (-I: no cwd, PYTHONPATH or user site on the path), no .pyc, unbuffered."""
    return [sys.executable, "-I", "-B", "-u", _START, _TASKY_ROOT]


class _Messages:
    """Interprets the child's protocol lines."""

    def __init__(self, handle: ChildHandle) -> None:
        self.handle = handle
        self.result: Any = _NOTHING
        self.error: str | None = None
        self.traceback: str | None = None

    def feed(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "progress" and isinstance(message, dict):
            fraction = message.get("fraction")
            text = message.get("message")
            if isinstance(fraction, int | float | None) and isinstance(text, str | None):
                self.handle.progress(fraction, text)
                return
        elif kind == "log" and isinstance(message, dict) and isinstance(message.get("line"), str):
            self.handle.log(message["line"][:MAX_LINE_BYTES])
            return
        elif kind == "result" and isinstance(message, dict) and "value" in message:
            self.result = message["value"]
            return
        elif (
            kind == "error" and isinstance(message, dict) and isinstance(message.get("error"), str)
        ):
            self.error = message["error"][:4096]
            tb = message.get("traceback")
            # Capped again here: the process is not trusted to have done it.
            self.traceback = cap_traceback(tb) if isinstance(tb, str) else None
            return
        self.handle.log(f"[tasky] unexpected message from the worker process: {text_of(raw)[:200]}")


def _start_message(
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    roots: tuple[Path, ...],
    outbound: OutboundPolicy,
) -> bytes:
    cls = type(worker)
    start = {
        "parent": os.getpid(),
        "module": cls.__module__,
        "qualname": cls.__qualname__,
        "config": stored_config(model),  # secrets in clear: the work needs them
        "task": {
            "id": record.id,
            "attempt": record.attempt,
            "worker": worker.name,
            "roots": [str(r) for r in roots],
            "outbound_allow": outbound.entries(),
            "protected": [str(p) for p in as_roots(roots).protected],
        },
        # Exactly where the server found the worker's package; the process sees nothing else.
        "imports": [origin] if (origin := origin_of(cls.__module__)) is not None else [],
    }
    return orjson.dumps(start) + b"\n"


def _outcome(
    messages: _Messages, returncode: int, stderr_tail: deque[str], handle: ChildHandle
) -> RunOutcome:
    if messages.result is not _NOTHING and returncode == 0:
        return handle.outcome_of_result(messages.result)
    if handle.actx.cancelled:
        return handle.stopped_outcome()
    if messages.error is not None:
        handle.traceback = messages.traceback
        return RunOutcome.failed(messages.error)
    text = f"the worker process {describe_exit(returncode)}"
    if returncode == 0:
        text = "the worker process exited without a result"
    if stderr_tail:
        text += ": " + " | ".join(stderr_tail)
    return RunOutcome.failed(text)


async def _run(
    handle: ChildHandle,
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    roots: tuple[Path, ...],
    outbound: OutboundPolicy,
) -> RunOutcome:
    messages = _Messages(handle)
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)

    def on_stderr(raw: bytes) -> None:
        line = text_of(raw)
        stderr_tail.append(line[:300])
        handle.log(line)

    env = handle.child_env({})
    proc = await asyncio.create_subprocess_exec(
        *child_argv(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    handle.attach(proc.pid)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    readers = [
        asyncio.ensure_future(read_lines(proc.stdout, messages.feed, _MAX_MESSAGE)),
        asyncio.ensure_future(read_lines(proc.stderr, on_stderr)),
    ]
    try:
        proc.stdin.write(_start_message(worker, record, model, roots, outbound))
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it died at once; its exit status tells why
    proc.stdin.close()
    returncode = await finish_child(handle, proc, readers)
    handle.flush_output()
    return _outcome(messages, returncode, stderr_tail, handle)


def start_process_run(
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    *,
    sink: RunSink,
    roots: tuple[Path, ...],
    on_done: Callable[[RunOutcome], Any],
    outbound: OutboundPolicy = DEFAULT_POLICY,
) -> ChildHandle:
    return launch(
        worker,
        record,
        sink=sink,
        roots=roots,
        on_done=on_done,
        body=lambda handle: _run(handle, worker, record, model, roots, outbound),
        failure="cannot run the worker process",
    )
