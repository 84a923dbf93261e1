"""The task list's search filters (id prefix, creation time range, text in the error): the page's
search box and time filters read through them, on every store alike."""

from __future__ import annotations

from tasky.states import Status
from tasky.store import Store, TaskRecord
from tests.store_contract.records import OWNER, outcome, running, task


async def test_id_prefix_finds_exactly_the_ids_that_start_with_it(store: Store) -> None:
    made = [await store.submit(task(queued_at=1000.0 + i)) for i in range(30)]
    target = made[7].id
    for length in (1, 3, 32):
        prefix = target[:length]
        found = {t.id for t in (await store.list_tasks(id_prefix=prefix, limit=100)).tasks}
        assert found == {t.id for t in made if t.id.startswith(prefix)}


async def test_created_range_includes_its_start_and_excludes_its_end(store: Store) -> None:
    made = [await store.submit(task(queued_at=1000.0 + i)) for i in range(6)]
    page = await store.list_tasks(created_after=1002.0, created_before=1004.0)
    assert [t.id for t in page.tasks] == [made[2].id, made[3].id]


async def test_error_text_matches_ascii_case_folded_and_literal_wildcards(store: Store) -> None:
    boom = await running(store, queued_at=1000.0)
    assert await store.finish(boom.id, OWNER, 1, outcome(Status.FAILED, error="Disk FULL on /var"))
    odd = await running(store, queued_at=1001.0)
    assert await store.finish(odd.id, OWNER, 1, outcome(Status.FAILED, error="100% _done_ ÉTÉ"))
    quiet = await store.submit(task(queued_at=1002.0))

    def ids(page_tasks: list[TaskRecord]) -> list[str]:
        return [t.id for t in page_tasks]

    assert ids((await store.list_tasks(error_contains="disk full")).tasks) == [boom.id]
    assert ids((await store.list_tasks(error_contains="0% _d")).tasks) == [odd.id]
    assert ids((await store.list_tasks(error_contains="%")).tasks) == [odd.id]
    # Only ASCII letters fold (as SQLite's lower() does): "été" does not find "ÉTÉ".
    assert ids((await store.list_tasks(error_contains="été")).tasks) == []
    assert ids((await store.list_tasks(error_contains="ÉTÉ")).tasks) == [odd.id]
    # No text, no filter: the task without an error is listed too.
    assert ids((await store.list_tasks(error_contains="")).tasks) == [boom.id, odd.id, quiet.id]
