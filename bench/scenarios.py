"""The measurements. Each returns figures (see stats.figure) keyed by a stable name."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import floor, loadgen, procs, seed
from bench.stats import figure, ratio

ROOT = Path(__file__).resolve().parent.parent

Figures = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    seconds: float = 5.0  # each throughput run
    warmup: float = 1.0
    latency_seconds: float = 3.0  # each single-connection latency run
    floor_commits: int = 2000  # durable one-row commits per measure of the disk's floor
    e2e_tasks: int = 20_000
    light_rate: float = 100.0
    light_count: int = 300  # per run
    scale_tasks: int = 1_000_000
    queued_tasks: int = 100_000
    sleepers: int = 1000
    retention_seconds: float = 20.0  # each submit-latency window of the retention scenario
    client_tasks: int = 10_000  # each run of a one-task-per-request client driver
    batch_tasks: int = 50_000  # each run of the batch-submit drivers
    batch_chunk: int = 1000
    chain_long: int = 1000  # steps of the long sequential chain of no-ops
    chain_short: int = 100  # and of the short one beside it
    cli_submits: int = 10  # runs of `tasky submit` (a whole process each) per measured run


SMOKE = Plan(
    runs=1,
    seconds=1.0,
    warmup=1.0,
    latency_seconds=1.0,
    floor_commits=50,
    e2e_tasks=300,
    light_count=50,
    scale_tasks=3000,
    queued_tasks=300,
    sleepers=30,
    retention_seconds=2.0,
    client_tasks=200,
    batch_tasks=2000,
    chain_long=50,
    chain_short=10,
    cli_submits=2,
)


def _stats(server: procs.Server, worker: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.api}/workers/{worker}/statistics", timeout=10).json()
    return body


def submit(plan: Plan, baseline: procs.Server, work: Path) -> Figures:
    """POST throughput to a worker whose only slot is held, so every task stays Queued."""
    tasky = procs.start_tasky(work / "submit-data", work)
    try:
        url = tasky.api + "/workers/Blocker"
        burl = baseline.api + "/workers/Blocker"
        loadgen.wrk(burl, seconds=plan.warmup, script="post.lua")
        warm = loadgen.wrk(url, seconds=plan.warmup, script="post.lua")
        acked = warm.requests - warm.non2xx
        base_rps: list[float] = []
        tasky_rps: list[float] = []
        bad = 0
        lone_p50: list[float] = []
        lone_p99: list[float] = []
        floor_p50: list[float] = []
        own_p50: list[float] = []
        bare_lone_p50: list[float] = []
        for _ in range(plan.runs):
            b = loadgen.wrk(burl, seconds=plan.seconds, script="post.lua")
            t = loadgen.wrk(url, seconds=plan.seconds, script="post.lua")
            base_rps.append(b.rps)
            tasky_rps.append(t.rps)
            acked += t.requests - t.non2xx
            bad += t.non2xx + t.socket_errors
            # A lone submit: one connection, each POST sent when the previous one was answered.
            lone = loadgen.wrk(
                url, seconds=plan.latency_seconds, connections=1, script="post.lua", latency=True
            )
            lone_p50.append(lone.latency["50%"] * 1000)
            lone_p99.append(lone.latency["99%"] * 1000)
            # The floor under it, right after, on the disk the server writes to; and the commit
            # of what a lone submit writes (its row and index entries), alone.
            floor_p50.append(floor.commit_p50_ms(work, plan.floor_commits))
            own_p50.append(floor.submit_commit_p50_ms(work, plan.floor_commits))
            # And the HTTP stack's own: the same lone POST to the bare baseline, which commits
            # nothing. A durable submit cannot answer sooner than this plus the floor.
            bare = loadgen.wrk(
                burl, seconds=plan.latency_seconds, connections=1, script="post.lua", latency=True
            )
            bare_lone_p50.append(bare.latency["50%"] * 1000)
            acked += lone.requests - lone.non2xx
            bad += lone.non2xx + lone.socket_errors
        in_store = _stats(tasky, "Blocker")["Total"]
        lone_bound = _sums(bare_lone_p50, floor_p50)
        own_bound = _sums(bare_lone_p50, own_p50)
        return {
            "submit_rps": figure(tasky_rps, "req/s", errors=bad),
            "baseline_post_rps": figure(base_rps, "req/s"),
            "submit_ratio": ratio(tasky_rps, base_rps),
            "lone_submit_p50_ms": figure(lone_p50, "ms"),
            "lone_submit_p99_ms": figure(lone_p99, "ms"),
            "commit_floor_p50_ms": figure(floor_p50, "ms"),
            "lone_submit_over_floor": ratio(lone_p50, floor_p50),
            "baseline_lone_p50_ms": figure(bare_lone_p50, "ms"),
            "lone_bound_ms": figure(lone_bound, "ms"),
            "lone_submit_over_bound": ratio(lone_p50, lone_bound),
            "submit_commit_p50_ms": figure(own_p50, "ms"),
            "lone_own_bound_ms": figure(own_bound, "ms"),
            "lone_submit_over_own_bound": ratio(lone_p50, own_bound),
            # Every 2xx means committed: the store must hold at least every acknowledged task.
            "submit_durable": {
                "acknowledged": acked,
                "in_store": in_store,
                "ok": in_store >= acked,
            },
        }
    finally:
        tasky.stop()


def _sums(a: list[float], b: list[float]) -> list[float]:
    """Run by run: ``a[i] + b[i]`` (both measured in the same run)."""
    return [x + y for x, y in zip(a, b, strict=True)]


def _wait_completed(server: procs.Server, worker: str, total: int, timeout: float) -> float:
    """Poll until the store shows ``total`` tasks, all Completed; returns the monotonic time."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            body = client.get(f"{server.api}/workers/{worker}/statistics").json()
            if body["Total"] >= total and body["ByStatus"]["Completed"] == body["Total"]:
                return time.monotonic()
            time.sleep(0.005)
    raise RuntimeError(f"{worker}: tasks did not all complete within {timeout:g} s")


