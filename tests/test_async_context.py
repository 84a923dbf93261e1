"""AsyncTaskContext's pause, resume and cancel, whether or not a checkpoint waits when they
come (the context makes its Event only when a checkpoint has to wait)."""

from __future__ import annotations

import asyncio

import pytest

from tasky.workers.context import AsyncTaskContext, TaskCancelled


class Sink:
    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        pass

    def log(self, task_id: str, line: str) -> None:
        pass


def _ctx() -> AsyncTaskContext:
    return AsyncTaskContext("t", 1, "W", Sink())


async def test_a_checkpoint_passes_while_running_and_waits_while_paused() -> None:
    ctx = _ctx()
    await ctx.checkpoint()
    ctx._pause()
    assert ctx.paused
    waiting = asyncio.ensure_future(ctx.checkpoint())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    ctx._resume()
    assert not ctx.paused
    await asyncio.wait_for(waiting, 1)
    ctx._pause()  # a second pause, with the Event made already
    again = asyncio.ensure_future(ctx.checkpoint())
    await asyncio.sleep(0.01)
    assert not again.done()
    ctx._resume()
    await asyncio.wait_for(again, 1)


async def test_resumed_before_any_checkpoint_waits_runs_on() -> None:
    ctx = _ctx()
    ctx._pause()
    ctx._resume()
    await asyncio.wait_for(ctx.checkpoint(), 1)


async def test_a_cancel_ends_a_paused_wait_and_every_later_checkpoint() -> None:
    ctx = _ctx()
    ctx._pause()
    waiting = asyncio.ensure_future(ctx.checkpoint())
    await asyncio.sleep(0.01)
    ctx._cancel("stop")
    assert not ctx.paused
    with pytest.raises(TaskCancelled):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(TaskCancelled):
        await ctx.checkpoint()


async def test_a_sleep_stops_counting_while_paused() -> None:
    ctx = _ctx()
    sleeping = asyncio.ensure_future(ctx.sleep(0.05))
    await asyncio.sleep(0.01)
    ctx._pause()
    await asyncio.sleep(0.1)
    assert not sleeping.done()
    ctx._resume()
    await asyncio.wait_for(sleeping, 1)
