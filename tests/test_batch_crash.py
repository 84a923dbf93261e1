"""Durability of batch submits: SIGKILL while a batch is being taken in leaves all of it or none,
and a batch that was answered 201 is all there after the restart (real server processes)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess

ARGS = ("--workers", "tests.workers_for_tests")
BATCH = [{"seconds": 60}] * 5000


def _total(server: ServerProcess) -> int:
    total: int = httpx.get(f"{server.api}/workers/Hold/statistics", timeout=10).json()["Total"]
    return total


def test_sigkill_mid_batch_leaves_the_whole_batch_or_none(
    server_factory: object, tmp_path: Path
) -> None:
    data = tmp_path / "batch-crash"
    make = server_factory
    before = 0
    # Kills at different moments of the request: before it is read, while its configs are
    # validated, while its rows are written and committed; the last round kills only once the
    # answer has come (None: wait for it).
    for delay in (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.7, None):
        server: ServerProcess = make(*ARGS, data_dir=data)  # type: ignore[operator]
        answers: list[httpx.Response] = []

        def send(api: str = server.api, into: list[httpx.Response] = answers) -> None:
            # The server may die before answering: then the batch was never acknowledged.
            with contextlib.suppress(httpx.HTTPError):
                into.append(httpx.post(f"{api}/workers/Hold/batch", json=BATCH, timeout=60))

        sender = threading.Thread(target=send)
        sender.start()
        if delay is None:
            sender.join(60)
        else:
            time.sleep(delay)
        server.kill()
        sender.join(60)
        restarted: ServerProcess = make(*ARGS, data_dir=data)  # type: ignore[operator]
        after = _total(restarted)
        restarted.stop()
        assert after - before in (0, len(BATCH)), f"a partial batch: {after - before} tasks"
        acknowledged = bool(answers) and answers[0].status_code == 201
        if acknowledged:
            assert after - before == len(BATCH), "an acknowledged batch was lost"
        if delay is None:
            assert acknowledged, answers
        before = after
