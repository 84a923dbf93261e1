"""``make bench``: measure Tasky against a bare-Starlette baseline and print one table.

    python bench/run.py            full run (median of 3; seeds 1,000,000 tasks; a few minutes)
    python bench/run.py --smoke    a tiny run that only proves the harness works (CI)

Results go to bench/results/<time>.json (or --out DIR); a full run also rewrites the table in
bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the bench and tasky packages importable
    sys.path.insert(0, str(ROOT))

from bench import loadgen, procs, scenarios, table  # noqa: E402
from bench.peers import scenario as peer_queues  # noqa: E402
from tasky.retention.pruner import BATCH  # noqa: E402

README = ROOT / "bench" / "README.md"
# The scenarios in the order they run, each with what runs it (the plan, the bare baseline
# server, the work directory); a plain run leaves out ONLY_WHEN_ASKED.
Step = Callable[[scenarios.Plan, procs.Server, Path], dict[str, Any]]
STEPS: dict[str, Step] = {
    "submit": scenarios.submit,
    "e2e": lambda plan, _, work: scenarios.dispatch_and_e2e(plan, work),
    "clients": scenarios.clients,
    "peers": lambda plan, _, work: peer_queues.peers(
        plan.runs, plan.client_tasks, plan.batch_chunk, work
    ),
    "chains": lambda plan, _, work: scenarios.chains(plan, work),
    "scale": scenarios.scale,
    "memory": lambda plan, _, work: scenarios.memory(plan, work),
    "retention": lambda plan, _, work: scenarios.retention(plan, work),
    "postgres": lambda plan, _, work: scenarios.postgres(plan, work),
}
SCENARIOS = tuple(STEPS)
ONLY_WHEN_ASKED = frozenset({"retention"})
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"


def machine() -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    versions: dict[str, str | None] = {}
    for pkg in ("starlette", "uvicorn", "uvloop", "httptools", "orjson", "pydantic"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": loadgen.wrk_version(),
        "versions": versions,
        "commit": commit,
    }


def notes(figures: dict[str, Any]) -> list[str]:
    out = []
    durable = figures.get("submit_durable")
    if durable:
        out.append(
            f"Durability: {durable['acknowledged']:,} submits acknowledged with 2xx, "
            f"{durable['in_store']:,} tasks in the store afterwards "
            f"({'every 2xx committed' if durable['ok'] else 'MISSING TASKS'})."
        )
    if "queued_rss_mb" in figures:
        out.append(
            f"RSS with queued tasks measured with {figures['queued_rss_mb']['queued']:,} queued."
        )
    if "sleepers_rss_mb" in figures:
        out.append(
            f"RSS with sleepers measured with {figures['sleepers_rss_mb']['running']:,} running."
        )
    if "retention_seed" in figures:
        seeded = figures["retention_seed"]
        out.append(
            f"Retention: {seeded['tasks']:,} finished tasks two days old, pruned through "
            f"POST /prune (writes of {BATCH}) while one connection submits 100 tasks/s."
        )
    if "scale_seed" in figures:
        seeded = figures["scale_seed"]
        out.append(
            f"Store seeded with {seeded['tasks']:,} finished tasks in {seeded['seconds']:.1f} s "
            "(through SqliteStore.insert_many_now, not HTTP)."
        )
    errors = sum(f.get("errors", 0) for f in figures.values() if isinstance(f, dict))
    out.append(f"Non-2xx responses and socket errors in measured Tasky runs: {errors}.")
    return out


def update_readme(text: str) -> None:
    current = README.read_text()
    start, end = current.index(BEGIN) + len(BEGIN), current.index(END)
    README.write_text(current[:start] + "\n" + text + "\n" + current[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run: the harness works")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=SCENARIOS,
        help="a subset (retention runs only when asked for)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is missing (scripts/install-system-deps.sh installs it)", file=sys.stderr)
        return 2
    plan = scenarios.SMOKE if args.smoke else scenarios.Plan()
    wanted = set(args.only or [name for name in SCENARIOS if name not in ONLY_WHEN_ASKED])
    started = datetime.datetime.now(datetime.UTC)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tasky-bench-") as tmp:
        work = Path(tmp)
        baseline = procs.start_baseline(work)
        try:
            for name, step in STEPS.items():
                if name in wanted:
                    t0 = time.monotonic()
                    figures.update(step(plan, baseline, work))
                    print(f"bench: {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        finally:
            baseline.stop()
    figures.update(peer_queues.compared(figures))
    m = machine()
    result: dict[str, Any] = {
        "kind": "smoke" if args.smoke else "full",
        "date": started.isoformat(timespec="seconds"),
        "machine": m,
        "plan": plan.__dict__,
        "figures": figures,
    }
    text = table.render(figures)
    note_lines = notes(figures)
    print(text)
    for line in note_lines:
        print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"{started:%Y%m%dT%H%M%SZ}-{result['kind']}.json"
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out_file}")
    if not args.smoke and not args.only:
        header = (
            f"{started:%Y-%m-%d %H:%M} UTC, {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB), "
            f"Python {m['python']}, SQLite {m['sqlite']}, commit {m['commit']}\n"
        )
        update_readme(header + "\n" + text + "\n\n" + "\n".join(f"- {n}" for n in note_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
