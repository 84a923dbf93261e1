"""The WAL's working length, written as zeros when the SQLite store opens (tasky.store.wal_space):
commits write over it instead of lengthening the file, whatever was in the file is kept, and a
planted link or a full disk changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import create_store, wal_space
from tasky.store.private import private_database
from tasky.store.records import TaskRecord
from tasky.store.sqlite import WAL_RESERVED_FRAMES, SqliteStore
from tasky.store.wal_space import lengthen_with_zeros, wal_bytes
from tests.sqlite_store_helpers import wal_frames
from tests.test_cli_client import tasky

ROOT = Path(__file__).resolve().parent.parent


def _task() -> TaskRecord:
    return TaskRecord(new_id(), "W", Status.QUEUED, {}, 1.0, queued_at=1.0)


def _reserved(store: SqliteStore) -> int:
    page_size: int = store.reader.execute("PRAGMA page_size").fetchone()[0]
    return wal_bytes(WAL_RESERVED_FRAMES, page_size)


def _ids(path: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}


async def test_commits_write_over_the_reserved_wal_instead_of_lengthening_it(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "tasky.db")
    await store.open()
    try:
        wal = Path(f"{store.path}-wal")
        assert wal.stat().st_size == _reserved(store)
        before = wal_frames(store.path)
        stored = [await store.submit(_task()) for _ in range(40)]  # one commit each
        assert wal_frames(store.path) > before + 40  # they were written to the WAL...
        assert wal.stat().st_size == _reserved(store)  # ...within the length it had
        assert {t.id for t in stored} <= {t.id for t in (await store.list_tasks()).tasks}
    finally:
        await store.close()
    assert len(_ids(tmp_path / "tasky.db")) == 40


def _run(code: str, *, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    prelude = ""
    if limit_bytes is not None:  # a disk that refuses more than this much of any one file
        prelude = textwrap.dedent(f"""
            import resource, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))
        """)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_KILLED_AFTER_COMMITS = """
    import asyncio, os, signal
    from tasky.ids import new_id
    from tasky.states import Status
    from tasky.store.records import TaskRecord
    from tasky.store.sqlite import SqliteStore

    async def main() -> None:
        store = SqliteStore({path!r})
        await store.open()
        for _ in range(30):
            task = await store.submit(TaskRecord(new_id(), "W", Status.QUEUED, {{}}, 1.0))
            print(task.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # acknowledged, then gone: no close, no checkpoint

    asyncio.run(main())
"""


async def test_a_killed_servers_commits_survive_the_zeros_after_them(tmp_path: Path) -> None:
    """A server killed after its commits leaves a WAL of its working length: the commits at its
    start, zeros after. Opening it again recovers every acknowledged task, and its own commits
    go after them."""
    path = tmp_path / "tasky.db"
    killed = _run(_KILLED_AFTER_COMMITS.format(path=str(path)))
    acknowledged = set(killed.stdout.split())
    assert killed.returncode == -9 and len(acknowledged) == 30, killed.stderr
    assert wal_frames(path) > 0  # the commits are still only in the WAL
    store = SqliteStore(path)
    await store.open()
    try:
        assert {t.id for t in (await store.list_tasks(limit=100)).tasks} == acknowledged
        later = await store.submit(_task())
    finally:
        await store.close()
    assert _ids(path) == acknowledged | {later.id}


async def test_a_short_wal_left_by_a_crash_keeps_its_frames_and_gains_zeros(
    tmp_path: Path,
) -> None:
    """A WAL shorter than the working length, with commits in it (a crash of a server that did
    not reserve, or a sqlite3 shell's writes): the zeros go after its end, never over it."""
    path = tmp_path / "tasky.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()  # the schema, and no WAL left
    code = """
        import os, signal, sqlite3
        conn = sqlite3.connect({path!r}, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        for n in range(20):
            conn.execute(
                "INSERT INTO tasks (id, worker, status, config, created_at) "
                "VALUES (?, 'W', 'Queued', '{{}}', 1.0)", (f"outside-{{n}}",))
        print(os.path.getsize({path!r} + "-wal"), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    killed = _run(code.format(path=str(path)))
    assert killed.returncode == -9, killed.stderr
    short = int(killed.stdout)
    assert 0 < short < wal_bytes(WAL_RESERVED_FRAMES, 4096)
    store = SqliteStore(path)
    await store.open()
    try:
        assert Path(f"{path}-wal").stat().st_size == _reserved(store)
        found = store.reader.execute("SELECT count(*) FROM tasks WHERE id LIKE 'outside-%'")
        assert found.fetchone()[0] == 20
    finally:
        await store.close()
    assert len(_ids(path)) == 20


def test_zeros_are_not_written_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    link = tmp_path / "tasky.db-wal"
    link.symlink_to(victim)
    assert lengthen_with_zeros(str(link), 1 << 20) == 0
    assert victim.read_bytes() == b"keep me"


def test_zeros_are_only_added_past_the_end(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(b"frames")
    assert lengthen_with_zeros(str(file), 100) == 94
    assert file.read_bytes() == b"frames" + bytes(94)
    assert lengthen_with_zeros(str(file), 50) == 0  # never shortened
    assert file.stat().st_size == 100


def test_a_disk_that_refuses_the_space_leaves_the_wal_as_it_was(tmp_path: Path) -> None:
    """With every file capped at 2 MiB (the limit a full disk or a quota sets), the store opens,
    warns, and commits as before, its WAL growing by them; the cut-off write is undone."""
    path = tmp_path / "tasky.db"
    code = """
        import asyncio, logging, os
        from tasky.ids import new_id
        from tasky.states import Status
        from tasky.store.records import TaskRecord
        from tasky.store.sqlite import SqliteStore

        logging.basicConfig(level=logging.WARNING)

        async def main() -> None:
            store = SqliteStore({path!r})
            await store.open()
            print("wal", os.path.getsize({path!r} + "-wal"), flush=True)
            task = await store.submit(TaskRecord(new_id(), "W", Status.QUEUED, {{}}, 1.0))
            await store.close()
            print("task", task.id, flush=True)

        asyncio.run(main())
    """
    done = _run(code.format(path=str(path)), limit_bytes=2 << 20)
    assert done.returncode == 0, done.stderr
    assert "could not reserve" in done.stderr
    lines = dict(line.split() for line in done.stdout.splitlines())
    assert int(lines["wal"]) < 2 << 20
    assert _ids(path) == {lines["task"]}


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_link_planted_under_a_database_files_name_is_not_followed(
    tmp_path: Path, suffix: str
) -> None:
    """The data files are made private at start (0600); a link planted in place of one must not
    pass that chmod on to the file it points at."""
    victim = tmp_path / "victim"
    victim.write_text("a file of the server's user")
    os.chmod(victim, 0o644)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / f"tasky.db{suffix}").symlink_to(victim)
    private_database(data / "tasky.db")
    assert victim.stat().st_mode & 0o777 == 0o644
    assert (data / "tasky.db").stat().st_mode & 0o777 == 0o600


def _lengthenings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The WAL lengthenings of the stores opened from now on, in this process."""
    calls: list[tuple[str, int]] = []
    lengthen = wal_space.lengthen_with_zeros

    def counted(file: str, wanted: int) -> int:
        calls.append((file, wanted))
        return lengthen(file, wanted)

    monkeypatch.setattr(wal_space, "lengthen_with_zeros", counted)
    return calls


def test_an_offline_command_does_not_write_the_wal_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tasky token create --data`` opens the store for one write: ~45 MB of zeros would cost
    it more than they could save (SQLite deletes the WAL again at close). A server's start,
    the same store opened through create_store, does write them."""
    calls = _lengthenings(monkeypatch)
    data = tmp_path / "data"
    made = tasky("token", "create", "--name", "root", "--role", "admin", "--data", str(data))
    assert made.exit_code == 0, made.output
    assert calls == []
    assert tasky("token", "list", "--data", str(data)).exit_code == 0
    assert calls == []

    async def serving_open() -> None:
        store = create_store(str(data / "tasky.db"))
        await store.open()
        await store.close()

    asyncio.run(serving_open())
    assert [file for file, _ in calls] == [f"{data / 'tasky.db'}-wal"]
