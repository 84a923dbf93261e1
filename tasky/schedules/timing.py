"""When a schedule is due: cron expressions (croniter) and fixed intervals, in a time zone.

Parsing and the calendar arithmetic (months, weekdays, daylight saving) are croniter's and
zoneinfo's; this module only checks what users give and names the part that is wrong.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

# The names croniter understands besides five fields.
NAMED = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FIELDS = ("minute", "hour", "day of month", "month", "day of week")
MIN_INTERVAL = 1.0
MAX_INTERVAL = 366 * 86400.0


class TimingError(ValueError):
    """A cron expression, interval or time zone is not valid; ``field`` names the body field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_zone(name: str) -> ZoneInfo:
    # Only the names the time zone database lists: ZoneInfo itself would open any path under it
    # (a directory such as "America" raises IsADirectoryError).
    if name not in _zones():
        raise TimingError("timezone", f"unknown time zone {name[:64]!r} (use an IANA name)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimingError("timezone", f"unknown time zone {name!r}") from None


def check_cron(expression: str) -> str:
    """The expression, tidied; TimingError naming the cron field that is wrong."""
    text = " ".join(expression.split())
    if text.lower() in NAMED:
        return text.lower()
    parts = text.split(" ")
    if len(parts) != len(FIELDS):
        raise TimingError(
            "cron",
            f"cron expression {expression[:100]!r} has {len(parts)} fields; it needs 5 "
            f"({', '.join(FIELDS)}) or one of {', '.join(NAMED)}",
        )
    for index, part in enumerate(parts):
        # Each field alone, the others '*': croniter's own message does not say which is wrong.
        probe = ["*"] * len(FIELDS)
        probe[index] = part
        if not croniter.is_valid(" ".join(probe)):
            raise TimingError("cron", f"cron field {FIELDS[index]} ({part[:40]!r}) is not valid")
    if not croniter.is_valid(text):
        raise TimingError("cron", f"cron expression {text!r} is not valid")
    try:  # valid fields can still name no date at all (30 February)
        croniter(text, datetime.now(UTC)).get_next(float)
    except CroniterError:
        raise TimingError("cron", f"cron expression {text!r} never matches a date") from None
    return text


def check_interval(seconds: float) -> float:
    if not math.isfinite(seconds) or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise TimingError(
            "interval", f"interval must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds"
        )
    return float(seconds)


def _fixed_hours(expression: str) -> bool:
    if expression.startswith("@"):
        return expression != "@hourly"
    hours = expression.split(" ")[1]
    return not (hours == "*" or hours.startswith("*/"))


def next_cron(expression: str, zone: str, after: float) -> float:
    """The first time strictly after ``after`` (epoch seconds) that the expression names.

    When the clocks go back, an hour's wall-clock times happen twice; croniter names both. A job
    at set hours ("30 2 * * *") runs at the first of them only, as cron does; one on every hour
    runs in both (they are different hours)."""
    tz = ZoneInfo(zone)
    times = croniter(expression, datetime.fromtimestamp(after, tz))
    found: float = times.get_next(float)
    if _fixed_hours(expression):
        for _ in range(3):  # a repeat is followed by a plain time: bounded
            if datetime.fromtimestamp(found, tz).fold == 0:
                break
            found = times.get_next(float)
    return found


def next_due(
    cron: str | None, interval: float | None, zone: str, due: float | None, now: float
) -> float:
    """The next due time after ``now``. An interval keeps its phase from ``due`` (the time
    that just fired), skipping the times already past; a new interval starts at ``now``."""
    if cron is not None:
        return next_cron(cron, zone, now)
    assert interval is not None
    if due is None:
        return now + interval
    steps = max(1, math.floor((now - due) / interval) + 1)
    return due + steps * interval
