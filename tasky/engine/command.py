"""Command mode: a task runs a program (no shell) in its own process group.

stdout and stderr are captured line by line into the task's log while it runs. The exit code
decides Completed or Failed; the result holds the exit code and the last lines of stdout, or
stdout parsed as JSON when the worker declares JSON output.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from tasky.engine.child_supervisor import ChildHandle, finish_child, launch, read_lines, text_of
from tasky.engine.handle import RunOutcome, RunSink
from tasky.engine.procgroup import describe_exit
from tasky.store.records import TaskRecord
from tasky.workers.base import Worker
from tasky.workers.command import CommandWorker
from tasky.workers.paths import PathRefused

# setpriv (util-linux) asks the kernel to SIGKILL the command if the server dies
# (PR_SET_PDEATHSIG survives the exec). Popen could only do that with preexec_fn, which is unsafe
# in a threaded server. Where setpriv is missing, commands simply lack that guard.
_SETPRIV = shutil.which("setpriv")


def with_parent_death_signal(argv: list[str]) -> list[str]:
    if _SETPRIV is None:
        return argv
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


# Declared JSON output larger than this is refused rather than held in memory.
_MAX_JSON_BYTES = 16 * 1024 * 1024
_STDERR_TAIL = 5


class _Capture:
    """Collects a run's output: log lines, progress, stdout tail or JSON text, stderr tail."""

    def __init__(self, worker: CommandWorker, handle: ChildHandle) -> None:
        self.worker = worker
        self.handle = handle
        self.stdout_tail: deque[str] = deque(maxlen=worker.stdout_tail)
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        self.json_parts: list[bytes] = []
        self.json_size = 0

    def _progress(self, line: str) -> None:
        pattern = self.worker.progress_pattern
        found = pattern.search(line) if pattern is not None else None
        if found is None:
            return
        groups = found.groupdict()
        try:
            if groups.get("percent") is not None:
                fraction = float(groups["percent"]) / 100
            else:
                fraction = float(groups["fraction"])
        except (TypeError, ValueError):
            return
        self.handle.progress(fraction, groups.get("message"))

    def stdout(self, raw: bytes) -> None:
        if self.worker.output == "json":
            self.json_size += len(raw) + 1
            if self.json_size <= _MAX_JSON_BYTES:
                self.json_parts.append(raw)
        line = text_of(raw)
        self.stdout_tail.append(line)
        self._progress(line)
        self.handle.log(line)

    def stderr(self, raw: bytes) -> None:
        line = text_of(raw)
        self.stderr_tail.append(line[:300])
        self._progress(line)
        self.handle.log(line)

    def result(self, returncode: int) -> RunOutcome:
        if self.worker.output == "text":
            return self.handle.outcome_of_result(
                {"exit_code": returncode, "stdout_tail": list(self.stdout_tail)}
            )
        if self.json_size > _MAX_JSON_BYTES:
            return RunOutcome.failed(f"JSON output larger than {_MAX_JSON_BYTES} bytes")
        try:
            parsed = orjson.loads(b"\n".join(self.json_parts))
        except orjson.JSONDecodeError as exc:
            return RunOutcome.failed(f"the command's output is not valid JSON: {exc}")
        return self.handle.outcome_of_result({"exit_code": returncode, "output": parsed})


def _failure(returncode: int, capture: _Capture) -> RunOutcome:
    text = f"the command {describe_exit(returncode)}"
    if capture.stderr_tail:
        text += ": " + " | ".join(capture.stderr_tail)
    return RunOutcome.failed(text)


async def _run(
    handle: ChildHandle, worker: CommandWorker, model: BaseModel, roots: tuple[Path, ...]
) -> RunOutcome:
    try:
        line = worker.command_line(model, roots)
    except (PathRefused, ValueError) as exc:
        return RunOutcome.failed(f"cannot build the command: {exc}")
    if handle.actx.cancelled:
        return handle.stopped_outcome()
    capture = _Capture(worker, handle)
    env = handle.child_env(line.env)
    # Checked here so a missing program is a clear Error, not the exit code of setpriv.
    if shutil.which(line.argv[0], path=env.get("PATH")) is None:
        return RunOutcome.failed(f"cannot run {line.argv[0]!r}: program not found")
    try:
        proc = await asyncio.create_subprocess_exec(
            *with_parent_death_signal(list(line.argv)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=line.cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return RunOutcome.failed(f"cannot run {line.argv[0]!r}: {exc.strerror or exc}")
    handle.attach(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        asyncio.ensure_future(read_lines(proc.stdout, capture.stdout)),
        asyncio.ensure_future(read_lines(proc.stderr, capture.stderr)),
    ]
    returncode = await finish_child(handle, proc, readers)
    handle.flush_output()
    # Once stopped, a command's exit code says nothing (it may exit 0 on SIGTERM): cancel wins.
    if handle.actx.cancelled:
        return handle.stopped_outcome()
    if returncode in worker.success_codes:
        return capture.result(returncode)
    return _failure(returncode, capture)


def start_command_run(
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    *,
    sink: RunSink,
    roots: tuple[Path, ...],
    on_done: Callable[[RunOutcome], Any],
) -> ChildHandle:
    if not isinstance(worker, CommandWorker):
        raise TypeError(f"worker {worker.name} has mode 'command' but is not a CommandWorker")
    command_worker = worker
    return launch(
        worker,
        record,
        sink=sink,
        roots=roots,
        on_done=on_done,
        body=lambda handle: _run(handle, command_worker, model, roots),
        failure="running the command failed",
    )
