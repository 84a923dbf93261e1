"""The one authorization table: every served route, the least role it needs, and its scope.

Keys are (method, route path) exactly as the app's routes spell them (a Mount by its prefix).
The guard (tasky.auth.guard) refuses a served route that is missing here, so a new route stays
closed until someone decides who may call it; tests check that every served route is listed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tasky.auth.principal import Role


class Scope(enum.Enum):
    """What an operator limited to some workers may touch through the route."""

    NONE = "none"  # not about one worker (reads, admin routes)
    WORKER = "worker"  # the path's {name} is the worker
    TASK = "task"  # the path's {id} is a task: its worker is looked up
    ALL_WORKERS = "all"  # a chain may run any worker: only an operator of every worker


@dataclass(frozen=True, slots=True)
class Rule:
    # None: public (the web page's own files; they hold no data).
    role: Role | None
    scope: Scope = Scope.NONE
    # How the audit log names the route's target: the label of its path parameter.
    target: str = ""


PUBLIC = Rule(None)
VIEW = Rule(Role.viewer)
_V1 = "/tasky/v1"

TABLE: dict[tuple[str, str], Rule] = {
    # -- the web page: static files and the state-machine metadata, no data --------------------
    ("GET", "/"): PUBLIC,
    ("GET", "/tasky/ui"): PUBLIC,
    ("GET", "/tasky/ui/meta.json"): PUBLIC,
    ("GET", "/tasky/ui/static"): PUBLIC,
    # -- reads: viewer ---------------------------------------------------------------------------
    ("GET", _V1 + "/tasks/{id}/status"): VIEW,
    ("GET", _V1 + "/tasks/{id}/result"): VIEW,
    ("GET", _V1 + "/tasks/{id}"): VIEW,
    ("GET", _V1 + "/tasks"): VIEW,
    ("GET", _V1 + "/tasks/{id}/logs"): VIEW,
    ("GET", _V1 + "/tasks/{id}/statistics"): VIEW,
    ("GET", _V1 + "/workers"): VIEW,
    ("GET", _V1 + "/nodes"): VIEW,
    ("GET", _V1 + "/workers/{name}/info"): VIEW,
    ("GET", _V1 + "/workers/{name}"): VIEW,
    ("GET", _V1): VIEW,
    ("GET", _V1 + "/workers/{name}/statistics"): VIEW,
    ("GET", _V1 + "/workers/{name}/throughput"): VIEW,
    ("GET", _V1 + "/{name}/statistics"): VIEW,
    ("GET", _V1 + "/metrics"): VIEW,
    ("GET", _V1 + "/metrics/prometheus"): VIEW,
    ("GET", "/metrics"): VIEW,
    ("GET", _V1 + "/events"): VIEW,
    ("GET", _V1 + "/openapi.json"): VIEW,
    ("GET", _V1 + "/docs"): VIEW,
    ("GET", _V1 + "/docs/static/init.js"): VIEW,
    ("GET", _V1 + "/docs/static"): VIEW,
    ("GET", _V1 + "/chains"): VIEW,
    ("GET", _V1 + "/chains/{id}"): VIEW,
    ("GET", _V1 + "/chains/{id}/steps"): VIEW,
    ("GET", _V1 + "/chain-definitions"): VIEW,
    ("GET", _V1 + "/chain-definitions/{name}"): VIEW,
    ("GET", _V1 + "/schedules"): VIEW,
    ("GET", _V1 + "/schedules/{name}"): VIEW,
    # -- submits and actions: operator -----------------------------------------------------------
    ("POST", _V1 + "/workers/{name}"): Rule(Role.operator, Scope.WORKER, "worker"),
    ("POST", _V1 + "/workers/{name}/batch"): Rule(Role.operator, Scope.WORKER, "worker"),
    ("POST", _V1 + "/tasks/{id}/cancel"): Rule(Role.operator, Scope.TASK, "task"),
    ("POST", _V1 + "/tasks/{id}/actions"): Rule(Role.operator, Scope.TASK, "task"),
    ("PUT", _V1 + "/tasks/{id}"): Rule(Role.operator, Scope.TASK, "task"),
    ("POST", _V1 + "/chains"): Rule(Role.operator, Scope.ALL_WORKERS, "chain"),
    ("POST", _V1 + "/chains/{id}/actions"): Rule(Role.operator, Scope.ALL_WORKERS, "chain"),
    ("POST", _V1 + "/chain-definitions/{name}/start"): Rule(
        Role.operator, Scope.ALL_WORKERS, "definition"
    ),
    # A schedule may run any worker or chain, like a chain: only an operator of every worker.
    ("POST", _V1 + "/schedules"): Rule(Role.operator, Scope.ALL_WORKERS, "schedule"),
    ("DELETE", _V1 + "/schedules/{name}"): Rule(Role.operator, Scope.ALL_WORKERS, "schedule"),
    ("POST", _V1 + "/schedules/{name}/pause"): Rule(Role.operator, Scope.ALL_WORKERS, "schedule"),
    ("POST", _V1 + "/schedules/{name}/resume"): Rule(Role.operator, Scope.ALL_WORKERS, "schedule"),
    ("POST", _V1 + "/schedules/{name}/run"): Rule(Role.operator, Scope.ALL_WORKERS, "schedule"),
    # -- what changes the server itself: admin ---------------------------------------------------
    ("PUT", _V1 + "/chain-definitions/{name}"): Rule(Role.admin, target="definition"),
    ("DELETE", _V1 + "/chain-definitions/{name}"): Rule(Role.admin, target="definition"),
    ("GET", _V1 + "/tokens"): Rule(Role.admin),
    ("POST", _V1 + "/tokens"): Rule(Role.admin, target="token"),
    ("DELETE", _V1 + "/tokens/{name}"): Rule(Role.admin, target="token"),
    ("GET", _V1 + "/audit"): Rule(Role.admin),
    ("POST", _V1 + "/prune"): Rule(Role.admin),
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (HEAD is a GET without the body); None when the table lacks it."""
    return TABLE.get(("GET" if method == "HEAD" else method, path))
