"""Workers with their own retention, for tests/test_retention.py."""

from __future__ import annotations

from tasky import AsyncTaskContext, EmptyConfig, worker


@worker("Keeper", description="Its finished tasks are kept forever.", retention_days=0)
async def keeper(config: EmptyConfig, task: AsyncTaskContext) -> str:
    return "kept"


@worker("LongKeep", description="Its finished tasks are kept a day.", retention_days=1.0)
async def long_keep(config: EmptyConfig, task: AsyncTaskContext) -> str:
    return "kept a day"


@worker("Brief", description="Its finished tasks are kept a second.", retention_days=1 / 86400)
async def brief(config: EmptyConfig, task: AsyncTaskContext) -> str:
    return "gone soon"
