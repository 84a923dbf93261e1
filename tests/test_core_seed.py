"""The seed's README walked through against a real server process, shapes checked."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from tests.conftest import ROOT, ServerFactory, ServerProcess
from tests.helpers import wait_sync

ID = re.compile(r"^[0-9a-f]{32}$")


def curl(*args: str) -> str:
    """The README's curl commands, run as written (with the port of the test server)."""
    out = subprocess.run(["curl", "-s", *args], capture_output=True, check=True, text=True)
    return out.stdout


def test_seed_readme_walkthrough(server_factory: ServerFactory) -> None:
    srv: ServerProcess = server_factory()
    base = srv.api
    workers = httpx.get(f"{base}/workers/").json()
    # The seed's three examples, among the newer ones (Checksum, Command, Primes, ...).
    assert {"CopyFile", "Ifconfig", "Sleeper"} <= {w["name"] for w in workers}
    assert all(set(w) >= {"name", "description"} for w in workers)

    ids = []
    for _ in range(3):
        body = curl(
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
            f"{base}/workers/sleeper",
        )
        task = httpx.Response(200, content=body).json()
        assert set(task) == {"TaskId"} and ID.match(task["TaskId"])
        ids.append(task["TaskId"])

    listed = httpx.get(f"{base}/tasks/").json()
    assert [t["TaskId"] for t in listed["Tasks"]] == ids
    for t in listed["Tasks"]:
        assert t["Status"] in ("Running", "Queued")
        assert "Duration" not in t  # only finished tasks carry the seed's Duration

    curl("-X", "POST", f"{base}/tasks/{ids[2]}/cancel")
    statuses = {t["TaskId"]: t["Status"] for t in httpx.get(f"{base}/tasks/").json()["Tasks"]}
    assert statuses[ids[2]] == "Canceled"
    assert statuses[ids[0]] == statuses[ids[1]] == "Running"

    ifconfig = httpx.post(f"{base}/workers/ifconfig", json={}).json()["TaskId"]
    wait_sync(base, ifconfig, "Completed")
    result = httpx.get(f"{base}/tasks/{ifconfig}/result").json()
    assert result["TaskId"] == ifconfig
    interfaces = result["Output"]["Interfaces"]
    assert any(i["ip_network"] == "127.0.0.1/8" for i in interfaces)
    assert all(set(i) == {"interface_name", "ip_network", "mac_address"} for i in interfaces)
    # The seed's python -mjson.tool pipe works on every answer.
    piped = subprocess.run(
        [sys.executable, "-m", "json.tool"],
        input=curl(f"{base}/tasks/"),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert piped.returncode == 0 and '"Tasks"' in piped.stdout


def test_addr_like_the_seed(server_factory: ServerFactory) -> None:
    """``-addr=:PORT`` as in the seed's ``-addr=:4444`` (the last --addr wins); binds loopback."""
    srv: ServerProcess = server_factory(start=False)
    srv.args = [f"-addr=:{srv.port}"]
    srv.start()
    assert httpx.get(f"http://127.0.0.1:{srv.port}/tasky/v1/workers").status_code == 200
