"""What only the PostgreSQL store has to prove: a worker's limit holds across nodes whose claims
overlap, migrations of nodes starting together, a newer schema refused, statistics folded.

The contract every store passes (tests/test_store_contract.py) runs on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import tests.pg
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.states import Status
from tasky.store import DuplicateId, create_store, pg_schema, pg_stats, pg_tasks
from tasky.store.pg_schema import LATEST, SchemaTooNew
from tasky.store.postgres import PostgresStore
from tasky.store.records import ChildRecord, Claim, NodeRecord, Outcome, TaskRecord
from tests.pg import emptied_shared_schema, fresh_schema, pg_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> str:
    """The test process's schema, emptied (a schema of its own would cost more than a test)."""
    return emptied_shared_schema()


@pytest.fixture
def own_schema() -> Iterator[str]:
    """A schema of the test's own, for tests that change its version."""
    with fresh_schema() as url:
        yield url


store = pg_store


def task(worker: str = "W", at: float = 1000.0) -> TaskRecord:
    return TaskRecord(
        id=new_id(), worker=worker, status=Status.QUEUED, config={}, created_at=at, queued_at=at
    )


async def submit_queue(store: PostgresStore, n: int, worker: str = "W") -> list[TaskRecord]:
    return [await store.submit(task(worker, 1000.0 + i)) for i in range(n)]


async def running(store: PostgresStore, worker: str = "W") -> list[TaskRecord]:
    return (await store.list_tasks(worker=worker, status=Status.RUNNING, limit=1000)).tasks


def test_create_store_selects_postgresql_by_url() -> None:
    store = create_store("postgresql://tasky@db.example:5432/tasky")
    assert isinstance(store, PostgresStore)
    assert isinstance(create_store("postgres://tasky@db.example/tasky"), PostgresStore)


def test_db_must_be_a_postgresql_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", roots=[tmp_path / "files"])
    settings.database_url = "mysql://tasky@db.example/tasky"
    with pytest.raises(ValueError, match="--db must be a postgresql://"):
        settings.check()
    settings.database_url = "postgresql://tasky@db.example/tasky"
    settings.check()
    assert settings.store_url == settings.database_url


# -- the cluster-wide limit -----------------------------------------------------------------------


async def test_a_claim_held_open_leaves_another_only_the_room_it_did_not_take(
    store: PostgresStore, pg_url: str
) -> None:
    """Node A's claim is in flight (its transaction open, not committed) when node B claims: a
    count of held tasks would still read 0 for B, but the slot rows A locked are not B's."""
    queued = await submit_queue(store, 6)
    limit = 3
    await store.claim("W", Claim("warm-up", 0.0, limit, count=0), 1100.0)  # slot rows exist
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as node_a:
        await node_a.execute("BEGIN")
        taken_by_a = await pg_tasks.claim(node_a, "W", Claim("A", 2000.0, limit, 2), 1100.0)
        assert [t.id for t in taken_by_a] == [queued[0].id, queued[1].id]

        taken_by_b = await store.claim("W", Claim("B", 2000.0, limit), 1100.0)
        assert [t.id for t in taken_by_b] == [queued[2].id]  # the one free room, the next task
        assert await store.claim("W", Claim("C", 2000.0, limit), 1100.0) == []
        await node_a.execute("COMMIT")
    # Three hold a slot, as the limit allows, each task once.
    now_running = await running(store)
    assert sorted(t.id for t in now_running) == sorted(t.id for t in queued[:3])
    assert {t.owner for t in now_running} == {"A", "B"}
    assert await store.claim("W", Claim("D", 2000.0, limit), 1100.0) == []