def dispatch_and_e2e(plan: Plan, work: Path) -> Figures:
    tasky = procs.start_tasky(work / "e2e-data", work)
    try:
        url = tasky.api + "/workers/Noop"
        p50: list[float] = []
        p99: list[float] = []
        bad = 0
        for _ in range(plan.runs):
            bad += loadgen.paced_posts(url, plan.light_rate, plan.light_count)
            lat = httpx.get(f"{tasky.api}/metrics?last={plan.light_count}", timeout=10).json()
            p50.append(lat["DispatchLatencySeconds"]["P50"] * 1000)
            p99.append(lat["DispatchLatencySeconds"]["P99"] * 1000)
        rates: list[float] = []
        for _ in range(plan.runs):
            before = _stats(tasky, "Noop")["Total"]
            start = time.monotonic()
            responses, non2xx = loadgen.post_n(url, plan.e2e_tasks)
            bad += non2xx
            end = _wait_completed(tasky, "Noop", before + responses, timeout=300)
            done = _stats(tasky, "Noop")["Total"] - before
            rates.append(done / (end - start))
        return {
            "dispatch_p50_ms": figure(p50, "ms", errors=bad),
            "dispatch_p99_ms": figure(p99, "ms"),
            "e2e_tasks_per_s": figure(rates, "tasks/s", tasks=plan.e2e_tasks),
        }
    finally:
        tasky.stop()


def _latency(url: str, plan: Plan) -> tuple[list[float], list[float]]:
    p50: list[float] = []
    p99: list[float] = []
    for _ in range(plan.runs):
        r = loadgen.wrk(url, seconds=plan.latency_seconds, connections=1, latency=True)
        if r.non2xx or r.socket_errors:
            raise RuntimeError(f"{url}: {r.non2xx} non-2xx, {r.socket_errors} socket errors")
        p50.append(r.latency["50%"] * 1000)
        p99.append(r.latency["99%"] * 1000)
    return p50, p99


