"""The benchmark harness still runs end to end (``bench/run.py --smoke``). Never checks timings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A few minutes: real servers, wrk, a Starlette baseline and the peer queues with their brokers.
pytestmark = [pytest.mark.slow, pytest.mark.server]

# Every figure the table is built from; each must be a positive number after a smoke run.
FIGURES = [
    "submit_rps",
    "baseline_post_rps",
    "submit_ratio",
    "lone_submit_p50_ms",
    "lone_submit_p99_ms",
    "commit_floor_p50_ms",
    "lone_submit_over_floor",
    "baseline_lone_p50_ms",
    "lone_bound_ms",
    "lone_submit_over_bound",
    "submit_commit_p50_ms",
    "lone_own_bound_ms",
    "lone_submit_over_own_bound",
    "e2e_tasks_per_s",
    "client_sync_tasks_per_s",
    "client_sync_bare_per_s",
    "client_sync_bound_per_s",
    "client_async_tasks_per_s",
    "client_aiohttp_tasks_per_s",
    "client_batch_tasks_per_s",
    "client_batch_ack_tasks_per_s",
    "cli_submit_s",
    "chain_long_step_ms",
    "chain_short_step_ms",
    "chain_step_ratio",
    "dispatch_p50_ms",
    "dispatch_p99_ms",
    "list_first_p50_ms",
    "list_first_p99_ms",
    "list_deep_p99_ms",
    "list_filtered_deep_p99_ms",
    "worker_stats_p99_ms",
    "status_rps",
    "baseline_get_rps",
    "status_ratio",
    "scale_rss_mb",
    "restart_s",
    "idle_rss_mb",
    "queued_rss_mb",
    "sleepers_rss_mb",
    *(
        f"{setup}_{name}"
        for setup in ("sqlite1", "pg1", "pg2")
        for name in ("submit_rps", "e2e_tasks_per_s", "dispatch_p50_ms", "dispatch_p99_ms")
    ),
    *(
        f"peer_{peer}_{mode}{kind}_tasks_per_s"
        for peer in ("dramatiq", "huey", "rq", "celery")
        for mode in ("memory", "durable")
        for kind in ("", "_batch")
    ),
    *(
        f"{name}_over_peer_{mode}"
        for name in ("client_sync", "client_batch")
        for mode in ("memory", "durable")
    ),
]


@pytest.mark.timeout(480)
def test_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is missing: scripts/install-system-deps.sh installs it")
            pytest.skip(f"{tool} is not installed (scripts/install-system-deps.sh)")
    readme = (ROOT / "bench" / "README.md").read_text()
    redis_servers = _redis_servers()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKY_")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=470,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    files = list(tmp_path.glob("*-smoke.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    assert result["kind"] == "smoke"
    assert result["machine"]["cores"] >= 1
    figures = result["figures"]
    for name in FIGURES:
        assert figures[name]["median"] > 0, (name, figures[name])
        assert len(figures[name]["runs"]) >= 1
    # The harness's own checks: nothing acknowledged was lost, no errors, the load arrived.
    assert figures["submit_durable"]["ok"], figures["submit_durable"]
    assert figures["submit_durable"]["acknowledged"] > 0
    assert figures["queued_rss_mb"]["queued"] >= 300
    assert figures["sleepers_rss_mb"]["running"] >= 30
    # Each bound is the two figures it is made of, run by run (no timing is checked).
    for bound, disk in (
        ("lone_bound_ms", "commit_floor_p50_ms"),
        ("lone_own_bound_ms", "submit_commit_p50_ms"),
    ):
        bare_runs = figures["baseline_lone_p50_ms"]["runs"]
        sums = [a + b for a, b in zip(bare_runs, figures[disk]["runs"], strict=True)]
        assert figures[bound]["runs"] == pytest.approx(sums), bound
    # The client's bound adds the floor to every bare call, so it is slower than the bare calls.
    bare_calls = figures["client_sync_bare_per_s"]["runs"]
    bounds = figures["client_sync_bound_per_s"]["runs"]
    assert len(bounds) == len(bare_calls)
    assert all(0 < bound < bare for bound, bare in zip(bounds, bare_calls, strict=True))
    errors = [n for n, f in figures.items() if isinstance(f, dict) and f.get("errors")]
    assert errors == []
    # The table printed every row.
    assert "Submit / baseline POST" in run.stdout
    assert "Scale: restart to serving (s)" in run.stdout
    assert "Client: tasky.AsyncClient, 32 in flight (tasks/s)" in run.stdout
    assert "Lone submit's bound: bare lone POST + the floor (ms)" in run.stdout
    assert "Lone submit's own bound: bare lone POST + that commit (ms)" in run.stdout
    assert "Client: the same with the floor added to each call (tasks/s)" in run.stdout
    assert "Peer: dramatiq, one send after another, Redis syncing every write" in run.stdout
    assert "Peer: RQ, chunks of 1,000, Redis keeping nothing" in run.stdout
    assert "tasky.Client batches / the fastest peer's, Redis keeping nothing" in run.stdout
    # The peers' brokers and consumers were stopped with the run (their process groups).
    leftovers = subprocess.run(
        ["pgrep", "-f", "bench.peers|rq worker --url redis://127.0.0.1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert leftovers == "", leftovers
    assert _redis_servers() == redis_servers
    # A smoke run never rewrites the recorded full-run table.
    assert (ROOT / "bench" / "README.md").read_text() == readme


def _redis_servers() -> set[int]:
    """The pids of the Redis servers running now (the machine's own, if any, included)."""
    found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}