async def test_a_claim_rolled_back_gives_its_room_and_tasks_back(
    store: PostgresStore, pg_url: str
) -> None:
    queued = await submit_queue(store, 4)
    await store.claim("W", Claim("warm-up", 0.0, 2, count=0), 1100.0)  # slot rows exist
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as node_a:
        await node_a.execute("BEGIN")
        taken = await pg_tasks.claim(node_a, "W", Claim("A", 2000.0, 2), 1100.0)
        assert len(taken) == 2
        assert await store.claim("W", Claim("B", 2000.0, 2), 1100.0) == []
        await node_a.execute("ROLLBACK")
    taken_by_b = await store.claim("W", Claim("B", 2000.0, 2), 1100.0)
    assert [t.id for t in taken_by_b] == [queued[0].id, queued[1].id]


async def test_a_submit_that_claims_never_takes_room_a_claim_in_flight_holds(
    store: PostgresStore, pg_url: str
) -> None:
    await store.claim("W", Claim("warm-up", 0.0, 1, count=0), 1100.0)
    await submit_queue(store, 1)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as node_a:
        await node_a.execute("BEGIN")
        assert len(await pg_tasks.claim(node_a, "W", Claim("A", 2000.0, 1), 1100.0)) == 1
        # Nothing waits in B's snapshot and no held task is visible to it, yet the one slot is A's.
        submitted = await store.submit(task(at=1200.0), Claim("B", 2000.0, 1))
        assert submitted.status is Status.QUEUED and submitted.owner is None
        await node_a.execute("COMMIT")
    assert [t.owner for t in await running(store)] == ["A"]


async def test_many_nodes_claiming_at_once_never_exceed_the_limit(pg_url: str) -> None:
    """Four stores (four nodes, each with its own pool) claim, finish and claim again at once;
    after every round no more than the limit hold a slot and no task ran twice."""
    limit, total = 3, 40
    nodes = [PostgresStore(pg_url, min_connections=1, max_connections=3) for _ in range(4)]
    for node in nodes:
        await node.open()
    try:
        await submit_queue(nodes[0], total)
        started: list[str] = []

        async def work(name: str, node: PostgresStore) -> None:
            while len(started) < total:
                claimed = await node.claim("W", Claim(name, 9999.0, limit), 1100.0)
                held = await running(node)
                assert len(held) <= limit
                started.extend(t.id for t in claimed)
                for t in claimed:
                    outcome = Outcome(Status.COMPLETED, 1200.0)
                    assert await node.finish(t.id, name, t.attempt, outcome)
                if not claimed:
                    await asyncio.sleep(0.005)

        await asyncio.wait_for(
            asyncio.gather(*(work(f"node-{i}", node) for i, node in enumerate(nodes))), 60
        )
        assert len(started) == len(set(started)) == total
        stats = await nodes[0].worker_stats("W")
        assert stats.by_status.get("Completed") == total and stats.finished == total
    finally:
        for node in nodes:
            await node.close()


async def test_occupied_slots_above_a_lowered_limit_count_against_it(store: PostgresStore) -> None:
    await submit_queue(store, 6)
    first = await store.claim("W", Claim("A", 2000.0, 3), 1100.0)  # slots 1, 2, 3
    for t in first[:2]:  # slots 1 and 2 free again; slot 3 still held
        assert await store.finish(t.id, "A", 1, Outcome(Status.COMPLETED, 1200.0))
    # Limit 2 now: one task holds a slot (above the new limit), so one more may start.
    assert len(await store.claim("W", Claim("A", 2000.0, 2), 1300.0)) == 1
    assert await store.claim("W", Claim("A", 2000.0, 2), 1300.0) == []
    assert len(await running(store)) == 2


async def test_ending_an_attempt_frees_its_slot_in_the_same_statement(
    store: PostgresStore,
) -> None:
    await submit_queue(store, 5)
    a, b, c = await store.claim("W", Claim("A", 2000.0, 3), 1100.0)
    assert await store.retry_later(a.id, "A", 1, "boom", 5000.0, 1200.0)
    assert await store.requeue_interrupted(b.id, "A", 1, "node died", 1200.0)
    assert await store.fail_interrupted(c.id, "A", 1, "not idempotent", 1200.0)
    async with await psycopg.AsyncConnection.connect(store.url) as conn:
        held = await (
            await conn.execute("SELECT count(*) FROM worker_slots WHERE task_id IS NOT NULL")
        ).fetchone()
    assert held == (0,)
    # Three rooms free: the requeued b (at the end of the queue) and the two still waiting;
    # a waits for its backoff.
    assert len(await store.claim("W", Claim("B", 2000.0, 3), 1300.0)) == 3


