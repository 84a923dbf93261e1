"""The chain status moves of the two SQL chain stores, written once: each is one compare-and-set
of the store's own ``_move`` whose SQL differs between SQLite and PostgreSQL only in the
placeholder (``_mark``) and in how free text is kept (``_text``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from tasky.states import CHAIN_MOVES, Status
from tasky.store.chain_records import StepRecord


class SqlChainMoves(ABC):
    """finish, cancel, pause, resume and restart of a chain (see tasky.store.chain_base)."""

    _mark: ClassVar[str]  # the placeholder: "?" (SQLite) or "%s" (PostgreSQL)

    def _text(self, text: str | None) -> str | None:
        """Free text (an error) as the store keeps it."""
        return text

    @abstractmethod
    async def _move(
        self,
        chain_id: str,
        move: str,
        new: Status,
        sets: str = "",
        params: Sequence[Any] = (),
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        """Compare-and-set the chain from ``CHAIN_MOVES[move]``'s sources to ``new``, with the
        columns ``sets`` assigns (from ``params``) and ``steps`` saved in the same write. Each
        store writes its own (SqliteChainStore, PgChainStore); a store without one cannot be
        made."""

    async def finish_chain(
        self,
        chain_id: str,
        status: Status,
        at: float,
        *,
        error: str | None = None,
        result: Any = None,
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        if status not in CHAIN_MOVES["finish"].targets:
            raise ValueError(f"a chain cannot finish as {status}")
        stored = None if result is None else orjson.dumps(result).decode()
        m = self._mark
        sets = f"finished_at = {m}, error = {m}, result = {m}"
        return await self._move(
            chain_id, "finish", status, sets, (at, self._text(error), stored), steps
        )

    async def cancel_chain(
        self, chain_id: str, at: float, reason: str, *, steps: Sequence[StepRecord] = ()
    ) -> bool:
        sets = f"finished_at = {self._mark}, error = {self._mark}"
        return await self._move(
            chain_id, "cancel", Status.CANCELED, sets, (at, self._text(reason)), steps
        )

    async def pause_chain(self, chain_id: str) -> bool:
        return await self._move(chain_id, "pause", Status.PAUSED)

    async def resume_chain(self, chain_id: str) -> bool:
        return await self._move(chain_id, "resume", Status.RUNNING)

    async def restart_chain(self, chain_id: str, *, steps: Sequence[StepRecord] = ()) -> bool:
        sets = "finished_at = NULL, error = NULL, result = NULL, restarts = restarts + 1"
        return await self._move(chain_id, "restart", Status.RUNNING, sets, (), steps)
