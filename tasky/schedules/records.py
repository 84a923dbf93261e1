"""Building and showing schedule records (the store's) from and to the wire shape."""

from __future__ import annotations

from typing import Any

from tasky.clock import go_duration
from tasky.schedules import timing
from tasky.schedules.model import ScheduleSpec
from tasky.store.records import ScheduleRecord


def to_record(spec: ScheduleSpec, now: float, source: str = "api") -> ScheduleRecord:
    """A new schedule's record; TimingError (naming the field) for bad timing."""
    timing.check_zone(spec.timezone)
    cron = None if spec.cron is None else timing.check_cron(spec.cron)
    interval = None if spec.interval is None else timing.check_interval(float(spec.interval))
    return ScheduleRecord(
        name=spec.name,
        worker=spec.worker,
        chain=spec.chain,
        config=spec.config if spec.worker is not None else spec.parameters,
        cron=cron,
        interval=interval,
        timezone=spec.timezone,
        catch_up=spec.catch_up,
        next_run=timing.next_due(cron, interval, spec.timezone, None, now),
        created_at=now,
        paused=spec.paused,
        source=source,
    )


def view(record: ScheduleRecord) -> dict[str, Any]:
    """The API's JSON for one schedule."""
    is_chain = record.chain is not None
    return {
        "Name": record.name,
        "Worker": record.worker,
        "Config": None if is_chain else record.config,
        "Chain": record.chain,
        "Parameters": record.config if is_chain else None,
        "Cron": record.cron,
        "Interval": record.interval,
        "Every": None if record.interval is None else go_duration(record.interval),
        "TimeZone": record.timezone,
        "CatchUp": record.catch_up,
        "Paused": record.paused,
        "Source": record.source,
        "CreatedAt": record.created_at,
        "NextRun": None if record.paused else record.next_run,
        "LastRun": record.last_run_at,
        "LastTaskId": None if is_chain else record.last_run_id,
        "LastChainId": record.last_run_id if is_chain else None,
        "LastError": record.last_error,
    }