def scale(plan: Plan, baseline: procs.Server, work: Path) -> Figures:
    """A store of ``scale_tasks`` finished tasks: pages, statistics, status reads, restart."""
    data = work / "scale-data"
    seed_seconds, ids = seed.seed_finished(data, plan.scale_tasks)
    ids_file = work / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    out: Figures = {
        "scale_seed": {"tasks": plan.scale_tasks, "seconds": seed_seconds},
    }
    restarts: list[float] = []
    for run in range(plan.runs):
        tasky = procs.start_tasky(data, work)
        restarts.append(tasky.ready_seconds)
        try:
            if run == 0:
                out.update(_scale_reads(plan, tasky, baseline, ids_file))
        finally:
            tasky.stop()
    out["restart_s"] = figure(restarts, "s", tasks=plan.scale_tasks)
    return out


def _scale_reads(
    plan: Plan, tasky: procs.Server, baseline: procs.Server, ids_file: Path
) -> Figures:
    out: Figures = {}
    deep = int(plan.scale_tasks * 0.9)
    pages = {
        "list_first": "/tasks",
        "list_deep": f"/tasks?cursor={deep}",
        "list_filtered_deep": f"/tasks?status=Failed&cursor={deep}",
        "worker_stats": "/workers/Noop/statistics",
    }
    for name, path in pages.items():
        p50, p99 = _latency(tasky.api + path, plan)
        out[name + "_p50_ms"] = figure(p50, "ms")
        out[name + "_p99_ms"] = figure(p99, "ms")
    env = {"BENCH_IDS": str(ids_file)}
    base_rps: list[float] = []
    tasky_rps: list[float] = []
    bad = 0
    for _ in range(plan.runs):
        b = loadgen.wrk(baseline.base, seconds=plan.seconds, script="get_ids.lua", env=env)
        t = loadgen.wrk(tasky.base, seconds=plan.seconds, script="get_ids.lua", env=env)
        base_rps.append(b.rps)
        tasky_rps.append(t.rps)
        bad += t.non2xx + t.socket_errors
    out["status_rps"] = figure(tasky_rps, "req/s", errors=bad)
    out["baseline_get_rps"] = figure(base_rps, "req/s")
    out["status_ratio"] = ratio(tasky_rps, base_rps)
    out["scale_rss_mb"] = figure([tasky.rss_mb()], "MB", tasks=plan.scale_tasks)
    return out


def memory(plan: Plan, work: Path) -> Figures:
    out: Figures = {}
    tasky = procs.start_tasky(work / "queued-data", work)
    try:
        out["idle_rss_mb"] = figure([tasky.rss_mb()], "MB")
        _, non2xx = loadgen.post_n(tasky.api + "/workers/Blocker", plan.queued_tasks)
        queued = httpx.get(tasky.api + "/metrics", timeout=10).json()["QueuedNow"]
        out["queued_rss_mb"] = figure([tasky.rss_mb()], "MB", queued=queued, errors=non2xx)
    finally:
        tasky.stop()
    tasky = procs.start_tasky(work / "sleepers-data", work)
    try:
        _, non2xx = loadgen.post_n(tasky.api + "/workers/Nap", plan.sleepers)
        running = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = httpx.get(tasky.api + "/metrics", timeout=10).json()["RunningNow"]
            if running >= plan.sleepers:
                break
            time.sleep(0.05)
        out["sleepers_rss_mb"] = figure([tasky.rss_mb()], "MB", running=running, errors=non2xx)
    finally:
        tasky.stop()
    return out


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def retention(plan: Plan, work: Path) -> Figures:
    """Submit latency (paced, one connection) on a store of ``scale_tasks`` finished tasks, two
    days old: first with nothing else going on, then while all of them are pruned.

    The pruning is started through POST /prune (in a thread, so its duration is exact); it runs
    the same batched code as the background pruner (tasky.retention.pruner.prune).
    """
    data = work / "retention-data"
    seed_seconds, _ = seed.seed_finished(data, plan.scale_tasks, age=2 * 86400.0)
    out: Figures = {"retention_seed": {"tasks": plan.scale_tasks, "seconds": seed_seconds}}
    windows: dict[str, list[float]] = {}
    pruning: dict[str, Any] = {}
    tasky = procs.start_tasky(data, work, "--retention-days", "0")
    try:
        url = tasky.api + "/workers/Blocker"
        windows["idle"] = loadgen.timed_posts(url, plan.light_rate, plan.retention_seconds)

        def prune_all() -> None:
            started = time.monotonic()
            answer = httpx.post(
                tasky.api + "/prune", json={"older_than_seconds": 86400.0}, timeout=3600
            )
            pruning["seconds"] = time.monotonic() - started
            pruning["tasks"] = answer.json()["Tasks"]

        pruner = threading.Thread(target=prune_all)
        pruner.start()
        windows["pruning"] = loadgen.timed_posts(
            url, plan.light_rate, 3600.0, until=lambda: not pruner.is_alive()
        )
        pruner.join()
    finally:
        tasky.stop()
    for name, values in windows.items():
        for label, fraction in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            out[f"retention_{name}_{label}_ms"] = figure(
                [_percentile(values, fraction)], "ms", samples=len(values)
            )
    if pruning.get("tasks") != plan.scale_tasks:
        raise RuntimeError(f"pruned {pruning.get('tasks')} of {plan.scale_tasks} tasks")
    out["retention_prune_s"] = figure([pruning["seconds"]], "s", tasks=plan.scale_tasks)
    out["retention_prune_rate"] = figure([plan.scale_tasks / pruning["seconds"]], "tasks/s")
    return out


