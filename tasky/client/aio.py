"""``tasky.AsyncClient``: the asyncio Python client (the same methods as ``Client``, awaited)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from tasky.client import _calls as calls
from tasky.client import models as m
from tasky.client._http1_async import AsyncExchange
from tasky.client._sse import SSEDecoder
from tasky.client._watch import LOG_PAGE, RECONNECT_GRACE, NoEvents, Step, Tracker
from tasky.client.errors import ServerUnreachable, TaskyError, error_from_response
from tasky.ids import is_valid_id

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")

# aiohttp closes a kept-alive connection unused for this long: before the server's own
# keep-alive timeout (5 s by default) closes it under a request.
_KEEPALIVE = 4.0
_MAX_CONNECTIONS = 100
# CPython before 3.12.8 (and 3.13.0) can leave the socket of a closed TLS connection open (an
# event stream closed before its end, say: python/cpython#118960); aiohttp then aborts those
# sockets itself when asked to. Later versions do not need it (aiohttp warns if asked).
_TLS_CLEANUP = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


def _default_transport(
    url: str, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncBaseTransport:
    """httpx over aiohttp: httpx's own pool slows down badly with many requests in flight (a
    known httpx issue; measured in docs/benchmarks.md), aiohttp's does not.

    aiohttp is imported here, not with the module: ``tasky.Client`` and every command of the
    command line import this package, and aiohttp's import alone (it builds TLS contexts as
    it loads) cost them about 0.1 s each."""
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    proxy = calls.environment_proxy(url)
    if ssl_context is None:
        ssl_context = httpx.create_ssl_context()  # httpx's trust: certifi, or SSL_CERT_FILE

    def session() -> aiohttp.ClientSession:
        # Made on the first request, inside the event loop that will use it.
        connector = aiohttp.TCPConnector(
            limit=_MAX_CONNECTIONS,
            keepalive_timeout=_KEEPALIVE,
            ssl=ssl_context,
            enable_cleanup_closed=_TLS_CLEANUP,
        )
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(proxy=httpx.Proxy(proxy) if proxy else None, client=session)


class AsyncClient:
    """Talks to one Tasky server from asyncio code. See :class:`tasky.Client`.

    ``use_events`` (default: on, except over ``httpx.ASGITransport``, which buffers whole
    responses and so cannot stream events) picks the event stream over polling for ``wait``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        use_events: bool | None = None,
        reconnect_grace: float = RECONNECT_GRACE,
    ) -> None:
        self.url = calls.base_url(url)
        self.timeout = timeout
        if use_events is None:
            use_events = not isinstance(transport, httpx.ASGITransport)
        self._use_events = use_events
        self.reconnect_grace = reconnect_grace
        self._requests = calls.RequestBuilder(self.url, token, timeout)
        # Plain calls (a request, then its whole answer) go through the lean exchange, unless a
        # transport was given or an environment proxy applies; event streams go through httpx
        # over aiohttp (see tasky.client._http1_async for why, with figures).
        self._lean: AsyncExchange | None = None
        if transport is None and calls.environment_proxy(self.url) is None:
            context = httpx.create_ssl_context() if self.url.startswith("https:") else None
            self._lean = AsyncExchange(ssl_context=context)
            self._transport = _default_transport(self.url, context)
        else:
            self._transport = transport or _default_transport(self.url)

    # -- plumbing -------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        await self._transport.aclose()

    async def _send(self, call: calls.Call[T]) -> T:
        lean = self._lean
        if lean is not None and call.method != "HEAD":
            url, head, body = self._requests.raw(call)
            try:
                status, headers, content = await lean.exchange(
                    url, head, body, self._requests.timeouts
                )
            except httpx.TransportError as exc:
                raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
            return self._requests.answer(call, status, headers, content)
        # Straight to the transport, as the blocking client does (see Client._send).
        request = self._requests.build(call)
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        return call.finish(response)

    # -- workers --------------------------------------------------------------------------------
    async def nodes(self) -> list[m.NodeInfo]:
        """The nodes sharing the server's store, with their labels, workers and liveness."""
        return await self._send(calls.list_nodes())

    async def workers(self) -> list[m.WorkerInfo]:
        return await self._send(calls.list_workers())

    async def worker(self, name: str | type[Any]) -> m.WorkerInfo:
        return await self._send(calls.worker_info(calls.worker_name(name)))

    async def worker_statistics(self, name: str | type[Any]) -> m.WorkerStatistics:
        return await self._send(calls.worker_statistics(calls.worker_name(name)))

    async def submit(
        self,
        worker: str | type[Any],
        config: Mapping[str, Any] | BaseModel | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        idempotency_key: str | None = None,
        callback: str | None = None,
        node: str | None = None,
        label: str | None = None,
        wait_for_node: bool = False,
    ) -> str:
        return await self._send(
            calls.submit(
                calls.worker_name(worker),
                calls.config_json(config),
                timeout,
                retries,
                idempotency_key,
                callback,
                node,
                label,
                wait_for_node,
            )
        )

    async def submit_many(
        self,
        worker: str | type[Any],
        configs: Iterable[Mapping[str, Any] | BaseModel | None],
        *,
        timeout: float | None = None,
        retries: int | None = None,
        chunk_size: int = calls.DEFAULT_CHUNK,
        idempotency_key: str | None = None,
    ) -> list[str]:
        """Create one task per config (``None``: the defaults); their ids, in order.

        The configs go ``chunk_size`` per request (POST /workers/NAME/batch); each chunk is
        created whole or not at all, so an invalid config refuses its chunk
        (:class:`ValidationFailed`, indexes counted from the first config). When chunks before
        it were created, :class:`BatchIncomplete` says which (``task_ids``) and why (``error``).
        With ``idempotency_key`` K, the chunk starting at config i is sent with the key ``K@i``:
        calling again with the same configs and key after a failure creates only what is missing.
        """
        name = calls.worker_name(worker)
        created: list[str] = []
        for start, chunk in calls.chunks(configs, chunk_size):
            try:
                key = calls.chunk_key(idempotency_key, start)
                ids: list[str] = await self._send(
                    calls.submit_batch(name, chunk, timeout, retries, key)
                )
                created += ids
            except TaskyError as exc:
                raise calls.batch_failure(exc, start, created) from None
        return created

    # -- tasks ----------------------------------------------------------------------------------
    async def get(self, task_id: str) -> m.Task:
        return await self._send(calls.get_task(task_id))

    async def status(self, task_id: str) -> m.TaskStatus:
        return await self._send(calls.status(task_id))

    async def result(self, task_id: str) -> m.TaskResult:
        return await self._send(calls.result(task_id))

    async def logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> m.LogPage:
        return await self._send(calls.logs(task_id, after, limit))

    async def task_statistics(self, task_id: str) -> m.TaskStatistics:
        return await self._send(calls.task_statistics(task_id))

    async def cancel(self, task_id: str) -> m.TaskStatus:
        return await self._send(calls.cancel(task_id))

    async def pause(self, task_id: str) -> m.TaskStatus:
        return await self._send(calls.action(task_id, "pause"))

    async def resume(self, task_id: str) -> m.TaskStatus:
        return await self._send(calls.action(task_id, "resume"))

    async def run(self, task_id: str) -> m.TaskStatus:
        return await self._send(calls.action(task_id, "run"))

    async def update(self, task_id: str, config: Mapping[str, Any] | BaseModel) -> m.TaskUpdated:
        return await self._send(calls.update(task_id, calls.config_json(config)))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        worker: str | None = None,
        chain: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        order: str = "asc",
    ) -> m.TaskPage:
        return await self._send(
            calls.list_tasks(
                status=status, worker=worker, chain=chain, limit=limit, cursor=cursor, order=order
            )
        )

    async def iter_tasks(
        self,
        *,
        status: str | None = None,
        worker: str | None = None,
        chain: str | None = None,
        order: str = "asc",
        page_size: int = 100,
    ) -> AsyncGenerator[m.TaskSummary, None]:
        cursor: str | None = None
        while True:
            page = await self.list_tasks(
                status=status,
                worker=worker,
                chain=chain,
                limit=page_size,
                cursor=cursor,
                order=order,
            )
            for task in page.tasks:
                yield task
            if page.next_cursor is None or not page.tasks:
                return
            cursor = page.next_cursor

    # -- chains ---------------------------------------------------------------------------------
    async def create_chain(
        self, spec: Mapping[str, Any] | BaseModel, *, idempotency_key: str | None = None
    ) -> str:
        """Start a chain from a definition (a dict, or tasky.chains.model.ChainSpec); its id."""
        return await self._send(calls.create_chain(calls.config_json(spec), idempotency_key))

    async def chain(self, chain_id: str) -> m.Chain:
        """A chain with each step's status, task, output, and the chain's result."""
        return await self._send(calls.get_chain(chain_id))

    async def list_chains(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        order: str = "asc",
    ) -> m.ChainPage:
        return await self._send(
            calls.list_chains(status=status, limit=limit, cursor=cursor, order=order)
        )

    async def iter_chains(
        self, *, status: str | None = None, order: str = "asc", page_size: int = 100
    ) -> AsyncGenerator[m.ChainSummary, None]:
        cursor: str | None = None
        while True:
            page = await self.list_chains(
                status=status, limit=page_size, cursor=cursor, order=order
            )
            for chain in page.chains:
                yield chain
            if page.next_cursor is None or not page.chains:
                return
            cursor = page.next_cursor

    async def cancel_chain(self, chain_id: str) -> m.Chain:
        return await self._send(calls.chain_action(chain_id, "cancel"))

    async def pause_chain(self, chain_id: str) -> m.Chain:
        return await self._send(calls.chain_action(chain_id, "pause"))

    async def resume_chain(self, chain_id: str) -> m.Chain:
        return await self._send(calls.chain_action(chain_id, "resume"))

    async def restart_chain(self, chain_id: str) -> m.Chain:
        """Run a Failed or Canceled chain again from the steps that did not complete."""
        return await self._send(calls.chain_action(chain_id, "restart"))

    async def chain_definitions(self) -> list[m.ChainDefinition]:
        return await self._send(calls.chain_definitions())

    async def chain_definition(self, name: str) -> m.ChainDefinition:
        return await self._send(calls.chain_definition(name))

    async def put_chain_definition(
        self, name: str, spec: Mapping[str, Any] | BaseModel
    ) -> m.ChainDefinition:
        """Save (create or replace) a named chain definition."""
        return await self._send(calls.put_chain_definition(name, calls.config_json(spec)))

    async def delete_chain_definition(self, name: str) -> None:
        await self._send(calls.delete_chain_definition(name))

    # -- schedules ------------------------------------------------------------------------------
    async def schedules(self) -> list[m.Schedule]:
        """Every schedule with its next and last run."""
        return await self._send(calls.schedules())

    async def schedule(self, name: str) -> m.Schedule:
        return await self._send(calls.schedule(name))

    async def create_schedule(self, spec: Mapping[str, Any]) -> m.Schedule:
        """Create a schedule: ``name``, ``worker`` + ``config`` or ``chain`` + ``parameters``,
        ``cron`` or ``interval`` (seconds); optionally ``timezone``, ``catch_up``, ``paused``."""
        return await self._send(calls.create_schedule(dict(spec)))

    async def delete_schedule(self, name: str) -> None:
        await self._send(calls.delete_schedule(name))

    async def pause_schedule(self, name: str) -> m.Schedule:
        return await self._send(calls.schedule_action(name, "pause"))

    async def resume_schedule(self, name: str) -> m.Schedule:
        """Resume from now: the time it was paused is not caught up."""
        return await self._send(calls.schedule_action(name, "resume"))

    async def run_schedule(self, name: str) -> m.Schedule:
        """Run once now, outside the timetable; ``.last_task_id`` (or ``.last_chain_id``) is it."""
        return await self._send(calls.schedule_action(name, "run"))

    # -- tokens and the audit log (admin tokens only) -------------------------------------------
    async def tokens(self) -> list[m.TokenInfo]:
        """The server's API tokens (names, roles, dates; never the tokens)."""
        return await self._send(calls.tokens())

    async def create_token(
        self,
        name: str,
        role: str,
        *,
        workers: list[str] | None = None,
        expires_days: float | None = None,
    ) -> m.CreatedToken:
        """Create a token; ``.token`` holds it, shown this once."""
        return await self._send(calls.create_token(name, role, workers, expires_days))

    async def revoke_token(self, name: str) -> None:
        await self._send(calls.revoke_token(name))

    async def audit(
        self, *, limit: int | None = None, cursor: str | None = None, order: str = "asc"
    ) -> m.AuditPage:
        """One page of the audit log of state-changing calls."""
        return await self._send(calls.audit(limit=limit, cursor=cursor, order=order))

    async def prune(
        self, older_than: float, *, worker: str | None = None, dry_run: bool = False
    ) -> m.PruneResult:
        """Prune finished tasks (and, without ``worker``, chains) that finished more than
        ``older_than`` seconds ago; with ``dry_run``, only count them. Admin tokens only."""
        return await self._send(calls.prune(older_than, worker, dry_run))

    async def start_chain(
        self,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Start a named definition, its parameters overridden by ``parameters``; the chain id."""
        return await self._send(calls.start_chain(name, parameters, idempotency_key))

    async def wait_chain(self, chain_id: str, timeout: float | None = None) -> m.Chain:
        """Until the chain has finished; the chain. :class:`WaitTimeout` after ``timeout``.

        Chain events on the event stream wake it up; without a stream it polls.
        """
        tracker = Tracker(chain_id, timeout, False, self.reconnect_grace, kind="chain")
        params = {"chain": chain_id, "type": "chain"}
        while True:
            try:
                if self._use_events and is_valid_id(chain_id):
                    try:
                        async with self._event_stream(tracker, params) as lines:
                            chain = await self._read_chain(tracker)
                            if chain.finished:
                                return chain
                            done = await self._chain_events(tracker, lines)
                            if done is not None:
                                return done
                    except NoEvents:
                        self._use_events = False
                else:
                    chain = await self._read_chain(tracker)
                    if chain.finished:
                        return chain
                    tracker.check_deadline()
                    await asyncio.sleep(tracker.next_poll(False))
            except ServerUnreachable:
                if not tracker.may_retry():
                    raise
                await asyncio.sleep(tracker.reconnect_pause())
            tracker.check_deadline()

    async def _read_chain(self, tracker: Tracker) -> m.Chain:
        chain = await self.chain(tracker.task_id)
        tracker.reached()
        tracker.last_chain = chain
        return chain

    async def _chain_events(self, tracker: Tracker, lines: AsyncIterator[str]) -> m.Chain | None:
        """Re-read the chain on each of its events; the chain once finished, else None when the
        stream ends (the caller reconnects)."""
        decoder = SSEDecoder()
        decoder.last_id = tracker.last_event_id
        try:
            async for line in lines:
                event = decoder.feed(line)
                tracker.last_event_id = decoder.last_id
                if event is not None:
                    chain = await self._read_chain(tracker)
                    if chain.finished:
                        return chain
                tracker.check_deadline()
            await asyncio.sleep(tracker.reconnect_pause())
        except httpx.ReadTimeout:
            pass
        except httpx.TransportError:  # the server went away mid-stream: reconnect
            await asyncio.sleep(tracker.reconnect_pause())
        return None

    # -- following a task -----------------------------------------------------------------------
    async def wait(self, task_id: str, timeout: float | None = None) -> m.TaskStatus:
        """Until the task has finished; its final status. :class:`WaitTimeout` after ``timeout``."""
        last: m.TaskStatus | None = None
        async with contextlib.aclosing(self.watch(task_id, timeout=timeout)) as updates:
            async for update in updates:
                last = update
        assert last is not None  # watch always yields the final status
        return last

    async def watch(
        self, task_id: str, timeout: float | None = None
    ) -> AsyncGenerator[m.TaskStatus, None]:
        async with contextlib.aclosing(self.follow(task_id, timeout=timeout, logs=False)) as items:
            async for item in items:
                if isinstance(item, m.TaskStatus):
                    yield item

    async def follow(
        self, task_id: str, timeout: float | None = None, *, logs: bool = True
    ) -> AsyncGenerator[m.TaskStatus | m.LogLine, None]:
        """Status changes and (with ``logs``) log lines until the task finishes (status last)."""
        tracker = Tracker(task_id, timeout, logs, self.reconnect_grace)
        # The stream refuses a malformed id (400); the status read reports it as NotFound.
        if self._use_events and is_valid_id(task_id):
            try:
                async with contextlib.aclosing(self._follow_events(tracker)) as items:
                    async for item in items:
                        yield item
                return
            except NoEvents:
                self._use_events = False
        async with contextlib.aclosing(self._follow_polling(tracker)) as items:
            async for item in items:
                yield item

    async def _refresh(self, tracker: Tracker) -> list[m.TaskStatus | m.LogLine]:
        status = await self.status(tracker.task_id)
        out: list[m.TaskStatus | m.LogLine] = []
        if tracker.want_logs:
            out.extend(await self._new_logs(tracker))
        if tracker.see(status):
            out.append(status)
        return out

    async def _new_logs(self, tracker: Tracker) -> list[m.LogLine]:
        lines: list[m.LogLine] = []
        while True:
            page = await self.logs(tracker.task_id, after=tracker.log_after, limit=LOG_PAGE)
            lines.extend(page.lines)
            tracker.log_after = page.next
            if len(page.lines) < LOG_PAGE:
                return lines

    async def _follow_polling(
        self, tracker: Tracker
    ) -> AsyncGenerator[m.TaskStatus | m.LogLine, None]:
        while True:
            items: list[m.TaskStatus | m.LogLine] = []
            try:
                items = await self._refresh(tracker)
            except ServerUnreachable:
                if not tracker.may_retry():
                    raise
            for item in items:
                yield item
            if tracker.finished:
                return
            tracker.check_deadline()
            await asyncio.sleep(tracker.next_poll(bool(items)))

    async def _follow_events(
        self, tracker: Tracker
    ) -> AsyncGenerator[m.TaskStatus | m.LogLine, None]:
        while True:
            try:
                async with self._event_stream(tracker) as lines:
                    # Subscribed first, then read the status: nothing can slip between the two.
                    for item in await self._refresh(tracker):
                        yield item
                    if tracker.finished:
                        return
                    async with contextlib.aclosing(self._read_events(tracker, lines)) as items:
                        async for item in items:
                            yield item
                    if tracker.finished:
                        return
            except ServerUnreachable:
                # A server that went away mid-follow (a restart) gets some time to come back.
                if not tracker.may_retry():
                    raise
                await asyncio.sleep(tracker.reconnect_pause())
            tracker.check_deadline()

    async def _read_events(
        self, tracker: Tracker, lines: AsyncIterator[str]
    ) -> AsyncGenerator[m.TaskStatus | m.LogLine, None]:
        """Act on events until the task finishes or the stream ends (the caller reconnects)."""
        decoder = SSEDecoder()
        decoder.last_id = tracker.last_event_id
        try:
            async for line in lines:
                event = decoder.feed(line)
                # Keep-alives carry ids too: a reconnect resumes from the newest one.
                tracker.last_event_id = decoder.last_id
                if event is None:
                    continue
                step = tracker.on_event(event.json())
                if step is Step.REFRESH:
                    for item in await self._refresh(tracker):
                        yield item
                    if tracker.finished:
                        return
                elif step is Step.CHANGED:
                    assert tracker.current is not None
                    yield tracker.current
                elif step is Step.LOGS:
                    for line_item in await self._new_logs(tracker):
                        yield line_item
                tracker.check_deadline()
            # The server ended the stream (restart, shutdown): reconnect after a pause.
            await asyncio.sleep(tracker.reconnect_pause())
        except httpx.ReadTimeout:
            pass  # quiet for a while: reconnecting re-reads the status
        except httpx.TransportError:  # the server went away mid-stream: reconnect
            await asyncio.sleep(tracker.reconnect_pause())

    @contextlib.asynccontextmanager
    async def _event_stream(
        self, tracker: Tracker, params: dict[str, str] | None = None
    ) -> AsyncIterator[AsyncIterator[str]]:
        headers = {"Accept": "text/event-stream"}
        if tracker.last_event_id:
            headers["Last-Event-ID"] = tracker.last_event_id
        request = self._requests.build(
            calls.events(params or {"task": tracker.task_id}),
            headers=headers,
            read_timeout=tracker.read_timeout(),
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        try:
            if response.status_code in (404, 405):
                raise NoEvents
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            yield response.aiter_lines()
        finally:
            await response.aclose()
