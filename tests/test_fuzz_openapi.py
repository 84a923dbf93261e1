"""Schemathesis over the whole served OpenAPI document: no request it draws is a server error.

The server is real (a ``tasky serve`` process) and loads only side-effect-free workers
(tests/fuzz_workers.py), so whatever the fuzzer sends cannot touch files or the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import ServerProcess, free_port

pytestmark = pytest.mark.timeout(600)

# The event stream never ends by design, so a fuzzed call would wait for its timeout every
# time; its parameters have their own tests in tests/test_events.py.
_ENDLESS = "/tasky/v1/events"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("fuzz")
    (base / "files").mkdir()
    server = ServerProcess(
        base / "data",
        free_port(),
        ["--workers", "tests.fuzz_workers", "--root", str(base / "files")],
    )
    server.start()
    # One task of each kind, so operations on an existing task are reachable too.
    httpx.post(server.api + "/workers/Mixed", json={"text": "seed"}, timeout=10)
    try:
        yield server
    finally:
        server.stop()


def _fuzz_operation(operation: Any, base_url: str, mode: GenerationMode) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=15)

    call()


def test_no_server_errors(fuzz_server: ServerProcess) -> None:
    """Every documented operation but the endless event stream, fuzzed."""
    schema = schemathesis.openapi.from_url(fuzz_server.api + "/openapi.json")
    fuzzed = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == _ENDLESS:
            continue
        fuzzed += 1
        # Valid requests, then invalid ones (wrong types, missing fields, out-of-range values);
        # the first server error fails the test with a curl line that reproduces it.
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with contextlib.suppress(Unsatisfiable):  # no invalid request exists for it
                _fuzz_operation(operation, fuzz_server.url, mode)
    assert fuzzed >= 15, "the OpenAPI document lost its operations"


def test_fuzz_workers_are_the_only_ones(fuzz_server: ServerProcess) -> None:
    names = {w["name"] for w in httpx.get(fuzz_server.api + "/workers", timeout=10).json()}
    assert names == {"Mixed", "Nap"}
