"""Cursor paging shared by the two SQL stores: the query of one page in ``seq`` order, written
once with the placeholder style as a parameter (``?`` for SQLite, ``%s`` for PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tasky.states import Status

Row = TypeVar("Row", bound=Sequence[Any])


def page_query(
    select: str,
    filters: dict[str, Any],
    limit: int,
    cursor: int | None,
    descending: bool,
    conditions: Sequence[tuple[str, Any]],
    mark: str,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of one page of ``select`` after ``cursor``, one row more than
    ``limit`` (that row tells whether there is a next page).

    ``filters`` maps column names (written by the caller, never by users) to required values;
    None means no filter. ``conditions`` are further SQL conditions (written by the caller) with
    one ``mark`` placeholder each and its value. ``seq`` must be the first column selected.
    """
    where = [f"{column} = {mark}" for column, value in filters.items() if value is not None]
    params: list[Any] = [value for value in filters.values() if value is not None]
    where += [sql for sql, _ in conditions]
    params += [value for _, value in conditions]
    if cursor is not None:
        where.append(f"seq < {mark}" if descending else f"seq > {mark}")
        params.append(cursor)
    sql = select + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY seq {'DESC' if descending else 'ASC'} LIMIT {mark}"
    params.append(limit + 1)
    return sql, params


def task_filters(status: Status | None, worker: str | None, chain_id: str | None) -> dict[str, Any]:
    """The column filters of a task list (``filters`` of page_query)."""
    return {
        "status": None if status is None else status.value,
        "worker": worker,
        "chain_id": chain_id,
    }


def created_between(after: float | None, before: float | None, mark: str) -> list[tuple[str, Any]]:
    """The conditions of a task list's creation times: at or after ``after``, strictly before
    ``before`` (None: no bound)."""
    conditions: list[tuple[str, Any]] = []
    if after is not None:
        conditions.append((f"created_at >= {mark}", after))
    if before is not None:
        conditions.append((f"created_at < {mark}", before))
    return conditions


def split_page(rows: list[Row], limit: int) -> tuple[list[Row], int | None]:
    """The page's rows and the next page's cursor (None: this was the last page)."""
    next_cursor = rows[limit - 1][0] if len(rows) > limit else None
    return rows[:limit], next_cursor