# -- schema versions ------------------------------------------------------------------------------


async def test_nodes_opening_a_new_database_together_migrate_it_once(own_schema: str) -> None:
    """A schema nobody migrated yet (the store works in whatever schema its connections use;
    a database of its own would only make the test slower)."""
    nodes = [PostgresStore(own_schema, min_connections=1, max_connections=2) for _ in range(3)]
    await asyncio.gather(*(node.open() for node in nodes))
    try:
        async with await psycopg.AsyncConnection.connect(own_schema) as conn:
            rows = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
            tables = await (
                await conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE tablename = 'tasks' "
                    "AND schemaname = current_schema()"
                )
            ).fetchone()
        assert rows == [(LATEST,)] and tables == (1,)
        stored = await nodes[1].submit(task())
        assert await nodes[2].get(stored.id) is not None
    finally:
        for node in nodes:
            await node.close()


async def test_a_version_1_database_gets_the_node_of_task_children(own_schema: str) -> None:
    """An upgrade from version 1: a child recorded then keeps its row (no node: taken as the
    opening node's own), and new ones carry theirs."""
    async with await psycopg.AsyncConnection.connect(own_schema, autocommit=True) as conn:
        # The database as version 1 left it (what a node of that version created).
        async with conn.transaction():
            assert await pg_schema._apply(conn, 0, pg_schema.MIGRATIONS[:1]) == [1]
            await conn.execute("CREATE TABLE tasky_schema (version integer NOT NULL)")
            await conn.execute("INSERT INTO tasky_schema VALUES (1)")
        await conn.execute(
            "INSERT INTO task_children VALUES (%s, 101, 5, 'boot-1', 'mark')", ("a" * 32,)
        )
    store = PostgresStore(own_schema)
    await store.open()
    try:
        theirs = ChildRecord("b" * 32, 102, 6, "boot-1", "mark-b", node="web-2")
        await store.record_child(theirs)
        old = ChildRecord("a" * 32, 101, 5, "boot-1", "mark")
        assert sorted(await store.children(), key=lambda c: c.task_id) == [old, theirs]
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(own_schema) as conn:
        version = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
    assert version == [(LATEST,)]


async def test_a_version_3_database_gets_the_nodes_registry_and_targets(own_schema: str) -> None:
    """An upgrade from version 3 (task children per node, paused time; no nodes yet) to the
    latest: its tasks and attempts keep their rows with no target and no node, a Paused task
    keeps its paused time, and the registry and targets work at once."""
    assert LATEST >= 5
    waiting, paused, ended = new_id(), new_id(), new_id()
    async with await psycopg.AsyncConnection.connect(own_schema, autocommit=True) as conn:
        # The database as version 3 left it.
        async with conn.transaction():
            assert await pg_schema._apply(conn, 0, pg_schema.MIGRATIONS[:3]) == [1, 2, 3]
            await conn.execute("CREATE TABLE tasky_schema (version integer NOT NULL)")
            await conn.execute("INSERT INTO tasky_schema VALUES (3)")
        await conn.execute(
            "INSERT INTO tasks (id, worker, status, config, created_at, queued_at) "
            "VALUES (%s, 'W', 'Queued', '{}', 1, 1)",
            (waiting,),
        )
        await conn.execute(
            "INSERT INTO tasks (id, worker, status, config, created_at, queued_at, started_at, "
            "owner, lease_until, paused_seconds, paused_at) "
            "VALUES (%s, 'W', 'Paused', '{}', 1, 1, 2, 'old:1', 9e9, 3, 7)",
            (paused,),
        )
        await conn.execute(
            "INSERT INTO task_attempts (task_id, attempt, status, started_at, finished_at, "
            "paused_seconds) VALUES (%s, 1, 'Completed', 2, 10, 3)",
            (ended,),
        )
    store = PostgresStore(own_schema)
    await store.open()
    try:
        kept = await store.get(paused)
        assert kept is not None and (kept.target, kept.node) == (None, None)
        assert (kept.paused_seconds, kept.paused_at) == (3.0, 7.0)
        [attempt] = await store.attempts(ended)
        assert (attempt.node, attempt.paused_seconds, attempt.run_seconds) == (None, 3.0, 5.0)
        assert await store.list_nodes() == []
        record = NodeRecord("web-1", ["gpu"], "web-1:7", ["W"], 100.0, 100.0, host="h", pid=7)
        assert await store.register_node(record, alive_after=0.0) is None
        [listed] = await store.list_nodes()
        assert (listed.name, listed.labels, listed.running) == ("web-1", ["gpu"], 0)
        claim = Claim("web-1:7", 9e9, limit=5, node="web-1", targets=("node:web-1",))
        [started] = await store.claim("W", claim, 200.0)
        assert (started.id, started.node, started.target) == (waiting, "web-1", None)
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(own_schema) as conn:
        version = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
    assert version == [(LATEST,)]


