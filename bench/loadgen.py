"""Load generators: wrk (the C load generator, for throughput and latency) and a paced client."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LUA = Path(__file__).resolve().parent / "lua"
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non2xx: int
    socket_errors: int
    # Quantile name ("50%", "99%") -> seconds; filled when run with latency=True.
    latency: dict[str, float] = field(default_factory=dict)


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = {
        q + "%": _seconds(v)
        for q, v in re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s|m))$", out, re.M)
    }
    return WrkResult(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS[done.group(3)],
        rps=float(rps.group(1)),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        latency=latency,
    )


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    script: str | None = None,
    env: dict[str, str] | None = None,
    latency: bool = False,
) -> WrkResult:
    """One wrk run with one thread (one core is plenty for wrk; the server gets the other)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    if script:
        argv += ["-s", str(LUA / script)]
    argv.append(url)
    run = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=seconds + 60,
        check=True,
    )
    return parse_wrk(run.stdout)


def post_n(url: str, n: int, connections: int = 32) -> tuple[int, int]:
    """POST until ``n`` responses arrived; returns (responses, non-2xx). wrk exits at once then."""
    run = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            "-d600s",
            "--timeout",
            "10s",
            "-s",
            str(LUA / "post_n.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_N": str(n)},
        timeout=660,
        check=True,
    )
    found = re.search(r"BENCH responses=(\d+) non2xx=(\d+)", run.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{run.stdout}{run.stderr}")
    return int(found.group(1)), int(found.group(2))


def paced_posts(url: str, rate: float, count: int) -> int:
    """``count`` POSTs at ``rate`` per second, one connection (light load); returns non-2xx."""
    bad = 0
    interval = 1.0 / rate
    with httpx.Client(timeout=10) as client:
        start = time.monotonic()
        for i in range(count):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if (
                client.post(
                    url, content=b"{}", headers={"Content-Type": "application/json"}
                ).status_code
                >= 300
            ):
                bad += 1
    return bad


def wrk_version() -> str:
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (run.stdout + run.stderr).splitlines()[0].strip() if run.stdout + run.stderr else "?"


def timed_posts(
    url: str, rate: float, seconds: float, until: Callable[[], bool] | None = None
) -> list[float]:
    """POSTs at ``rate`` per second on one connection for ``seconds`` (or until ``until()``,
    asked twice a second); returns each answer's latency in ms (a non-2xx raises)."""
    latencies: list[float] = []
    interval = 1.0 / rate
    with httpx.Client(timeout=30) as client:
        start = time.monotonic()
        next_check = start + 0.5
        for i in range(int(rate * seconds)):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            answer = client.post(url, content=b"{}", headers={"Content-Type": "application/json"})
            latencies.append((time.monotonic() - sent) * 1000.0)
            answer.raise_for_status()
            if until is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                if until():
                    break
    return latencies
