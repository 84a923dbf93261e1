"""Prometheus metrics (``GET /metrics`` and an alias under /tasky/v1), one registry per app."""

from __future__ import annotations

from tasky.prom.routes import docs, install, routes

__all__ = ["docs", "install", "routes"]
