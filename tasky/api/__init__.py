"""HTTP API: routes, request/response shapes, error mapping."""

from __future__ import annotations

from tasky.api.app import PREFIX, TaskyApp, create_app

__all__ = ["PREFIX", "TaskyApp", "create_app"]
