"""How callbacks plug into the app: the delivery service's start and stop, what the routes call
to accept a callback URL, and how a callback shows in a task's or chain's record."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tasky.api.responses import ApiError
from tasky.callbacks.delivery import Deliverer
from tasky.callbacks.urls import check_url
from tasky.engine import Engine
from tasky.engine.errors import NotFound
from tasky.redact import redact_url
from tasky.states import FINISHED, Status
from tasky.store.records import CallbackRecord

log = logging.getLogger("tasky.callbacks")

T = TypeVar("T")

NEEDS_SIGNING = (
    "callbacks are signed and this server has no signing secret: start it with "
    "--callback-secret-file FILE (or TASKY_CALLBACK_SECRET)"
)


def accepted_url(state: Any, url: Any, *, status_code: int) -> str:
    """The callback URL if this server can send it; ApiError (``status_code`` for a bad URL,
    422 without a secret) otherwise."""
    if not isinstance(url, str):
        raise ApiError(status_code, "callback must be a URL (a string)")
    try:
        check_url(url)
    except ValueError as exc:
        raise ApiError(status_code, str(exc)) from None
    if getattr(state, "callbacks", None) is None:
        # Refused rather than sent unsigned: a receiver could not tell our POST from anyone's.
        raise ApiError(422, NEEDS_SIGNING)
    return url


async def with_callback(
    state: Any, kind: str, target_id: str, url: str, create: Callable[[], Awaitable[T]]
) -> T:
    """Create the target with its callback stored first; forget the callback if it is refused."""
    deliverer: Deliverer = state.callbacks
    await deliverer.register(kind, target_id, url)
    try:
        return await create()
    except Exception:
        await deliverer.unregister(kind, target_id)
        raise


def callback_view(callback: CallbackRecord | None) -> dict[str, Any] | None:
    """``Callback`` in a task's or chain's record: where, how it stands, and every attempt."""
    if callback is None:
        return None
    return {
        "URL": redact_url(callback.url),
        "State": callback.state.capitalize(),
        "NextAttemptAt": callback.next_at,
        "Attempts": [
            {"At": a.at, "StatusCode": a.status_code, "Error": a.error} for a in callback.attempts
        ],
    }


def install(state: Any) -> None:
    """Start the delivery service after the engine and chains (``app.state`` hooks)."""
    state.callbacks = None

    async def start(engine: Engine) -> None:
        if not engine.settings.callback_secret:
            return
        deliverer = Deliverer(engine.store, engine.settings, _renderer(engine, state))

        def on_task(task_id: str, worker: str, status: Status, chain_id: str | None) -> None:
            if status in FINISHED:
                deliverer.finished("task", task_id)

        def on_chain(chain_id: str, status: Status) -> None:
            if status in FINISHED:
                deliverer.finished("chain", chain_id)

        engine.add_listener(on_task)
        chains = getattr(state, "chains", None)
        if chains is not None:
            chains.runner.add_listener(on_chain)
        await deliverer.start(_finished_check(engine, state))
        state.callbacks = deliverer

    async def stop(engine: Engine) -> None:
        deliverer: Deliverer | None = state.callbacks
        state.callbacks = None
        if deliverer is not None:
            await deliverer.stop()

    state.startup_hooks.append(start)
    # First to stop: nothing is sent while the engine and chains wind down.
    state.shutdown_hooks.insert(0, stop)


def _renderer(engine: Engine, state: Any) -> Callable[[str, str], Awaitable[Any]]:
    from tasky.api import views
    from tasky.chains import views as chain_views

    async def render(kind: str, target_id: str) -> dict[str, Any] | None:
        try:
            if kind == "task":
                record = await engine.get(target_id)
                attempts = await engine.attempts(target_id)
                return views.task_detail(record, attempts, engine.registry.get(record.worker))
            chains = getattr(state, "chains", None)
            if kind != "chain" or chains is None:
                return None
            loaded = await chains.runner.load(target_id)
            return chain_views.chain_detail(loaded, engine.registry)
        except NotFound:
            return None

    return render


def _finished_check(engine: Engine, state: Any) -> Callable[[str, str], Awaitable[bool | None]]:
    async def is_finished(kind: str, target_id: str) -> bool | None:
        status: Status | None = None
        if kind == "task":
            record = await engine.store.get(target_id)
            status = record.status if record is not None else None
        elif kind == "chain" and getattr(state, "chains", None) is not None:
            chain = await state.chains.runner.store.get(target_id)
            status = chain.status if chain is not None else None
        return None if status is None else status in FINISHED

    return is_finished
