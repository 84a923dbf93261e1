"""The markers that keep the quick inner loop quick (docs/development.md) are set and enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerFactory, ServerProcess, free_port


def test_a_test_with_a_server_fixture_is_marked_server(
    server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("server") is not None


def test_a_test_without_one_is_not(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("server") is None


def test_starting_a_server_in_a_test_not_marked_server_fails(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", free_port())
    with pytest.raises(RuntimeError, match=r"mark it @pytest.mark.server"):
        server.start()
    assert server.proc is None  # refused before anything was started
