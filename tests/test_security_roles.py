"""Roles: every operation of the served OpenAPI document, called by every kind of caller.

The expectations below are written here, apart from tasky.auth.policy, so that a wrong entry in
the table (or a route missing from it) makes the walk fail.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from tasky.auth import policy
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.conftest import ServerProcess
from tests.security_helpers import BOOTSTRAP, bearer, create_token, start_with_token_file

V1 = "/tasky/v1"
# (method, path) -> who may call it: a role, and for operators what limits them.
#   "worker": the path's worker must be one of theirs; "task": the task's worker must be;
#   "all": only an operator of every worker (a chain may run any worker).
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", V1 + "/tasks/{id}/status"): ("viewer", ""),
    ("GET", V1 + "/tasks/{id}/result"): ("viewer", ""),
    ("GET", V1 + "/tasks/{id}"): ("viewer", ""),
    ("GET", V1 + "/tasks"): ("viewer", ""),
    ("GET", V1 + "/tasks/{id}/logs"): ("viewer", ""),
    ("GET", V1 + "/tasks/{id}/statistics"): ("viewer", ""),
    ("GET", V1 + "/workers"): ("viewer", ""),
    ("GET", V1 + "/nodes"): ("viewer", ""),
    ("GET", V1 + "/workers/{name}/info"): ("viewer", ""),
    ("GET", V1 + "/workers/{name}"): ("viewer", ""),
    ("GET", V1): ("viewer", ""),
    ("GET", V1 + "/workers/{name}/statistics"): ("viewer", ""),
    ("GET", V1 + "/workers/{name}/throughput"): ("viewer", ""),
    ("GET", V1 + "/{name}/statistics"): ("viewer", ""),
    ("GET", V1 + "/metrics"): ("viewer", ""),
    ("GET", V1 + "/metrics/prometheus"): ("viewer", ""),
    ("GET", "/metrics"): ("viewer", ""),
    ("GET", V1 + "/events"): ("viewer", ""),
    ("GET", V1 + "/chains"): ("viewer", ""),
    ("GET", V1 + "/chains/{id}"): ("viewer", ""),
    ("GET", V1 + "/chains/{id}/steps"): ("viewer", ""),
    ("GET", V1 + "/chain-definitions"): ("viewer", ""),
    ("GET", V1 + "/chain-definitions/{name}"): ("viewer", ""),
    ("GET", V1 + "/schedules"): ("viewer", ""),
    ("GET", V1 + "/schedules/{name}"): ("viewer", ""),
    ("POST", V1 + "/schedules"): ("operator", "all"),
    ("DELETE", V1 + "/schedules/{name}"): ("operator", "all"),
    ("POST", V1 + "/schedules/{name}/pause"): ("operator", "all"),
    ("POST", V1 + "/schedules/{name}/resume"): ("operator", "all"),
    ("POST", V1 + "/schedules/{name}/run"): ("operator", "all"),
    ("POST", V1 + "/workers/{name}"): ("operator", "worker"),
    ("POST", V1 + "/workers/{name}/batch"): ("operator", "worker"),
    ("POST", V1 + "/tasks/{id}/cancel"): ("operator", "task"),
    ("POST", V1 + "/tasks/{id}/actions"): ("operator", "task"),
    ("PUT", V1 + "/tasks/{id}"): ("operator", "task"),
    ("POST", V1 + "/chains"): ("operator", "all"),
    ("POST", V1 + "/chains/{id}/actions"): ("operator", "all"),
    ("POST", V1 + "/chain-definitions/{name}/start"): ("operator", "all"),
    ("PUT", V1 + "/chain-definitions/{name}"): ("admin", ""),
    ("DELETE", V1 + "/chain-definitions/{name}"): ("admin", ""),
    ("GET", V1 + "/tokens"): ("admin", ""),
    ("POST", V1 + "/tokens"): ("admin", ""),
    ("DELETE", V1 + "/tokens/{name}"): ("admin", ""),
    ("GET", V1 + "/audit"): ("admin", ""),
    ("POST", V1 + "/prune"): ("admin", ""),
}
RANK = {"viewer": 1, "operator": 2, "admin": 3}
CHAIN = {"name": "walk", "steps": [{"name": "a", "worker": "Echo", "config": {"value": 1}}]}
_names = itertools.count()


def schedule_body(name: str) -> dict[str, Any]:
    # Paused, hourly: it runs only when a call asks for a run.
    return {
        "name": name,
        "worker": "Echo",
        "config": {"value": 1},
        "interval": 3600,
        "paused": True,
    }


class Walk:
    """Targets on a real server, and how to call one operation on them."""

    def __init__(self, server: ServerProcess) -> None:
        self.api = server.api
        self.base = server.url
        admin = bearer(BOOTSTRAP)
        self.admin = admin
        self.tasks = {w: self._submit(w, admin) for w in ("Echo", "Hold")}
        chain = httpx.post(f"{self.api}/chains", json=CHAIN, headers=admin)
        assert chain.status_code == 201, chain.text
        self.chain = chain.json()["ChainId"]

    def _submit(self, worker: str, headers: dict[str, str]) -> str:
        body = {"value": 1} if worker == "Echo" else {"seconds": 0}
        answer = httpx.post(f"{self.api}/workers/{worker}", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
        task_id: str = answer.json()["TaskId"]
        return task_id

    def _fresh(self, kind: str) -> str:
        """A definition or token that this one call may delete."""
        name = f"{kind}-{next(_names)}"
        if kind == "def":
            put = httpx.put(f"{self.api}/chain-definitions/{name}", json=CHAIN, headers=self.admin)
            assert put.status_code == 201, put.text
        elif kind == "schedule":
            made = httpx.post(f"{self.api}/schedules", json=schedule_body(name), headers=self.admin)
            assert made.status_code == 201, made.text
        else:
            create_token(self.api, BOOTSTRAP, name, "viewer")
        return name

    def url(self, method: str, path: str, worker: str) -> str:
        if "/tokens/{name}" in path:
            value = self._fresh("token")
        elif "/chain-definitions/{name}" in path:
            value = self._fresh("def")
        elif "/schedules/{name}" in path:
            value = self._fresh("schedule")
        elif "/chains/{id}" in path:
            value = self.chain
        elif "/tasks/{id}" in path:
            value = self.tasks[worker]
        else:
            value = worker
        return self.base + path.replace("{id}", value).replace("{name}", value)

    def body(self, method: str, path: str, worker: str) -> Any:
        if path.endswith("/actions"):
            return {"action": "cancel"}
        if path == V1 + "/workers/{name}":
            return {"value": 1} if worker == "Echo" else {"seconds": 0}
        if path == V1 + "/workers/{name}/batch":
            return [{"value": 1} if worker == "Echo" else {"seconds": 0}]
        if path == V1 + "/schedules" and method == "POST":
            return schedule_body(f"made-{next(_names)}")
        if path == V1 + "/tokens":
            return {"name": f"made-{next(_names)}", "role": "viewer"}
        if path == V1 + "/chains" or path.startswith(V1 + "/chain-definitions/"):
            return CHAIN if method == "PUT" or path == V1 + "/chains" else {}
        return {} if method in ("POST", "PUT") else None

    def call(self, method: str, path: str, token: str | None, worker: str) -> int:
        headers = bearer(token) if token else {}
        url = self.url(method, path, worker)
        body = self.body(method, path, worker)
        if path.endswith("/events"):  # a stream: its status is all we need
            with httpx.stream("GET", url, headers=headers, timeout=5) as answer:
                return answer.status_code
        return httpx.request(method, url, json=body, headers=headers, timeout=10).status_code


def expected(who: str, limited: bool, own: bool, needs: tuple[str, str]) -> int | None:
    """401 / 403, or None when the call must get through the guard."""
    role, scope = needs
    if who == "none":
        return 401
    if RANK[who] < RANK[role]:
        return 403
    if limited and (scope == "all" or (scope in ("worker", "task") and not own)):
        return 403
    return None


def test_every_openapi_operation_for_every_role(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    api = server.api
    tokens = {
        "viewer": create_token(api, BOOTSTRAP, "viewer", "viewer"),
        "echo-operator": create_token(api, BOOTSTRAP, "echo-op", "operator", workers=["echo"]),
        "operator": create_token(api, BOOTSTRAP, "operator", "operator"),
        "admin": create_token(api, BOOTSTRAP, "admin", "admin"),
    }
    walk = Walk(server)
    document = httpx.get(f"{api}/openapi.json", headers=bearer(BOOTSTRAP)).json()
    operations = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
    assert sorted(operations) == sorted(EXPECTED), "an operation without an expectation here"
    # (caller, its token, limited to Echo?, targets of its own worker?)
    callers: list[tuple[str, str | None, bool, bool]] = [
        ("none", None, False, True),
        ("viewer", tokens["viewer"], False, True),
        ("operator", tokens["echo-operator"], True, True),
        ("operator", tokens["echo-operator"], True, False),
        ("operator", tokens["operator"], False, False),
        ("admin", tokens["admin"], False, False),
    ]
    wrong = []
    for (method, path), (who, token, limited, own) in itertools.product(operations, callers):
        status = walk.call(method, path, token, "Echo" if own else "Hold")
        want = expected(who, limited, own, EXPECTED[(method, path)])
        ok = status == want if want is not None else status not in (401, 403) and status < 500
        if not ok:
            label = f"{who}{' (Echo only)' if limited else ''} on {'Echo' if own else 'Hold'}"
            wrong.append(f"{method} {path} as {label}: {status}, expected {want or 'allowed'}")
    assert not wrong, "\n".join(wrong)


def _served(app: Any) -> set[tuple[str, str]]:
    served: set[tuple[str, str]] = set()
    for route in app.starlette.routes:
        if isinstance(route, Route):
            served |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, Mount):
            served.add(("GET", route.path))
    return served


def test_every_served_route_is_in_the_table(settings: Settings, registry: WorkerRegistry) -> None:
    served = _served(build_app(settings, registry=registry))
    assert served - set(policy.TABLE) == set(), "served routes missing from the table"
    assert set(policy.TABLE) - served == set(), "table entries for routes that are not served"


async def test_a_route_missing_from_the_table_is_refused(
    settings: Settings, registry: WorkerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail closed: even the all-powerful anonymous caller of a token-less server is refused.
    monkeypatch.delitem(policy.TABLE, ("GET", V1 + "/workers"))
    app = build_app(settings, registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            refused = await client.get(f"{V1}/workers")
            assert refused.status_code == 403 and "not open" in refused.json()["Error"]
            assert (await client.get(f"{V1}/workers/Echo/info")).status_code == 200


async def test_the_web_page_stays_public_and_unknown_paths_need_a_token(
    settings: Settings, registry: WorkerRegistry
) -> None:
    settings.token = BOOTSTRAP
    app = build_app(settings, registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.get("/tasky/ui/meta.json")).status_code == 200
            assert (await client.get(f"{V1}/nothing-here")).status_code == 401
            found = await client.get(f"{V1}/nothing-here", headers=bearer(BOOTSTRAP))
            assert found.status_code == 404
            wrong_method = await client.delete(f"{V1}/workers", headers=bearer(BOOTSTRAP))
            assert wrong_method.status_code == 405


async def test_the_openapi_document_names_each_operations_role(client: httpx.AsyncClient) -> None:
    document = (await client.get(f"{V1}/openapi.json")).json()
    assert document["security"] == [{"bearer": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            role = EXPECTED[(method.upper(), path)][0]
            assert operation["x-tasky-role"] == role, (method, path)
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