# -- the user's side: the shipped clients, each in a driver process of its own -------------------
DRIVERS = ROOT / "bench" / "drivers.py"


def _drive(server: procs.Server, driver: str, *options: str) -> dict[str, Any]:
    """One run of bench/drivers.py against ``server``; its JSON report."""
    argv = [sys.executable, str(DRIVERS), driver, server.base, *options]
    return procs.run_driver(argv, f"driver {driver}")


def _cli_submit_seconds(server: procs.Server, times: int) -> list[float]:
    """Wall seconds of each of ``times`` runs of ``tasky submit Noop``: what a shell script
    creating tasks one command at a time waits for each."""
    argv = [sys.executable, "-m", "tasky", "submit", "Noop", "--url", server.base, "--json"]
    seconds: list[float] = []
    for _ in range(times):
        began = time.perf_counter()
        run = subprocess.run(
            argv, capture_output=True, text=True, env=procs.clean_env(), timeout=60, check=False
        )
        seconds.append(time.perf_counter() - began)
        if run.returncode != 0:
            raise RuntimeError(f"tasky submit failed:\n{run.stdout}{run.stderr}")
    return seconds


def clients(plan: Plan, baseline: procs.Server, work: Path) -> Figures:
    """Tasks per second as a user's script sees them: each driver submits no-op tasks through the
    shipped clients (or, for reference, plain aiohttp) and the clock stops at the last completion.
    "Batch acknowledged" stops at the last answer, the tasks Queued behind a busy worker. The
    command line's figure is the median wall time of one ``tasky submit`` process.

    The runs of the drivers take turns (sync, async, ..., then again), so that the machine's load
    weighs on each alike.

    Beside them, the ceiling of the one-call-after-another figure: the same blocking client
    against the bare baseline (the HTTP round trip and the client's own work, nothing kept), and
    with the disk's floor of the same run added to every call (a durable submit cannot answer
    before its commit): the rate no server could beat through that client on this machine. And
    with the commit of one submitted task alone (the task's row, its indexes and its status
    count: what a submit writes) added instead of the floor: the rate no server keeping what a
    Tasky submit keeps could beat (a no-op task's end adds to that commit, and is not counted).
    """
    tasks = str(plan.client_tasks)
    batch = ("--tasks", str(plan.batch_tasks), "--chunk", str(plan.batch_chunk))
    drivers: dict[str, tuple[str, ...]] = {
        "client_sync": ("sync", "--tasks", tasks),
        "client_async": ("async", "--tasks", tasks, "--in-flight", "32"),
        "client_aiohttp": ("aiohttp", "--tasks", tasks, "--in-flight", "32"),
        "client_batch": ("batch", *batch),
    }
    rates: dict[str, list[float]] = {name: [] for name in [*drivers, "client_batch_ack"]}
    bare_sync: list[float] = []
    sync_bound: list[float] = []
    sync_own_bound: list[float] = []
    refused: dict[str, int] = dict.fromkeys(rates, 0)
    cli: list[float] = []
    tasky = procs.start_tasky(work / "clients-data", work)
    try:
        for _ in range(plan.runs):
            for name, argv in drivers.items():
                report = _drive(tasky, *argv)
                done = report["tasks"] - report["refused"]
                rates[name].append(done / report["total_seconds"])
                refused[name] += report["refused"]
            cli += _cli_submit_seconds(tasky, plan.cli_submits)
            bare = _drive(baseline, "sync-ack", "--tasks", tasks)
            bare_sync.append(bare["tasks"] / bare["submit_seconds"])
            floor_s = floor.commit_p50_ms(work, plan.floor_commits) / 1000
            sync_bound.append(1 / (bare["submit_seconds"] / bare["tasks"] + floor_s))
            own_s = floor.submit_commit_p50_ms(work, plan.floor_commits) / 1000
            sync_own_bound.append(1 / (bare["submit_seconds"] / bare["tasks"] + own_s))
    finally:
        tasky.stop()
    for run in range(plan.runs):
        # A server of its own each run: its queue holds only this run's tasks.
        tasky = procs.start_tasky(work / f"batch-ack-data-{run}", work)
        try:
            report = _drive(tasky, "batch-ack", *batch, "--worker", "Blocker")
        finally:
            tasky.stop()
        rates["client_batch_ack"].append(report["tasks"] / report["submit_seconds"])
        refused["client_batch_ack"] += report["refused"]
    figures = {
        f"{name}_tasks_per_s": figure(values, "tasks/s", errors=refused[name])
        for name, values in rates.items()
    }
    figures["cli_submit_s"] = figure(cli, "s")
    figures["client_sync_bare_per_s"] = figure(bare_sync, "calls/s")
    figures["client_sync_bound_per_s"] = figure(sync_bound, "tasks/s")
    figures["client_sync_own_bound_per_s"] = figure(sync_own_bound, "tasks/s")
    return figures


