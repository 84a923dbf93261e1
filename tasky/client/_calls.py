"""The API calls, described once for both clients (sans I/O).

Each function returns a :class:`Call`: the request to make and how to read the answer. ``Client``
and ``AsyncClient`` only differ in how they send it, so the two cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tasky._version import __version__
from tasky.client import models as m
from tasky.client.errors import (
    BatchIncomplete,
    FieldError,
    ServerError,
    TaskyError,
    ValidationFailed,
    error_from_response,
)

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8888"
PREFIX = "/tasky/v1"
ACTIONS = ("cancel", "pause", "resume", "run")

_WORKERS = TypeAdapter(list[m.WorkerInfo])
_NODES = TypeAdapter(list[m.NodeInfo])


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, str] | None = None
    json: Any = None
    headers: dict[str, str] | None = None

    def finish(self, response: httpx.Response) -> T:
        """The parsed answer, or the typed error for a refusal (the body must be read)."""
        if not 200 <= response.status_code < 300:
            raise error_from_response(response)
        return self.parsed(response.status_code, response.content)

    def parsed(self, status_code: int, content: bytes) -> T:
        """The parsed body of a 2xx answer."""
        try:
            return self.parse(orjson.loads(content))
        except (ValueError, PydanticValidationError) as exc:
            # ValueError covers a body that is not JSON at all (a proxy's HTML page, say).
            raise ServerError(
                f"unexpected answer to {self.method} {self.path}: {exc}",
                status_code=status_code,
            ) from None


def dumps(body: Any) -> bytes:
    """A JSON body, as httpx's own encoder would write it but faster (orjson).

    Like httpx's encoder, NaN and infinities are refused (ValueError): they are not JSON, and
    orjson would write them as null, changing the config in silence. So a body in which orjson
    wrote a null, or one orjson refuses (integers wider than 64 bits), is encoded again by the
    standard library, which settles both.
    """
    try:
        encoded = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        if b"null" not in encoded:
            return encoded
    except TypeError:
        pass
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


_UNSET: Any = object()
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_CACHED_URLS = 1024


class RequestBuilder:
    """Turns a :class:`Call` into an :class:`httpx.Request` with the per-client work done once:
    the headers, the timeouts, and the parsed URL of each path already used (a submit to the same
    worker, the status of the same task)."""

    def __init__(self, base: str, token: str | None, timeout: float) -> None:
        self.base = base
        agent = f"tasky-client/{__version__}".encode()
        common = [(b"Accept", b"*/*"), (b"User-Agent", agent)]
        common += [(k.encode(), v.encode("latin-1")) for k, v in auth_headers(token).items()]
        self._plain = common
        self._json = [*common, (b"Content-Type", b"application/json")]
        self.timeout = httpx.Timeout(timeout)
        self._extensions = {"timeout": self.timeout.as_dict()}
        self.timeouts: dict[str, float | None] = self.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self._heads: dict[tuple[str, str], tuple[httpx.URL, bytes]] = {}

    def url(self, path: str, params: Mapping[str, str] | None) -> httpx.URL:
        target = path + "?" + urlencode(params, quote_via=quote) if params else path
        url = self._urls.get(target)
        if url is None:
            url = httpx.URL(self.base + target)
            if len(self._urls) >= _CACHED_URLS:
                self._urls.clear()
            self._urls[target] = url
        return url

    def build(
        self,
        call: Call[Any],
        *,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = _UNSET,
    ) -> httpx.Request:
        extra = {**(call.headers or {}), **(headers or {})}
        if call.json is not None:
            content: bytes | None = dumps(call.json)
            raw = self._json
        elif call.method in _BODILESS:
            content = None
            raw = self._plain
        else:
            # A POST without a body still says JSON: some transports (aiohttp) would otherwise
            # label the empty body application/octet-stream, which the server refuses (415).
            content = b""
            raw = self._json
        if extra:
            raw = [*raw, *((k.encode(), v.encode("latin-1")) for k, v in extra.items())]
        extensions = self._extensions
        if read_timeout is not _UNSET:
            extensions = {"timeout": {**self._extensions["timeout"], "read": read_timeout}}
        return httpx.Request(
            call.method,
            self.url(call.path, call.params),
            headers=raw,
            content=content,
            extensions=extensions,
        )

    def answer(
        self, call: Call[T], status: int, headers: list[tuple[bytes, bytes]], content: bytes
    ) -> T:
        """What a lean exchange's answer to ``call`` means: its value, or for a refusal the typed
        error, which reads an httpx response as from any transport."""
        if 200 <= status < 300:
            return call.parsed(status, content)
        refusal = httpx.Response(status, headers=headers, content=content, request=self.build(call))
        return call.finish(refusal)

    def raw(self, call: Call[Any]) -> tuple[httpx.URL, bytes, bytes]:
        """The call as bytes for ``Http1Transport.exchange``: its URL, its request line and
        headers, and its body; what httpx would send. The head is built through httpx once per
        method and target (httpx checks the URL and the headers then); a call with headers of
        its own (an idempotency key, unique to the call) is built through httpx every time.
        """
        content = dumps(call.json) if call.json is not None else b""
        target = (
            call.path + "?" + urlencode(call.params, quote_via=quote) if call.params else call.path
        )
        cached = None if call.headers else self._heads.get((call.method, target))
        if cached is None:
            request = self.build(call)
            lines = [call.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
            for name, value in request.headers.raw:
                if name.lower() not in (b"content-length", b"transfer-encoding"):
                    lines += [name, b": ", value, b"\r\n"]
            cached = request.url, b"".join(lines)
            if not call.headers:
                if len(self._heads) >= _CACHED_URLS:
                    self._heads.clear()
                self._heads[(call.method, target)] = cached
        url, head = cached
        if content or call.method not in _BODILESS:
            head += b"Content-Length: %d\r\n" % len(content)
        return url, head + b"\r\n", content


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, minus ``NO_PROXY``), which the clients go through as httpx would."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def base_url(url: str | None) -> str:
    """The API root for a server URL (``http://host:port`` or the ``.../tasky/v1`` root itself)."""
    raw = (url or os.environ.get("TASKY_URL") or DEFAULT_URL).strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the server URL must look like http://HOST:PORT, not {raw!r}")
    return raw if parts.path.endswith(PREFIX) else raw + PREFIX


def auth_headers(token: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get("TASKY_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def worker_name(worker: str | type[Any]) -> str:
    """A worker is named by a string or by its class (anything with a ``name``)."""
    name: Any = worker if isinstance(worker, str) else getattr(worker, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a worker name or a Worker class, got {worker!r}")
    if not name:
        raise ValueError("the worker name is empty")
    return name


def config_json(config: Mapping[str, Any] | BaseModel | None) -> dict[str, Any]:
    """A config as JSON: a mapping as it is, a pydantic model (the worker's Config) dumped."""
    if config is None:
        return {}
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json", by_alias=True)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a config is a dict or a pydantic model, not {type(config).__name__}")


def _seg(value: str) -> str:
    # Quote every path segment: an id or name can never reach another route.
    if not value:
        raise ValueError("an empty id or name")
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, str]:
    return {k: _plain(v) for k, v in values.items() if v is not None and v != ""}


def _plain(value: Any) -> str:
    # The server reads plain decimals only: str(1e-05) would be "1e-05".
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def list_nodes() -> Call[list[m.NodeInfo]]:
    return Call("GET", "/nodes", lambda body: _NODES.validate_python(body["Nodes"]))


def list_workers() -> Call[list[m.WorkerInfo]]:
    return Call("GET", "/workers", _WORKERS.validate_python)


def worker_info(name: str) -> Call[m.WorkerInfo]:
    return Call("GET", f"/workers/{_seg(name)}/info", m.WorkerInfo.model_validate)


def worker_statistics(name: str) -> Call[m.WorkerStatistics]:
    return Call("GET", f"/workers/{_seg(name)}/statistics", m.WorkerStatistics.model_validate)


def idempotency(key: str | None) -> dict[str, str] | None:
    """The ``Idempotency-Key`` header: a retry with the same key and request answers with the
    first request's id instead of creating a second task (or chain)."""
    return None if key is None else {"Idempotency-Key": key}


def _task_id(body: Any) -> str:
    value = body.get("TaskId") if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise ValueError("no TaskId in the answer")
    return value


def submit(
    worker: str,
    config: dict[str, Any],
    timeout: float | None,
    retries: int | None,
    idempotency_key: str | None = None,
    callback: str | None = None,
    node: str | None = None,
    label: str | None = None,
    wait_for_node: bool = False,
) -> Call[str]:
    return Call(
        "POST",
        f"/workers/{_seg(worker)}",
        _task_id,
        params=_params(
            timeout=timeout,
            retries=retries,
            callback=callback,
            node=node,
            label=label,
            wait_for_node="true" if wait_for_node else None,
        ),
        json=config,
        headers=idempotency(idempotency_key),
    )


def events(params: dict[str, str]) -> Call[None]:
    """The event stream (``text/event-stream``): read line by line, never parsed as JSON."""
    return Call("GET", "/events", lambda body: None, params=params)


DEFAULT_CHUNK = 1000


def _task_ids(body: Any) -> list[str]:
    value = body.get("TaskIds") if isinstance(body, dict) else None
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ValueError("no TaskIds in the answer")
    return value


def submit_batch(
    worker: str,
    configs: list[dict[str, Any]],
    timeout: float | None,
    retries: int | None,
    idempotency_key: str | None = None,
) -> Call[list[str]]:
    """One batch: its configs created in one transaction, all or none."""
    return Call(
        "POST",
        f"/workers/{_seg(worker)}/batch",
        _task_ids,
        params=_params(timeout=timeout, retries=retries),
        json=configs,
        headers=idempotency(idempotency_key),
    )


def chunk_key(key: str | None, start: int) -> str | None:
    """The key of the chunk starting at config ``start``: a retry of the same configs with the
    same key sends the same chunks with the same keys, so each is answered, not made again."""
    return None if key is None else f"{key}@{start}"


def chunks(
    configs: Iterable[Mapping[str, Any] | BaseModel | None], size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(index of its first config, the chunk as JSON) for each ``size`` configs, read lazily."""
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    source = iter(configs)
    start = 0
    while chunk := [config_json(c) for c in itertools.islice(source, size)]:
        yield start, chunk
        start += len(chunk)


def batch_failure(error: TaskyError, start: int, created: list[str]) -> TaskyError:
    """What a chunked submit_many raises when the chunk from ``start`` was refused: indexes in a
    422 counted from the caller's first config, and with chunks created before it,
    :class:`BatchIncomplete` carrying their ids."""
    if isinstance(error, ValidationFailed) and start:
        error = shifted(error, start)
    return BatchIncomplete(created, error) if created else error


def shifted(error: ValidationFailed, start: int) -> ValidationFailed:
    def moved(match: re.Match[str]) -> str:
        return f"[{int(match.group(1)) + start}]"

    fields = [
        FieldError(_INDEX.sub(moved, f.field, count=1), f.message, f.type) for f in error.fields
    ]
    body = dict(error.body)
    if isinstance(body.get("Indexes"), list):
        body["Indexes"] = [i + start for i in body["Indexes"] if isinstance(i, int)]
    if isinstance(body.get("Fields"), list):
        body["Fields"] = [_moved_field(f, start) for f in body["Fields"]]
    message = error.message
    if body.get("Indexes"):
        message = "invalid config at index " + ", ".join(map(str, body["Indexes"][:20]))
        message += "; no task of that chunk was created: "
        message += "; ".join(f"{f.field}: {f.message}" for f in fields)
    return ValidationFailed(message, status_code=error.status_code, body=body, fields=fields)


_INDEX = re.compile(r"^\[(\d+)\]")


def _moved_field(raw: Any, start: int) -> Any:
    """A ``Fields`` entry of a batch's 422 with its index counted from the first config."""
    if not isinstance(raw, dict) or not isinstance(raw.get("index"), int):
        return raw
    index = raw["index"] + start
    field = _INDEX.sub(f"[{index}]", str(raw.get("field", "")), count=1)
    return {**raw, "index": index, "field": field}


def get_task(task_id: str) -> Call[m.Task]:
    return Call("GET", f"/tasks/{_seg(task_id)}", m.Task.model_validate)


def status(task_id: str) -> Call[m.TaskStatus]:
    return Call("GET", f"/tasks/{_seg(task_id)}/status", m.TaskStatus.model_validate)


def result(task_id: str) -> Call[m.TaskResult]:
    return Call("GET", f"/tasks/{_seg(task_id)}/result", m.TaskResult.model_validate)


def logs(task_id: str, after: int = 0, limit: int | None = None) -> Call[m.LogPage]:
    return Call(
        "GET",
        f"/tasks/{_seg(task_id)}/logs",
        m.LogPage.model_validate,
        params=_params(after=after or None, limit=limit),
    )


def task_statistics(task_id: str) -> Call[m.TaskStatistics]:
    return Call("GET", f"/tasks/{_seg(task_id)}/statistics", m.TaskStatistics.model_validate)


def cancel(task_id: str) -> Call[m.TaskStatus]:
    return Call("POST", f"/tasks/{_seg(task_id)}/cancel", m.TaskStatus.model_validate)


def action(task_id: str, name: str) -> Call[m.TaskStatus]:
    if name not in ACTIONS:
        raise ValueError(f"unknown action {name!r}; use one of {', '.join(ACTIONS)}")
    return Call(
        "POST",
        f"/tasks/{_seg(task_id)}/actions",
        m.TaskStatus.model_validate,
        json={"action": name},
    )


def update(task_id: str, config: dict[str, Any]) -> Call[m.TaskUpdated]:
    return Call("PUT", f"/tasks/{_seg(task_id)}", m.TaskUpdated.model_validate, json=config)


def list_tasks(
    *,
    status: str | None,
    worker: str | None,
    chain: str | None,
    limit: int | None,
    cursor: str | None,
    order: str,
) -> Call[m.TaskPage]:
    if order not in ("asc", "desc"):
        raise ValueError("order must be 'asc' or 'desc'")
    return Call(
        "GET",
        "/tasks",
        m.TaskPage.model_validate,
        params=_params(
            status=status, worker=worker, chain=chain, limit=limit, cursor=cursor, order=order
        ),
    )


# -- chains -------------------------------------------------------------------------------------
CHAIN_ACTIONS = ("cancel", "pause", "resume", "restart")
_DEFINITIONS = TypeAdapter(list[m.ChainDefinition])


def _chain_id(body: Any) -> str:
    value = body.get("ChainId") if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise ValueError("no ChainId in the answer")
    return value


def create_chain(spec: dict[str, Any], idempotency_key: str | None = None) -> Call[str]:
    return Call("POST", "/chains", _chain_id, json=spec, headers=idempotency(idempotency_key))


def get_chain(chain_id: str) -> Call[m.Chain]:
    return Call("GET", f"/chains/{_seg(chain_id)}", m.Chain.model_validate)


def list_chains(
    *, status: str | None, limit: int | None, cursor: str | None, order: str
) -> Call[m.ChainPage]:
    if order not in ("asc", "desc"):
        raise ValueError("order must be 'asc' or 'desc'")
    return Call(
        "GET",
        "/chains",
        m.ChainPage.model_validate,
        params=_params(status=status, limit=limit, cursor=cursor, order=order),
    )


def chain_action(chain_id: str, name: str) -> Call[m.Chain]:
    if name not in CHAIN_ACTIONS:
        raise ValueError(f"unknown chain action {name!r}; use one of {', '.join(CHAIN_ACTIONS)}")
    return Call(
        "POST", f"/chains/{_seg(chain_id)}/actions", m.Chain.model_validate, json={"action": name}
    )


def chain_definitions() -> Call[list[m.ChainDefinition]]:
    def parse(body: Any) -> list[m.ChainDefinition]:
        return _DEFINITIONS.validate_python(body["Definitions"] if isinstance(body, dict) else None)

    return Call("GET", "/chain-definitions", parse)


def chain_definition(name: str) -> Call[m.ChainDefinition]:
    return Call("GET", f"/chain-definitions/{_seg(name)}", m.ChainDefinition.model_validate)


def put_chain_definition(name: str, spec: dict[str, Any]) -> Call[m.ChainDefinition]:
    return Call(
        "PUT", f"/chain-definitions/{_seg(name)}", m.ChainDefinition.model_validate, json=spec
    )


def delete_chain_definition(name: str) -> Call[None]:
    return Call("DELETE", f"/chain-definitions/{_seg(name)}", lambda body: None)


def start_chain(
    name: str, parameters: Mapping[str, Any] | None, idempotency_key: str | None = None
) -> Call[str]:
    return Call(
        "POST",
        f"/chain-definitions/{_seg(name)}/start",
        _chain_id,
        json={"parameters": dict(parameters or {})},
        headers=idempotency(idempotency_key),
    )


# -- schedules ----------------------------------------------------------------------------------
SCHEDULE_ACTIONS = ("pause", "resume", "run")
_SCHEDULES = TypeAdapter(list[m.Schedule])


def schedules() -> Call[list[m.Schedule]]:
    def parse(body: Any) -> list[m.Schedule]:
        return _SCHEDULES.validate_python(body["Schedules"] if isinstance(body, dict) else None)

    return Call("GET", "/schedules", parse)


def schedule(name: str) -> Call[m.Schedule]:
    return Call("GET", f"/schedules/{_seg(name)}", m.Schedule.model_validate)


def create_schedule(spec: dict[str, Any]) -> Call[m.Schedule]:
    return Call("POST", "/schedules", m.Schedule.model_validate, json=spec)


def delete_schedule(name: str) -> Call[None]:
    return Call("DELETE", f"/schedules/{_seg(name)}", lambda body: None)


def schedule_action(name: str, action: str) -> Call[m.Schedule]:
    if action not in SCHEDULE_ACTIONS:
        raise ValueError(f"unknown schedule action {action!r}")
    return Call("POST", f"/schedules/{_seg(name)}/{action}", m.Schedule.model_validate)


# -- tokens and the audit log (admin) -----------------------------------------------------------
_TOKENS = TypeAdapter(list[m.TokenInfo])


def tokens() -> Call[list[m.TokenInfo]]:
    def parse(body: Any) -> list[m.TokenInfo]:
        return _TOKENS.validate_python(body["Tokens"] if isinstance(body, dict) else None)

    return Call("GET", "/tokens", parse)


def create_token(
    name: str, role: str, workers: list[str] | None, expires_days: float | None
) -> Call[m.CreatedToken]:
    body: dict[str, Any] = {"name": name, "role": role}
    if workers is not None:
        body["workers"] = workers
    if expires_days is not None:
        body["expires_days"] = expires_days
    return Call("POST", "/tokens", m.CreatedToken.model_validate, json=body)


def revoke_token(name: str) -> Call[None]:
    return Call("DELETE", f"/tokens/{_seg(name)}", lambda body: None)


def prune(older_than: float, worker: str | None, dry_run: bool) -> Call[m.PruneResult]:
    body: dict[str, Any] = {"older_than_seconds": older_than, "dry_run": dry_run}
    if worker is not None:
        body["worker"] = worker
    return Call("POST", "/prune", m.PruneResult.model_validate, json=body)


def audit(*, limit: int | None, cursor: str | None, order: str) -> Call[m.AuditPage]:
    if order not in ("asc", "desc"):
        raise ValueError("order must be 'asc' or 'desc'")
    return Call(
        "GET",
        "/audit",
        m.AuditPage.model_validate,
        params=_params(limit=limit, cursor=cursor, order=order),
    )
