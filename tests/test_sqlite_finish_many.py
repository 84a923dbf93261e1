"""Finishes of one SQLite group commit run together (``sqlite_moves.finish_many``, chosen by
``sqlite._run_ops``): each keeps its own compare-and-set, and the database ends up exactly as
if they had run one after another."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import sqlite_moves as moves
from tasky.store.records import AttemptEnd, Claim, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore, _run_ops

OWNER = "node-a"
# Times with all 17 digits, as a clock gives them: the rows finish_many reads back (one JSON
# value for all of them) must carry the very doubles, or the run and wait times it records
# differ from the ones a finish on its own records.
CLAIMED_AT = 1200.1234567891234
QUEUED_AT = 1000.0000000000002
IDS = [new_id() for _ in range(7)]


async def _store(path: Path) -> SqliteStore:
    """Seven tasks of worker A claimed by OWNER at CLAIMED_AT; the last one then paused."""
    store = SqliteStore(path)
    await store.open()
    records = [
        TaskRecord(task_id, "A", Status.QUEUED, {}, QUEUED_AT + i, queued_at=QUEUED_AT + i)
        for i, task_id in enumerate(IDS)
    ]
    await store.submit_many(records)
    claimed = await store.claim("A", Claim(OWNER, 9e9, len(IDS)), CLAIMED_AT)
    assert sorted(r.id for r in claimed) == sorted(IDS)
    assert await store.pause(IDS[6], OWNER, CLAIMED_AT + 1.0000000000000002)
    return store


def _finishes() -> list[moves.Move]:
    # Times as a clock gives them (all 17 digits): they pass through JSON text on the way.
    done = Outcome(Status.COMPLETED, 1300.1234567891234, result={"n": 1.1}, progress_message="ok")
    failed = Outcome(Status.FAILED, 1301.0000000000002, error="boom", traceback="Traceback ...")
    canceled = Outcome(Status.CANCELED, 1302.3333333333333, error="canceled")
    return [
        moves.finish(IDS[0], OWNER, 1, done),
        moves.finish(IDS[1], OWNER, 1, failed),
        moves.finish(IDS[2], "node-b", 1, done),  # another owner: refused
        moves.finish(IDS[3], OWNER, 2, done),  # another attempt: refused
        moves.finish(IDS[0], OWNER, 1, failed),  # ended already in this commit: refused
        moves.finish(IDS[2], OWNER, 1, canceled),  # after its refused end: accepted
        moves.finish(IDS[4], OWNER, 1, Outcome(Status.COMPLETED, 1764519062.4567891)),
        moves.finish(IDS[6], OWNER, 1, done),  # paused: its run time stops at its pause
        moves.pause(IDS[5], OWNER, 1250.0),  # not a finish: the finishes after it see it
        moves.finish(IDS[5], OWNER, 1, failed),
        moves.finish(new_id(), OWNER, 1, done),  # no such task: refused
    ]


async def _each_on_its_own_file(
    tmp_path: Path, **runs: Callable[[sqlite3.Connection], list[Any]]
) -> dict[str, list[Any]]:
    """Each of ``runs`` in one write of a store of its own (``NAME.db``): what it returned."""
    results = {}
    for name, run in runs.items():
        store = await _store(tmp_path / f"{name}.db")
        try:
            results[name] = await store.write(run)
        finally:
            await store.close()
    return results


def _one_by_one(conn: sqlite3.Connection) -> list[Any]:
    return [finish(conn) for finish in _finishes()]


def _together(conn: sqlite3.Connection) -> list[Any]:
    return _run_ops(conn, list(_finishes()))


def _state(path: Path) -> list[list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in (
                "tasks",
                "task_attempts",
                "worker_timing",
                "run_time_hist",
                "finished_per_minute",
            )
        ]
    finally:
        conn.close()


async def test_finishes_run_together_as_one_after_another(tmp_path: Path) -> None:
    results = await _each_on_its_own_file(tmp_path, one=_one_by_one, together=_together)
    expected = [True, True, False, False, False, True, True, True, True, True, False]
    assert results["one"] == expected
    assert results["together"] == expected
    one, together = _state(tmp_path / "one.db"), _state(tmp_path / "together.db")
    assert together == one
    # Six attempts ended; the two with a traceback have a task_attempts row, the others are
    # read from their task's row.
    assert len(one[1]) == 2
    store = SqliteStore(tmp_path / "together.db")
    await store.open()
    try:
        ended = [a for i in IDS for a in await store.attempts(i)]
    finally:
        await store.close()
    assert sorted(a.status.value for a in ended) == sorted(
        ["Completed", "Failed", "Canceled", "Completed", "Completed", "Failed"]
    )
    finished_at = {
        row[0]: row[1]
        for row in sqlite3.connect(tmp_path / "together.db").execute(
            "SELECT id, finished_at FROM tasks"
        )
    }
    assert finished_at[IDS[0]] == 1300.1234567891234  # the very double, not a neighbour
    assert finished_at[IDS[4]] == 1764519062.4567891


async def test_finish_many_keeps_each_compare_and_set(tmp_path: Path) -> None:
    """Straight to finish_many (no run splitting): refused finishes leave their tasks alone."""
    store = await _store(tmp_path / "tasky.db")
    try:
        finishes = [
            f for i, f in enumerate(_finishes()) if i not in (4, 5) and isinstance(f, moves.Finish)
        ]  # of distinct tasks
        done = await store.write(lambda conn: moves.finish_many(conn, finishes))
        assert done == [True, True, False, False, True, True, True, False]
        statuses = {r.id: r.status for r in [await store.get(i) for i in IDS] if r is not None}
        assert statuses == {
            IDS[0]: Status.COMPLETED,
            IDS[1]: Status.FAILED,
            IDS[2]: Status.RUNNING,
            IDS[3]: Status.RUNNING,
            IDS[4]: Status.COMPLETED,
            IDS[5]: Status.FAILED,
            IDS[6]: Status.COMPLETED,
        }
    finally:
        await store.close()


async def test_finishes_in_one_group_commit_through_the_store(tmp_path: Path) -> None:
    """The store's own path: finishes made in one loop iteration share a group commit, and a
    task's second end in it is refused."""
    store = await _store(tmp_path / "tasky.db")
    try:
        done = Outcome(Status.COMPLETED, 1300.0)
        results = await asyncio.gather(
            store.finish(IDS[0], OWNER, 1, done),
            store.finish(IDS[1], OWNER, 1, done, lazy=True),
            store.finish(IDS[0], OWNER, 1, done),
            store.finish(IDS[2], "node-b", 1, done),
            store.finish(IDS[3], OWNER, 1, done),
        )
        assert results == [True, True, False, False, True]
        assert (await store.worker_stats("A")).finished == 3
        attempts = await store.attempts(IDS[0])
        assert [a.status for a in attempts] == [Status.COMPLETED]
    finally:
        await store.close()


