"""Server processes for the benchmark: start on a free loopback port, wait until serving, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The environment without TASKY_* (so the caller's settings cannot leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKY_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_driver(argv: list[str], what: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a driver process (bench/drivers.py, bench/peers/drive.py) to its end; the JSON report
    it prints last. ``env``: the environment (default: :func:`clean_env`)."""
    run = subprocess.run(
        argv,
        cwd=ROOT,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{run.stdout}{run.stderr}")
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


class Server:
    """One server subprocess. ``ready_seconds`` is spawn -> first 200 on ``ready_path``."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.api = self.base + "/tasky/v1"
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=clean_env(), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.ready_seconds = float("nan")

    def wait_ready(self, path: str = "/tasky/v1/workers", timeout: float = 120.0) -> float:
        deadline = self._started + timeout
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    self._log.close()
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.name} exited early:\n{tail}")
                try:
                    if client.get(self.base + path).status_code == 200:
                        self.ready_seconds = time.monotonic() - self._started
                        return self.ready_seconds
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{self.name} did not serve within {timeout:g} s; see {self.log_path}")

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_tasky(data_dir: Path, log_dir: Path, *extra: str) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tasky",
        "serve",
        "--addr",
        f"127.0.0.1:{port}",
        "--data",
        str(data_dir),
        "--workers",
        "bench.workers",
        # The submit figures queue every task behind a busy worker: far past the default cap.
        "--max-queued",
        "100000000",
        *extra,
    ]
    server = Server("tasky", argv, port, log_dir / "tasky.log")
    server.wait_ready()
    return server


def start_baseline(log_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "baseline.py"), str(port)]
    server = Server("baseline", argv, port, log_dir / "baseline.log")
    server.wait_ready()
    return server
