"""Retention: finished tasks and chains older than a configurable age are pruned."""

from __future__ import annotations

from tasky.retention.plan import Pass, parse_age, passes
from tasky.retention.pruner import Pruned, prune, prune_forever

__all__ = ["Pass", "Pruned", "parse_age", "passes", "prune", "prune_forever"]
