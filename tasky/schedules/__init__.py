"""Schedules: start a worker or a named chain on a cron expression or a fixed interval."""

from __future__ import annotations

from tasky.schedules.model import ScheduleSpec
from tasky.schedules.service import ScheduleService

__all__ = ["ScheduleService", "ScheduleSpec"]