def _chain_seconds(client: httpx.Client, server: procs.Server, steps: int) -> float:
    """Run one chain of ``steps`` sequential no-op steps; the server's own time from the chain's
    creation to its end (its CreatedAt and FinishedAt), so polling costs nothing measured."""
    body = {"steps": [{"name": f"s{i}", "worker": "Noop"} for i in range(steps)]}
    r = client.post(f"{server.api}/chains", json=body)
    r.raise_for_status()
    chain_id = r.json()["ChainId"]
    deadline = time.monotonic() + 60 + steps * 0.2
    while time.monotonic() < deadline:
        # The list's summary, not the chain's own page of steps: light to poll.
        page = client.get(f"{server.api}/chains", params={"order": "desc", "limit": 5}).json()
        chain = next(c for c in page["Chains"] if c["ChainId"] == chain_id)
        if chain["Status"] == "Completed":
            return float(chain["FinishedAt"] - chain["CreatedAt"])
        if chain["Status"] != "Running":
            raise RuntimeError(f"chain {chain_id} ended {chain['Status']}: {chain['Error']}")
        time.sleep(0.1)
    raise RuntimeError(f"a chain of {steps} steps did not finish in time")


def chains(plan: Plan, work: Path) -> Figures:
    """Per-step overhead of sequential chains of no-op steps (the orchestrator benchmark's
    shape): a long and a short chain, taking turns, on one server with a durable SQLite store.
    A no-op's own time is about nothing, so a chain's time divided by its steps is overhead."""
    tasky = procs.start_tasky(work / "chains-data", work)
    try:
        long_ms: list[float] = []
        short_ms: list[float] = []
        with httpx.Client(timeout=30) as client:
            _chain_seconds(client, tasky, plan.chain_short)  # warm up
            for _ in range(plan.runs):
                long_ms.append(_chain_seconds(client, tasky, plan.chain_long) / plan.chain_long)
                short_ms.append(_chain_seconds(client, tasky, plan.chain_short) / plan.chain_short)
        long_ms = [v * 1000 for v in long_ms]
        short_ms = [v * 1000 for v in short_ms]
        return {
            "chain_long_step_ms": figure(long_ms, "ms", steps=plan.chain_long),
            "chain_short_step_ms": figure(short_ms, "ms", steps=plan.chain_short),
            "chain_step_ratio": ratio(long_ms, short_ms),
        }
    finally:
        tasky.stop()


