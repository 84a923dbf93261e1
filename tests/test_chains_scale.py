"""Long chains: thousands of sequential steps and wide parallel groups run through a real engine,
each step costs the same whatever the chain's length (the runner does not read the chain whole
per step), two runners advancing one chain start each step once, and the API pages through the
steps."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tasky.api import TaskyApp
from tasky.chains import schemas
from tasky.chains.runner import ChainRunner
from tasky.server import build_app
from tasky.settings import Settings
from tasky.store import Store, create_store
from tasky.workers.base import EmptyConfig, Worker
from tasky.workers.context import AsyncTaskContext
from tasky.workers.registry import WorkerRegistry
from tests.conftest import _open_client
from tests.test_chains_api import get_chain, start_chain

API = "/tasky/v1"


class Nothing(Worker):
    """Returns at once: what a step costs is the chain's own overhead."""

    name = "Nothing"
    description = "Does nothing."
    max_tasks = 1000
    idempotent = True

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        return None


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(Nothing)
    return registry


def sequential(n: int, worker: str = "Nothing") -> dict[str, Any]:
    return {"steps": [{"name": f"s{i}", "worker": worker} for i in range(n)]}


async def _client(
    settings: Settings, registry: WorkerRegistry, store: Store | None
) -> AsyncIterator[tuple[TaskyApp, httpx.AsyncClient]]:
    app = build_app(settings, registry=registry, store=store)
    async for client in _open_client(app):
        yield app, client


@pytest.fixture
async def memory(
    settings: Settings, registry: WorkerRegistry
) -> AsyncIterator[tuple[TaskyApp, httpx.AsyncClient]]:
    """The app on the in-memory store (the engine and chain runner are the real ones)."""
    async for pair in _client(settings, registry, create_store("memory:")):
        yield pair


async def wait_done(client: httpx.AsyncClient, chain_id: str, timeout: float) -> dict[str, Any]:
    """Poll the chain with one step in its answer (light, whatever its length) until it ends;
    then its full answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(f"{API}/chains/{chain_id}", params={"steps": 1})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["Steps"]) == 1
        if body["Status"] not in ("Running", "Paused"):
            return await get_chain(client, chain_id)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"chain still {body['Status']}: {body['StepCounts']}")
        await asyncio.sleep(0.25)


async def all_steps(client: httpx.AsyncClient, chain_id: str, limit: int) -> list[dict[str, Any]]:
    """Every step, a page at a time through GET /chains/{id}/steps."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = await client.get(f"{API}/chains/{chain_id}/steps", params=params)
        assert r.status_code == 200, r.text
        page = schemas.StepPage.model_validate(r.json())
        assert len(page.Steps) <= limit
        out += [s.model_dump() for s in page.Steps]
        if page.NextCursor is None:
            return out
        cursor = page.NextCursor


