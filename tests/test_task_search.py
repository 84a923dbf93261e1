"""GET /tasky/v1/tasks searched: by the start of an id, by creation time, by text in the error;
each value read strictly (tasky/api/task_search.py, the store's list_tasks on real SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import API, submit, wait_for


async def listed(client: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    """Every task the query matches, page after page (small pages, to cross the cursor)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**query, "limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{API}/tasks", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["Tasks"]
        cursor = page["NextCursor"]
        if cursor is None:
            return found


async def test_tasks_found_by_the_start_of_their_id(client: httpx.AsyncClient) -> None:
    ids = [await submit(client, "Echo", {"value": n}) for n in range(40)]
    # Every first digit present, checked against the truth (ids are random: this covers the
    # edges of the hex range, "0" and "f", nearly always).
    for digit in sorted({task_id[0] for task_id in ids}):
        got = {t["TaskId"] for t in await listed(client, id=digit)}
        assert got == {task_id for task_id in ids if task_id.startswith(digit)}, digit
    one = ids[7]
    assert [t["TaskId"] for t in await listed(client, id=one[:12])] == [one]
    assert [t["TaskId"] for t in await listed(client, id=one)] == [one]
    assert [t["TaskId"] for t in await listed(client, id=one.upper())] == [one]
    assert await listed(client, id=one, worker="Flaky") == []  # with the other filters


@pytest.mark.parametrize("value", ["xyz", "3d89-", "0x3d", " 3d", "3" * 33, "٣", "3d%00"], ids=repr)
async def test_an_id_that_is_not_hex_is_refused(client: httpx.AsyncClient, value: str) -> None:
    r = await client.get(f"{API}/tasks", params={"id": value})
    assert r.status_code == 400
    assert "query parameter id must be 1 to 32 hex digits" in r.json()["Error"]


async def test_tasks_found_by_creation_time(client: httpx.AsyncClient) -> None:
    ids = []
    for n in range(5):
        ids.append(await submit(client, "Echo", {"value": n}))
        await asyncio.sleep(0.01)  # distinct creation times to cut between
    created = {t["TaskId"]: t["CreatedAt"] for t in await listed(client)}
    times = [created[task_id] for task_id in ids]
    cut1 = f"{(times[0] + times[1]) / 2:.6f}"
    cut2 = f"{(times[3] + times[4]) / 2:.6f}"
    assert [t["TaskId"] for t in await listed(client, created_after=cut1)] == ids[1:]
    assert [t["TaskId"] for t in await listed(client, created_before=cut2)] == ids[:4]
    between = await listed(client, created_after=cut1, created_before=cut2, order="desc")
    assert [t["TaskId"] for t in between] == ids[3:0:-1]
    whole = f"{int(times[0]) - 1}"  # a whole number of seconds is a time too
    assert len(await listed(client, created_after=whole)) == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"created_after": "1e9"}, "must be a time in seconds since 1970"),
        ({"created_after": "-5"}, "must be a time in seconds since 1970"),
        ({"created_before": "nan"}, "must be a time in seconds since 1970"),
        ({"created_before": "2026-01-01"}, "must be a time in seconds since 1970"),
        ({"created_before": " 1767225600"}, "must be a time in seconds since 1970"),
        ({"created_after": "200", "created_before": "100"}, "must be earlier than"),
        ({"created_after": "100", "created_before": "100"}, "must be earlier than"),
    ],
)
async def test_a_time_that_is_not_one_is_refused(
    client: httpx.AsyncClient, query: dict[str, str], message: str
) -> None:
    r = await client.get(f"{API}/tasks", params=query)
    assert r.status_code == 400
    assert message in r.json()["Error"]


async def test_tasks_found_by_text_in_their_error(client: httpx.AsyncClient) -> None:
    disk = await submit(client, "Flaky", {"message": "Disk FULL on /var (50%_used)"})
    net = await submit(client, "Flaky", {"message": "network down"})
    fine = await submit(client, "Echo", {"value": "disk full"})  # in its output, not an error
    for task_id, wanted in ((disk, "Failed"), (net, "Failed"), (fine, "Completed")):
        await wait_for(client, task_id, wanted)
    found = await listed(client, error="disk full")
    assert [t["TaskId"] for t in found] == [disk]  # any case, ASCII letters
    # LIKE's wildcards are plain text here.
    assert [t["TaskId"] for t in await listed(client, error="50%_u")] == [disk]
    assert await listed(client, error="n%k") == []  # as a LIKE pattern it would match "network"
    assert [t["TaskId"] for t in await listed(client, error="DOWN", status="Failed")] == [net]
    assert await listed(client, error="down", status="Completed") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [("x" * 201, "at most 200 characters"), ("disk\x07full", "control characters")],
)
async def test_error_text_that_cannot_be_searched_is_refused(
    client: httpx.AsyncClient, value: str, message: str
) -> None:
    r = await client.get(f"{API}/tasks", params={"error": value})
    assert r.status_code == 400
    assert message in r.json()["Error"]


async def test_the_search_parameters_are_documented(client: httpx.AsyncClient) -> None:
    doc = (await client.get(f"{API}/openapi.json")).json()
    names = {p["name"] for p in doc["paths"]["/tasky/v1/tasks"]["get"]["parameters"]}
    assert {"id", "created_after", "created_before", "error"} <= names
    r = await client.get(f"{API}/tasks", params={"errors": "x"})  # a typo is still a 400
    assert r.status_code == 400