async def test_a_version_5_database_gets_the_change_log_and_its_trigger(own_schema: str) -> None:
    """An upgrade from version 5 (the nodes registry and targets; no change log yet): its tasks
    are kept, and every change from then on is logged with the task's columns of version 5
    too (the node that started it), for the other nodes to read."""
    assert LATEST >= 6
    waiting = new_id()
    async with await psycopg.AsyncConnection.connect(own_schema, autocommit=True) as conn:
        # The database as version 5 left it.
        async with conn.transaction():
            assert await pg_schema._apply(conn, 0, pg_schema.MIGRATIONS[:5]) == [1, 2, 3, 4, 5]
            await conn.execute("CREATE TABLE tasky_schema (version integer NOT NULL)")
            await conn.execute("INSERT INTO tasky_schema VALUES (5)")
        await conn.execute(
            "INSERT INTO tasks (id, worker, status, config, created_at, queued_at, target) "
            "VALUES (%s, 'W', 'Queued', '{}', 1, 1, 'node:web-1')",
            (waiting,),
        )
    store, other = PostgresStore(own_schema), PostgresStore(own_schema)
    await store.open()
    await other.open()
    try:
        assert await store.last_change() == 0  # what version 5 wrote was never logged
        claim = Claim("web-1:7", 9e9, limit=5, node="web-1", targets=("node:web-1",))
        [started] = await store.claim("W", claim, 200.0)
        assert (started.id, started.node, started.target) == (waiting, "web-1", "node:web-1")
        [change] = await other.changes_since(0, 10)
        assert (change.task_id, change.status, change.owner, change.node, change.here) == (
            waiting,
            Status.RUNNING,
            "web-1:7",
            "web-1",
            False,
        )
        [mine] = await store.changes_since(0, 10)
        assert mine.here and mine.node == "web-1"
    finally:
        await other.close()
        await store.close()
    async with await psycopg.AsyncConnection.connect(own_schema) as conn:
        version = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
    assert version == [(LATEST,)]


async def test_a_database_of_a_newer_version_is_refused_with_a_message(own_schema: str) -> None:
    pg_url = own_schema
    first = PostgresStore(pg_url)
    await first.open()
    await first.close()
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("UPDATE tasky_schema SET version = %s", (LATEST + 1,))
    newer = PostgresStore(pg_url)
    with pytest.raises(SchemaTooNew, match=f"schema version {LATEST + 1}.*upgrade Tasky"):
        await newer.open()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        version = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
    assert version == [(LATEST + 1,)]  # left as it was


