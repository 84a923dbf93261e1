"""The clients' chain methods: in-process (AsyncClient) and against a real server (Client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tasky import AsyncClient, Client
from tasky.api import TaskyApp
from tasky.chains.model import ChainSpec
from tasky.client import Conflict, NotFound, ValidationFailed, WaitTimeout
from tasky.states import Status
from tests.client_server import RecordingTransport, shared_server
from tests.conftest import ServerProcess

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here

PAIR: dict[str, Any] = {
    "name": "pair",
    "parameters": {"x": 5},
    "steps": [
        {"name": "a", "worker": "Echo", "config": {"value": "${params.x}"}},
        {"name": "b", "worker": "Echo", "config": {"value": "${steps.a.result.value}"}},
    ],
}


@pytest.fixture
async def tasky(app: TaskyApp) -> AsyncIterator[AsyncClient]:
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://127.0.0.1", transport=transport) as client:
            yield client


async def test_run_a_chain_and_read_its_steps(tasky: AsyncClient) -> None:
    chain_id = await tasky.create_chain(PAIR)
    chain = await tasky.wait_chain(chain_id, timeout=30)
    assert chain.status is Status.COMPLETED and chain.finished
    assert chain.result == {"value": 5}
    assert [(s.name, s.status) for s in chain.steps] == [("a", "Completed"), ("b", "Completed")]
    step_tasks = [t.task_id async for t in tasky.iter_tasks(chain=chain_id)]
    assert step_tasks == [s.task_id for s in chain.steps]
    # A pydantic ChainSpec works as well as a dict.
    again = await tasky.create_chain(ChainSpec.model_validate({**PAIR, "parameters": {"x": 6}}))
    assert (await tasky.wait_chain(again, timeout=30)).result == {"value": 6}
    listed = [c.chain_id async for c in tasky.iter_chains(page_size=1)]
    assert listed == [chain_id, again]
    page = await tasky.list_chains(status="completed", order="desc", limit=1)
    assert [c.chain_id for c in page.chains] == [again] and page.next_cursor is not None


async def test_named_definitions(tasky: AsyncClient) -> None:
    saved = await tasky.put_chain_definition("pair", PAIR)
    assert saved.name == "pair" and saved.definition is not None
    assert [d.name for d in await tasky.chain_definitions()] == ["pair"]
    chain_id = await tasky.start_chain("pair", {"x": 7})
    chain = await tasky.wait_chain(chain_id, timeout=30)
    assert chain.result == {"value": 7} and chain.definition == "pair"
    await tasky.delete_chain_definition("pair")
    with pytest.raises(NotFound):
        await tasky.chain_definition("pair")


async def test_invalid_chain_and_conflicts(tasky: AsyncClient) -> None:
    with pytest.raises(ValidationFailed):
        await tasky.create_chain({"steps": [{"name": "a", "worker": "NoSuchWorker"}]})
    failing = await tasky.create_chain({"steps": [{"name": "f", "worker": "Flaky"}]})
    chain = await tasky.wait_chain(failing, timeout=30)
    assert chain.status is Status.FAILED and chain.error
    with pytest.raises(Conflict) as exc:
        await tasky.pause_chain(failing)
    assert exc.value.status is Status.FAILED
    restarted = await tasky.restart_chain(failing)
    assert restarted.restarts == 1
    assert (await tasky.wait_chain(failing, timeout=30)).status is Status.FAILED


async def test_pause_resume_cancel_a_chain(tasky: AsyncClient) -> None:
    chain_id = await tasky.create_chain({"steps": [{"name": "h", "worker": "Hold"}]})
    with pytest.raises(WaitTimeout) as exc:
        await tasky.wait_chain(chain_id, timeout=0.3)
    assert "chain" in str(exc.value) and exc.value.last is not None
    assert (await tasky.pause_chain(chain_id)).status is Status.PAUSED
    assert (await tasky.resume_chain(chain_id)).status is Status.RUNNING
    await tasky.cancel_chain(chain_id)
    assert (await tasky.wait_chain(chain_id, timeout=30)).status is Status.CANCELED


def test_wait_chain_over_the_event_stream(shared_server: ServerProcess) -> None:
    spec = {
        "steps": [
            {"name": "sleep", "worker": "Sleeper", "config": {"seconds": 1}},
            {"name": "echo", "worker": "Echo", "config": {"value": "${steps.sleep.result}"}},
        ]
    }
    transport = RecordingTransport()
    with Client(shared_server.url, transport=transport) as tasky:
        chain_id = tasky.create_chain(spec)
        chain = tasky.wait_chain(chain_id, timeout=60)
    assert chain.status is Status.COMPLETED
    assert chain.result == {"slept_seconds": 1.0}
    assert transport.count("/events") == 1
    # Read once on subscribing and once per chain event, not every few milliseconds.
    assert transport.count(f"/chains/{chain_id}") <= 4
