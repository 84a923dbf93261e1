"""Schedules on a real server: firing, pause, run-now, restarts, catch-up, config file."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.ids import new_id
from tests.conftest import ServerProcess

WORKERS = ("--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests")


def create(api: str, **body: Any) -> dict[str, Any]:
    body = {"worker": "Sleeper", "config": {"seconds": 0}, **body}
    answer = httpx.post(f"{api}/schedules", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def get(api: str, name: str) -> dict[str, Any]:
    answer = httpx.get(f"{api}/schedules/{name}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def tasks_of(api: str, worker: str = "Sleeper") -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/tasks", params={"worker": worker, "limit": 1000})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["Tasks"]
    return found


def test_interval_fires_pause_stops_it_and_run_now_fires_once(server: ServerProcess) -> None:
    api = server.api
    shown = create(api, name="tick", interval=1)
    assert shown["NextRun"] is not None and shown["LastTaskId"] is None
    first = wait_for(lambda: get(api, "tick")["LastTaskId"])
    task = httpx.get(f"{api}/tasks/{first}").json()
    assert task["Worker"] == "Sleeper"
    listed = httpx.get(f"{api}/schedules").json()["Schedules"]
    assert [s["Name"] for s in listed] == ["tick"] and listed[0]["LastRun"] is not None

    paused = httpx.post(f"{api}/schedules/tick/pause")
    assert paused.status_code == 200 and paused.json()["Paused"] is True
    assert paused.json()["NextRun"] is None
    time.sleep(0.3)  # a claim already in flight when the pause committed
    count = len(tasks_of(api))
    time.sleep(2.5)
    assert len(tasks_of(api)) == count, "a paused schedule fired"

    ran = httpx.post(f"{api}/schedules/tick/run")
    assert ran.status_code == 200, ran.text
    assert ran.json()["LastTaskId"] not in (None, first)
    time.sleep(1.5)
    assert len(tasks_of(api)) == count + 1, "run-now must fire exactly once"

    resumed = httpx.post(f"{api}/schedules/tick/resume").json()
    assert resumed["Paused"] is False and resumed["NextRun"] > time.time() - 1
    wait_for(lambda: len(tasks_of(api)) > count + 1)
    deleted = httpx.delete(f"{api}/schedules/tick")
    assert deleted.json() == {"Name": "tick", "Deleted": True}
    assert httpx.get(f"{api}/schedules/tick").status_code == 404


def test_a_restart_right_after_a_fire_does_not_fire_that_due_time_again(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api = server.api
    create(api, name="every3", interval=3)
    first = wait_for(lambda: (shown := get(api, "every3"))["LastTaskId"] and shown, timeout=8)
    server.kill()  # kill -9 right after the fire: its claim and its task are committed
    server.start()
    second = wait_for(
        lambda: (
            (shown := get(api, "every3"))["LastTaskId"] not in (None, first["LastTaskId"]) and shown
        ),
        timeout=10,
    )
    tasks = {t["TaskId"] for t in tasks_of(api)}
    assert tasks == {first["LastTaskId"], second["LastTaskId"]}, "one task per due time"
    # The claim records the run and moves the due time on in one write. Had the restart fired
    # the first due time again, that fire would have moved it to where the first fire did.
    # (Creation times cannot tell: a late first fire and a punctual second one come less than
    # an interval apart.)
    moved = second["NextRun"] - first["NextRun"]
    assert moved == pytest.approx(3, abs=0.01), f"the due time moved by {moved:.2f} s: it ran twice"


def _set_next_run(data_dir: Path, when: float) -> None:
    """Stand-in for a long downtime: every schedule's due time moves ``when`` into the past."""
    with sqlite3.connect(data_dir / "tasky.db") as conn:
        conn.execute("UPDATE schedules SET next_run = ?", (when,))


