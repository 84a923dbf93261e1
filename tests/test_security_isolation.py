"""Task processes start isolated: nothing planted in the working directory or PYTHONPATH runs.

The servers here start as users start them, by the ``tasky`` console script: ``python -m tasky``
would put the working directory first on the server's own path (Python's rule, not Tasky's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, free_port
from tests.helpers import wait_sync
from tests.test_docs_readme import blocks

TASKY = str(Path(sys.executable).parent / "tasky")
# Modules a planted file could shadow: ones the server and task processes import at start, Tasky,
# and one the workers below import only when they run (a late import is the easier target).
PLANTED = ("orjson", "json", "tasky", "pydantic", "statistics", "planted_probe")
ENGINE_DIR = Path(__file__).resolve().parent.parent / "tasky" / "engine"


@dataclass
class ScriptServer(ServerProcess):
    """``tasky serve`` in ``cwd``, with ``extra_path`` after the suite's PYTHONPATH."""

    cwd: Path | None = None
    extra_path: str = ""

    def _spawn(self, env: dict[str, str], log: object) -> subprocess.Popen[bytes]:
        if self.extra_path:
            env = {**env, "PYTHONPATH": env["PYTHONPATH"] + os.pathsep + self.extra_path}
        argv = [TASKY, "serve", "--addr", f"127.0.0.1:{self.port}", "--data", str(self.data_dir)]
        return subprocess.Popen(
            [*argv, *self.args],
            stdout=log,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(self.cwd),
            start_new_session=True,
        )


def plant(directory: Path, marker: Path, names: tuple[str, ...] = PLANTED) -> None:
    """Modules that leave a mark when imported."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        code = f"open({str(marker)!r}, 'a').write({str(directory)!r} + ' {name}\\n')\n"
        (directory / f"{name}.py").write_text(code)


def run_task(srv: ServerProcess, worker: str, config: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{srv.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id = r.json()["TaskId"]
    wait_sync(srv.api, task_id, "Completed", "Failed", "Canceled", timeout=30)
    task: dict[str, Any] = httpx.get(f"{srv.api}/tasks/{task_id}").json()
    return task


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "planted-code-ran"


@pytest.fixture
def script_server(tmp_path: Path) -> Any:
    started: list[ScriptServer] = []

    def make(cwd: Path, *args: str, extra_path: str = "") -> ScriptServer:
        data = tmp_path / f"data{len(started)}"
        srv = ScriptServer(data, free_port(), list(args), cwd=cwd, extra_path=extra_path)
        started.append(srv)
        srv.start()
        return srv

    yield make
    for srv in started:
        srv.stop()


def test_planted_modules_never_run_in_task_processes(
    script_server: Any, tmp_path: Path, marker: Path
) -> None:
    cwd, elsewhere = tmp_path / "cwd", tmp_path / "on-pythonpath"
    plant(cwd, marker)
    # Only a module the server never imports: on the server's own path, the caller chose it.
    plant(elsewhere, marker, ("planted_probe",))
    srv = script_server(
        cwd,
        "--workers",
        "tasky.workers.examples",
        "--workers",
        "tests.isolation_workers",
        extra_path=str(elsewhere),
    )

    primes = run_task(srv, "Primes", {"limit": 1000})
    assert primes["Status"] == "Completed", primes
    assert primes["Output"]["count"] == 168

    # The server itself can import planted_probe (the caller put it on the server's path).
    probe = run_task(srv, "ImportProbe", {"module": "planted_probe"})
    assert probe["Status"] == "Completed", probe
    seen = probe["Output"]
    assert seen["imported"] is None
    assert seen["isolated"] == 1
    resolved = {str(Path(p).resolve()) for p in seen["path"] if p}
    for forbidden in (cwd, elsewhere, Path(TASKY).parent, ENGINE_DIR):
        assert str(forbidden.resolve()) not in resolved, seen["path"]
    assert not marker.exists(), marker.read_text()


README_MODULE = next(b for b in blocks("python") if "myworkers.py" in b)

TOOLS = """
import json

from pydantic import BaseModel, ConfigDict
from tasky import AsyncTaskContext, TaskContext, Worker, worker

from . import helper_beside


class Twice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int


