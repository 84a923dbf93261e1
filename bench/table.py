"""The one table: every figure, its spread, the baseline ratio where there is one, the target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.peers import PEERS, figure_name

# The peers' brokers (bench.peers.scenario.MODES) as the table names them.
_BROKERS = {"memory": "Redis keeping nothing", "durable": "Redis syncing every write"}

# (label, figure key, target text, check on the median or None)
Check = Callable[[float], bool] | None
ROWS: list[tuple[str, str, str, Check]] = [
    ("Baseline POST (bare Starlette)", "baseline_post_rps", "", None),
    ("Submit, durable, 32 conns", "submit_rps", "", None),
    ("Submit / baseline POST", "submit_ratio", ">= 0.55", lambda v: v >= 0.55),
    ("Lone submit, 1 conn, p50 (ms)", "lone_submit_p50_ms", "<= 0.30", lambda v: v <= 0.30),
    ("Lone submit, 1 conn, p99 (ms)", "lone_submit_p99_ms", "", None),
    ("Durable one-row commit, p50 (ms): the disk's floor", "commit_floor_p50_ms", "", None),
    ("Lone submit p50 / the floor", "lone_submit_over_floor", "", None),
    (
        "Lone POST, 1 conn, p50 (ms): bare Starlette, keeps nothing",
        "baseline_lone_p50_ms",
        "",
        None,
    ),
    ("Lone submit's bound: bare lone POST + the floor (ms)", "lone_bound_ms", "", None),
    ("Lone submit p50 / its bound", "lone_submit_over_bound", "", None),
    (
        "Durable commit of one submitted task alone, p50 (ms)",
        "submit_commit_p50_ms",
        "",
        None,
    ),
    (
        "Lone submit's own bound: bare lone POST + that commit (ms)",
        "lone_own_bound_ms",
        "",
        None,
    ),
    ("Lone submit p50 / its own bound", "lone_submit_over_own_bound", "", None),
    ("End-to-end no-op (tasks/s)", "e2e_tasks_per_s", ">= 5000", lambda v: v >= 5000),
    (
        "Client: tasky.Client, one call after another (tasks/s)",
        "client_sync_tasks_per_s",
        ">= 2000",
        lambda v: v >= 2000,
    ),
    (
        "Client: tasky.Client, one after another, to bare Starlette (calls/s)",
        "client_sync_bare_per_s",
        "",
        None,
    ),
    (
        "Client: the same with the floor added to each call (tasks/s)",
        "client_sync_bound_per_s",
        "",
        None,
    ),
    (
        "Client: the same with a submitted task's own commit added instead (tasks/s)",
        "client_sync_own_bound_per_s",
        "",
        None,
    ),
    (
        "Client: tasky.AsyncClient, 32 in flight (tasks/s)",
        "client_async_tasks_per_s",
        ">= 3500",
        lambda v: v >= 3500,
    ),
    ("Client: plain aiohttp, 32 in flight (tasks/s)", "client_aiohttp_tasks_per_s", "", None),
    (
        "Client: batch submit, chunks of 1,000 (tasks/s)",
        "client_batch_tasks_per_s",
        ">= 15000",
        lambda v: v >= 15000,
    ),
    (
        "Client: batch submit acknowledged (tasks/s)",
        "client_batch_ack_tasks_per_s",
        ">= 50000",
        lambda v: v >= 50000,
    ),
    ("Client: tasky submit command, one process (s)", "cli_submit_s", "", None),
    *(
        (
            f"Peer: {label}, {how}, {where} (tasks/s)",
            figure_name(peer, mode, batch),
            "",
            None,
        )
        for batch, how in ((False, "one send after another"), (True, "chunks of 1,000"))
        for mode, where in _BROKERS.items()
        for peer, label in PEERS.items()
    ),
    *(
        (f"{what} / the fastest peer's, {where}", f"{name}_over_peer_{mode}", "", None)
        for name, what in (
            ("client_sync", "tasky.Client one after another"),
            ("client_batch", "tasky.Client batches"),
        )
        for mode, where in _BROKERS.items()
    ),
    (
        "Chain of 1,000 sequential no-ops: overhead per step (ms)",
        "chain_long_step_ms",
        "<= 1",
        lambda v: v <= 1,
    ),
    ("Chain of 100 sequential no-ops: overhead per step (ms)", "chain_short_step_ms", "", None),
    (
        "Chain per-step overhead, 1,000 / 100 steps",
        "chain_step_ratio",
        "<= 1.2",
        lambda v: v <= 1.2,
    ),
    ("Dispatch latency p50 (ms)", "dispatch_p50_ms", "<= 1", lambda v: v <= 1),
    ("Dispatch latency p99 (ms)", "dispatch_p99_ms", "<= 5", lambda v: v <= 5),
    ("Scale: GET /tasks first page p50 (ms)", "list_first_p50_ms", "", None),
    ("Scale: GET /tasks first page p99 (ms)", "list_first_p99_ms", "<= 10", lambda v: v <= 10),
    ("Scale: GET /tasks deep page p50 (ms)", "list_deep_p50_ms", "", None),
    ("Scale: GET /tasks deep page p99 (ms)", "list_deep_p99_ms", "<= 10", lambda v: v <= 10),
    (
        "Scale: deep page ?status=Failed p99 (ms)",
        "list_filtered_deep_p99_ms",
        "<= 10",
        lambda v: v <= 10,
    ),
    ("Scale: worker statistics p50 (ms)", "worker_stats_p50_ms", "", None),
    ("Scale: worker statistics p99 (ms)", "worker_stats_p99_ms", "<= 20", lambda v: v <= 20),
    ("Baseline GET (bare Starlette)", "baseline_get_rps", "", None),
    ("Scale: GET status, 32 conns", "status_rps", "", None),
    ("GET status / baseline GET", "status_ratio", ">= 0.5", lambda v: v >= 0.5),
    ("Scale: server RSS (MB)", "scale_rss_mb", "<= 250", lambda v: v <= 250),
    ("Scale: restart to serving (s)", "restart_s", "<= 3", lambda v: v <= 3),
    ("Idle server RSS (MB)", "idle_rss_mb", "", None),
    ("RSS, queued tasks (MB)", "queued_rss_mb", "", None),
    ("RSS, running sleepers (MB)", "sleepers_rss_mb", "", None),
    ("PostgreSQL section: SQLite, one node, submit (req/s)", "sqlite1_submit_rps", "", None),
    ("PostgreSQL, one node, submit (req/s)", "pg1_submit_rps", "", None),
    ("PostgreSQL, two nodes, submit (req/s, both)", "pg2_submit_rps", "", None),
    (
        "PostgreSQL section: SQLite, one node, end-to-end (tasks/s)",
        "sqlite1_e2e_tasks_per_s",
        "",
        None,
    ),
    ("PostgreSQL, one node, end-to-end (tasks/s)", "pg1_e2e_tasks_per_s", "", None),
    ("PostgreSQL, two nodes, end-to-end (tasks/s)", "pg2_e2e_tasks_per_s", "", None),
    ("PostgreSQL section: SQLite, dispatch p50 (ms)", "sqlite1_dispatch_p50_ms", "", None),
    ("PostgreSQL section: SQLite, dispatch p99 (ms)", "sqlite1_dispatch_p99_ms", "", None),
    ("PostgreSQL, one node, dispatch p50 (ms)", "pg1_dispatch_p50_ms", "", None),
    ("PostgreSQL, one node, dispatch p99 (ms)", "pg1_dispatch_p99_ms", "", None),
    ("PostgreSQL, two nodes, dispatch p50 (ms)", "pg2_dispatch_p50_ms", "", None),
    ("PostgreSQL, two nodes, dispatch p99 (ms)", "pg2_dispatch_p99_ms", "", None),
    ("Retention: submit p50, no pruning (ms)", "retention_idle_p50_ms", "", None),
    ("Retention: submit p99, no pruning (ms)", "retention_idle_p99_ms", "", None),
    ("Retention: submit max, no pruning (ms)", "retention_idle_max_ms", "", None),
    ("Retention: submit p50 while pruning (ms)", "retention_pruning_p50_ms", "", None),
    ("Retention: submit p99 while pruning (ms)", "retention_pruning_p99_ms", "", None),
    ("Retention: submit max while pruning (ms)", "retention_pruning_max_ms", "", None),
    ("Retention: pruning the seeded tasks (s)", "retention_prune_s", "", None),
    ("Retention: tasks pruned per second", "retention_prune_rate", "", None),
]


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def rows(figures: dict[str, Any]) -> list[list[str]]:
    out = []
    for label, key, target, check in ROWS:
        fig = figures.get(key)
        if fig is None:
            continue
        median = fig["median"]
        spread = f"{_num(fig['min'])}-{_num(fig['max'])}" if len(fig["runs"]) > 1 else ""
        met = "" if check is None or median is None else ("yes" if check(median) else "NO")
        out.append([label, _num(median), spread, target, met])
    return out


def render(figures: dict[str, Any]) -> str:
    """A Markdown table (readable in a terminal too)."""
    header = ["Figure", "Median", "Min-max", "Target", "Met"]
    body = rows(figures)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in body)])