@pytest.mark.server
def test_serve_refuses_a_newer_database_before_listening(own_schema: str) -> None:
    pg_url = own_schema
    PostgresStore(pg_url).prepare_now()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE tasky_schema SET version = %s", (LATEST + 7,))
    done = subprocess.run(
        [sys.executable, "-m", "tasky", "serve", "--db", pg_url, "--addr", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done.stderr
    assert f"schema version {LATEST + 7}" in done.stderr and "upgrade Tasky" in done.stderr


@pytest.mark.server
def test_serve_refuses_a_db_that_is_not_postgresql_and_opens_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tasky", "serve", "--db", "tasky.db", "--addr", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 2 and "--db must be a postgresql://" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.server
def test_serve_names_a_database_it_cannot_reach(tmp_path: object) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasky",
            "serve",
            "--db",
            "postgresql://tasky:secret@127.0.0.1:1/tasky?connect_timeout=2",
            "--addr",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done.stderr
    assert "cannot reach PostgreSQL" in done.stderr and "secret" not in done.stderr


# -- what PostgreSQL text cannot hold, statistics -------------------------------------------------


async def test_a_nul_in_worker_text_is_stored_as_the_replacement_character(
    store: PostgresStore,
) -> None:
    (t,) = await submit_queue(store, 1)
    (t,) = await store.claim("W", Claim("A", 2000.0, 1), 1100.0)
    await store.append_logs([(t.id, 1101.0, "before\x00after")], 100)
    await store.set_progress([(t.id, 0.5, "half\x00way")])
    assert await store.finish(
        t.id, "A", 1, Outcome(Status.FAILED, 1200.0, error="bad\x00byte", traceback="tb\x00")
    )
    assert [line.line for line in await store.logs(t.id)] == ["before\ufffdafter"]
    stored = await store.get(t.id)
    assert stored is not None
    assert (stored.error, stored.progress_message) == ("bad\ufffdbyte", "half\ufffdway")
    assert (await store.attempts(t.id))[0].traceback == "tb\ufffd"


async def test_folding_statistics_changes_no_figure(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_stats, "FOLD_AT", 5)
    await submit_queue(store, 6)
    claimed = await store.claim("W", Claim("A", 2000.0, 4), 1100.0)
    for i, t in enumerate(claimed):
        status = Status.COMPLETED if i % 2 else Status.FAILED
        assert await store.finish(t.id, "A", 1, Outcome(status, 1100.0 + 0.5 * (i + 1)))
    before_stats = await store.worker_stats("W")  # reads the appended rows, then folds them
    before_minutes = await store.finished_per_minute("W", 0)
    async with await psycopg.AsyncConnection.connect(store.url) as conn:
        left = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM status_changes) "
                "+ (SELECT count(*) FROM ended_attempts)"
            )
        ).fetchone()
    assert left == (0,)
    assert await store.worker_stats("W") == before_stats
    assert await store.finished_per_minute("W", 0) == before_minutes
    assert before_stats.by_status == {"Queued": 2, "Running": 0, "Completed": 2, "Failed": 2}
    assert before_stats.finished == 4 and sum(before_stats.run_time_hist.values()) == 4
    assert before_minutes == [(18, "Completed", 2), (18, "Failed", 2)]


# -- grouped submits -------------------------------------------------------------------------------


async def test_concurrent_submits_share_one_commit(store: PostgresStore) -> None:
    burst = [task(at=1000.0 + i) for i in range(50)]
    before = store.commit_stats().group_size
    stored = await asyncio.gather(*(store.submit(t) for t in burst))
    after = store.commit_stats().group_size
    assert (after.count - before.count, after.total - before.total) == (1, 50)
    assert [t.id for t in stored] == [t.id for t in burst]
    assert [t.seq for t in stored] == sorted(t.seq for t in stored)


async def test_a_taken_id_in_a_group_of_submits_fails_only_its_caller(
    store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    existing = await store.submit(task())
    burst = [task(at=1000.0 + i) for i in range(30)]
    burst[20] = dataclasses.replace(burst[20], id=existing.id)
    results = await asyncio.gather(*(store.submit(t) for t in burst), return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, BaseException)] == [20]
    assert isinstance(results[20], DuplicateId)
    stored_order = [t.id for t in (await store.list_tasks(limit=100)).tasks]
    assert stored_order == [existing.id] + [t.id for i, t in enumerate(burst) if i != 20]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- a missing server -----------------------------------------------------------------------------


