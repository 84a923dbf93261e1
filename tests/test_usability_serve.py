"""``tasky serve`` start-up mistakes, as a newcomer makes them (issue 15): each one said plainly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, ServerProcess, free_port


def _serve(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKY_")}
    return subprocess.run(
        [sys.executable, "-m", "tasky", "serve", "--data", str(cwd / "data"), *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_port_in_use_is_said_and_nothing_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(tmp_path, "--addr", f"127.0.0.1:{port}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} is in use" in lines[0] and "--addr" in lines[0]
    assert "serving" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tasky-files").exists()  # nothing made for a server that never ran


def test_a_port_taken_by_another_tasky_is_said_too(tmp_path: Path, server: ServerProcess) -> None:
    elsewhere = tmp_path / "second"
    elsewhere.mkdir()
    done = _serve(elsewhere, "--addr", f"127.0.0.1:{server.port}")
    assert done.returncode == 2 and f"port {server.port} is in use" in done.stderr


def test_the_server_still_listens_where_it_says(server: ServerProcess) -> None:
    """The socket bound up front is the one uvicorn serves on (IPv4 loopback here)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass
    assert f"serving on http://127.0.0.1:{server.port}/tasky/v1/" in server.read_log()


def test_a_config_chain_using_an_example_worker_says_how_to_load_them(tmp_path: Path) -> None:
    config = tmp_path / "chains.toml"
    config.write_text(
        "[chains.backup]\n"
        'steps = [{ name = "copy", worker = "CopyFile", '
        'config = { source = "a.txt", destination = "b.txt" } }]\n'
    )
    done = _serve(tmp_path, "--addr", f"127.0.0.1:{free_port()}", "--config", str(config))
    assert done.returncode == 2
    assert "unknown worker 'CopyFile'; workers: (none)" in done.stderr
    assert "--workers tasky.workers.examples" in done.stderr


def test_an_unknown_worker_that_is_no_example_gets_no_such_hint(tmp_path: Path) -> None:
    config = tmp_path / "chains.toml"
    config.write_text(
        '[chains.backup]\nsteps = [{ name = "copy", worker = "Rsync", config = {} }]\n'
    )
    done = _serve(tmp_path, "--addr", f"127.0.0.1:{free_port()}", "--config", str(config))
    assert done.returncode == 2 and "unknown worker 'Rsync'" in done.stderr
    assert "tasky.workers.examples" not in done.stderr
