"""Client.submit_many / AsyncClient.submit_many: chunks, order, and what a refused chunk raises."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tasky import AsyncClient, Client
from tasky.api import TaskyApp
from tasky.client import BatchIncomplete, TooManyRequests, ValidationFailed
from tasky.settings import Settings
from tasky.states import Status
from tests.client_server import RecordingTransport, shared_server
from tests.conftest import ServerProcess
from tests.test_events import events_until
from tests.workers_for_tests import EchoConfig

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


@pytest.fixture
def tasky(shared_server: ServerProcess) -> Iterator[Client]:
    with Client(shared_server.url) as client:
        yield client


def test_chunks_keep_the_order(shared_server: ServerProcess) -> None:
    transport = RecordingTransport()
    with Client(shared_server.url, transport=transport) as tasky:
        ids = tasky.submit_many("Echo", ({"value": n} for n in range(2500)), chunk_size=1000)
        assert len(ids) == len(set(ids)) == 2500
        assert transport.count("/workers/Echo/batch") == 3  # 1000 + 1000 + 500
        for n in (0, 999, 1000, 2499):
            assert tasky.get(ids[n]).config == {"value": n}
        assert tasky.wait(ids[-1], timeout=60).status is Status.COMPLETED


def test_models_none_and_query_options(tasky: Client) -> None:
    ids = tasky.submit_many("Echo", [EchoConfig(value=[1]), None, {}], timeout=5, retries=1)
    assert [tasky.get(i).config for i in ids] == [{"value": [1]}, {"value": None}, {"value": None}]
    assert all((tasky.get(i).timeout, tasky.get(i).retries) == (5, 1) for i in ids)
    assert tasky.submit_many("Echo", []) == []
    with pytest.raises(ValueError, match="chunk_size"):
        tasky.submit_many("Echo", [{}], chunk_size=0)


def test_an_invalid_config_in_the_first_chunk_creates_nothing(tasky: Client) -> None:
    before = tasky.worker_statistics("Echo").total
    with pytest.raises(ValidationFailed) as exc:
        tasky.submit_many("Echo", [{"value": 1}, {"bogus": 2}, {"value": 3}], chunk_size=10)
    assert [f.field for f in exc.value.fields] == ["[1].bogus"]
    assert exc.value.body["Indexes"] == [1]
    assert tasky.worker_statistics("Echo").total == before


def test_a_refused_later_chunk_says_what_was_created(tasky: Client) -> None:
    before = tasky.worker_statistics("Echo").total
    configs: list[dict[str, object]] = [{"value": n} for n in range(7)]
    configs[5] = {"value": 5, "bogus": True}
    with pytest.raises(BatchIncomplete) as exc:
        tasky.submit_many("Echo", configs, chunk_size=2)
    assert len(exc.value.task_ids) == 4  # chunks [0, 1] and [2, 3]; [4, 5] was refused
    assert [tasky.get(i).config["value"] for i in exc.value.task_ids] == [0, 1, 2, 3]
    error = exc.value.error
    assert isinstance(error, ValidationFailed)
    assert [f.field for f in error.fields] == ["[5].bogus"]  # counted from the first config
    assert error.body["Indexes"] == [5] and "index 5" in error.message
    assert [(f["index"], f["field"]) for f in error.body["Fields"]] == [(5, "[5].bogus")]
    assert tasky.worker_statistics("Echo").total == before + 4


def test_a_keyed_submit_many_sent_again_creates_only_what_was_missing(tasky: Client) -> None:
    before = tasky.worker_statistics("Echo").total
    configs: list[dict[str, object]] = [{"value": n} for n in range(5)]
    configs[3] = {"value": 3, "bogus": True}
    with pytest.raises(BatchIncomplete) as exc:
        tasky.submit_many("Echo", configs, chunk_size=2, idempotency_key="import-7")
    made = exc.value.task_ids
    assert len(made) == 2
    # Fixed and sent again with the same key: the first chunk is answered with its ids, the
    # rest is created now; nothing twice.
    configs[3] = {"value": 3}
    ids = tasky.submit_many("Echo", configs, chunk_size=2, idempotency_key="import-7")
    assert ids[:2] == made and len(set(ids)) == 5
    assert tasky.submit_many("Echo", configs, chunk_size=2, idempotency_key="import-7") == ids
    assert tasky.worker_statistics("Echo").total == before + 5
    assert [tasky.get(i).config["value"] for i in ids] == [0, 1, 2, 3, 4]


# -- the asyncio client, in process -------------------------------------------------------------
@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_queued = 2
    return settings


@pytest.fixture
async def atasky(app: TaskyApp) -> AsyncIterator[AsyncClient]:
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://127.0.0.1", transport=transport) as client:
            yield client


async def test_async_submit_many(atasky: AsyncClient) -> None:
    ids = await atasky.submit_many("Echo", [{"value": n} for n in range(5)], chunk_size=2)
    assert [(await atasky.get(i)).config for i in ids] == [{"value": n} for n in range(5)]
    with pytest.raises(BatchIncomplete) as exc:
        await atasky.submit_many("Echo", [{}, {}, {"value": 1, "x": 0}], chunk_size=2)
    assert isinstance(exc.value.error, ValidationFailed)
    assert exc.value.error.body["Indexes"] == [2]
    # The worker's queue cap refuses a whole chunk: Hold runs one task, and 2 may wait.
    with pytest.raises(TooManyRequests):
        await atasky.submit_many("Hold", [{"seconds": 30}] * 4)
    assert (await atasky.worker_statistics("Hold")).total == 0
    keyed = await atasky.submit_many("Echo", [{"value": 9}] * 3, idempotency_key="a1")
    assert await atasky.submit_many("Echo", [{"value": 9}] * 3, idempotency_key="a1") == keyed


def test_each_task_of_a_batch_is_announced(shared_server: ServerProcess, tasky: Client) -> None:
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "GET",
            f"{shared_server.api}/events",
            params={"worker": "Echo", "type": "task.created"},
        ) as stream,
    ):
        assert stream.status_code == 200
        ids = tasky.submit_many("Echo", [{"value": n} for n in range(3)])
        got, _ = events_until(stream, lambda event: event["task"] == ids[-1])
    assert [event.json["task"] for event in got] == ids
