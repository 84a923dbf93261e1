"""The web page: static files under ``static/`` served at /tasky/ui, no build step."""

from __future__ import annotations

from tasky.ui.routes import CSP, routes

__all__ = ["CSP", "routes"]
