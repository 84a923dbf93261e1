"""``tasky serve`` options: each has its TASKY_* variable, shown in --help; every setting can come
from one; the defaults are the Settings defaults; and the tests never see a TASKY_* variable."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from tasky import server
from tasky.cli.main import app
from tasky.settings import Settings, default
from tests.conftest import ROOT


def serve_options() -> list[TyperOption]:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    command = group.commands["serve"]
    return [p for p in command.params if isinstance(p, TyperOption)]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """What ``tasky serve`` would run the server with (the server itself is not started)."""
    seen: list[Settings] = []
    monkeypatch.setattr(server, "serve", seen.append)
    return seen


def serve(*args: str, env: dict[str, str] | None = None) -> None:
    result = CliRunner().invoke(app, ["serve", *args], env=env)
    assert result.exit_code == 0, result.output


def test_every_option_has_its_variable_shown_in_help() -> None:
    options = serve_options()
    assert len(options) > 40
    # 300 columns: no variable's name is cut short in the help's table.
    shown = CliRunner().invoke(app, ["serve", "--help"], env={"TERMINAL_WIDTH": "300"}).output
    for option in options:
        assert option.name is not None
        name = option.name.upper()
        # Repeatable options may name their variable in the plural (--root: TASKY_ROOTS).
        assert option.envvar in (f"TASKY_{name}", f"TASKY_{name}S"), option.opts
        assert option.show_envvar, option.opts
        assert f"[env var: {option.envvar}]" in shown, option.opts


def test_the_defaults_are_the_settings_defaults(started: list[Settings]) -> None:
    serve()
    assert started == [Settings()]
    assert default("max_log_lines") == 10_000
    assert default("roots") == [Path.cwd() / "tasky-files"]


# A value unlike the default for every setting, each through its variable.
EVERY_SETTING = {
    "TASKY_ADDR": "10.1.2.3:9999",
    "TASKY_DATA": "/srv/tasky/data",
    "TASKY_WORKERS": "tests.workers_for_tests",
    "TASKY_CONFIG": "/etc/tasky/tasky.toml",
    "TASKY_ROOTS": "/srv/tasky/files",
    "TASKY_TOKEN": "t" * 40,
    "TASKY_RATE_LIMIT": "5",
    "TASKY_AUDIT_RETENTION_DAYS": "7",
    "TASKY_RETENTION_DAYS": "3",
    "TASKY_PRUNE_INTERVAL": "60",
    "TASKY_MAX_BODY": "2048",
    "TASKY_MAX_QUEUED": "10",
    "TASKY_MAX_CHAIN_PARAMS": "100",
    "TASKY_MAX_CHAIN_DEFINITION": "200",
    "TASKY_MAX_CHAIN_STEPS": "5",
    "TASKY_MAX_LOG_LINES": "50",
    "TASKY_IDEMPOTENCY_WINDOW": "60",
    "TASKY_THREAD_POOL_SIZE": "4",
    "TASKY_LEASE": "12",
    "TASKY_CANCEL_WAIT": "0.5",
    "TASKY_OUTBOUND_ALLOW": "10.0.0.0/8",
    "TASKY_NODE_ID": "web-1",
    "TASKY_NODE": "web",
    "TASKY_LABELS": "gpu,eu",
    "TASKY_SWEEP_INTERVAL": "2",
    "TASKY_ALLOWED_HOSTS": "tasks.example.com",
    "TASKY_ALLOWED_ORIGINS": "https://tasks.example.com",
    "TASKY_HEADER_TIMEOUT": "3",
    "TASKY_BODY_TIMEOUT": "4",
    "TASKY_KEEP_ALIVE_TIMEOUT": "6",
    "TASKY_MAX_CONNECTIONS": "7",
    "TASKY_MAX_STREAMS": "8",
    "TASKY_MAX_STREAMS_PER_PRINCIPAL": "2",
    "TASKY_TLS_CERT": "/etc/tasky/cert.pem",
    "TASKY_TLS_KEY": "/etc/tasky/key.pem",
    "TASKY_FORWARDED_ALLOW_IPS": "10.0.0.1",
    "TASKY_CALLBACK_SECRET": "s" * 20,
    "TASKY_CALLBACK_ATTEMPTS": "2",
    "TASKY_CALLBACK_BACKOFF": "1",
    "TASKY_CALLBACK_TIMEOUT": "2",
    "TASKY_LOG_FORMAT": "json",
    "TASKY_ACCESS_LOG": "1",
    "TASKY_GRACE": "5",
    "TASKY_POLL_INTERVAL": "2.5",
    "TASKY_DB": "postgresql://tasky@db.example:5432/tasky",
    "TASKY_MAX_BATCH_ITEMS": "50",
    "TASKY_MAX_BATCH_BYTES": "4096",
}


def test_every_setting_can_come_from_its_variable(started: list[Settings]) -> None:
    serve(env=EVERY_SETTING)
    [settings] = started
    defaults = Settings()
    for setting in dataclasses.fields(Settings):
        name = setting.name
        assert getattr(settings, name) != getattr(defaults, name), name
    assert (settings.host, settings.port, settings.node_id) == ("10.1.2.3", 9999, "web-1")
    assert (settings.lease_seconds, settings.cancel_wait_seconds) == (12.0, 0.5)
    assert (settings.node, settings.sweep_interval) == ("web", 2.0)


def test_the_node_name_makes_the_claim_owner_unless_a_node_id_is_given(
    started: list[Settings],
) -> None:
    serve("--node", "web-2")
    serve("--node", "web-2", "--node-id", "claims-2")
    serve()
    named, overridden, default = started
    assert (named.node, named.node_id) == ("web-2", f"web-2:{os.getpid()}")
    assert (overridden.node, overridden.node_id) == ("web-2", "claims-2")
    host = os.uname().nodename
    assert (default.node, default.node_id) == (host, f"{host}:{os.getpid()}")


@pytest.mark.server  # a tasky serve that stops before it listens
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-log-lines", "0", "--max-log-lines"),
        ("--thread-pool-size", "0", "--thread-pool-size"),
        ("--lease", "0.5", "--lease must be >= 1 second"),
        ("--lease", "nan", "--lease must be >= 1 second"),
        ("--cancel-wait", "-1", "--cancel-wait >= 0"),
        ("--node-id", "web\x1b[31m", "--node-id must be 1 to 200 printable"),
        ("--node-id", "", "--node-id must be 1 to 200 printable"),
        ("--node", "a b", "--node 'a b' must be 1 to 64 ASCII letters"),
        ("--node", "-x", "--node '-x' must be 1 to 64"),
        ("--node", "é", "--node 'é' must be"),
        ("--label", "g\x1bpu", "--label"),
        ("--label", "x" * 65, "--label"),
        ("--sweep-interval", "0", "--sweep-interval must be more than 0"),
        ("--sweep-interval", "nan", "--sweep-interval must be more than 0"),
    ],
)
def test_bad_values_stop_the_server_before_it_listens(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    argv = [sys.executable, "-m", "tasky", "serve", "--data", str(tmp_path / "data")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*argv, option, value], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_no_tasky_variable_reaches_a_test() -> None:
    assert [name for name in os.environ if name.startswith("TASKY_")] == []


@pytest.mark.slow
def test_the_tests_clear_the_tasky_variables() -> None:
    """The check above, run in a pytest of its own with TASKY_* set: the conftest clears them
    (and without the conftest, the check sees them)."""
    test = f"{Path(__file__).name}::test_no_tasky_variable_reaches_a_test"
    env = {**os.environ, "TASKY_DATA": "/nowhere", "TASKY_TOKEN": "leaked"}

    def run(*extra: str) -> int:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, test]
        done = subprocess.run(argv, cwd=ROOT / "tests", env=env, capture_output=True, timeout=120)
        return done.returncode

    assert run() == 0
    assert run("--noconftest") == 1