def count_calls(monkeypatch: pytest.MonkeyPatch, target: Any, names: list[str]) -> Counter[str]:
    """Count the calls of ``target``'s methods ``names`` (which still do their work)."""
    calls: Counter[str] = Counter()
    for name in names:
        method: Callable[..., Any] = getattr(target, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls[_name] += 1
            return _method(*args, **kw)

        monkeypatch.setattr(target, name, counted)
    return calls


async def run_whole(
    client: httpx.AsyncClient, body: dict[str, Any], timeout: float
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    chain_id = await start_chain(client, body)
    done = await wait_done(client, chain_id, timeout)
    return chain_id, done, await all_steps(client, chain_id, 1000)


def assert_each_step_ran_once(steps: list[dict[str, Any]], n: int) -> None:
    assert len(steps) == n
    assert Counter(s["Status"] for s in steps) == {"Completed": n}
    assert len({s["TaskId"] for s in steps}) == n


async def run_with_two_runners(app: TaskyApp, client: httpx.AsyncClient, n: int) -> None:
    """Run a chain of ``n`` sequential steps while a second runner races the app's own: each step
    still runs once, as one task."""
    engine = app.starlette.state.engine
    other = ChainRunner(engine, engine.store.chains)
    await other.start()
    try:
        chain_id, done, steps = await run_whole(client, sequential(n), timeout=120)
        assert done["Status"] == "Completed", done["Error"]
        assert_each_step_ran_once(steps, n)
        page = await engine.store.list_tasks(chain_id=chain_id, limit=1000)
        assert len(page.tasks) == n
    finally:
        await other.stop()


# -- running long chains ------------------------------------------------------------------------
async def test_a_long_chain_reads_itself_whole_once(
    memory: tuple[TaskyApp, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-step cost does not grow with the chain: running 1,500 steps reads the chain's
    definition and its step list whole a bounded number of times, not once per step."""
    app, client = memory
    runner: ChainRunner = app.starlette.state.chains.runner
    calls = count_calls(monkeypatch, runner.store, ["get", "steps", "state", "claim_steps"])
    chain_id, done, steps = await run_whole(client, sequential(1500), timeout=300)
    assert done["Status"] == "Completed", done["Error"]
    assert_each_step_ran_once(steps, 1500)
    assert done["StepCount"] == 1500 and done["StepCounts"] == {"Completed": 1500}
    # Each step is claimed once, and each pass reads the chain's status, not the chain.
    assert calls["claim_steps"] == 1500
    assert calls["state"] >= 1500
    assert calls["steps"] <= 3, calls
    # get: the first pass, the status polls of this test (GET /chains/{id}), and the pages.
    polls = calls["get"] - 1
    assert polls < 200, calls
    tasks = await app.starlette.state.engine.store.list_tasks(chain_id=chain_id, limit=10)
    assert len(tasks.tasks) == 10


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_ten_thousand_sequential_steps_complete(
    memory: tuple[TaskyApp, httpx.AsyncClient],
) -> None:
    _, client = memory
    _, done, steps = await run_whole(client, sequential(10_000), timeout=900)
    assert done["Status"] == "Completed", done["Error"]
    assert done["StepCount"] == 10_000 and done["StepCounts"] == {"Completed": 10_000}
    assert len(done["Steps"]) == 1000 and done["StepsNextCursor"] is not None
    assert_each_step_ran_once(steps, 10_000)
    assert [s["Name"] for s in steps] == [f"s{i}" for i in range(10_000)]


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_ten_thousand_steps_on_sqlite(settings: Settings, registry: WorkerRegistry) -> None:
    async for _, client in _client(settings, registry, None):
        _, done, steps = await run_whole(client, sequential(10_000), timeout=1800)
        assert done["Status"] == "Completed", done["Error"]
        assert_each_step_ran_once(steps, 10_000)


async def test_a_parallel_group_of_a_thousand_steps(
    memory: tuple[TaskyApp, httpx.AsyncClient],
) -> None:
    _, client = memory
    body = {
        "steps": [
            {"name": "first", "worker": "Nothing"},
            {
                "name": "wide",
                "parallel": [{"name": f"p{i}", "worker": "Nothing"} for i in range(1000)],
            },
            {"name": "last", "worker": "Echo", "config": {"value": "${steps.p999.status}"}},
        ]
    }
    _, done, steps = await run_whole(client, body, timeout=300)
    assert done["Status"] == "Completed", done["Error"]
    assert_each_step_ran_once(steps, 1002)
    assert [s["Group"] for s in steps[1:1001]] == ["wide"] * 1000
    assert done["Result"] == {"string_output": "Completed"}
    assert done["StepCount"] == 1002 and done["StepsNextCursor"] is not None
    assert len(done["Steps"]) == 1000


async def test_two_runners_start_each_step_once(
    memory: tuple[TaskyApp, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runners hear of every step that finishes and race to start the next: the claim lets
    one of them, so each step has one task."""
    app, client = memory
    claims = count_calls(monkeypatch, app.starlette.state.engine.store.chains, ["claim_steps"])
    await run_with_two_runners(app, client, 150)
    # They did race: more claims than steps, the losers' claims taking nothing.
    assert claims["claim_steps"] > 150


# -- paging through steps -----------------------------------------------------------------------
async def test_steps_come_in_pages(memory: tuple[TaskyApp, httpx.AsyncClient]) -> None:
    _, client = memory
    chain_id, done, _ = await run_whole(client, sequential(1205), timeout=120)
    assert done["Status"] == "Completed"
    # The chain's own answer: the first 1,000 steps, the counts, and where the rest start.
    assert [s["Name"] for s in done["Steps"]] == [f"s{i}" for i in range(1000)]
    assert done["StepsNextCursor"] is not None
    r = await client.get(
        f"{API}/chains/{chain_id}/steps", params={"cursor": done["StepsNextCursor"]}
    )
    assert r.status_code == 200
    rest = r.json()
    assert [s["Name"] for s in rest["Steps"]] == [f"s{i}" for i in range(1000, 1100)]
    pages = await all_steps(client, chain_id, 7)
    assert [s["Name"] for s in pages] == [f"s{i}" for i in range(1205)]
    # A short chain's answer is as before: every step, no cursor.
    short = await start_chain(client, sequential(3))
    body = await wait_done(client, short, 30)
    assert len(body["Steps"]) == 3 and body["StepsNextCursor"] is None
    assert body["StepCount"] == 3
    r = await client.get(f"{API}/chains/{short}/steps")
    assert r.status_code == 200 and r.json()["NextCursor"] is None
    assert [s["Name"] for s in r.json()["Steps"]] == ["s0", "s1", "s2"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "1001"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "x"}, "limit must be a whole number"),
        ({"cursor": "-1"}, "cursor must be the NextCursor"),
        ({"cursor": "abc"}, "cursor must be the NextCursor"),
        ({"status": "Running"}, "status"),
    ],
)
async def test_bad_step_pages_are_refused(
    memory: tuple[TaskyApp, httpx.AsyncClient], query: dict[str, str], says: str
) -> None:
    _, client = memory
    chain_id = await start_chain(client, sequential(2))
    r = await client.get(f"{API}/chains/{chain_id}/steps", params=query)
    assert r.status_code == 400, r.text
    assert says in r.json()["Error"]


async def test_steps_of_a_missing_chain(memory: tuple[TaskyApp, httpx.AsyncClient]) -> None:
    _, client = memory
    for chain_id in ("0" * 32, "not-an-id"):
        r = await client.get(f"{API}/chains/{chain_id}/steps")
        assert r.status_code == 404, r.text
        assert "no chain" in r.json()["Error"]


# -- caps -----------------------------------------------------------------------------------------
async def test_twenty_thousand_steps_are_accepted_and_one_more_is_not(
    memory: tuple[TaskyApp, httpx.AsyncClient],
) -> None:
    """The default caps fit 20,000 steps (a named definition stores them without running)."""
    _, client = memory
    r = await client.put(f"{API}/chain-definitions/long", json=sequential(20_000))
    assert r.status_code == 201, r.text[:300]
    r = await client.put(f"{API}/chain-definitions/longer", json=sequential(20_001))
    assert r.status_code == 422, r.text[:300]
    assert r.json()["Error"] == "the chain has 20001 steps; the limit is 20000"
    wide = {"steps": [{"name": "g", "parallel": sequential(20_001)["steps"]}]}
    r = await client.post(f"{API}/chains", json=wide)
    assert r.status_code == 422 and "the limit is 20000" in r.json()["Error"]
    assert (await client.get(f"{API}/chain-definitions/longer")).status_code == 404
    assert (await client.get(f"{API}/chains")).json()["Chains"] == []


async def test_a_definition_over_the_byte_cap_is_413(
    memory: tuple[TaskyApp, httpx.AsyncClient],
) -> None:
    _, client = memory
    body = sequential(3)
    body["description"] = "d" * 9000
    body["steps"][0]["config"] = {"pad": "x" * (5 << 20)}
    r = await client.post(f"{API}/chains", json=body)
    assert r.status_code == 413, r.text[:300]
    assert "the limit is 5242880" in r.json()["Error"]
    assert (await client.get(f"{API}/chains")).json()["Chains"] == []