def test_without_a_server_the_tests_skip_locally_and_fail_on_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tests.pg, "_unreachable", lambda: "PostgreSQL at x unreachable")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        tests.pg.require_postgres()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        tests.pg.require_postgres()


@pytest.mark.slow  # a pytest of its own
def test_on_ci_a_missing_server_fails_the_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_serve_refuses_a_newer_database_before_listening",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "CI": "true",
            "TEST_POSTGRES_URL": "postgresql://nobody@127.0.0.1:1/x",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        },
    )
    assert done.returncode == 1 and "1 error" in done.stdout, done.stdout
    assert "CI must run the PostgreSQL tests" in done.stdout


# -- writes of one task commit in the order they were issued --------------------------------------


async def test_an_attempt_ends_only_after_the_log_lines_written_before(
    store: PostgresStore,
) -> None:
    """Concurrent transactions commit in any order; the engine writes a task's last lines, then
    its end, and whoever sees the end must see the lines."""
    await submit_queue(store, 1)
    (t,) = await store.claim("W", Claim("A", 2000.0, 1), 1100.0)
    async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as blocker:
        await blocker.execute("BEGIN")
        await blocker.execute("LOCK TABLE task_logs IN EXCLUSIVE MODE")
        lines = asyncio.ensure_future(store.append_logs([(t.id, 1101.0, "last line")], 100))
        await asyncio.sleep(0)  # the write is issued (as the engine's flush issues it)
        ended = asyncio.ensure_future(store.finish(t.id, "A", 1, Outcome(Status.COMPLETED, 1200.0)))
        # While the lines cannot commit, neither does the end.
        done, _ = await asyncio.wait({ended}, timeout=1.0)
        assert not done
        still = await store.get(t.id)
        assert still is not None and still.status is Status.RUNNING
        await blocker.execute("COMMIT")
    await lines
    assert await ended
    assert [line.line for line in await store.logs(t.id)] == ["last line"]


async def test_progress_written_after_the_end_changes_nothing(store: PostgresStore) -> None:
    await submit_queue(store, 1)
    (t,) = await store.claim("W", Claim("A", 2000.0, 1), 1100.0)
    assert await store.finish(t.id, "A", 1, Outcome(Status.COMPLETED, 1200.0))
    await store.set_progress([(t.id, 0.3, "late")])  # a flush that lost the race
    ended = await store.get(t.id)
    assert ended is not None and (ended.progress, ended.progress_message) == (1.0, None)


async def test_a_claimed_batch_of_several_workers_starts_each_while_its_slots_last(
    store: PostgresStore,
) -> None:
    batch = [task("A"), task("A"), task("B"), task("A"), task("B")]
    stored = await store.submit_many(batch, Claim("A-node", 2000.0, 1))
    assert [(t.worker, t.status) for t in stored] == [
        ("A", Status.RUNNING),
        ("A", Status.QUEUED),
        ("B", Status.RUNNING),
        ("A", Status.QUEUED),
        ("B", Status.QUEUED),
    ]
    assert [t.seq for t in stored] == sorted(t.seq for t in stored)
    counted = await store.submit_many([task("C") for _ in range(3)], Claim("n", 2000.0, 5, 2))
    assert [t.status for t in counted] == [Status.RUNNING, Status.RUNNING, Status.QUEUED]


async def test_a_submit_refused_for_another_reason_fails_only_its_caller(
    store: PostgresStore,
) -> None:
    burst = [task(at=1000.0 + i) for i in range(10)]
    burst[4] = dataclasses.replace(burst[4], retries=2**40)  # over the column's integer range
    results = await asyncio.gather(*(store.submit(t) for t in burst), return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, BaseException)] == [4]
    assert isinstance(results[4], psycopg.errors.NumericValueOutOfRange)
    stored_ids = [t.id for t in (await store.list_tasks(limit=100)).tasks]
    assert stored_ids == [t.id for i, t in enumerate(burst) if i != 4]
