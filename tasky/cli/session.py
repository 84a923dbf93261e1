"""What every client command shares: the connection options, output, errors and exit codes."""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, Protocol

import typer
from rich.console import Console

from tasky.cli.kv import ConfigError
from tasky.cli.terminal import safe, visible
from tasky.client import (
    DEFAULT_URL,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    ServerUnreachable,
    TaskyError,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from tasky.states import Status

# Exit codes, documented in docs/cli.md; scripts rely on them.
EXIT_OK = 0
EXIT_FAILED = 1  # the task ended Failed
EXIT_USAGE = 2  # bad arguments: unknown worker or key, invalid config (also typer's code)
EXIT_CANCELED = 3  # the task ended Canceled
EXIT_REFUSED = 4  # the server refused: no such task, wrong status, bad token, server error
EXIT_UNREACHABLE = 5  # no server at the URL
EXIT_TIMEOUT = 6  # `tasky wait --timeout` ran out
EXIT_INTERRUPTED = 130

EXIT_FOR_STATUS = {
    Status.COMPLETED: EXIT_OK,
    Status.FAILED: EXIT_FAILED,
    Status.CANCELED: EXIT_CANCELED,
}


def with_scheme(url: str | None) -> str | None:
    """``127.0.0.1:8888`` is taken as ``http://127.0.0.1:8888``: a bare HOST:PORT means http."""
    if url is None:
        return None
    text = url.strip()
    return text if not text or "://" in text else "http://" + text


class _ParsedCommand(Protocol):
    """A parsed command's context (typer's, or the group's above it)."""

    def get_parameter_source(self, name: str) -> Any: ...


def from_command_line(ctx: _ParsedCommand, name: str) -> bool:
    """Whether the option ``name`` of ``ctx``'s command was typed (not from env or default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _shared(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """An option given after the command wins; else the same option given before it
    (``tasky --url U tasks``); else the command's own value (its environment variable)."""
    root = ctx.find_root()
    if param.name is None or root is ctx or from_command_line(ctx, param.name):
        return value
    if not from_command_line(root, param.name):
        return value
    return root.params.get(param.name, value)


def _shared_url(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    return with_scheme(_shared(ctx, param, value))


URL_HELP = f"The Tasky server, http(s)://HOST:PORT (default {DEFAULT_URL}; HOST:PORT means http)."
BEARER_HELP = "Bearer token, if the server requires one."
JSON_HELP = "Print JSON for scripts instead of tables."

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TASKY_URL",
        help=URL_HELP,
        show_default=False,
        callback=_shared_url,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TASKY_TOKEN",
        help=BEARER_HELP,
        show_default=False,
        callback=_shared,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP, callback=_shared)]

STATUS_STYLE = {
    Status.QUEUED: "cyan",
    Status.RUNNING: "bold blue",
    Status.PAUSED: "magenta",
    Status.COMPLETED: "green",
    Status.FAILED: "bold red",
    Status.CANCELED: "yellow",
}


@dataclass
class Session:
    client: Client
    json: bool
    out: Console
    err: Console

    def emit(self, value: Any) -> None:
        """Machine output: one JSON document on stdout (keys in the server's order)."""
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def emit_line(self, value: Any) -> None:
        """Machine output for streams: one compact JSON object per line."""
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def fail(self, message: str, code: int, **extra: Any) -> NoReturn:
        fail(self.json, self.err, message, code, **extra)

    def unknown_worker(self, name: str) -> NoReturn:
        names = [w.name for w in self.client.workers()]
        close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1)
        suggestion = next((n for n in names if close and n.lower() == close[0]), None)
        hint = f" Did you mean {suggestion}?" if suggestion else ""
        self.fail(
            f"unknown worker {name!r}.{hint} Workers: {', '.join(names) or '(none)'}",
            EXIT_USAGE,
            Workers=names,
        )


def fail(json_output: bool, err: Console, message: str, code: int, **extra: Any) -> NoReturn:
    """Report an error (JSON on stderr with --json, a red line and a hint otherwise) and exit."""
    if json_output:
        sys.stderr.write(json.dumps({"Error": message, **extra}, ensure_ascii=False) + "\n")
    else:
        err.print(f"[bold red]error:[/] {safe(message)}", highlight=False)
        hint = extra.get("Hint")
        if hint:
            err.print(visible(str(hint)), style="dim", highlight=False, markup=False)
    raise typer.Exit(code)


def status_text(status: Status) -> str:
    return f"[{STATUS_STYLE.get(status, '')}]{status.value}[/]"


@contextlib.contextmanager
def session(
    url: str | None, token: str | None, json_output: bool, *, timeout: float = 30.0
) -> Iterator[Session]:
    """A connected Session; every client error becomes a clear message and an exit code."""
    out = Console(highlight=False, soft_wrap=False)
    err = Console(stderr=True, highlight=False)
    try:
        client = Client(url, token=token, timeout=timeout)
    except ValueError as exc:
        fail(json_output, err, str(exc), EXIT_USAGE)
    s = Session(client, json_output, out, err)
    try:
        with client:
            yield s
    except ServerUnreachable as exc:
        s.fail(
            exc.message,
            EXIT_UNREACHABLE,
            Url=exc.url,
            Hint="Is the server running (tasky serve)? Point --url or TASKY_URL at it.",
        )
    except Unauthorized as exc:
        s.fail(
            exc.message, EXIT_REFUSED, Hint="Give the server's token with --token or TASKY_TOKEN."
        )
    except Forbidden as exc:
        s.fail(exc.message, EXIT_REFUSED, Hint="This token's role does not allow it; ask an admin.")
    except TooManyRequests as exc:
        s.fail(exc.message, EXIT_REFUSED, Hint="This token's rate limit is reached; retry later.")
    except ValidationFailed as exc:
        if not s.json:
            s.err.print(f"[bold red]error:[/] {safe(_first_line(exc.message))}", highlight=False)
            for field in exc.fields:
                s.err.print(f"  [bold]{safe(field.field)}[/]: {safe(field.message)}")
            raise typer.Exit(EXIT_USAGE) from None
        s.fail(exc.message, EXIT_USAGE, **exc.body)
    except WaitTimeout as exc:
        s.fail(exc.message, EXIT_TIMEOUT, TaskId=exc.task_id)
    except Conflict as exc:
        extra = {"Status": exc.status.value} if exc.status else {}
        s.fail(exc.message, EXIT_REFUSED, **extra)
    except BadRequest as exc:
        s.fail(exc.message, EXIT_USAGE)
    except NotFound as exc:
        s.fail(exc.message, EXIT_REFUSED)
    except TaskyError as exc:
        s.fail(exc.message, EXIT_REFUSED)
    except ConfigError as exc:
        s.fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        s.err.print("interrupted", style="yellow")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _first_line(message: str) -> str:
    # The server's 422 message lists every field after a colon; the lines below show them.
    head, sep, _ = message.partition(": ")
    return head if sep else message
