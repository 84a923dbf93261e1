"""Task output cannot drive the terminal of whoever reads it with ``tasky logs`` / ``result``.

A real server runs a command that prints an OSC 52 clipboard write, screen-clearing CSI, an 8-bit
CSI (C1) and rich markup. People (a pty, and typer's CliRunner) see them
escaped (``\\x1b``); ``--json`` keeps the exact text.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tasky.cli.main import app
from tasky.cli.terminal import safe, visible
from tests.conftest import ROOT, ServerProcess

PY = sys.executable
CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[?1049h"
C1_CSI = "\x9b31m"
LINES = [
    f"copy {CLIPBOARD} done",
    f"wipe {CLEAR} done",
    f"eight {C1_CSI} bit",
    "[red]alarm[/red] [link=https://evil.example]click[/link]",
]
# The command prints LINES (the JSON keeps this file free of raw control characters).
SCRIPT = f"import json; print('\\n'.join(json.loads({json.dumps(json.dumps(LINES))})))"


@pytest.fixture
def srv(server_factory: Any, tmp_path: Path) -> ServerProcess:
    config = tmp_path / "noisy.toml"
    config.write_text(
        f'[[workers]]\nname = "Noisy"\nargv = {json.dumps([PY, "-c", SCRIPT])}\nstdout_tail = 10\n'
    )
    server: ServerProcess = server_factory("--config", str(config))
    return server


def _finished_task(srv: ServerProcess) -> str:
    task_id: str = httpx.post(f"{srv.api}/workers/Noisy", json={}).json()["TaskId"]
    deadline = time.monotonic() + 20
    while httpx.get(f"{srv.api}/tasks/{task_id}/status").json()["Status"] != "Completed":
        assert time.monotonic() < deadline, "the task did not complete"
        time.sleep(0.05)
    return task_id


def _no_raw_control(text: str) -> None:
    assert "\x1b]" not in text  # no OSC at all (clipboard, title, hyperlink)
    assert "\x1b[2J" not in text and "\x1b[?1049h" not in text
    assert "\x9b" not in text and "\x07" not in text and "\r" not in text


def test_logs_and_result_are_escaped_for_people(srv: ServerProcess) -> None:
    task_id = _finished_task(srv)
    env = {"COLUMNS": "200"}
    logs = CliRunner().invoke(app, ["logs", task_id, "--url", srv.url], env=env)
    assert logs.exit_code == 0, logs.output
    _no_raw_control(logs.stdout)
    assert "\x1b" not in logs.stdout  # not a terminal: no colours either
    assert "copy \\x1b]52;c;ZWNobyBwd25lZA==\\x07 done" in logs.stdout
    assert "eight \\x9b31m bit" in logs.stdout
    # Markup is printed as written, not applied (the brackets stay).
    assert "[red]alarm[/red] [link=https://evil.example]click[/link]" in logs.stdout

    result = CliRunner().invoke(app, ["result", task_id, "--url", srv.url], env=env)
    assert result.exit_code == 0, result.output
    _no_raw_control(result.stdout)
    assert "\\u001b]52;c;" in result.stdout  # inside the JSON of stdout_tail
    assert "\\u009b31m" in result.stdout


def test_json_output_keeps_the_exact_text(srv: ServerProcess) -> None:
    task_id = _finished_task(srv)
    logs = CliRunner().invoke(app, ["logs", task_id, "--url", srv.url, "--json"])
    assert logs.exit_code == 0, logs.output
    assert [json.loads(line)["Line"] for line in logs.stdout.splitlines()] == LINES
    result = CliRunner().invoke(app, ["result", task_id, "--url", srv.url, "--json"])
    assert json.loads(result.stdout)["Output"]["stdout_tail"] == LINES


def _run_in_pty(args: list[str], timeout: float = 30.0) -> str:
    """Run ``python -m tasky ARGS`` with a pseudo-terminal as stdout; all it wrote."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [PY, "-m", "tasky", *args], stdout=terminal, stderr=terminal, env=env, cwd=str(ROOT)
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the child closed its side
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert proc.returncode == 0, b"".join(chunks)
    return b"".join(chunks).decode("utf-8", "replace")


def test_logs_in_a_real_terminal_are_escaped(srv: ServerProcess) -> None:
    task_id = _finished_task(srv)
    shown = _run_in_pty(["logs", task_id, "--url", srv.url])
    _no_raw_control(shown.replace("\r\n", "\n"))
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in shown
    assert "\\x1b[2J\\x1b[?1049h" in shown
    assert "[link=https://evil.example]click[/link]" in shown


def test_the_escaping_helpers() -> None:
    assert (
        visible("a\x1b[31mb\x00c\x7fd\x85e\tf\ng\rh") == "a\\x1b[31mb\\x00c\\x7fd\\x85e\tf\ng\\x0dh"
    )
    assert safe("[bold]x[/bold]") == "\\[bold]x\\[/bold]"
    assert visible("plain text, accents é and emoji ✓") == "plain text, accents é and emoji ✓"
