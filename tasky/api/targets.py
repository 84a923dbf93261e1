"""Where a new task may run: ``?node=NAME`` or ``?label=L`` (with ``?wait_for_node=true`` to
queue it although no live node matches yet), and ``?nodes=all`` (one task per live node).

A target is stored on the task as ``node:NAME`` or ``label:L`` and shown as its ``Target``; a
node's claims take only untargeted tasks and those aimed at its name or one of its labels.
"""

from __future__ import annotations

from starlette.requests import Request

from tasky.echo import shown
from tasky.engine import Engine
from tasky.http.responses import ApiError
from tasky.settings import node_name_error

QUERY = (
    ("node", "string", "Run the task on the node of this name only (see GET /tasky/v1/nodes)."),
    ("label", "string", "Run the task on a node with this label only (tasky serve --label)."),
    (
        "wait_for_node",
        "string",
        "true: queue a task whose node or label no live node matches yet (it waits for one); "
        "false (default): answer 422.",
    ),
)
NODES_ALL = (
    "nodes",
    "string",
    "all: one task per live node that serves the worker, answered as "
    '{"Tasks": {"<node>": "<TaskId>", ...}}; not with node, label or an Idempotency-Key.',
)


def _name(request: Request, param: str) -> str | None:
    raw = request.query_params.get(param)
    if raw is None:
        return None
    error = node_name_error(raw)
    if error is not None:
        raise ApiError(400, f"query parameter {param} {error}, not {shown(raw)}")
    return raw


def wait_for_node(request: Request) -> bool:
    raw = request.query_params.get("wait_for_node")
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise ApiError(400, f"query parameter wait_for_node must be true or false, not {shown(raw)}")


def target_param(request: Request) -> str | None:
    """The target the query names ("node:NAME", "label:L"), or None; 400 for a bad one."""
    node = _name(request, "node")
    label = _name(request, "label")
    if node is not None and label is not None:
        raise ApiError(400, "give node or label, not both")
    if node is not None:
        return f"node:{node}"
    if label is not None:
        return f"label:{label}"
    if "wait_for_node" in request.query_params:
        wait_for_node(request)  # checked even when it has nothing to do
    return None


def fan_out(request: Request) -> bool:
    """Whether the query asks for ``nodes=all``; 400 for another value or a clash."""
    raw = request.query_params.get("nodes")
    if raw is None:
        return False
    if raw != "all":
        raise ApiError(400, f"query parameter nodes must be all, not {shown(raw)}")
    clashing = [p for p in ("node", "label", "wait_for_node") if p in request.query_params]
    if clashing:
        raise ApiError(400, f"nodes=all cannot be combined with {', '.join(clashing)}")
    return True


async def check_live(request: Request, engine: Engine, worker: str, target: str) -> None:
    """422 (NoNodeForTarget) when no live node serving ``worker`` matches ``target``, unless the
    query says ``wait_for_node=true``."""
    if not wait_for_node(request):
        await engine.check_target(worker, target)


async def checked_target(request: Request, engine: Engine, worker: str) -> str | None:
    """The query's target, checked as :func:`check_live` does."""
    target = target_param(request)
    if target is not None:
        await check_live(request, engine, worker, target)
    return target
