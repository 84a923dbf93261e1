"""Retention: finished tasks and chains older than a configurable age are pruned.

The pruner (``tasky.retention.pruner``) needs the store; it is not imported here, so that the
command line's ``tasky prune`` (which reads an age with ``parse_age`` and asks the server) does
not load the store on every command.
"""

from __future__ import annotations

from tasky.retention.plan import Pass, parse_age, passes

__all__ = ["Pass", "parse_age", "passes"]
