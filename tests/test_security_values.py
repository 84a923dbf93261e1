"""Crafted values are refused where they enter: config strings, numbers, query parameters.

Each test performs the attack against a real ``tasky serve`` process (one for the module).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from tasky import AllowControl, ControlStr, MultilineStr
from tasky.workers.command import Param, make_command_worker
from tasky.workers.strict import validate_config
from tests.conftest import ServerProcess, free_port

PY = sys.executable
ARGV_SCRIPT = "import json, sys; print(json.dumps(sys.argv[1:]))"
TOML = f"""
[[workers]]
name = "ReadText"
argv = ["{PY}", "-c", "{ARGV_SCRIPT}", "{{file}}"]
output = "json"
[workers.params.file]
type = "string"
pattern = '\\.txt$'

[[workers]]
name = "Numbers"
argv = ["{PY}", "-c", "{ARGV_SCRIPT}", "{{count}}", "{{ratio}}"]
output = "json"
[workers.params.count]
type = "integer"
default = 1
[workers.params.ratio]
type = "number"
default = 0.5

[[workers]]
name = "Offset"
argv = ["{PY}", "-c", "{ARGV_SCRIPT}", "--", "{{offset}}"]
output = "json"
[workers.params.offset]
type = "integer"
allow_negative = true

[[workers]]
name = "Note"
argv = ["{PY}", "-c", "{ARGV_SCRIPT}", "{{text}}"]
output = "json"
[workers.params.text]
type = "string"
allow_control = true
"""
BAD_INTEGERS = ("²", "٣", "+1", " 1", "1e3", "-1", "0x10", "1_000")
BAD_NUMBERS = ("nan", "inf", "-inf", "1e3", " 1", "+1", "٣", "Infinity")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("values")
    config = base / "workers.toml"
    config.write_text(TOML)
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("TASKY_")]:
            mp.delenv(name)
        server = ServerProcess(
            base / "data",
            free_port(),
            ["--workers", "tasky.workers.examples", "--config", str(config), "--root", str(base)],
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _tasks_of(srv: ServerProcess, worker: str) -> list[Any]:
    tasks: list[Any] = httpx.get(f"{srv.api}/tasks", params={"worker": worker}).json()["Tasks"]
    return tasks


def _output(srv: ServerProcess, task_id: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.get(f"{srv.api}/tasks/{task_id}/result")
        if r.status_code == 200:
            body = r.json()
            assert body["Status"] == "Completed", body
            return body["Output"]["output"]
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


# -- config strings -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["/etc/shadow\x00.txt", "a\x1b]52;c;aGk=\x07.txt", "a\x9b2J.txt"])
def test_control_characters_in_a_string_param_are_422(srv: ServerProcess, text: str) -> None:
    r = httpx.post(f"{srv.api}/workers/ReadText", json={"file": text})
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["Fields"]] == ["file"]
    assert _tasks_of(srv, "ReadText") == []


def test_allow_control_passes_them_but_never_nul(srv: ServerProcess) -> None:
    r = httpx.post(f"{srv.api}/workers/Note", json={"text": "line one\nline\ttwo\x1b"})
    assert r.status_code == 201, r.text
    assert _output(srv, r.json()["TaskId"]) == ["line one\nline\ttwo\x1b"]
    r = httpx.post(f"{srv.api}/workers/Note", json={"text": "cut\x00here"})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "text"


def test_control_characters_in_a_python_worker_config_are_422(srv: ServerProcess) -> None:
    for config in ({"path": "a\x00b"}, {"path": "\x1b[2Jx"}):
        r = httpx.post(f"{srv.api}/workers/Checksum", json=config)
        assert r.status_code == 422, r.text
        assert r.json()["Fields"][0]["field"] == "path"
    r = httpx.post(f"{srv.api}/workers/Command", json={"program": "echo", "args": ["ok", "\x07"]})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "args.1"


# -- numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        {"count": -5},
        {"ratio": -0.5},
        {"ratio": "-inf"},
        {"ratio": "nan"},
        {"ratio": "inf"},
        {"count": "100"},
        {"count": True},
        {"ratio": True},
        {"count": 2.5},
    ],
)
def test_numbers_that_would_reach_argv_option_like_or_coerced_are_422(
    srv: ServerProcess, config: dict[str, Any]
) -> None:
    r = httpx.post(f"{srv.api}/workers/Numbers", json=config)
    assert r.status_code == 422, (config, r.text)
    assert [f["field"] for f in r.json()["Fields"]] == list(config)
    assert _tasks_of(srv, "Numbers") == []


def test_infinity_written_as_a_huge_number_is_refused(srv: ServerProcess) -> None:
    r = httpx.post(
        f"{srv.api}/workers/Numbers",
        content=b'{"ratio": 1e400}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert _tasks_of(srv, "Numbers") == []


def test_proper_numbers_reach_argv(srv: ServerProcess) -> None:
    r = httpx.post(f"{srv.api}/workers/Numbers", json={"count": 3, "ratio": 2})
    assert r.status_code == 201, r.text
    assert _output(srv, r.json()["TaskId"]) == ["3", "2.0"]


def test_an_allowed_negative_number_comes_after_the_end_of_options(srv: ServerProcess) -> None:
    r = httpx.post(f"{srv.api}/workers/Offset", json={"offset": -5})
    assert r.status_code == 201, r.text
    assert _output(srv, r.json()["TaskId"]) == ["--", "-5"]


def test_a_negative_or_dashed_value_before_the_end_of_options_is_a_declaration_error() -> None:
    for param in (
        Param("n", "integer", allow_negative=True),
        Param("s", "string", allow_dash=True),
    ):
        with pytest.raises(ValueError, match="after a '--'"):
            make_command_worker(
                name="Bad", argv=[PY, "-c", "pass", "{" + param.name + "}"], params=[param]
            )
    with pytest.raises(ValueError, match="allow_negative"):
        make_command_worker(
            name="Bad", argv=[PY, "{n}"], params=[Param("n", "integer", minimum=-3)]
        )


@pytest.mark.parametrize("config", [{"seconds": True}, {"seconds": "5"}, {"seconds": "nan"}])
def test_python_worker_numbers_are_strict(srv: ServerProcess, config: dict[str, Any]) -> None:
    r = httpx.post(f"{srv.api}/workers/Sleeper", json=config)
    assert r.status_code == 422, r.text
    assert r.json()["Fields"][0]["field"] == "seconds"


def test_python_worker_integer_from_a_string_is_422(srv: ServerProcess) -> None:
    r = httpx.post(f"{srv.api}/workers/Primes", json={"limit": "100"})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "limit"
    r = httpx.post(f"{srv.api}/workers/Primes", json={"limit": 100})
    assert r.status_code == 201, r.text


# -- query parameters -----------------------------------------------------------------------------
def _task_id(srv: ServerProcess) -> str:
    r = httpx.post(f"{srv.api}/workers/Sleeper", json={"seconds": 0})
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def _integer_params(srv: ServerProcess) -> list[tuple[str, str, str]]:
    task = _task_id(srv)
    return [
        ("GET", "/tasks", "limit"),
        ("GET", "/tasks", "cursor"),
        ("GET", f"/tasks/{task}/logs", "after"),
        ("GET", f"/tasks/{task}/logs", "limit"),
        ("POST", "/workers/Sleeper", "retries"),
        ("GET", "/metrics", "last"),
        ("GET", "/workers/Sleeper/throughput", "minutes"),
        ("GET", "/chains", "limit"),
        ("GET", "/chains", "cursor"),
        ("GET", "/events", "last_event_id"),
    ]


def _request(srv: ServerProcess, method: str, path: str, **kw: Any) -> httpx.Response:
    body = {"json": {"seconds": 0}} if method == "POST" else {}
    return httpx.request(method, srv.api + path, timeout=10, **body, **kw)


def test_every_integer_query_parameter_takes_ascii_digits_only(srv: ServerProcess) -> None:
    for method, path, name in _integer_params(srv):
        for raw in BAD_INTEGERS:
            r = _request(srv, method, path, params={name: raw})
            assert r.status_code == 400, (path, name, raw, r.status_code, r.text)
            assert name in r.json()["Error"] or "Last-Event-ID" in r.json()["Error"]


def test_last_event_id_header_takes_ascii_digits_only(srv: ServerProcess) -> None:
    # Header bytes are read as latin-1: 0xB2 arrives as "²", which str.isdigit accepts.
    for raw in (b"\xb2", b"\xb9", "٣".encode(), b"abcd1234:\xb3", b"+1", b"1e3"):
        r = httpx.get(f"{srv.api}/events", headers={"Last-Event-ID": raw}, timeout=10)
        assert r.status_code == 400, (raw, r.text)


def test_decimal_query_parameters_are_finite_plain_numbers(srv: ServerProcess) -> None:
    before = len(_tasks_of(srv, "Sleeper"))
    for method, path, name in (
        ("POST", "/workers/Sleeper", "timeout"),
        ("GET", "/events", "heartbeat"),
    ):
        for raw in BAD_NUMBERS:
            r = _request(srv, method, path, params={name: raw})
            assert r.status_code == 400, (path, name, raw, r.text)
    assert len(_tasks_of(srv, "Sleeper")) == before


def test_a_misspelt_query_parameter_is_400_naming_it(srv: ServerProcess) -> None:
    before = len(_tasks_of(srv, "Sleeper"))
    r = httpx.post(f"{srv.api}/workers/Sleeper", params={"timout": "30"}, json={"seconds": 0})
    assert r.status_code == 400 and "timout" in r.json()["Error"], r.text
    assert len(_tasks_of(srv, "Sleeper")) == before
    for path in ("/tasks", "/workers", "/chains", "/metrics", "/events", "/workers/Sleeper/info"):
        r = httpx.get(srv.api + path, params={"bogus": "1"}, timeout=10)
        assert r.status_code == 400 and "bogus" in r.json()["Error"], (path, r.text)


def test_a_repeated_query_parameter_is_400(srv: ServerProcess) -> None:
    r = httpx.get(f"{srv.api}/tasks?limit=1&limit=2")
    assert r.status_code == 400 and "limit" in r.json()["Error"], r.text
    r = httpx.post(f"{srv.api}/workers/Sleeper?timeout=5&timeout=500", json={"seconds": 0})
    assert r.status_code == 400 and "timeout" in r.json()["Error"], r.text


def test_documented_query_parameters_still_work(srv: ServerProcess) -> None:
    r = httpx.get(f"{srv.api}/tasks", params={"limit": "2", "order": "desc"})
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{srv.api}/workers/Sleeper",
        params={"timeout": "30.5", "retries": "1"},
        json={"seconds": 0},
    )
    assert r.status_code == 201, r.text
    detail = httpx.get(f"{srv.api}/tasks/{r.json()['TaskId']}").json()
    assert detail["Timeout"] == 30.5 and detail["Retries"] == 1


# -- echoed values --------------------------------------------------------------------------------
def test_overlong_values_are_not_echoed_in_full(srv: ServerProcess) -> None:
    long = "a" * 5000
    for method, path, kw in (
        ("GET", f"/tasks/{long}", {}),
        ("GET", f"/tasks/{long}/status", {}),
        ("POST", f"/workers/{long}", {"json": {}}),
        ("GET", "/tasks", {"params": {"status": long}}),
        ("GET", "/events", {"params": {"task": long}}),
        ("GET", "/chains/" + long, {}),
        ("GET", "/" + long, {}),
    ):
        r = httpx.request(method, srv.api + path, timeout=10, **kw)
        assert 400 <= r.status_code < 500, (path[:40], r.status_code)
        error = r.json()["Error"]
        assert len(error) < 400 and "characters)" in error, (path[:40], error[:100])


def test_overlong_or_countless_bad_config_keys_are_not_echoed_in_full(srv: ServerProcess) -> None:
    r = httpx.post(f"{srv.api}/workers/Sleeper", json={"k" * 5000: 1})
    assert r.status_code == 422 and len(r.text) < 1000, r.text[:200]
    r = httpx.post(f"{srv.api}/workers/Sleeper", json={f"key{i}": i for i in range(2000)})
    assert r.status_code == 422 and len(r.json()["Fields"]) == 20
    assert r.json()["Error"].endswith("and 1980 more") and len(r.text) < 5000


def test_the_server_log_saw_no_internal_error(srv: ServerProcess) -> None:
    assert "Traceback" not in srv.read_log()


def test_python_fields_opt_in_to_control_characters_with_the_reusable_types() -> None:
    class Note(BaseModel):
        title: str = ""
        body: MultilineStr = ""
        raw: ControlStr = ""
        lines: list[Annotated[str, AllowControl]] = []

    accepted = validate_config(Note, {"body": "a\nb\tc\r", "raw": "\x1b[1m", "lines": ["\x07"]})
    assert accepted.model_dump()["raw"] == "\x1b[1m"
    for refused, field in (
        ({"title": "a\nb"}, "title"),
        ({"body": "a\x1bb"}, "body"),
        ({"raw": "a\x00b"}, "raw"),
        ({"lines": ["ok", "\x00"]}, "lines.1"),
    ):
        with pytest.raises(ValidationError) as caught:
            validate_config(Note, refused)
        assert [".".join(map(str, e["loc"])) for e in caught.value.errors()] == [field]
