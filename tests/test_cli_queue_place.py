"""``tasky status`` says where a Queued task stands in its worker's queue."""

from __future__ import annotations

import pytest

from tests.client_server import shared_server
from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_cli_client import as_json, submitted, tasky

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


@pytest.mark.server
def test_status_shows_the_place_in_the_queue(shared_server: ServerProcess) -> None:
    url = shared_server.url
    blocker = submitted(url, "Hold", "seconds=60")  # Hold runs one task at a time
    wait_sync(shared_server.api, blocker, "Running")
    first, second = submitted(url, "Hold", "seconds=0"), submitted(url, "Hold", "seconds=0")
    shown = tasky("status", second, "--url", url)
    assert shown.exit_code == 0, shown.output
    assert "In queue" in shown.stdout and "#2 (1 starts next)" in shown.stdout
    assert as_json(tasky("status", first, "--url", url, "--json"))["QueuePosition"] == 1
    assert "In queue" not in tasky("status", blocker, "--url", url).stdout
    for task_id in (first, second, blocker):
        assert tasky("cancel", task_id, "--url", url).exit_code == 0
    wait_sync(shared_server.api, blocker, "Canceled")
