"""Command mode against real programs: literal argv, output capture, exit codes, signals."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tasky.settings import Settings
from tasky.workers.command import Param, make_command_worker
from tasky.workers.registry import WorkerRegistry
from tests.conftest import registry_with
from tests.helpers import API, action, status, submit, wait_for
from tests.test_process_mode import alive, cpu_seconds, wait_stopped

PY = sys.executable
MARK = "tasky-command-test-family"

ARGS_SCRIPT = "import json, sys; print(json.dumps(sys.argv[1:]))"
LINES_SCRIPT = """
import sys, time
for i in range(int(sys.argv[1])):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    time.sleep(float(sys.argv[2]))
"""
EXIT_SCRIPT = """
import os, signal, sys
print("bad thing", file=sys.stderr, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(int(sys.argv[1]))
"""
# A busy leader with one busy child, both in the task's process group.
FAMILY_SCRIPT = f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "while True: pass", "{MARK}"])
print("started", flush=True)
while True:
    pass
"""
PROGRESS_SCRIPT = """
import time
for i in range(1, 101):
    print(f"{i}% step {i}", flush=True)
    time.sleep(0.1)
"""


def _workers(roots: list[Path]) -> list[type]:
    return [
        make_command_worker(
            name="Args",
            argv=[PY, "-c", ARGS_SCRIPT, "{text}", "{n}", "{flag}", "{choice}"],
            params=[
                # allow_control: the tab case below (control characters are refused by default).
                Param("text", "string", max_length=200, allow_control=True),
                Param("n", "integer", minimum=0, maximum=10, default=7, required=False),
                Param("flag", "boolean", flag="--flag", default=False, required=False),
                Param("choice", "enum", values=("a", "b"), default="a", required=False),
            ],
            output="json",
        ),
        make_command_worker(
            name="Lines",
            argv=[PY, "-c", LINES_SCRIPT, "{count}", "{pause}"],
            params=[
                Param("count", "integer", minimum=0, maximum=100_000),
                Param("pause", "number", minimum=0, maximum=1, default=0.0, required=False),
            ],
            stdout_tail=3,
        ),
        make_command_worker(
            name="Exit",
            argv=[PY, "-c", EXIT_SCRIPT, "{code}"],
            params=[Param("code", "string", pattern=r"^(\d+|kill)$")],
            success_codes=(0, 5),
        ),
        make_command_worker(name="Family", argv=[PY, "-c", FAMILY_SCRIPT, MARK], kill_grace=1.0),
        make_command_worker(
            name="Wait",
            argv=["sleep", "{seconds}"],
            params=[Param("seconds", "integer", minimum=1, maximum=1000)],
        ),
        make_command_worker(
            name="Progress",
            argv=[PY, "-c", PROGRESS_SCRIPT],
            progress_pattern=r"^(?P<percent>\d+)% (?P<message>.*)$",
        ),
        make_command_worker(
            name="Long",
            argv=[
                PY,
                "-c",
                "import sys; print('ab' * (int(sys.argv[1]) // 2)); print('end')",
                "{size}",
            ],
            params=[Param("size", "integer", minimum=0, maximum=10**6)],
        ),
        make_command_worker(name="NotJson", argv=["echo", "{", "oops"], output="json"),
        make_command_worker(
            name="Missing", argv=["/nonexistent/tasky-program"], check_program=False
        ),
        make_command_worker(
            name="Cat",
            argv=["cat", "--", "{file}"],
            params=[Param("file", "path", kind="file")],
            roots=roots,
        ),
    ]


@pytest.fixture
def registry(settings: Settings) -> WorkerRegistry:
    registry = registry_with("tests.workers_for_tests")
    for cls in _workers(settings.roots):
        registry.register(cls)
    return registry


async def result_of(client: httpx.AsyncClient, task_id: str) -> dict[str, object]:
    body: dict[str, object] = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    return body


def family() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if MARK in proc.cmdline():
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


async def started_family(client: httpx.AsyncClient, task_id: str) -> list[psutil.Process]:
    deadline = time.monotonic() + 15
    while len(procs := family()) < 2:
        assert time.monotonic() < deadline, f"task {task_id}: processes did not start"
        await asyncio.sleep(0.05)
    return procs


@pytest.mark.parametrize(
    "text", ["x; rm -rf /", "$(id)", "`id`", "a b\tc", "'\"\\", "*", "> /tmp/out"]
)
async def test_values_arrive_as_one_literal_argument(client: httpx.AsyncClient, text: str) -> None:
    task_id = await submit(client, "Args", {"text": text, "flag": True, "choice": "b"})
    await wait_for(client, task_id, "Completed")
    output = (await result_of(client, task_id))["Output"]
    assert output == {"exit_code": 0, "output": [text, "7", "--flag", "b"]}


async def test_false_flag_and_bad_values(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Args", {"text": "t", "n": 0})
    await wait_for(client, task_id, "Completed")
    assert (await result_of(client, task_id))["Output"] == {
        "exit_code": 0,
        "output": ["t", "0", "a"],
    }
    for bad in (
        {"text": "-rf"},  # would be read as an option
        {"text": "t", "n": 11},
        {"text": "t", "n": "3"},
        {"text": "t", "choice": "c"},
        {"text": "t", "extra": 1},
        {},
    ):
        r = await client.post(f"{API}/workers/Args", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert "Error" in r.json()


@pytest.mark.slow  # waits out a clock of seconds
async def test_output_lines_readable_while_running(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Lines", {"count": 40, "pause": 0.05})
    deadline = time.monotonic() + 15
    while True:
        body = (await client.get(f"{API}/tasks/{task_id}/logs")).json()
        if body["Lines"] and body["Status"] == "Running":
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    expected = {f"out {i}" for i in range(40)} | {f"err {i}" for i in range(40)}
    first = [ln["Line"] for ln in body["Lines"]]
    assert set(first) <= expected and len(first) < len(expected)  # some, not yet all
    await wait_for(client, task_id, "Completed")
    newer = (await client.get(f"{API}/tasks/{task_id}/logs", params={"after": body["Next"]})).json()
    assert newer["Lines"] and all(ln["Seq"] > body["Next"] for ln in newer["Lines"])
    every = [ln["Line"] for ln in (await client.get(f"{API}/tasks/{task_id}/logs")).json()["Lines"]]
    assert sorted(every) == sorted(expected)
    assert (await result_of(client, task_id))["Output"] == {
        "exit_code": 0,
        "stdout_tail": ["out 37", "out 38", "out 39"],
    }


@pytest.mark.parametrize(
    ("code", "wanted", "error"),
    [
        ("0", "Completed", None),
        ("5", "Completed", None),
        ("3", "Failed", "the command exited with code 3: bad thing"),
        ("kill", "Failed", "the command was killed by SIGKILL (signal 9): bad thing"),
    ],
)
async def test_exit_code_decides(
    client: httpx.AsyncClient, code: str, wanted: str, error: str | None
) -> None:
    task_id = await submit(client, "Exit", {"code": code})
    await wait_for(client, task_id, wanted)
    result = await result_of(client, task_id)
    if wanted == "Completed":
        assert result["Output"] == {"exit_code": int(code), "stdout_tail": []}
    else:
        assert result["Error"] == error


async def test_cancel_leaves_no_process_behind(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Family")
    procs = await started_family(client, task_id)
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.status_code == 200 and r.json()["Status"] == "Canceled"
    assert alive(procs) == []


async def test_pause_stops_cpu_then_resume_and_cancel(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Family")
    procs = await started_family(client, task_id)
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    await wait_stopped(procs)
    before = cpu_seconds(procs)
    await asyncio.sleep(1.0)
    assert cpu_seconds(procs) == before
    assert (await action(client, task_id, "resume")).json()["Status"] == "Running"
    deadline = time.monotonic() + 10
    while cpu_seconds(procs) <= before:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await action(client, task_id, "pause")
    await wait_stopped(procs)
    r = await client.post(f"{API}/tasks/{task_id}/cancel")  # SIGTERM reaches stopped processes
    assert r.json()["Status"] == "Canceled"
    assert alive(procs) == []


async def test_timeout_kills_and_fails(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Wait", {"seconds": 100}, timeout=0.5)
    await wait_for(client, task_id, "Failed")
    assert (await result_of(client, task_id))["Error"] == "timed out after 0.5 s"


async def test_progress_from_output(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Progress")
    deadline = time.monotonic() + 15
    while not (body := await status(client, task_id)).get("Progress"):
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    assert 0 < body["Progress"] < 1
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    assert "step" in str(detail)
    await client.post(f"{API}/tasks/{task_id}/cancel")
    await wait_for(client, task_id, "Canceled")


async def test_bad_json_output_and_missing_program_fail(client: httpx.AsyncClient) -> None:
    bad = await submit(client, "NotJson")
    missing = await submit(client, "Missing")
    await wait_for(client, bad, "Failed")
    await wait_for(client, missing, "Failed")
    assert "not valid JSON" in str((await result_of(client, bad))["Error"])
    error = str((await result_of(client, missing))["Error"])
    assert error.startswith("cannot run '/nonexistent/tasky-program'"), error


async def test_path_parameter_is_confined(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    inside = settings.roots[0] / "notes.txt"
    inside.write_text("hello\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    task_id = await submit(client, "Cat", {"file": "notes.txt"})
    await wait_for(client, task_id, "Completed")
    assert (await result_of(client, task_id))["Output"] == {
        "exit_code": 0,
        "stdout_tail": ["hello"],
    }
    for bad in (str(outside), "../secret.txt", "missing.txt", "."):
        r = await client.post(f"{API}/workers/Cat", json={"file": bad})
        assert r.status_code == 422, (bad, r.text)


async def test_overlong_lines_come_in_pieces(client: httpx.AsyncClient) -> None:
    text = "ab" * 20_000  # 40 000 characters, no newline until the end
    task_id = await submit(client, "Long", {"size": len(text)})
    await wait_for(client, task_id, "Completed")
    lines = [ln["Line"] for ln in (await client.get(f"{API}/tasks/{task_id}/logs")).json()["Lines"]]
    assert [len(ln) for ln in lines] == [16_384, 16_384, 40_000 - 2 * 16_384, 3]
    assert "".join(lines[:3]) == text and lines[3] == "end"
