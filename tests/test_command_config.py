"""The TOML file of command workers: the shipped example, every kind of mistake, and serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tasky.config_file import ConfigError, load_workers
from tests.conftest import ROOT, ServerFactory, ServerProcess
from tests.helpers import wait_sync

GOOD = """
[[workers]]
name = "Echo2"
argv = ["echo", "{word}"]
[workers.params.word]
type = "string"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workers.toml"
    path.write_text(text)
    return path


def test_the_example_file_loads(tmp_path: Path) -> None:
    workers = load_workers(ROOT / "tasky.example.toml", [tmp_path])
    by_name = {w.name: w for w in workers}
    assert set(by_name) == {"Grep", "Archive", "Wait", "Countdown", "Platform"}
    grep = by_name["Grep"]
    assert grep.success_codes == frozenset({0, 1}) and grep.timeout == 60
    assert grep.actions == frozenset({"cancel", "pause", "resume"})
    schema = by_name["Archive"].Config.model_json_schema()
    assert set(schema["properties"]) == {"directory", "archive", "verbose"}
    assert set(schema["required"]) == {"directory", "archive"}
    assert by_name["Platform"].output == "json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[workers]]\nname = 'A'\n", "argv is required"),
        ("[[workers]]\nname = 'A'\nargv = ['echo']\nargvs = []\n", "unknown key 'argvs'"),
        (
            "[[workers]]\nname = 'A'\nargv = ['echo', '--n={n}']\n"
            "[workers.params.n]\ntype = 'integer'\n",
            "must be a whole element",
        ),
        ("[[workers]]\nname = 'A'\nargv = ['echo', '{m}']\n", "names no declared parameter"),
        (
            "[[workers]]\nname = 'A'\nargv = ['echo']\n[workers.params.n]\ntype = 'integer'\n",
            "not used in argv",
        ),
        (
            "[[workers]]\nname = 'A'\nargv = ['echo', '{n}']\n[workers.params.n]\ntype = 'int'\n",
            "type must be one of",
        ),
        (
            "[[workers]]\nname = 'A'\nargv = ['echo', '{n}']\n"
            "[workers.params.n]\ntype = 'integer'\nmax = 5\ndefault = 9\n",
            "bad default",
        ),
        ("[[workers]]\nname = 'A'\nargv = ['no-such-program-tasky']\n", "not found"),
        ("[[workers]]\nname = 'A'\nargv = ['echo']\ntimeout = true\n", "wrong type"),
        ("[[workers]]\nname = 'A'\nargv = ['echo']\nmax_tasks = 0\n", "max_tasks"),
        ("[[workers]]\nname = 'A'\nargv = ['echo']\nactions = ['pause']\n", "pause and resume"),
        ("[[workers]]\nname = 'A b'\nargv = ['echo']\n", "needs a name"),
        (
            "[[workers]]\nname = 'A'\nargv = ['{x}']\n[workers.params.x]\ntype = 'string'\n",
            "cannot be a placeholder",
        ),
        (
            "[[workers]]\nname = 'A'\nargv = ['echo', '{e}']\n[workers.params.e]\ntype = 'enum'\n",
            "needs values",
        ),
        ("[[workers]]\nname = 'A'\nargv = ['echo']\nprogress = '(\\\\d+)'\n", "named group"),
        ("[server]\nport = 1\n", "unknown top-level keys"),
        ("workers = 3\n", "declares no [[workers]]"),
        ("[[workers]\n", "not valid TOML"),
    ],
)
def test_mistakes_are_reported_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"workers\.toml") as caught:
        load_workers(write(tmp_path, text), [tmp_path])
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_workers(tmp_path / "nope.toml", [tmp_path])


def test_cwd_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    path = write(tmp_path, GOOD.replace("argv =", 'cwd = "work"\nargv ='))
    (cls,) = load_workers(path, [tmp_path])
    line = cls().command_line(cls.Config.model_validate({"word": "w"}), [tmp_path])
    assert line.cwd == (tmp_path / "work").resolve() and line.argv == ["echo", "w"]


def test_serve_with_config_runs_declared_workers(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "log.txt").write_text("ok\nERROR one\nok\nERROR two\n")
    text = (ROOT / "tasky.example.toml").read_text()
    path = write(tmp_path, text)
    srv: ServerProcess = server_factory("--config", str(path), "--root", str(files))
    workers = {w["name"]: w for w in httpx.get(f"{srv.api}/workers").json()}
    assert {"Grep", "Archive", "Wait"} <= set(workers)
    r = httpx.post(f"{srv.api}/workers/grep", json={"text": "ERROR", "file": "log.txt"})
    assert r.status_code == 201, r.text
    task_id = r.json()["TaskId"]
    wait_sync(srv.api, task_id, "Completed")
    result = httpx.get(f"{srv.api}/tasks/{task_id}/result").json()
    assert result["Output"] == {"exit_code": 0, "stdout_tail": ["2"]}
    r = httpx.post(f"{srv.api}/workers/grep", json={"text": "x", "file": "/etc/passwd"})
    assert r.status_code == 422 and "outside the allowed roots" in r.text
    r = httpx.post(
        f"{srv.api}/workers/Archive",
        json={"directory": ".", "archive": "../out.tar.gz"},
    )
    assert r.status_code == 422


@pytest.mark.server  # a tasky serve that stops before it listens
def test_serve_refuses_a_bad_config_before_listening(tmp_path: Path) -> None:
    path = write(tmp_path, "[[workers]]\nname = 'A'\nargv = ['echo', '{x}']\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tasky", "serve", "--config", str(path), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "workers.toml" in proc.stderr and "names no declared parameter" in proc.stderr


def test_the_documented_example_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "execution.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    names = [w.name for w in load_workers(write(tmp_path, block), [tmp_path])]
    assert names == ["Grep", "Archive", "Wait"]
