"""Task processes get a clean environment: the server's token and secrets never reach them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ServerFactory, ServerProcess

AUTH = {"Authorization": "Bearer tok-123"}


def test_token_and_server_environment_do_not_reach_commands(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "env.toml"
    config.write_text(
        '[[workers]]\nname = "ShowEnv"\n'
        f'argv = ["{sys.executable}", "-c", "import os; print(sorted(os.environ.items()))"]\n'
        'output = "text"\n'
    )
    srv: ServerProcess = server_factory(
        "--config", str(config), env={"TASKY_TOKEN": "tok-123", "SECRET_THING": "s3cr3t"}
    )
    task_id = httpx.post(f"{srv.api}/workers/showenv", json={}, headers=AUTH).json()["TaskId"]
    deadline = time.monotonic() + 15
    while True:
        result = httpx.get(f"{srv.api}/tasks/{task_id}/result", headers=AUTH)
        if result.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    body = result.json()
    assert body["Status"] == "Completed", body
    printed = "\n".join(body["Output"]["stdout_tail"])
    assert "PATH" in printed
    assert "tok-123" not in printed and "s3cr3t" not in printed
    # The one Tasky variable a task gets is the run mark that finds its processes after a crash.
    assert "'TASKY_RUN_MARK'" in printed
    assert "TASKY_" not in printed.replace("'TASKY_RUN_MARK'", "")
