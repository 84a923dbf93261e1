"""File workers cannot reach Tasky's own files, hard links or FIFOs; the data files are private."""

from __future__ import annotations

import hashlib
import os
import stat
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

import tasky
from tasky.config_file import load_workers
from tasky.own_files import file_roots
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.command import Param, render_argv
from tasky.workers.paths import PathRefused
from tests.conftest import ServerProcess, registry_with
from tests.helpers import API, action, submit, wait_for, wait_progress, wait_sync

SECRET = b"tasky-test-secret-outside-the-root\n"


def post_sync(srv: ServerProcess, worker: str, config: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{srv.api}/workers/{worker}", json=config, timeout=10)


def run_sync(srv: ServerProcess, worker: str, config: dict[str, Any]) -> dict[str, Any]:
    r = post_sync(srv, worker, config)
    assert r.status_code == 201, r.text
    return wait_sync(srv.api, r.json()["TaskId"], "Completed", "Failed", timeout=20)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- Tasky's own files --------------------------------------------------------------------------
def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(
        textwrap.dedent(
            """
            [[workers]]
            name = "Show"
            argv = ["cat", "--", "{file}"]
            [workers.params.file]
            type = "path"
            kind = "file"
            """
        )
    )
    return path


def test_own_files_refused_whatever_the_roots(server_factory: Any, tmp_path: Path) -> None:
    """--root covering the data dir, the config and (with /) the code: all still refused."""
    cfg = _config_file(tmp_path)
    srv: ServerProcess = server_factory(
        "--workers", "tasky.workers.examples", "--config", str(cfg),
        "--root", str(tmp_path), "--root", "/",
    )  # fmt: skip
    db = srv.data_dir / "tasky.db"
    assert run_sync(srv, "Checksum", {"path": "cfg.toml"})["Status"] == "Failed"  # warm the WAL
    assert (srv.data_dir / "tasky.db-wal").exists()
    before = db.read_bytes()
    own = [
        "data/tasky.db", "data/tasky.db-wal", "data/tasky.db-shm", "data/tasky.db.lock",
        str(db), "cfg.toml", "./data//tasky.db",
        str(Path(tasky.__file__)), str(Path(tasky.__file__).parent / "server.py"),
    ]  # fmt: skip
    for path in own:
        body = run_sync(srv, "Checksum", {"path": path})
        assert body["Status"] == "Failed", path
        assert "Tasky's own files" in body["Error"], (path, body["Error"])
        body = run_sync(srv, "CopyFile", {"source": path, "destination": "stolen"})
        assert "Tasky's own files" in body["Error"], (path, body["Error"])
        # The command worker's path parameter is refused at submit.
        r = post_sync(srv, "Show", {"file": path})
        assert r.status_code == 422 and "Tasky's own files" in r.text, (path, r.text)
    (tmp_path / "mine.txt").write_bytes(b"overwrite")
    for dest in ("data/tasky.db", "data", "cfg.toml", str(Path(tasky.__file__))):
        body = run_sync(srv, "CopyFile", {"source": "mine.txt", "destination": dest})
        assert "Tasky's own files" in body["Error"], (dest, body["Error"])
    assert not (tmp_path / "stolen").exists()
    assert not (srv.data_dir / "mine.txt").exists()
    assert db.read_bytes()[:100] == before[:100]
    # A file of the root that is not Tasky's own still works.
    body = run_sync(srv, "Checksum", {"path": "mine.txt"})
    assert body["Status"] == "Completed", body


def test_default_root_is_a_dedicated_directory(server_factory: Any, tmp_path: Path) -> None:
    srv: ServerProcess = server_factory()  # no --root; its working directory is tmp_path
    files = tmp_path / "tasky-files"
    assert files.is_dir() and mode_of(files) == 0o700
    (tmp_path / "beside.txt").write_bytes(SECRET)
    (files / "inside.txt").write_bytes(b"inside")
    for path in ("beside.txt", "../beside.txt", str(tmp_path / "beside.txt"), "../data/tasky.db"):
        body = run_sync(srv, "Checksum", {"path": path})
        assert body["Status"] == "Failed", (path, body)
    body = run_sync(srv, "Checksum", {"path": "inside.txt"})
    out = httpx.get(f"{srv.api}/tasks/{body['TaskId']}/result").json()["Output"]
    assert out["digest"] == hashlib.sha256(b"inside").hexdigest()


def test_root_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", roots=[tmp_path / "data" / "files"])
    with pytest.raises(ValueError, match="inside the data directory"):
        settings.check()


# -- private data files -------------------------------------------------------------------------
def test_data_directory_and_files_are_private(server_factory: Any, tmp_path: Path) -> None:
    srv: ServerProcess = server_factory("--root", str(tmp_path))
    assert run_sync(srv, "Checksum", {"path": "nothing"})["Status"] == "Failed"
    data = srv.data_dir
    assert mode_of(data) == 0o700
    names = ["tasky.db", "tasky.db-wal", "tasky.db-shm", "tasky.db.lock"]
    for name in names:
        assert mode_of(data / name) == 0o600, name


def test_loose_data_files_left_by_an_older_server_are_tightened(
    server_factory: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("tasky.db", "tasky.db.lock"):
        (data / name).touch()
        os.chmod(data / name, 0o644)
    srv: ServerProcess = server_factory("--root", str(tmp_path))
    assert run_sync(srv, "Checksum", {"path": "nothing"})["Status"] == "Failed"
    for name in ("tasky.db", "tasky.db-wal", "tasky.db-shm", "tasky.db.lock"):
        assert mode_of(data / name) == 0o600, name


# -- hard links and FIFOs (in-process app, real files) ------------------------------------------
async def test_hard_link_to_an_outside_file_is_refused(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    root = settings.roots[0]
    outside = tmp_path / "outside.txt"
    outside.write_bytes(SECRET)
    os.link(outside, root / "linked.txt")
    (root / "mine.txt").write_bytes(b"attacker data")
    attempts = [
        ("Checksum", {"path": "linked.txt"}),
        ("CopyFile", {"source": "linked.txt", "destination": "copy.txt"}),
        ("CopyFile", {"source": "mine.txt", "destination": "linked.txt"}),
    ]
    for worker, config in attempts:
        task_id = await submit(client, worker, config)
        body = await wait_for(client, task_id, "Failed", "Completed")
        assert body["Status"] == "Failed", (worker, config)
        assert "more than one hard link" in body["Error"], body["Error"]
    assert outside.read_bytes() == SECRET
    assert not (root / "copy.txt").exists()


async def test_fifo_source_or_destination_fails_promptly(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    root = settings.roots[0]
    os.mkfifo(root / "fifo")
    (root / "plain.txt").write_bytes(b"plain")
    attempts = [
        ("Checksum", {"path": "fifo"}),
        ("CopyFile", {"source": "fifo", "destination": "copy.txt"}),
        ("CopyFile", {"source": "plain.txt", "destination": "fifo"}),
    ]
    for worker, config in attempts:
        task_id = await submit(client, worker, config)
        # A blocking open of a FIFO with no writer (or reader) would never return.
        body = await wait_for(client, task_id, "Failed", "Completed", timeout=5)
        assert body["Status"] == "Failed", (worker, config)
        assert "not a regular file" in body["Error"], body["Error"]
    assert stat.S_ISFIFO((root / "fifo").stat().st_mode)


async def test_cancel_a_running_copy_leaves_no_partial_file(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    root = settings.roots[0]
    with (root / "huge.bin").open("wb") as f:
        f.truncate(8 << 30)  # sparse: quick to make, yet the copy takes long enough to cancel
    task_id = await submit(client, "CopyFile", {"source": "huge.bin", "destination": "copy.bin"})
    await wait_progress(client, task_id)
    r = await action(client, task_id, "cancel")
    assert r.status_code in (200, 202), r.text
    await wait_for(client, task_id, "Canceled", timeout=10)
    assert sorted(p.name for p in root.iterdir()) == ["huge.bin"]


# -- command workers' path parameters -----------------------------------------------------------
async def test_command_path_params_refuse_links_and_own_files(
    settings: Settings, tmp_path: Path
) -> None:
    settings.roots = [tmp_path]  # covers the data directory and the config file
    cfg = _config_file(tmp_path)
    settings.config_files = [cfg]
    registry = registry_with()
    for cls in load_workers(cfg, file_roots(settings)):
        registry.register(cls)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_bytes(SECRET)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "ok.txt").write_bytes(b"fine")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real" / "ok.txt")
    (tmp_path / "dirlink").symlink_to(tmp_path / "real")
    os.link(outside, tmp_path / "hard.txt")
    os.mkfifo(tmp_path / "fifo")
    refused = {
        "link.txt": "symbolic links",
        "dirlink/ok.txt": "symbolic links",
        "hard.txt": "hard link",
        "fifo": "not a regular file",
        "data/tasky.db": "own files",
        "cfg.toml": "own files",
        "../" + outside.name: "outside the allowed roots",
    }
    app = build_app(settings, registry=registry)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        for path, why in refused.items():
            r = await client.post(f"{API}/workers/Show", json={"file": path})
            assert r.status_code == 422 and why in r.text, (path, r.text)
        task_id = await submit(client, "Show", {"file": "real/ok.txt"})
        body = await wait_for(client, task_id, "Completed", "Failed")
        assert body["Status"] == "Completed", body
    outside.unlink()


def test_command_path_is_checked_again_when_the_task_starts(tmp_path: Path) -> None:
    """Submit-time checks pass; a component swapped for a symlink before the run is refused."""
    files = tmp_path / "files"
    roots = file_roots(Settings(data_dir=tmp_path / "data", roots=[files]))
    (files / "d").mkdir(parents=True)
    (files / "d" / "f.txt").write_bytes(b"x")
    params = {"file": Param("file", "path", kind="file")}
    argv = ["cat", "--", "{file}"]
    assert render_argv(argv, params, {"file": "d/f.txt"}, roots)[-1] == str(files / "d" / "f.txt")
    (files / "d").rename(files / "elsewhere")
    (files / "d").symlink_to(files / "elsewhere")
    with pytest.raises(PathRefused, match="symbolic links"):
        render_argv(argv, params, {"file": "d/f.txt"}, roots)
