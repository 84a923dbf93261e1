"""``tasky.Client``: the blocking Python client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from tasky.client import _calls as calls
from tasky.client import models as m
from tasky.client._http1 import Http1Transport
from tasky.client._sse import SSEDecoder
from tasky.client._watch import LOG_PAGE, RECONNECT_GRACE, NoEvents, Step, Tracker
from tasky.client.errors import ServerUnreachable, TaskyError, error_from_response
from tasky.ids import is_valid_id

T = TypeVar("T")


def _default_transport(url: str) -> httpx.BaseTransport:
    """The lean keep-alive transport, or httpx's own when an environment proxy applies."""
    proxy = calls.environment_proxy(url)
    return httpx.HTTPTransport(proxy=proxy) if proxy else Http1Transport()


class Client:
    """Talks to one Tasky server.

    ``url`` defaults to ``$TASKY_URL``, then http://127.0.0.1:8888; ``token`` to ``$TASKY_TOKEN``.
    ``use_events``: follow tasks over the server's event stream (polling when it has none).
    ``reconnect_grace``: how long ``wait``/``watch``/``follow`` keep trying when the server goes
    away mid-way (a restart) before raising ServerUnreachable.
    Every method raises a :class:`~tasky.client.errors.TaskyError` subclass when the server
    refuses (NotFound, Conflict, ValidationFailed, Unauthorized, ...) or cannot be reached
    (ServerUnreachable). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        use_events: bool = True,
        reconnect_grace: float = RECONNECT_GRACE,
    ) -> None:
        self.url = calls.base_url(url)
        self.timeout = timeout
        self._use_events = use_events
        self.reconnect_grace = reconnect_grace
        self._requests = calls.RequestBuilder(self.url, token, timeout)
        self._transport = transport or _default_transport(self.url)
        # With the lean transport, calls skip httpx's Request and Response objects (an httpx
        # Response is still made for a refusal, which the typed errors read).
        self._lean = self._transport if isinstance(self._transport, Http1Transport) else None

    # -- plumbing -------------------------------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def _send(self, call: calls.Call[T]) -> T:
        lean = self._lean
        if lean is not None and call.method != "HEAD":
            url, head, body = self._requests.raw(call)
            try:
                status, headers, content = lean.exchange(url, head, body, self._requests.timeouts)
            except httpx.TransportError as exc:
                raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
            return self._requests.answer(call, status, headers, content)
        # Straight to the transport: httpx.Client's own layers (URL merging, cookies, auth and
        # redirect handling) cost more per call than the request itself, and none applies here.
        request = self._requests.build(call)
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        return call.finish(response)

    # -- workers --------------------------------------------------------------------------------
    def nodes(self) -> list[m.NodeInfo]:
        """The nodes sharing the server's store, with their labels, workers and liveness."""
        return self._send(calls.list_nodes())

    def workers(self) -> list[m.WorkerInfo]:
        return self._send(calls.list_workers())

    def worker(self, name: str | type[Any]) -> m.WorkerInfo:
        """A worker's description, usage and config schema."""
        return self._send(calls.worker_info(calls.worker_name(name)))

    def worker_statistics(self, name: str | type[Any]) -> m.WorkerStatistics:
        return self._send(calls.worker_statistics(calls.worker_name(name)))

    def submit(
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
        """Create a task; returns its id. ``config`` is a dict or the worker's Config model.

        With ``idempotency_key``, sending the same call again (after a lost answer, say) returns
        the first task's id instead of creating a second task. ``callback``: a URL its final
        record is POSTed to (docs/callbacks.md). ``node`` / ``label``: run it only on the node
        of that name, or on a node with that label (docs/postgres.md); ``wait_for_node``: queue
        it even if no live node matches yet (else the server answers 422).
        """
        return self._send(
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

    def submit_many(
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
                ids: list[str] = self._send(calls.submit_batch(name, chunk, timeout, retries, key))
                created += ids
            except TaskyError as exc:
                raise calls.batch_failure(exc, start, created) from None
        return created

    # -- tasks ----------------------------------------------------------------------------------
    def get(self, task_id: str) -> m.Task:
        return self._send(calls.get_task(task_id))

    def status(self, task_id: str) -> m.TaskStatus:
        return self._send(calls.status(task_id))

    def result(self, task_id: str) -> m.TaskResult:
        """A finished task's result; :class:`Conflict` while it has not finished."""
        return self._send(calls.result(task_id))

    def logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> m.LogPage:
        """Log lines after ``after`` (pass the page's ``next`` to read on)."""
        return self._send(calls.logs(task_id, after, limit))

    def task_statistics(self, task_id: str) -> m.TaskStatistics:
        return self._send(calls.task_statistics(task_id))

    def cancel(self, task_id: str) -> m.TaskStatus:
        """Cancel; a running task may still show Running while it stops (``wait`` for it)."""
        return self._send(calls.cancel(task_id))

    def pause(self, task_id: str) -> m.TaskStatus:
        return self._send(calls.action(task_id, "pause"))

    def resume(self, task_id: str) -> m.TaskStatus:
        return self._send(calls.action(task_id, "resume"))

    def run(self, task_id: str) -> m.TaskStatus:
        """Run a finished task again (a new attempt)."""
        return self._send(calls.action(task_id, "run"))

    def update(self, task_id: str, config: Mapping[str, Any] | BaseModel) -> m.TaskUpdated:
        """Replace the config of a task that has not started."""
        return self._send(calls.update(task_id, calls.config_json(config)))

    def list_tasks(
        self,
        *,
        status: str | None = None,
        worker: str | None = None,
        chain: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        order: str = "asc",
    ) -> m.TaskPage:
        """One page of tasks; pass ``page.next_cursor`` as ``cursor`` for the next one."""
        return self._send(
            calls.list_tasks(
                status=status, worker=worker, chain=chain, limit=limit, cursor=cursor, order=order
            )
        )

    def iter_tasks(
        self,
        *,
        status: str | None = None,
        worker: str | None = None,
        chain: str | None = None,
        order: str = "asc",
        page_size: int = 100,
    ) -> Iterator[m.TaskSummary]:
        """Every matching task, fetching page after page as the iteration goes."""
        cursor: str | None = None
        while True:
            page = self.list_tasks(
                status=status,
                worker=worker,
                chain=chain,
                limit=page_size,
                cursor=cursor,
                order=order,
            )
            yield from page.tasks
            if page.next_cursor is None or not page.tasks:
                return
            cursor = page.next_cursor

    # -- chains ---------------------------------------------------------------------------------
    def create_chain(
        self, spec: Mapping[str, Any] | BaseModel, *, idempotency_key: str | None = None
    ) -> str:
        """Start a chain from a definition (a dict, or tasky.chains.model.ChainSpec); its id."""
        return self._send(calls.create_chain(calls.config_json(spec), idempotency_key))

    def chain(self, chain_id: str) -> m.Chain:
        """A chain with each step's status, task, output, and the chain's result."""
        return self._send(calls.get_chain(chain_id))

    def list_chains(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        order: str = "asc",
    ) -> m.ChainPage:
        return self._send(calls.list_chains(status=status, limit=limit, cursor=cursor, order=order))

    def iter_chains(
        self, *, status: str | None = None, order: str = "asc", page_size: int = 100
    ) -> Iterator[m.ChainSummary]:
        cursor: str | None = None
        while True:
            page = self.list_chains(status=status, limit=page_size, cursor=cursor, order=order)
            yield from page.chains
            if page.next_cursor is None or not page.chains:
                return
            cursor = page.next_cursor

    def cancel_chain(self, chain_id: str) -> m.Chain:
        return self._send(calls.chain_action(chain_id, "cancel"))

    def pause_chain(self, chain_id: str) -> m.Chain:
        return self._send(calls.chain_action(chain_id, "pause"))

    def resume_chain(self, chain_id: str) -> m.Chain:
        return self._send(calls.chain_action(chain_id, "resume"))

    def restart_chain(self, chain_id: str) -> m.Chain:
        """Run a Failed or Canceled chain again from the steps that did not complete."""
        return self._send(calls.chain_action(chain_id, "restart"))

    def chain_definitions(self) -> list[m.ChainDefinition]:
        return self._send(calls.chain_definitions())

    def chain_definition(self, name: str) -> m.ChainDefinition:
        return self._send(calls.chain_definition(name))

    def put_chain_definition(
        self, name: str, spec: Mapping[str, Any] | BaseModel
    ) -> m.ChainDefinition:
        """Save (create or replace) a named chain definition."""
        return self._send(calls.put_chain_definition(name, calls.config_json(spec)))

    def delete_chain_definition(self, name: str) -> None:
        self._send(calls.delete_chain_definition(name))

    # -- schedules ------------------------------------------------------------------------------
    def schedules(self) -> list[m.Schedule]:
        """Every schedule with its next and last run."""
        return self._send(calls.schedules())

    def schedule(self, name: str) -> m.Schedule:
        return self._send(calls.schedule(name))

    def create_schedule(self, spec: Mapping[str, Any]) -> m.Schedule:
        """Create a schedule: ``name``, ``worker`` + ``config`` or ``chain`` + ``parameters``,
        ``cron`` or ``interval`` (seconds); optionally ``timezone``, ``catch_up``, ``paused``."""
        return self._send(calls.create_schedule(dict(spec)))

    def delete_schedule(self, name: str) -> None:
        self._send(calls.delete_schedule(name))

    def pause_schedule(self, name: str) -> m.Schedule:
        return self._send(calls.schedule_action(name, "pause"))

    def resume_schedule(self, name: str) -> m.Schedule:
        """Resume from now: the time it was paused is not caught up."""
        return self._send(calls.schedule_action(name, "resume"))

    def run_schedule(self, name: str) -> m.Schedule:
        """Run once now, outside the timetable; ``.last_task_id`` (or ``.last_chain_id``) is it."""
        return self._send(calls.schedule_action(name, "run"))

    # -- tokens and the audit log (admin tokens only) -------------------------------------------
    def tokens(self) -> list[m.TokenInfo]:
        """The server's API tokens (names, roles, dates; never the tokens)."""
        return self._send(calls.tokens())

    def create_token(
        self,
        name: str,
        role: str,
        *,
        workers: list[str] | None = None,
        expires_days: float | None = None,
    ) -> m.CreatedToken:
        """Create a token; ``.token`` holds it, shown this once."""
        return self._send(calls.create_token(name, role, workers, expires_days))

    def revoke_token(self, name: str) -> None:
        self._send(calls.revoke_token(name))

    def audit(
        self, *, limit: int | None = None, cursor: str | None = None, order: str = "asc"
    ) -> m.AuditPage:
        """One page of the audit log of state-changing calls."""
        return self._send(calls.audit(limit=limit, cursor=cursor, order=order))

    def prune(
        self, older_than: float, *, worker: str | None = None, dry_run: bool = False
    ) -> m.PruneResult:
        """Prune finished tasks (and, without ``worker``, chains) that finished more than
        ``older_than`` seconds ago; with ``dry_run``, only count them. Admin tokens only."""
        return self._send(calls.prune(older_than, worker, dry_run))

    def start_chain(
        self,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Start a named definition, its parameters overridden by ``parameters``; the chain id."""
        return self._send(calls.start_chain(name, parameters, idempotency_key))

    def wait_chain(self, chain_id: str, timeout: float | None = None) -> m.Chain:
        """Until the chain has finished; the chain. :class:`WaitTimeout` after ``timeout``.

        Chain events on the event stream wake it up; without a stream it polls.
        """
        tracker = Tracker(chain_id, timeout, False, self.reconnect_grace, kind="chain")
        params = {"chain": chain_id, "type": "chain"}
        while True:
            try:
                if self._use_events and is_valid_id(chain_id):
                    try:
                        with self._event_stream(tracker, params) as lines:
                            chain = self._read_chain(tracker)
                            if chain.finished:
                                return chain
                            done = self._chain_events(tracker, lines)
                            if done is not None:
                                return done
                    except NoEvents:
                        self._use_events = False
                else:
                    chain = self._read_chain(tracker)
                    if chain.finished:
                        return chain
                    tracker.check_deadline()
                    time.sleep(tracker.next_poll(False))
            except ServerUnreachable:
                if not tracker.may_retry():
                    raise
                time.sleep(tracker.reconnect_pause())
            tracker.check_deadline()

    def _read_chain(self, tracker: Tracker) -> m.Chain:
        chain = self.chain(tracker.task_id)
        tracker.reached()
        tracker.last_chain = chain
        return chain

    def _chain_events(self, tracker: Tracker, lines: Iterator[str]) -> m.Chain | None:
        """Re-read the chain on each of its events; the chain once finished, else None when the
        stream ends (the caller reconnects)."""
        decoder = SSEDecoder()
        decoder.last_id = tracker.last_event_id
        try:
            for line in lines:
                event = decoder.feed(line)
                tracker.last_event_id = decoder.last_id
                if event is not None:
                    chain = self._read_chain(tracker)
                    if chain.finished:
                        return chain
                tracker.check_deadline()
            time.sleep(tracker.reconnect_pause())
        except httpx.ReadTimeout:
            pass
        except httpx.TransportError:  # the server went away mid-stream: reconnect
            time.sleep(tracker.reconnect_pause())
        return None

    # -- following a task -----------------------------------------------------------------------
    def wait(self, task_id: str, timeout: float | None = None) -> m.TaskStatus:
        """Block until the task has finished; its final status (check ``.status``).

        Uses the server's event stream, or polls when the server has none. Raises
        :class:`WaitTimeout` after ``timeout`` seconds (the task keeps running).
        """
        last: m.TaskStatus | None = None
        for update in self.watch(task_id, timeout=timeout):
            last = update
        assert last is not None  # watch always yields the final status
        return last

    def watch(self, task_id: str, timeout: float | None = None) -> Iterator[m.TaskStatus]:
        """The task's status now, then each time it changes (progress included), until finished."""
        for item in self.follow(task_id, timeout=timeout, logs=False):
            if isinstance(item, m.TaskStatus):
                yield item

    def follow(
        self, task_id: str, timeout: float | None = None, *, logs: bool = True
    ) -> Iterator[m.TaskStatus | m.LogLine]:
        """Status changes and (with ``logs``) log lines as they happen, until the task finishes.

        The last item is always the task's final status.
        """
        tracker = Tracker(task_id, timeout, logs, self.reconnect_grace)
        # The stream refuses a malformed id (400); the status read reports it as NotFound.
        if self._use_events and is_valid_id(task_id):
            try:
                yield from self._follow_events(tracker)
                return
            except NoEvents:
                self._use_events = False
        yield from self._follow_polling(tracker)

    def _refresh(self, tracker: Tracker) -> Iterator[m.TaskStatus | m.LogLine]:
        status = self.status(tracker.task_id)
        if tracker.want_logs:
            yield from self._new_logs(tracker)
        if tracker.see(status):
            yield status

    def _new_logs(self, tracker: Tracker) -> Iterator[m.LogLine]:
        while True:
            page = self.logs(tracker.task_id, after=tracker.log_after, limit=LOG_PAGE)
            yield from page.lines
            tracker.log_after = page.next
            if len(page.lines) < LOG_PAGE:
                return

    def _follow_polling(self, tracker: Tracker) -> Iterator[m.TaskStatus | m.LogLine]:
        while True:
            changed = False
            try:
                for item in self._refresh(tracker):
                    changed = True
                    yield item
            except ServerUnreachable:
                if not tracker.may_retry():
                    raise
            if tracker.finished:
                return
            tracker.check_deadline()
            time.sleep(tracker.next_poll(changed))

    def _follow_events(self, tracker: Tracker) -> Iterator[m.TaskStatus | m.LogLine]:
        while True:
            try:
                with self._event_stream(tracker) as lines:
                    # Subscribed first, then read the status: nothing can slip between the two.
                    yield from self._refresh(tracker)
                    if tracker.finished:
                        return
                    yield from self._read_events(tracker, lines)
                    if tracker.finished:
                        return
            except ServerUnreachable:
                # A server that went away mid-follow (a restart) gets some time to come back.
                if not tracker.may_retry():
                    raise
                time.sleep(tracker.reconnect_pause())
            tracker.check_deadline()

    def _read_events(
        self, tracker: Tracker, lines: Iterator[str]
    ) -> Iterator[m.TaskStatus | m.LogLine]:
        """Act on events until the task finishes or the stream ends (the caller reconnects)."""
        decoder = SSEDecoder()
        decoder.last_id = tracker.last_event_id
        try:
            for line in lines:
                event = decoder.feed(line)
                # Keep-alives carry ids too: a reconnect resumes from the newest one.
                tracker.last_event_id = decoder.last_id
                if event is None:
                    continue
                step = tracker.on_event(event.json())
                if step is Step.REFRESH:
                    yield from self._refresh(tracker)
                    if tracker.finished:
                        return
                elif step is Step.CHANGED:
                    assert tracker.current is not None
                    yield tracker.current
                elif step is Step.LOGS:
                    yield from self._new_logs(tracker)
                tracker.check_deadline()
            # The server ended the stream (restart, shutdown): reconnect after a pause.
            time.sleep(tracker.reconnect_pause())
        except httpx.ReadTimeout:
            pass  # quiet for a while: reconnecting re-reads the status
        except httpx.TransportError:  # the server went away mid-stream: reconnect
            time.sleep(tracker.reconnect_pause())

    @contextlib.contextmanager
    def _event_stream(
        self, tracker: Tracker, params: dict[str, str] | None = None
    ) -> Iterator[Iterator[str]]:
        headers = {"Accept": "text/event-stream"}
        if tracker.last_event_id:
            headers["Last-Event-ID"] = tracker.last_event_id
        request = self._requests.build(
            calls.events(params or {"task": tracker.task_id}),
            headers=headers,
            read_timeout=tracker.read_timeout(),
        )
        try:
            response = self._transport.handle_request(request)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        try:
            if response.status_code in (404, 405):
                raise NoEvents
            if not response.is_success:
                response.read()
                raise error_from_response(response)
            yield response.iter_lines()
        finally:
            response.close()
