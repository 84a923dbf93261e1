"""GET /metrics: scraped from real servers and read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tasky.server import build_app
from tasky.settings import Settings
from tests.conftest import ServerProcess, registry_with
from tests.security_helpers import BOOTSTRAP, bearer, create_token, start_with_token_file

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, labels) -> value) of an exposition."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[dict[str, str], Samples]:
    answer = httpx.get(url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def submit(api: str, worker: str, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{api}/workers/{worker}", json=body)
    assert answer.status_code == 201, answer.text
    task_id: str = answer.json()["TaskId"]
    return task_id


def status_of(api: str, task_id: str) -> str:
    status: str = httpx.get(f"{api}/tasks/{task_id}/status").json()["Status"]
    return status


def settle(api: str, want: dict[str, str]) -> None:
    wait_for(lambda: all(status_of(api, t) == s for t, s in want.items()), f"statuses {want}")


def test_a_scrape_counts_tasks_queues_and_timings(server: ServerProcess) -> None:
    api = server.api
    short = submit(api, "Hold", {"seconds": 0.3})
    settle(api, {short: "Completed"})
    want = {submit(api, "Echo", {"value": n}): "Completed" for n in range(3)}
    want |= {submit(api, "Flaky", {}): "Failed" for _ in range(2)}
    busy = submit(api, "Hold", {"seconds": 30})
    settle(api, {**want, busy: "Running"})
    waiting = [submit(api, "Hold", {"seconds": 30}) for _ in range(2)]
    settle(api, dict.fromkeys(waiting, "Queued"))

    types, s = scrape(server.url + "/metrics")
    # Counts by status, from the store.
    assert value(s, "tasky_tasks", worker="Echo", status="Completed") == 3
    assert value(s, "tasky_tasks", worker="Flaky", status="Failed") == 2
    assert value(s, "tasky_tasks", worker="Hold", status="Completed") == 1
    assert value(s, "tasky_tasks", worker="Hold", status="Running") == 1
    assert value(s, "tasky_tasks", worker="Hold", status="Queued") == 2
    assert value(s, "tasky_tasks", worker="Echo", status="Paused") == 0
    # Queues and slots.
    assert value(s, "tasky_queue_depth", worker="Hold") == 2
    assert value(s, "tasky_queue_depth", worker="Echo") == 0
    assert 0 < value(s, "tasky_queue_oldest_age_seconds", worker="Hold") < 60
    assert value(s, "tasky_queue_oldest_age_seconds", worker="Echo") == 0
    assert value(s, "tasky_running_tasks", worker="Hold") == 1
    assert value(s, "tasky_max_tasks", worker="Hold") == 1
    assert value(s, "tasky_running_tasks", worker="Echo") == 0
    assert value(s, "tasky_max_tasks", worker="Echo") == 50
    # Live counters.
    assert value(s, "tasky_tasks_submitted_total", worker="Hold") == 4
    assert value(s, "tasky_tasks_submitted_total", worker="Echo") == 3
    assert value(s, "tasky_tasks_finished_total", worker="Echo", outcome="Completed") == 3
    assert value(s, "tasky_tasks_finished_total", worker="Flaky", outcome="Failed") == 2
    assert value(s, "tasky_tasks_finished_total", worker="Hold", outcome="Completed") == 1
    assert value(s, "tasky_tasks_finished_total", worker="Hold", outcome="Failed") == 0
    # Run time: the 0.3 s hold lands between the 0.25 and 0.5 bounds.
    run = "tasky_task_run_seconds"
    assert value(s, run + "_bucket", worker="Hold", le="0.25") == 0
    assert value(s, run + "_bucket", worker="Hold", le="0.5") == 1
    assert value(s, run + "_count", worker="Hold") == 1
    assert 0.29 < value(s, run + "_sum", worker="Hold") < 1.0
    assert value(s, run + "_bucket", worker="Echo", le="+Inf") == 3
    assert value(s, run + "_count", worker="Flaky") == 2
    # Queue wait: observed for each started task (two Hold tasks started; the queued have not).
    wait = "tasky_task_queue_wait_seconds"
    assert value(s, wait + "_count", worker="Hold") == 2
    assert value(s, wait + "_count", worker="Echo") == 3
    assert value(s, wait + "_bucket", worker="Echo", le="+Inf") == 3
    # Store commits: every acknowledged submit went through one.
    assert value(s, "tasky_store_commit_seconds_count") >= 1
    assert value(s, "tasky_store_commit_group_size_sum") >= 9
    assert value(s, "tasky_event_stream_clients") == 0
    check_names(types)


def check_names(types: dict[str, str]) -> None:
    """Prometheus conventions: a tasky_ prefix, counters in _total, durations in _seconds."""
    assert types["tasky_tasks_submitted"] == "counter"
    assert types["tasky_task_run_seconds"] == "histogram"
    for name, kind in types.items():
        assert name.startswith("tasky_"), name
        assert not name.endswith("_total"), f"{name}: the parser strips _total from counters"
        if "second" in name:
            assert name.endswith("_seconds"), name
        if kind == "counter":
            assert not name.endswith("_seconds"), name


def test_the_alias_and_event_stream_clients(server: ServerProcess) -> None:
    _, top = scrape(server.url + "/metrics")
    _, alias = scrape(server.api + "/metrics/prometheus")
    assert {k for k in top if "commit" not in k[0]} == {k for k in alias if "commit" not in k[0]}
    with httpx.stream("GET", server.api + "/events", timeout=10) as stream:
        assert stream.status_code == 200
        _, during = scrape(server.url + "/metrics")
        assert value(during, "tasky_event_stream_clients") == 1
    wait_for(
        lambda: value(scrape(server.url + "/metrics")[1], "tasky_event_stream_clients") == 0,
        "the stream to close",
    )
    unknown = httpx.get(server.url + "/metrics?name=tasky_tasks")
    assert unknown.status_code == 400 and "unknown query parameter" in unknown.json()["Error"]


def test_metrics_need_the_viewer_role(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    viewer = create_token(server.api, BOOTSTRAP, "prom-viewer", "viewer")
    operator = create_token(server.api, BOOTSTRAP, "prom-operator", "operator")
    for url in (server.url + "/metrics", server.api + "/metrics/prometheus"):
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers=bearer("not-a-token-" + "x" * 40)).status_code == 401
        for token in (viewer, operator, BOOTSTRAP):
            _, samples = scrape(url, bearer(token))
            assert value(samples, "tasky_max_tasks", worker="Hold") == 1


async def test_two_apps_in_one_process_do_not_share_metrics(tmp_path: Path) -> None:
    apps = [
        build_app(
            Settings(data_dir=tmp_path / name, roots=[tmp_path]),
            registry=registry_with("tests.workers_for_tests"),
        )
        for name in ("a", "b")
    ]
    assert apps[0].state.prometheus.registry is not apps[1].state.prometheus.registry
    texts = []
    for app, submits in zip(apps, (2, 0), strict=True):
        async with app.starlette.router.lifespan_context(app.starlette):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                for n in range(submits):
                    answer = await c.post("/tasky/v1/workers/Echo", json={"value": n})
                    assert answer.status_code == 201
                await asyncio.sleep(0)
                texts.append((await c.get("/metrics")).text)
    first, second = (parse(t)[1] for t in texts)
    assert value(first, "tasky_tasks_submitted_total", worker="Echo") == 2
    assert value(second, "tasky_tasks_submitted_total", worker="Echo") == 0
    # Each store counts its own commits: the two submits are in the first app's alone.
    commits = [value(p, "tasky_store_commit_group_size_sum") for p in (first, second)]
    assert commits[0] >= commits[1] + 2
    # Nothing reached the library's process-wide default registry.
    assert not [m for m in REGISTRY.collect() if m.name.startswith("tasky_")]


DOCS = Path(__file__).resolve().parent.parent / "docs"


async def test_the_docs_and_the_dashboard_match_a_scrape(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    types, samples = parse(text)
    served = {name for name, _ in samples}
    # Every family (counters by their _total name) is documented on docs/metrics.md.
    documented = set(re.findall(r"`(tasky_[a-z_]+)`", (DOCS / "metrics.md").read_text()))
    exported = {n + "_total" if kind == "counter" else n for n, kind in types.items()}
    assert exported <= documented, exported - documented
    # Every series the dashboard queries is served, and it charts every family.
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queried = set(re.findall(r"tasky_[a-z_]+", " ".join(exprs)))
    assert queried <= served, queried - served
    charted = {re.sub(r"_(bucket|sum|count)$", "", n) for n in queried}
    assert exported <= charted, exported - charted
