"""The audit log (who changed what, from where, with what answer), its retention, and the
per-token rate limit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tasky.auth.guard import _target
from tasky.auth.policy import rule_for
from tasky.server import build_app
from tasky.settings import Settings
from tasky.store import AuditRecord, SqliteStore
from tasky.workers.registry import WorkerRegistry
from tests.conftest import ServerProcess
from tests.security_helpers import (
    BOOTSTRAP,
    audit_entries,
    bearer,
    create_token,
    start_with_token_file,
)
from tests.test_cli_client import tasky


def test_state_changing_calls_are_audited(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    api = server.api
    operator = create_token(api, BOOTSTRAP, "deployer", "operator")
    viewer = create_token(api, BOOTSTRAP, "watcher", "viewer")
    submitted = httpx.post(f"{api}/workers/Hold", json={"seconds": 30}, headers=bearer(operator))
    task_id = submitted.json()["TaskId"]
    canceled = httpx.post(f"{api}/tasks/{task_id}/cancel", headers=bearer(operator))
    assert canceled.status_code in (200, 202)
    denied = httpx.post(f"{api}/tasks/{task_id}/cancel", headers=bearer(viewer))
    assert denied.status_code == 403
    httpx.get(f"{api}/tasks/{task_id}", headers=bearer(operator))  # reads are not audited
    entries = audit_entries(api, BOOTSTRAP, 5)
    seen = [(e["Token"], e["Method"], e["Route"], e["Target"], e["Status"]) for e in entries]
    cancel = f"task={task_id}"
    assert seen == [
        ("bootstrap", "POST", "/tasky/v1/tokens", "token=deployer", 201),
        ("bootstrap", "POST", "/tasky/v1/tokens", "token=watcher", 201),
        ("deployer", "POST", "/tasky/v1/workers/{name}", f"worker=Hold task={task_id}", 201),
        ("deployer", "POST", "/tasky/v1/tasks/{id}/cancel", cancel, canceled.status_code),
        ("watcher", "POST", "/tasky/v1/tasks/{id}/cancel", cancel, 403),
    ]
    assert {e["Client"] for e in entries} == {"127.0.0.1"}
    assert all(abs(e["Time"] - time.time()) < 60 for e in entries)
    # Only admins read it.
    assert httpx.get(f"{api}/audit", headers=bearer(viewer)).status_code == 403
    assert httpx.get(f"{api}/audit", headers=bearer(operator)).status_code == 403
    # Pages, newest first on request.
    page = httpx.get(f"{api}/audit?limit=2&order=desc", headers=bearer(BOOTSTRAP)).json()
    assert [e["Token"] for e in page["Entries"]] == ["watcher", "deployer"]
    rest = httpx.get(
        f"{api}/audit?limit=10&order=desc&cursor={page['NextCursor']}", headers=bearer(BOOTSTRAP)
    ).json()
    assert len(rest["Entries"]) == 3 and rest["NextCursor"] is None
    shown = tasky("audit", "--url", server.url, "--token", BOOTSTRAP)
    assert shown.exit_code == 0 and "deployer" in shown.stdout and task_id in shown.stdout


def test_retention_prunes_old_entries_in_the_background(
    settings: Settings, registry: WorkerRegistry
) -> None:
    now = time.time()

    def entry(age_days: float, target: str) -> AuditRecord:
        return AuditRecord(now - age_days * 86400, "ci", "127.0.0.1", "POST", "/r", target, 201)

    async def seed() -> None:
        store = SqliteStore(settings.database_path)
        await store.open()
        # More than one pruning batch of old entries, and two recent ones.
        await store.record_audit([entry(100, f"old{i}") for i in range(1200)])
        await store.record_audit([entry(1, "recent"), entry(0, "now")])
        await store.close()

    async def kept() -> list[str]:
        settings.audit_retention_days = 30
        app = build_app(settings, registry=registry)
        async with app.starlette.router.lifespan_context(app.starlette):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                for _ in range(200):
                    body = (await client.get("/tasky/v1/audit?limit=1000")).json()
                    if len(body["Entries"]) == 2:
                        break
                    await asyncio.sleep(0.02)
                return [e["Target"] for e in body["Entries"]]

    asyncio.run(seed())
    assert asyncio.run(kept()) == ["recent", "now"]


def test_rate_limit_answers_429_with_retry_after(server_factory: Any, tmp_path: Path) -> None:
    server: ServerProcess = start_with_token_file(server_factory, tmp_path, "--rate-limit", "2")
    other = create_token(server.api, BOOTSTRAP, "other", "viewer")
    answers = [httpx.get(f"{server.api}/workers", headers=bearer(BOOTSTRAP)) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert "too many requests" in limited[0].json()["Error"]
    # Per token: another token still has its own allowance.
    assert httpx.get(f"{server.api}/workers", headers=bearer(other)).status_code == 200


def test_audit_targets_are_bounded_and_free_of_control_characters() -> None:
    rule = rule_for("POST", "/tasky/v1/workers/{name}")
    assert rule is not None
    scope: dict[str, Any] = {"type": "http"}
    plain = _target(scope, rule, {"name": "Noop"}, "/tasky/v1/tasks/" + "a" * 32)
    assert plain == "worker=Noop task=" + "a" * 32
    hostile = _target(scope, rule, {"name": "x\x1b[2J\ny\u202e" + "z" * 400}, "")
    assert hostile.startswith("worker=x?[2J?y?z")
    assert hostile.isprintable() and len(hostile) == 300
