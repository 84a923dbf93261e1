"""The peer queues' section of ``make bench``: each peer's own client sends no-op tasks one after
another from a driver process, and the clock stops when the last has run: the protocol of
Tasky's "tasky.Client, one call after another" figure, in the same run. Then the same peer sends
them in chunks through its own call for many (dramatiq's and Celery's ``group``, huey's ``map``,
RQ's ``enqueue_many``): the protocol of Tasky's batch figure (``submit_many``, chunks of 1,000).

Each peer's broker is a Redis server started here for the measured run alone, in two modes:
keeping nothing on disk (how such queues are often run, and how the issue that asked for this
comparison measured them), and with every write synced before it is answered (``appendfsync
always``): the durability a Tasky submit has (its answer comes after its commit's fsync). The
peers' consumers run with their documented defaults (see each app module); the runs of the peers
take turns, so that the machine's load weighs on each alike.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import procs
from bench.peers import PEERS, figure_name
from bench.stats import figure

ROOT = Path(__file__).resolve().parent.parent.parent
_PACKAGES = ("redis", *PEERS)
MODES: dict[str, tuple[str, ...]] = {
    "memory": ("--save", "", "--appendonly", "no"),
    "durable": ("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
}
WARMUP_TASKS = 200  # before each measured run: the consumer is connected and has run some
# RQ's consumer runs under 200 no-ops a second here: a fifth of the tasks still times 10-20
# seconds of it in each run, and keeps the section from taking many minutes of the benchmark for
# figures whose rate does not change with the count.
TASK_SHARE = {"rq": 5}

Figures = dict[str, Any]


def missing() -> str | None:
    """Why the section cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is missing (scripts/install-system-deps.sh installs it)"
    absent = [name for name in _PACKAGES if importlib.util.find_spec(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (the bench extra: pip install -e '.[bench]')"
    return None


@contextlib.contextmanager
def redis_server(directory: Path, mode: str) -> Iterator[str]:
    """A Redis server of its own on a free loopback port; its URL."""
    import redis

    directory.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--logfile",
        str(directory / "redis.log"),
        *MODES[mode],
    ]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {directory}") from None
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _env(broker: str, counter: str) -> dict[str, str]:
    env = procs.clean_env()
    env["BENCH_PEER_BROKER"] = broker
    env["BENCH_PEER_COUNTER"] = counter
    return env


@contextlib.contextmanager
def consumer(peer: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """The peer's consumer, in a process group of its own: stopped with everything it started
    (dramatiq's and celery's worker processes, rq's work horses)."""
    argv = _consumer_argv(peer, env)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield
    finally:
        _stop_group(proc)


def _consumer_argv(peer: str, env: dict[str, str]) -> list[str]:
    # Asked of the app module in a process with the broker's URL set (it is read at import).
    code = f"import json, bench.peers.{peer}_app as a; print(json.dumps(a.consumer_argv()))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    argv: list[str] = json.loads(run.stdout)
    return argv


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(15)
    # Whatever is left of the group (a worker process that outlived its parent) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def drive(peer: str, tasks: int, env: dict[str, str], chunk: int = 0) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.peers.drive", peer, "--tasks", str(tasks)]
    return procs.run_driver([*argv, "--chunk", str(chunk)], f"the {peer} driver", env)


def peers(runs: int, tasks: int, chunk: int, work: Path) -> Figures:
    """Tasks per second of each peer in each mode, one send after another and in chunks of
    ``chunk``: ``runs`` runs of ``tasks`` each (fewer for the peers in TASK_SHARE)."""
    reason = missing()
    if reason is not None:
        print(f"bench: the peer queues' section skipped: {reason}", file=sys.stderr)
        return {}
    rates: dict[str, list[float]] = {}
    with redis_server(work / "peer-counter", "memory") as counter:
        for mode in MODES:
            for run in range(runs):
                for peer in PEERS:
                    count = max(1, tasks // TASK_SHARE.get(peer, 1))
                    place = work / f"peer-{mode}-{peer}-{run}"
                    with redis_server(place, mode) as broker:
                        env = _env(broker, counter)
                        with consumer(peer, env, place / "consumer.log"):
                            drive(peer, min(WARMUP_TASKS, count), env)
                            for batch in (False, True):
                                report = drive(peer, count, env, chunk if batch else 0)
                                rate = report["tasks"] / report["total_seconds"]
                                rates.setdefault(figure_name(peer, mode, batch), []).append(rate)
    return {name: figure(values, "tasks/s") for name, values in rates.items()}


# Tasky's figure, and what it is compared with: the peers' figures of the same protocol.
COMPARED = {
    "client_sync": ("client_sync_tasks_per_s", False),
    "client_batch": ("client_batch_tasks_per_s", True),
}


def compared(figures: Figures) -> Figures:
    """tasky.Client's figures (one call after another, batches) over the fastest peer's of the
    same protocol, with a broker keeping nothing and with a durable one (medians of one run)."""
    out: Figures = {}
    for name, (tasky_figure, batch) in COMPARED.items():
        client = figures.get(tasky_figure)
        if client is None or client["median"] is None:
            continue
        for mode in MODES:
            medians = (
                figures.get(figure_name(peer, mode, batch), {}).get("median") for peer in PEERS
            )
            best = max((m for m in medians if m), default=0.0)
            if best > 0:
                out[f"{name}_over_peer_{mode}"] = figure([client["median"] / best], "x")
    return out
