"""Due times: cron in a time zone (daylight saving), interval phase, and the named checks."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tasky.schedules.timing import TimingError, check_cron, check_zone, next_cron, next_due

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


def test_cron_follows_the_time_zone_across_daylight_saving() -> None:
    # 02:30 every day in Paris: 00:30 UTC in summer, 01:30 UTC in winter. On 25 October 2026
    # 02:30 happens twice (the clocks go back at 03:00): the job runs at the first only.
    before = at("2026-10-24T12:00:00")
    first = next_cron("30 2 * * *", "Europe/Paris", before)
    second = next_cron("30 2 * * *", "Europe/Paris", first)
    assert datetime.fromtimestamp(first, PARIS).strftime("%m-%d %H:%M") == "10-25 02:30"
    assert datetime.fromtimestamp(second, PARIS).strftime("%m-%d %H:%M") == "10-26 02:30"
    assert second - first == 25 * 3600  # the night the clocks go back is an hour longer
    assert next_cron("30 2 * * *", "UTC", before) != first
    # A job on every hour runs in both 02:00 hours of that night: they are different hours.
    two = at("2026-10-25T01:30:00")
    hourly = [next_cron("0 * * * *", "Europe/Paris", two)]
    for _ in range(3):
        hourly.append(next_cron("0 * * * *", "Europe/Paris", hourly[-1]))
    assert [b - a for a, b in itertools.pairwise(hourly)] == [3600.0] * 3


def test_interval_keeps_its_phase_and_skips_past_times() -> None:
    assert next_due(None, 60.0, "UTC", None, 1000.0) == 1060.0
    assert next_due(None, 60.0, "UTC", 1000.0, 1000.2) == 1060.0
    assert next_due(None, 60.0, "UTC", 1000.0, 1305.0) == 1360.0  # 5 missed: back in phase
    assert next_due(None, 60.0, "UTC", 1000.0, 1060.0) == 1120.0  # strictly after now


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("* * * *", "4 fields"),
        ("0 0 30 2 *", "never matches"),
        ("@reboot", "1 fields"),
    ],
)
def test_bad_cron_names_what_is_wrong(expression: str, words: str) -> None:
    with pytest.raises(TimingError) as refused:
        check_cron(expression)
    assert refused.value.field == "cron" and words in str(refused.value)


def test_good_cron_and_zones() -> None:
    assert check_cron("  */15   9-17 * * MON-FRI ") == "*/15 9-17 * * MON-FRI"
    assert check_cron("@Daily") == "@daily"
    assert str(check_zone("America/New_York")) == "America/New_York"
    for zone in ("America", "../etc/passwd", "", "Mars/Olympus", "UTC\n"):
        with pytest.raises(TimingError) as refused:
            check_zone(zone)
        assert refused.value.field == "timezone"