class Double(Worker):
    name = "Double"
    Config = Twice
    mode = "process"

    def perform(self, config: Twice, task: TaskContext) -> dict:
        import statistics  # a late import, in the task process

        try:
            import planted_probe  # type: ignore[import-not-found]  # noqa: F401
        except ModuleNotFoundError:
            pass

        assert statistics.mean([1, 3]) == 2
        return json.loads(json.dumps({"value": helper_beside.double(config.n)}))


@worker("Mean", config=Twice)
async def mean(config: Twice, task: AsyncTaskContext) -> float:
    import statistics  # a late import, in the server

    try:  # an optional dependency that is not installed: none from the working directory either
        import planted_probe  # type: ignore[import-not-found]  # noqa: F401
    except ModuleNotFoundError:
        pass
    return statistics.mean([config.n, config.n])
"""


def test_workers_module_from_the_working_directory(
    script_server: Any, tmp_path: Path, marker: Path
) -> None:
    """The README's `tasky serve --workers myworkers`, in a folder also holding planted files."""
    cwd = tmp_path / "project"
    plant(cwd, marker)
    (cwd / "myworkers.py").write_text(README_MODULE)
    # A package, so it may import its own helper (relative imports are its own files).
    (cwd / "mytools").mkdir()
    (cwd / "mytools" / "__init__.py").write_text(TOOLS)
    (cwd / "mytools" / "helper_beside.py").write_text("def double(n):\n    return 2 * n\n")
    srv = script_server(cwd, "--workers", "myworkers", "--workers", "mytools")

    hello = run_task(srv, "Hello", {})
    assert hello["Status"] == "Completed", hello
    assert hello["Output"] == {"string_output": "hello"}
    resize = run_task(srv, "Resize", {"path": "a.png", "width": 10})
    assert resize["Status"] == "Completed", resize
    double = run_task(srv, "Double", {"n": 21})
    assert double["Status"] == "Completed", double
    assert double["Output"] == {"value": 42}
    late = run_task(srv, "Mean", {"n": 3})
    assert late["Status"] == "Completed", late
    assert not marker.exists(), marker.read_text()


def serve_workers(
    cwd: Path, module: str, *, keep_pythonpath: bool = False
) -> subprocess.CompletedProcess[str]:
    """``tasky serve --workers MODULE`` run in ``cwd``, without TASKY_* variables (and without
    PYTHONPATH unless kept), for a server that stops before it listens."""
    dropped = ("TASKY_",) if keep_pythonpath else ("TASKY_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return subprocess.run(
        [TASKY, "serve", "--addr", f"127.0.0.1:{free_port()}", "--workers", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.server  # a tasky serve that stops before it listens
def test_unknown_workers_module_says_where_it_looked(tmp_path: Path) -> None:
    done = serve_workers(tmp_path, "nosuchworkers")
    assert done.returncode == 2
    assert "No module named 'nosuchworkers'" in done.stderr
    assert str(tmp_path) in done.stderr  # the working directory was searched
    assert "PYTHONPATH" in done.stderr  # and the user is told how to fix it
    assert "Traceback" not in done.stderr


@pytest.mark.server  # a tasky serve that stops before it listens
def test_a_sibling_import_says_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "myworkers.py").write_text("import myhelpers\n")
    (tmp_path / "myhelpers.py").write_text("")
    done = serve_workers(tmp_path, "myworkers")
    assert done.returncode == 2
    assert "myworkers imports myhelpers, which lies beside it" in done.stderr
    assert "from . import myhelpers" in done.stderr


@pytest.mark.server  # a tasky serve that stops before it listens
def test_a_file_name_is_not_a_module_name(tmp_path: Path) -> None:
    done = serve_workers(tmp_path, "myworkers.py", keep_pythonpath=True)
    assert done.returncode == 2
    assert "did you mean 'myworkers'" in done.stderr


def test_python_m_tasky_leaves_the_working_directory_off_the_path(
    server_factory: Any, tmp_path: Path, marker: Path
) -> None:
    """`python -m` puts the working directory first on the server's path; Tasky drops it."""
    plant(tmp_path, marker, ("statistics", "planted_probe"))  # the suite's servers run in tmp_path
    srv: ServerProcess = server_factory("--workers", "tests.isolation_workers")
    for module in ("planted_probe", "statistics"):
        task = run_task(srv, "LateImport", {"module": module})
        assert task["Status"] == "Completed", task
        assert str(tmp_path) not in str(task["Output"])
    assert not marker.exists(), marker.read_text()
