"""The ``tasky`` command line: ``tasky serve`` and the client commands."""

from __future__ import annotations

from tasky.cli.main import app, main

__all__ = ["app", "main"]