async def test_an_sqlite_without_update_from_ends_tasks_one_at_a_time(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A library older than 3.33 has no UPDATE ... FROM: the run falls back to one finish at a
    time, with the same outcome."""
    from tasky.store import sqlite as sqlite_module

    def refuse(conn: sqlite3.Connection, run: list[moves.Finish]) -> list[bool]:
        raise AssertionError("finish_many used without UPDATE ... FROM")

    monkeypatch.setattr(sqlite_module, "BATCHED_FINISH", False)
    monkeypatch.setattr(moves, "finish_many", refuse)
    store = await _store(tmp_path / "old.db")
    try:
        values = await store.write(_together)
    finally:
        await store.close()
    assert values == [True, True, False, False, False, True, True, True, True, True, False]


def _group(*ops: moves.Move) -> moves.Finishes:
    finishes = [op for op in ops if isinstance(op, moves.Finish)]
    assert len(finishes) == len(ops)
    return moves.Finishes(finishes)


def _grouped(conn: sqlite3.Connection) -> list[Any]:
    """The same finishes, some gathered in Finishes (Store.finish_many), one group with a task
    that a group before it ended already."""
    f = _finishes()
    return _run_ops(
        conn,
        [_group(f[0], f[1], f[2]), f[3], _group(f[4], f[5], f[6], f[7]), f[8], _group(f[9], f[10])],
    )


async def test_groups_of_finishes_run_with_the_others_as_one_after_another(
    tmp_path: Path,
) -> None:
    results = await _each_on_its_own_file(tmp_path, one=_one_by_one, grouped=_grouped)
    assert results["grouped"] == [
        [True, True, False],
        False,
        [False, True, True, True],
        True,
        [True, False],
    ]
    assert _state(tmp_path / "grouped.db") == _state(tmp_path / "one.db")


async def test_finish_many_through_the_store_shares_the_group_commit(tmp_path: Path) -> None:
    store = await _store(tmp_path / "tasky.db")
    try:
        done = Outcome(Status.COMPLETED, 1300.0)
        commits = store.commit_stats().seconds.count
        many, alone = await asyncio.gather(
            store.finish_many(
                [
                    AttemptEnd(IDS[0], OWNER, 1, done),
                    AttemptEnd(IDS[1], "node-b", 1, done),
                    AttemptEnd(IDS[2], OWNER, 1, done),
                ]
            ),
            store.finish(IDS[0], OWNER, 1, done),  # after the group's: refused
        )
        assert (many, alone) == ([True, False, True], False)
        assert store.commit_stats().seconds.count == commits + 1
        # Run alone (the writer's replay after a failed write), a group answers the same way.
        again = Outcome(Status.FAILED, 1301.0)
        group = moves.Finishes([moves.finish(IDS[i], OWNER, 1, again) for i in (1, 3, 1)])
        assert await store.write(group) == [True, True, False]
    finally:
        await store.close()


def _ends_alike(with_paused: bool) -> list[moves.Move]:
    """Ends of claimed tasks that differ only in their time (no result, no error, no
    progress): how tasks returning nothing end. The paused task's end differs in its paused
    time, so with it the ends are not alike."""
    ids = [*IDS[:5], *([IDS[6]] if with_paused else [])]
    return [
        moves.finish(task_id, OWNER, 1, Outcome(Status.COMPLETED, 1300.1234567891234 + i))
        for i, task_id in enumerate(ids)
    ]


def _traced(ends: list[moves.Move], statements: list[str]) -> Callable[..., list[Any]]:
    def run(conn: sqlite3.Connection) -> list[Any]:
        conn.set_trace_callback(statements.append)
        try:
            return _run_ops(conn, ends)
        finally:
            conn.set_trace_callback(None)

    return run


async def test_ends_alike_bind_what_they_share_once(tmp_path: Path) -> None:
    """Ends that differ only in their time go in the statement that binds the rest once
    (_FINISH_ALIKE), and leave the database as ends one after another do; with one end that
    differs in more, all go in the statement that carries each row whole."""
    for with_paused in (False, True):
        statements: list[str] = []
        results = await _each_on_its_own_file(
            tmp_path / f"paused-{with_paused}",
            one=lambda conn, p=with_paused: [end(conn) for end in _ends_alike(p)],
            together=_traced(_ends_alike(with_paused), statements),
        )
        assert results["together"] == results["one"] == [True] * (6 if with_paused else 5)
        assert _state(tmp_path / f"paused-{with_paused}" / "together.db") == _state(
            tmp_path / f"paused-{with_paused}" / "one.db"
        )
        # The trace shows each statement with its values in place of its parameters, again at
        # each start of a trigger's program.
        updates = {s for s in statements if s.startswith("UPDATE tasks SET status")}
        alike = [s for s in updates if s.endswith("tasks.seq = json_extract(j.value, '$[1]')")]
        whole = [s for s in updates if s.endswith("tasks.seq = json_extract(j.value, '$[8]')")]
        assert (len(alike), len(whole)) == ((0, 1) if with_paused else (1, 0)), statements
