"""``tasky token create|list|revoke`` and ``tasky audit``.

They talk to a running server as an admin (``--url`` / ``--token``), like every client command.
With ``--data DIR`` the token commands work on a stopped server's store instead: the way to make
the first admin token before starting a server, or to recover when no admin token works. The
store's lock keeps them off a database that a server is using. With ``--db URL`` they work on a
PostgreSQL database directly, whose servers may be running (a token counts from their next
request).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from tasky.cli import render
from tasky.cli.session import (
    EXIT_REFUSED,
    EXIT_USAGE,
    JsonOption,
    TokenOption,
    UrlOption,
    fail,
    session,
)
from tasky.client import AuditEntry, TokenInfo
from tasky.settings import POSTGRES_SCHEMES

if TYPE_CHECKING:
    from tasky.store import Store

T = TypeVar("T")

token_app = typer.Typer(
    name="token", help="Manage API tokens (admin).", no_args_is_help=True, add_completion=False
)

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Work on the store of a stopped server in this directory instead of through the API.",
        show_default=False,
    ),
]


# No environment variable on purpose: TASKY_DB set for a server must not turn these commands
# away from the API.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Work on this PostgreSQL database (postgresql://...) instead of through the API.",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(token_app)
    app.command("audit")(audit)


def _printable(text: str) -> str:
    # Names and targets come from requests: no control character may reach the terminal.
    return "".join(c if c.isprintable() else "?" for c in text)


def _offline(
    data: Path | None, db: str | None, work: Callable[[Store], Awaitable[T]], json: bool
) -> T:
    """``work`` on the store of ``--db``, or of ``--data`` (one of them is given)."""
    # The store package (SQLite, PostgreSQL) is loaded by the commands that open one, not by
    # every command of the command line: ``tasky submit`` started about 0.07 s sooner.
    from tasky.store import StoreLocked, create_store

    async def run() -> T:
        path = db if db is not None else str((data or Path()) / "tasky.db")
        store = create_store(path, brief=True)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    if db is not None and data is not None:
        fail(json, Console(stderr=True), "give --data or --db, not both", EXIT_USAGE)
    if db is not None and not db.startswith(POSTGRES_SCHEMES):
        fail(json, Console(stderr=True), "--db must be a postgresql:// URL", EXIT_USAGE)
    try:
        return asyncio.run(run())
    except StoreLocked as exc:
        fail(json, Console(stderr=True), f"{exc} (without --data the API is used)", EXIT_REFUSED)
    except (ValueError, ImportError) as exc:  # a --db out of reach, too new, or not PostgreSQL
        fail(json, Console(stderr=True), str(exc), EXIT_REFUSED)


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="The token's name (shown in the audit log).")],
    role: Annotated[str, typer.Option("--role", help="viewer, operator or admin.")],
    workers: Annotated[
        str | None,
        typer.Option("--workers", help="Operator only: limit it to these workers (A,B)."),
    ] = None,
    expires: Annotated[
        float | None, typer.Option("--expires", help="Days until it stops working.")
    ] = None,
    data: DataOption = None,
    db: DbOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a token and print it, once: only its hash is kept."""
    names = None if workers is None else [w for w in workers.split(",") if w.strip()]
    if data is not None or db is not None:
        from tasky.auth.tokens import make_token, token_view

        try:
            secret, record = make_token(name, role, names, expires, time.time())
        except ValueError as exc:
            fail(json, Console(stderr=True), str(exc), EXIT_USAGE)

        async def store_it(store: Store) -> bool:
            return await store.create_token(record)

        if not _offline(data, db, store_it, json):
            fail(json, Console(stderr=True), f"a token named {name!r} already exists", EXIT_REFUSED)
        _print_created({**token_view(record, time.time()), "Token": secret}, json)
        return
    with session(url, token, json) as s:
        created = s.client.create_token(name, role, workers=names, expires_days=expires)
        _print_created(created.wire(), json)


def _print_created(body: dict[str, Any], json: bool) -> None:
    if json:
        sys.stdout.write(jsonlib.dumps(body, indent=2) + "\n")
        return
    # The token alone on stdout (for $(...) and files); the advice on stderr.
    sys.stdout.write(body["Token"] + "\n")
    err = Console(stderr=True, highlight=False)
    err.print(
        f"Created the {body['Role']} token {_printable(body['Name'])!r}. "
        "It is shown this once: store it now (tasky --token-file, TASKY_TOKEN).",
        style="dim",
        markup=False,
    )


@token_app.command("list")
def list_(
    data: DataOption = None,
    db: DbOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List tokens: name, role, workers, dates (never the tokens)."""
    if data is not None or db is not None:
        from tasky.auth.tokens import token_view

        async def read(store: Store) -> list[dict[str, Any]]:
            now = time.time()
            return [token_view(t, now) for t in await store.list_tokens()]

        found = [TokenInfo.model_validate(t) for t in _offline(data, db, read, json)]
    else:
        with session(url, token, json) as s:
            found = s.client.tokens()
    if json:
        sys.stdout.write(jsonlib.dumps({"Tokens": [t.wire() for t in found]}, indent=2) + "\n")
    elif not found:
        Console().print("No tokens: the server is open to every loopback caller.")
    else:
        Console(highlight=False).print(_tokens_table(found))


def _tokens_table(tokens: list[TokenInfo]) -> Table:
    table = Table(title="Tokens", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Name", "Role", "Workers", "Created", "Expires", "Last used"):
        table.add_column(column)
    for t in tokens:
        expires = render.when(t.expires_at) if t.expires_at else "never"
        table.add_row(
            _printable(t.name),
            t.role,
            _printable(",".join(t.workers)) if t.workers else "all",
            render.when(t.created_at),
            f"{expires} (expired)" if t.expired else expires,
            render.when(t.last_used_at) if t.last_used_at else "-",
        )
    return table


@token_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.", show_default=False)],
    data: DataOption = None,
    db: DbOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a token: the next request that uses it is refused."""
    if data is not None or db is not None:

        async def delete(store: Store) -> bool:
            return await store.revoke_token(name)

        if not _offline(data, db, delete, json):
            fail(json, Console(stderr=True), f"no token named {name!r}", EXIT_REFUSED)
    else:
        with session(url, token, json) as s:
            s.client.revoke_token(name)
    if json:
        sys.stdout.write(jsonlib.dumps({"Name": name, "Revoked": True}) + "\n")
    else:
        Console(stderr=True).print(f"Revoked {_printable(name)!r}.", markup=False)


def audit(
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1, max=1000)] = 50,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")
    ] = False,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after a previous --json page (its NextCursor).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show the audit log: who changed what, from where, and the answer (admin)."""
    with session(url, token, json) as s:
        page = s.client.audit(limit=limit, cursor=cursor, order="asc" if oldest_first else "desc")
        if s.json:
            s.emit(page.wire())
        elif not page.entries:
            s.out.print("The audit log is empty.")
        else:
            s.out.print(_audit_table(page.entries))


def _audit_table(entries: list[AuditEntry]) -> Table:
    table = Table(title="Audit log", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Time", "Token", "Client", "Call", "Target", "Status"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            render.when(e.time),
            _printable(e.token),
            _printable(e.client),
            _printable(f"{e.method} {e.route}"),
            _printable(e.target),
            str(e.status),
        )
    return table
