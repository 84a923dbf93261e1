"""CopyFile stays inside the allowed roots."""

from __future__ import annotations

import os

import httpx

from tasky.settings import Settings
from tests.helpers import API, submit, wait_for


async def test_copy_inside_root(client: httpx.AsyncClient, settings: Settings) -> None:
    root = settings.roots[0]
    (root / "a.txt").write_bytes(b"hello" * 1000)
    task_id = await submit(client, "CopyFile", {"source": "a.txt", "destination": "b.txt"})
    await wait_for(client, task_id, "Completed")
    assert (root / "b.txt").read_bytes() == b"hello" * 1000
    out = (await client.get(f"{API}/tasks/{task_id}/result")).json()["Output"]
    assert out["bytes"] == 5000


async def test_refuses_paths_outside_roots(
    client: httpx.AsyncClient, settings: Settings, tmp_path: object
) -> None:
    root = settings.roots[0]
    outside = root.parent / "outside.txt"
    outside.write_text("secret")
    (root / "in.txt").write_text("x")
    os.symlink(outside, root / "link-out")
    os.symlink(root.parent, root / "dir-out")
    cases = [
        {"source": str(outside), "destination": "copy.txt"},
        {"source": "../outside.txt", "destination": "copy.txt"},
        {"source": "link-out", "destination": "copy.txt"},
        {"source": "in.txt", "destination": "../escaped.txt"},
        {"source": "in.txt", "destination": "dir-out/escaped.txt"},
        {"source": "/etc/passwd", "destination": "copy.txt"},
    ]
    for config in cases:
        task_id = await submit(client, "CopyFile", config)
        body = await wait_for(client, task_id, "Failed")
        # Symlinks are refused as such now, even ones that would stay inside the root.
        refusals = ("outside the allowed roots", "symbolic links are not followed")
        assert any(r in body["Error"] for r in refusals), (config, body["Error"])
    assert not (root / "copy.txt").exists()
    assert not (root.parent / "escaped.txt").exists()


async def test_missing_source_fails_clearly(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "CopyFile", {"source": "nope.txt", "destination": "x.txt"})
    body = await wait_for(client, task_id, "Failed")
    assert "does not exist" in body["Error"]
