"""Rows of the two SQL stores turned into records: the task, chain, step, node, schedule, token
and audit tables have the same columns in SQLite and PostgreSQL (JSON kept as text in both), so
one mapper serves both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tasky.states import STATUS_OF
from tasky.store.chain_records import ChainRecord, StepRecord
from tasky.store.records import AuditRecord, NodeRecord, ScheduleRecord, TaskRecord, TokenRecord


def json_value(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def json_text(value: Any) -> str:
    """A JSON value as stored in a text column: orjson writes "\\u0000" escaped, so the text
    holds no NUL (which PostgreSQL text refuses)."""
    return orjson.dumps(value).decode()


def as_is(text: str | None) -> str | None:
    """Free text as SQLite keeps it (PostgreSQL's store passes its ``clean`` instead)."""
    return text


# The columns row_to_task reads, in its order.
TASK_COLUMNS = (
    "seq, id, worker, status, config, created_at, queued_at, started_at, finished_at, attempt, "
    "retries, timeout, progress, progress_message, result, error, owner, lease_until, run_after, "
    "chain_id, logs_dropped, target, node, paused_seconds, paused_at"
)


def row_to_task(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(
        seq=row[0],
        id=row[1],
        worker=row[2],
        status=STATUS_OF[row[3]],
        config=orjson.loads(row[4]),  # NOT NULL
        created_at=row[5],
        queued_at=row[6],
        started_at=row[7],
        finished_at=row[8],
        attempt=row[9],
        retries=row[10],
        timeout=row[11],
        progress=row[12],
        progress_message=row[13],
        result=json_value(row[14]),
        error=row[15],
        owner=row[16],
        lease_until=row[17],
        run_after=row[18],
        chain_id=row[19],
        logs_dropped=row[20],
        target=row[21],
        node=row[22],
        paused_seconds=row[23],
        paused_at=row[24],
    )


CHAIN_COLUMNS = (
    "seq, id, name, definition, spec, parameters, status, created_at, finished_at, error, "
    "result, restarts"
)
# A page of the list: each chain without its definition, parameters and result (see
# ChainStore.list_chains): the list is what a page (and the benchmark) polls while chains run, and
# with their definitions decoded, a page of five 1,000-step chains cost the SQLite server about
# 6.5 ms of CPU (0.2 ms without), blocking the event loop that runs the chains' steps.
CHAIN_SUMMARY_COLUMNS = (
    "seq, id, name, definition, '{}', '{}', status, created_at, finished_at, error, NULL, restarts"
)
STEP_COLUMNS = "name, position, state, task_id, error, decided_at, rerun_attempt, history"


def chain_values(chain: ChainRecord, text: Callable[[str | None], str | None]) -> tuple[Any, ...]:
    """The chain's values for an insert: ``CHAIN_COLUMNS`` but seq, free text kept by ``text``."""
    return (
        chain.id,
        chain.name,
        chain.definition,
        json_text(chain.spec),
        json_text(chain.parameters),
        chain.status.value,
        chain.created_at,
        chain.finished_at,
        text(chain.error),
        None if chain.result is None else json_text(chain.result),
        chain.restarts,
    )


def step_values(step: StepRecord, text: Callable[[str | None], str | None]) -> tuple[Any, ...]:
    """The step's values for an insert: chain_id, then ``STEP_COLUMNS``."""
    return (
        step.chain_id,
        step.name,
        step.position,
        step.state,
        step.task_id,
        text(step.error),
        step.decided_at,
        step.rerun_attempt,
        json_text(step.history),
    )


def step_saved(step: StepRecord, text: Callable[[str | None], str | None]) -> tuple[Any, ...]:
    """The step's values for a save: state, task_id, error, decided_at, rerun_attempt, history,
    then the key (chain_id, name)."""
    return (
        step.state,
        step.task_id,
        text(step.error),
        step.decided_at,
        step.rerun_attempt,
        json_text(step.history),
        step.chain_id,
        step.name,
    )


def row_to_chain(row: Sequence[Any]) -> ChainRecord:
    return ChainRecord(
        seq=row[0],
        id=row[1],
        name=row[2],
        definition=row[3],
        spec=json_value(row[4]),
        parameters=json_value(row[5]),
        status=STATUS_OF[row[6]],
        created_at=row[7],
        finished_at=row[8],
        error=row[9],
        result=json_value(row[10]),
        restarts=row[11],
    )


def row_to_step(chain_id: str, row: Sequence[Any]) -> StepRecord:
    return StepRecord(
        chain_id=chain_id,
        name=row[0],
        position=row[1],
        state=row[2],
        task_id=row[3],
        error=row[4],
        decided_at=row[5],
        rerun_attempt=row[6],
        history=json_value(row[7]),
    )


NODE_COLUMNS = "name, labels, owner, workers, started_at, heartbeat_at, stopped_at, host, pid"


def node_values(node: NodeRecord) -> tuple[Any, ...]:
    """The node's values for a row, in ``NODE_COLUMNS`` order."""
    return (
        node.name,
        json_text(node.labels),
        node.owner,
        json_text(node.workers),
        node.started_at,
        node.heartbeat_at,
        node.stopped_at,
        node.host,
        node.pid,
    )


def row_to_node(row: Sequence[Any]) -> NodeRecord:
    """A node row; a tenth column, when selected, is its count of running tasks."""
    return NodeRecord(
        name=row[0],
        labels=json_value(row[1]),
        owner=row[2],
        workers=json_value(row[3]),
        started_at=row[4],
        heartbeat_at=row[5],
        stopped_at=row[6],
        host=row[7],
        pid=row[8],
        running=row[9] if len(row) > 9 else 0,
    )


def row_to_schedule(row: Sequence[Any]) -> ScheduleRecord:
    return ScheduleRecord(
        name=row[0],
        worker=row[1],
        chain=row[2],
        config=json_value(row[3]),
        cron=row[4],
        interval=row[5],
        timezone=row[6],
        catch_up=row[7],
        next_run=row[8],
        created_at=row[9],
        paused=bool(row[10]),  # an integer in SQLite
        source=row[11],
        last_run_at=row[12],
        last_run_id=row[13],
        last_error=row[14],
    )


def row_to_token(row: Sequence[Any]) -> TokenRecord:
    return TokenRecord(
        name=row[0],
        token_hash=row[1],
        role=row[2],
        workers=json_value(row[3]),
        created_at=row[4],
        expires_at=row[5],
        last_used_at=row[6],
    )


def row_to_audit(row: Sequence[Any]) -> AuditRecord:
    return AuditRecord(
        seq=row[0],
        at=row[1],
        token=row[2],
        client=row[3],
        method=row[4],
        route=row[5],
        target=row[6],
        status=row[7],
    )
