"""tasky.Client and tasky.AsyncClient against a real ``tasky serve`` process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasky import AsyncClient, Client
from tasky.client import (
    Conflict,
    LogLine,
    NotFound,
    ServerUnreachable,
    TaskStatus,
    ValidationFailed,
    WaitTimeout,
)
from tasky.states import Status
from tests.client_server import WORKER_ARGS, RecordingTransport, shared_server
from tests.conftest import ROOT, ServerFactory, ServerProcess

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


@pytest.fixture
def tasky(shared_server: ServerProcess) -> Iterator[Client]:
    with Client(shared_server.url) as client:
        yield client


def test_wait_uses_the_event_stream(shared_server: ServerProcess) -> None:
    transport = RecordingTransport()
    with Client(shared_server.url, transport=transport) as tasky:
        task_id = tasky.submit("Sleeper", {"seconds": 1.5})
        final = tasky.wait(task_id, timeout=60)
    assert final.status is Status.COMPLETED and final.progress == 1.0
    assert transport.count("/events") == 1
    # One status read on subscribing and one per status event (Running, Completed): polling
    # for 1.5 s would read it a dozen times.
    assert transport.count(f"/tasks/{task_id}/status") <= 3


def test_watch_reports_progress_as_it_happens(tasky: Client) -> None:
    task_id = tasky.submit("Sleeper", {"seconds": 2})
    seen = list(tasky.watch(task_id, timeout=60))
    progress = [s.progress for s in seen if s.status is Status.RUNNING]
    assert 0.5 in progress  # "1 of 2 s", from a progress event
    assert seen[-1].status is Status.COMPLETED
    # Running can be seen before the first progress report (None); after it, never going back.
    reported = [p for p in progress if p is not None]
    assert reported == sorted(reported)
    assert None not in progress[progress.index(reported[0]) :]


def test_follow_streams_log_lines(tasky: Client) -> None:
    task_id = tasky.submit("Sleeper", {"seconds": 2})
    items = list(tasky.follow(task_id, timeout=60))
    lines = [i.line for i in items if isinstance(i, LogLine)]
    assert lines == ["slept 1 of 2 seconds", "slept 2 of 2 seconds"]
    assert isinstance(items[-1], TaskStatus) and items[-1].status is Status.COMPLETED
    # Reading them again gives the same lines with their sequence numbers.
    assert [ln.line for ln in tasky.logs(task_id).lines] == lines


def test_polling_works_the_same(shared_server: ServerProcess) -> None:
    transport = RecordingTransport()
    with Client(shared_server.url, transport=transport, use_events=False) as tasky:
        task_id = tasky.submit("Sleeper", {"seconds": 1})
        items = list(tasky.follow(task_id, timeout=60))
    assert transport.count("/events") == 0
    assert [i.line for i in items if isinstance(i, LogLine)] == ["slept 1 of 1 seconds"]
    assert isinstance(items[-1], TaskStatus) and items[-1].status is Status.COMPLETED


def test_cancel_while_another_thread_waits(tasky: Client) -> None:
    task_id = tasky.submit("Hold", {"seconds": 60})
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(tasky.wait, task_id, 60)
        deadline = time.monotonic() + 30
        while tasky.status(task_id).status is not Status.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        tasky.cancel(task_id)
        assert waiting.result(timeout=60).status is Status.CANCELED


def test_wait_timeout_over_events(tasky: Client) -> None:
    task_id = tasky.submit("Sleeper", {"seconds": 60})
    with pytest.raises(WaitTimeout) as exc:
        tasky.wait(task_id, timeout=0.5)
    assert exc.value.last is not None and not exc.value.last.finished
    tasky.cancel(task_id)


def test_errors_and_pages(tasky: Client) -> None:
    with pytest.raises(NotFound):
        tasky.status("0" * 32)
    with pytest.raises(NotFound):
        tasky.submit("NoSuchWorker")
    with pytest.raises(ValidationFailed) as invalid:
        tasky.submit("CopyFile", {"source": ""})
    assert {f.field for f in invalid.value.fields} == {"source", "destination"}
    ids = [tasky.submit("Echo", {"value": n}) for n in range(3)]
    assert [t.task_id for t in tasky.iter_tasks(worker="Echo", page_size=1)][-3:] == ids
    for task_id in ids:
        tasky.wait(task_id, timeout=60)
    with pytest.raises(Conflict) as conflict:
        tasky.cancel(ids[0])
    assert conflict.value.status is Status.COMPLETED


async def test_async_client_over_the_event_stream(shared_server: ServerProcess) -> None:
    async with AsyncClient(shared_server.url) as tasky:
        task_id = await tasky.submit("Sleeper", {"seconds": 1})
        items = [item async for item in tasky.follow(task_id, timeout=60)]
        assert [i.line for i in items if isinstance(i, LogLine)] == ["slept 1 of 1 seconds"]
        final = await tasky.wait(task_id, timeout=60)  # finished already: returns at once
        assert final.status is Status.COMPLETED
        stats = await tasky.worker_statistics("Sleeper")
        assert stats.by_status["Completed"] >= 1


def test_server_gone_while_waiting(server_factory: ServerFactory) -> None:
    server: ServerProcess = server_factory(*WORKER_ARGS)
    with Client(server.url, reconnect_grace=1.0) as tasky:
        task_id = tasky.submit("Hold", {"seconds": 60})
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(tasky.wait, task_id, 120)
            time.sleep(0.5)  # let it subscribe; the test holds either way
            server.kill()
            with pytest.raises(ServerUnreachable) as exc:
                waiting.result(timeout=60)
    assert exc.value.url == server.api


def test_wait_survives_a_server_restart(server_factory: ServerFactory) -> None:
    make = server_factory
    first: ServerProcess = make(*WORKER_ARGS)
    with Client(first.url, reconnect_grace=60) as tasky:
        task_id = tasky.submit("Sleeper", {"seconds": 2})
        seen: list[TaskStatus] = []

        def wait() -> TaskStatus:
            for status in tasky.watch(task_id, timeout=120):
                seen.append(status)
            return seen[-1]

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(wait)
            deadline = time.monotonic() + 30
            while not any(s.status is Status.RUNNING for s in seen):
                assert time.monotonic() < deadline and not waiting.done()
                time.sleep(0.05)
            first.kill()
            # Same port, same data: the client reconnects and follows the task to its end (Sleeper
            # is idempotent, so the restarted server runs the interrupted task again).
            second: ServerProcess = make(*WORKER_ARGS, data_dir=first.data_dir, start=False)
            second.port = first.port
            second.start()
            final = waiting.result(timeout=90)
        assert final.status is Status.COMPLETED
        assert tasky.get(task_id).attempt == 2


def test_the_documented_python_snippets_run(
    shared_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    monkeypatch.setenv("TASKY_URL", shared_server.url)
    for block in blocks:
        exec(block.replace("http://127.0.0.1:8888", shared_server.url), {"__name__": "doc"})
    out = capsys.readouterr().out
    assert "Completed {'slept_seconds': 2.0}" in out
    assert "{'seconds': 'Input should be greater than or equal to 0'}" in out
