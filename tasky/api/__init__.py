"""HTTP API: routes, request/response shapes, error mapping."""

from __future__ import annotations

from tasky.api.app import PREFIX, TaskyApp, create_app
from tasky.api.groups import RouteGroup

__all__ = ["PREFIX", "RouteGroup", "TaskyApp", "create_app"]
