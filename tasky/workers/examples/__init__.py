"""The example workers registered when ``tasky serve`` is given no ``--workers`` module."""

from __future__ import annotations

from tasky.workers.examples.copyfile import CopyFile
from tasky.workers.examples.ifconfig import Ifconfig
from tasky.workers.examples.sleeper import Sleeper

__all__ = ["CopyFile", "Ifconfig", "Sleeper"]
