"""A symlink swapped in after the path check cannot lead a read or a write outside the root.

A thread keeps swapping path components between a real file or directory inside the root and a
symlink to one outside, while files are opened in a tight loop (both the openat2 path and the
component walk used where openat2 is missing), then through a real server.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.workers import safe_open
from tasky.workers.files import open_source, replace_file
from tasky.workers.paths import PathRefused, Roots
from tests.conftest import ServerProcess
from tests.helpers import wait_sync

ROUNDS = 2000
SECRET = b"outside-secret\n"
INSIDE = b"inside\n"


@contextmanager
def swapping(step: Callable[[], None], pause: float = 0.0) -> Iterator[None]:
    """Run ``step`` in a loop on a thread until the block ends (bounded by the block's work).

    ``pause`` leaves this process's other threads (an HTTP client) room to run.
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with suppress(OSError):
                step()
            if pause:
                time.sleep(pause)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def _swap_file(directory: Path, outside: Path) -> Callable[[], None]:
    """``directory/f`` flips between a regular file and a symlink to ``outside`` (atomically)."""

    def step() -> None:
        (directory / "f.new").write_bytes(INSIDE)
        os.replace(directory / "f.new", directory / "f")
        with suppress(FileNotFoundError):
            (directory / "l.new").unlink()
        (directory / "l.new").symlink_to(outside)
        os.replace(directory / "l.new", directory / "f")

    return step


def _swap_both(root: Path, outside: Path) -> Callable[[], None]:
    """``root/d`` flips between a real directory and a symlink to ``outside``, and ``d/f``
    between a regular file and a symlink to ``outside/f``; each state lasts half the cycle."""
    swap_away = _swap_file(root / "d.away", outside / "f")
    swap_home = _swap_file(root / "d", outside / "f")

    def step() -> None:
        os.rename(root / "d", root / "d.away")
        (root / "d").symlink_to(outside)
        swap_away()
        (root / "d").unlink()
        os.rename(root / "d.away", root / "d")
        swap_home()

    return step


@pytest.fixture(params=["openat2", "walk"])
def opener(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "walk":
        monkeypatch.setattr(safe_open._openat2, "available", False)
    elif not safe_open._openat2.available:
        pytest.skip("this kernel has no openat2")
    return str(request.param)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Roots, Path, Path]:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(INSIDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(SECRET)
    return Roots([root]), root, outside


def test_reads_never_see_outside_content(opener: str, layout: tuple[Roots, Path, Path]) -> None:
    roots, root, outside = layout
    seen: dict[bytes, int] = {}

    with swapping(_swap_both(root, outside)):
        for _ in range(ROUNDS):
            try:
                with open_source("d/f", roots) as src:
                    data = src.file.read()
            except PathRefused:
                data = b"refused"
            seen[data] = seen.get(data, 0) + 1
    assert SECRET not in seen, seen
    assert set(seen) <= {INSIDE, b"refused"}, seen


def test_writes_never_land_outside(opener: str, layout: tuple[Roots, Path, Path]) -> None:
    roots, root, outside = layout
    written = 0

    with swapping(_swap_both(root, outside)):
        for i in range(ROUNDS):
            for dest in ("d/f", f"d/new-{i}"):
                try:
                    with replace_file(dest, roots, default_name="x") as dst:
                        dst.file.write(b"written")
                    written += 1
                except (PathRefused, FileNotFoundError):
                    pass
    assert sorted(p.name for p in outside.iterdir()) == ["f"]
    assert (outside / "f").read_bytes() == SECRET
    assert written > 0  # the race really ran both ways, some writes went through inside


def test_swaps_through_a_real_server(server_factory: Any, tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(INSIDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(SECRET)
    (root / "out").mkdir()
    srv: ServerProcess = server_factory("--root", str(root))
    ids = []
    with swapping(_swap_file(root / "d", outside / "f"), pause=0.0002):
        for i in range(15):
            config = {"source": "d/f", "destination": f"out/copy-{i}"}
            r = httpx.post(f"{srv.api}/workers/CopyFile", json=config, timeout=10)
            ids.append(r.json()["TaskId"])
            r = httpx.post(
                f"{srv.api}/workers/CopyFile",
                json={"source": "out/copy-0", "destination": "d/f"},
                timeout=10,
            )
            ids.append(r.json()["TaskId"])
        for task_id in ids:
            wait_sync(srv.api, task_id, "Completed", "Failed", timeout=20)
    for copy in (root / "out").iterdir():
        assert copy.read_bytes() != SECRET, copy
    assert sorted(p.name for p in outside.iterdir()) == ["f"]
    assert (outside / "f").read_bytes() == SECRET