def _postgres_url() -> str:
    """The database the PostgreSQL figures use (a schema of their own in it, dropped after)."""
    return os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _one_node_figures(
    plan: Plan, servers: list[procs.Server], prefix: str, bad: list[int]
) -> Figures:
    """Submit req/s (wrk on every node at once, the connections split between them),
    end-to-end no-op tasks/s (the tasks split between the nodes) and dispatch latency at light
    load on the first node."""
    blocker = [s.api + "/workers/Blocker" for s in servers]
    noop = [s.api + "/workers/Noop" for s in servers]
    conns = 32 // len(servers)

    def on_all(run: Any, urls: list[str]) -> list[Any]:
        results: list[Any] = [None] * len(urls)

        def one(i: int) -> None:
            results[i] = run(urls[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    on_all(lambda u: loadgen.wrk(u, seconds=plan.warmup, script="post.lua"), blocker)
    submit_rps: list[float] = []
    for _ in range(plan.runs):
        runs = on_all(
            lambda u: loadgen.wrk(u, seconds=plan.seconds, script="post.lua", connections=conns),
            blocker,
        )
        submit_rps.append(sum(r.rps for r in runs))
        bad[0] += sum(r.non2xx + r.socket_errors for r in runs)
    p50: list[float] = []
    p99: list[float] = []
    for _ in range(plan.runs):
        bad[0] += loadgen.paced_posts(noop[0], plan.light_rate, plan.light_count)
        lat = httpx.get(f"{servers[0].api}/metrics?last={plan.light_count}", timeout=10).json()
        p50.append(lat["DispatchLatencySeconds"]["P50"] * 1000)
        p99.append(lat["DispatchLatencySeconds"]["P99"] * 1000)
    rates: list[float] = []
    share = plan.e2e_tasks // len(servers)
    for _ in range(plan.runs):
        before = _stats(servers[0], "Noop")["Total"]
        start = time.monotonic()
        answers = on_all(lambda u: loadgen.post_n(u, share, connections=conns), noop)
        bad[0] += sum(non2xx for _, non2xx in answers)
        total = before + sum(responses for responses, _ in answers)
        end = _wait_completed(servers[0], "Noop", total, timeout=600)
        rates.append((_stats(servers[0], "Noop")["Total"] - before) / (end - start))
    return {
        f"{prefix}_submit_rps": figure(submit_rps, "req/s"),
        f"{prefix}_dispatch_p50_ms": figure(p50, "ms"),
        f"{prefix}_dispatch_p99_ms": figure(p99, "ms"),
        f"{prefix}_e2e_tasks_per_s": figure(rates, "tasks/s", tasks=plan.e2e_tasks),
    }


def postgres(plan: Plan, work: Path) -> Figures:
    """The same figures on one node with SQLite, one node with PostgreSQL, and two nodes sharing
    one PostgreSQL database, measured one after the other on this machine (whose cores the
    database, the nodes and the load generator share)."""
    import psycopg  # the PostgreSQL extra: only this scenario needs it

    base = _postgres_url()
    schema = f"tasky_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        print(f"bench: PostgreSQL unreachable, its section skipped: {reason}", file=sys.stderr)
        return {}
    joiner = "&" if "?" in base else "?"
    url = f"{base}{joiner}options={quote(f'-csearch_path={schema}', safe='')}"
    bad = [0]
    figures: Figures = {}
    try:
        sqlite = procs.start_tasky(work / "pg-sqlite-data", work)
        try:
            figures.update(_one_node_figures(plan, [sqlite], "sqlite1", bad))
        finally:
            sqlite.stop()
        node = procs.start_tasky(work / "pg-one-data", work, "--db", url)
        try:
            figures.update(_one_node_figures(plan, [node], "pg1", bad))
        finally:
            node.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM tasks; DELETE FROM worker_slots; DELETE FROM task_changes")
        # Two nodes on one host: each needs a name of its own (the default is the host name).
        nodes = [
            procs.start_tasky(work / f"pg-two-{i}-data", work, "--db", url, "--node", f"bench-{i}")
            for i in range(2)
        ]
        try:
            figures.update(_one_node_figures(plan, nodes, "pg2", bad))
        finally:
            for n in nodes:
                n.stop()
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    figures["pg1_submit_rps"]["errors"] = bad[0]
    return figures
