"""The server on PostgreSQL: tests written for the default store, run again with ``--db``.

The in-process ones get a ``settings`` whose database is a fresh schema; the real-process ones
a ``server_factory`` that adds ``--db`` to every server it starts. Same tests, same results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.settings import Settings
from tests.conftest import ServerProcess
from tests.pg import emptied_shared_schema
from tests.security_helpers import bearer

# Re-collected here, on PostgreSQL.
from tests.test_chains_api import (  # noqa: F401
    test_cancel_mid_chain,
    test_parallel_group_fans_out_and_in,
    test_restart_from_the_failed_step,
    test_sequential_steps_pass_outputs,
)
from tests.test_cli_client import as_json, tasky
from tests.test_core_api import (  # noqa: F401
    test_list_filters_and_cursor_pagination,
    test_whole_record,
    test_worker_and_task_statistics,
)
from tests.test_core_control import (  # noqa: F401
    test_cancel_queued_and_paused_at_once,
    test_cancel_right_as_a_queued_task_is_claimed,
    test_limit_queues_fifo_instead_of_rejecting,
    test_pause_queued_task_holds_it_back,
    test_pause_resume_running_task_stops_its_clock,
    test_progress_and_logs_visible_while_running,
    test_retry_with_backoff_then_success,
    test_run_restarts_with_attempt_history,
    test_update_config_of_queued_task,
)
from tests.test_core_crash import (  # noqa: F401
    test_acknowledged_submits_survive_sigkill,
    test_queued_tasks_run_after_restart,
    test_restart_keeps_status_result_and_logs,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> str:
    """The test process's schema, emptied: one server at a time uses it (each test stops its
    servers), like a database of its own."""
    return emptied_shared_schema()


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    root = tmp_path / "files"
    root.mkdir()
    return Settings(
        data_dir=tmp_path / "data", roots=[root], cancel_wait_seconds=2.0, database_url=pg_url
    )


@pytest.fixture
def server_factory(server_factory: Any, pg_url: str) -> Any:
    def make(*args: str, db: str = pg_url, **kw: Any) -> ServerProcess:
        server: ServerProcess = server_factory(*args, "--db", db, **kw)
        return server

    return make


@pytest.mark.server
def test_tokens_made_on_the_database_count_for_its_running_server(
    server_factory: Any, pg_url: str
) -> None:
    made = tasky("token", "create", "--name", "root", "--role", "admin", "--db", pg_url)
    assert made.exit_code == 0, made.output
    root = made.stdout.strip()
    # The test server trusts local connections: the password is sent, and ignored.
    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    srv: ServerProcess = server_factory("--workers", "tests.workers_for_tests", db=with_password)
    log = srv.read_log()
    assert "data in postgresql://***@127.0.0.1:5432/test?options=" in log
    assert "s3cret" not in log
    assert not (srv.data_dir / "tasky.db").exists()  # the tasks are in the database

    assert httpx.get(f"{srv.api}/workers").status_code == 401
    assert httpx.get(f"{srv.api}/workers", headers=bearer(root)).status_code == 200
    # No lock keeps the commands off a database in use: a token made now counts at once.
    viewer = tasky("token", "create", "--name", "look", "--role", "viewer", "--db", pg_url)
    assert viewer.exit_code == 0, viewer.output
    look = viewer.stdout.strip()
    assert httpx.get(f"{srv.api}/workers", headers=bearer(look)).status_code == 200
    listed = as_json(tasky("token", "list", "--db", pg_url, "--json"))
    assert [t["Name"] for t in listed["Tokens"]] == ["look", "root"]
    assert tasky("token", "revoke", "look", "--db", pg_url).exit_code == 0
    assert httpx.get(f"{srv.api}/workers", headers=bearer(look)).status_code == 401
    wrong = tasky("token", "list", "--db", "/tmp/some.db")
    assert wrong.exit_code != 0 and "--db must be a postgresql:// URL" in wrong.stderr