def test_catch_up_once_runs_one_missed_run_and_skip_none(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api = server.api
    create(api, name="once", interval=3600, catch_up="once")
    create(api, name="skip", interval=3600, catch_up="skip")
    server.stop()
    missed = time.time() - 5 * 3600 - 60  # five due times missed while the server was down
    _set_next_run(server.data_dir, missed)
    server.start()
    once = wait_for(lambda: (s := get(api, "once"))["LastTaskId"] and s)
    time.sleep(1.5)  # time for any further (wrong) run
    ran = [t["TaskId"] for t in tasks_of(api)]
    assert ran == [once["LastTaskId"]], "once: exactly one catch-up run; skip: none"
    skip = get(api, "skip")
    assert skip["LastTaskId"] is None
    now = time.time()
    for shown in (once, skip):  # both back on their timetable, in phase with the missed time
        assert now < shown["NextRun"] <= now + 3600
        assert abs((shown["NextRun"] - missed) % 3600) < 0.01


def test_bad_cron_time_zone_and_targets_answer_422_naming_the_field(
    server: ServerProcess,
) -> None:
    api = server.api
    cases = [
        ({"cron": "0 25 * * *"}, "cron", "hour"),
        ({"cron": "* * * * * *"}, "cron", "5"),
        ({"cron": "@hourly", "timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"interval": 0.5}, "interval", "interval"),
        ({"interval": 5, "worker": "NoSuchWorker"}, "worker", "NoSuchWorker"),
        ({"interval": 5, "config": {"seconds": "x"}}, "seconds", "seconds"),
        ({"interval": 5, "cron": "@daily"}, "", "exactly one of cron and interval"),
    ]
    for extra, field, words in cases:
        body = {"name": "bad", "worker": "Sleeper", "config": {"seconds": 0}, **extra}
        answer = httpx.post(f"{api}/schedules", json=body)
        assert answer.status_code == 422, (extra, answer.text)
        shown = answer.json()
        assert words in shown["Error"], (extra, shown)
        assert any(field in f["field"] for f in shown["Fields"]), (extra, shown)
    assert httpx.get(f"{api}/schedules").json() == {"Schedules": []}
    created = create(api, name="paris", cron="30 2 * * *", timezone="Europe/Paris")
    assert created["Cron"] == "30 2 * * *" and created["TimeZone"] == "Europe/Paris"
    assert httpx.post(f"{api}/schedules", json={**created, "name": "paris"}).status_code == 422
    duplicate = {"name": "paris", "worker": "Sleeper", "interval": 5}
    assert httpx.post(f"{api}/schedules", json=duplicate).status_code == 409


def test_toml_schedules_load_fire_and_stay_read_only(server_factory: Any, tmp_path: Path) -> None:
    config = tmp_path / "tasky.toml"
    config.write_text(
        "[schedules.tick]\n"
        'worker = "Sleeper"\n'
        "config = { seconds = 0 }\n"
        "interval = 1\n"
        "[schedules.nightly]\n"
        'worker = "Sleeper"\n'
        'cron = "@daily"\n'
        'timezone = "America/New_York"\n'
        'catch_up = "once"\n'
    )
    server: ServerProcess = server_factory(*WORKERS, "--config", str(config))
    api = server.api
    listed = httpx.get(f"{api}/schedules").json()["Schedules"]
    assert [(s["Name"], s["Source"]) for s in listed] == [
        ("nightly", str(config)),
        ("tick", str(config)),
    ]
    assert listed[0]["CatchUp"] == "once" and listed[0]["Cron"] == "@daily"
    wait_for(lambda: get(api, "tick")["LastTaskId"])
    refused = httpx.delete(f"{api}/schedules/tick")
    assert refused.status_code == 409 and "tasky.toml" in refused.json()["Error"]


def test_a_bad_toml_schedule_stops_the_server_naming_it(
    server_factory: Any, tmp_path: Path
) -> None:
    config = tmp_path / "tasky.toml"
    config.write_text('[schedules.broken]\nworker = "Sleeper"\ncron = "0 0 31 2 * *"\n')
    server: ServerProcess = server_factory(*WORKERS, "--config", str(config), start=False)
    try:
        server.start(timeout=15)
    except RuntimeError as exc:
        assert "schedules.broken" in str(exc) and "cron" in str(exc)
    else:
        raise AssertionError("the server started with a bad schedule")


def test_a_claimed_run_lost_in_a_crash_is_started_once_under_its_id(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api = server.api
    create(api, name="recent", interval=3600)
    create(api, name="old", interval=3600)
    server.stop()
    # As if each claim committed and the server died before the task's insert.
    lost, stale = new_id(), new_id()
    with sqlite3.connect(server.data_dir / "tasky.db") as conn:
        for name, run, at in (("recent", lost, time.time()), ("old", stale, time.time() - 3600)):
            conn.execute(
                "UPDATE schedules SET last_run_id = ?, last_run_at = ? WHERE name = ?",
                (run, at, name),
            )
    server.start()
    wait_for(lambda: httpx.get(f"{api}/tasks/{lost}").status_code == 200)
    assert httpx.get(f"{api}/tasks/{stale}").status_code == 404, "too old to be the lost run"
    server.stop()
    server.start()  # found again at the next start-up: it is not submitted twice
    time.sleep(1.0)
    assert [t["TaskId"] for t in tasks_of(api)] == [lost]


def test_a_chain_schedule_starts_the_named_definition(server: ServerProcess) -> None:
    api = server.api
    definition = {
        "parameters": {"seconds": 0},
        "steps": [{"name": "nap", "worker": "Sleeper", "config": {"seconds": "${params.seconds}"}}],
    }
    put = httpx.put(f"{api}/chain-definitions/nap", json=definition)
    assert put.status_code == 201, put.text
    refused = httpx.post(f"{api}/schedules", json={"name": "c", "chain": "no-such", "interval": 1})
    assert refused.status_code == 422 and refused.json()["Fields"][0]["field"] == "chain"
    shown = create(api, name="naps", worker=None, config={}, chain="nap",
                   parameters={"seconds": 0.01}, interval=1)  # fmt: skip
    assert shown["Chain"] == "nap" and shown["Parameters"] == {"seconds": 0.01}
    chain_id = wait_for(lambda: get(api, "naps")["LastChainId"])
    assert get(api, "naps")["LastTaskId"] is None
    chain = httpx.get(f"{api}/chains/{chain_id}").json()
    assert chain["Definition"] == "nap"
    httpx.post(f"{api}/schedules/naps/pause")
    ran = httpx.post(f"{api}/schedules/naps/run").json()
    assert ran["LastChainId"] not in (None, chain_id)
