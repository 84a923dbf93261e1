"""The example workers registered when ``tasky serve`` is given no ``--workers`` module."""

from __future__ import annotations

from tasky.workers.examples.checksum import Checksum
from tasky.workers.examples.command import Command
from tasky.workers.examples.copyfile import CopyFile
from tasky.workers.examples.diskusage import DiskUsage
from tasky.workers.examples.httpcheck import HTTPCheck
from tasky.workers.examples.ifconfig import Ifconfig
from tasky.workers.examples.primes import Primes
from tasky.workers.examples.sleeper import Sleeper

__all__ = [
    "Checksum",
    "Command",
    "CopyFile",
    "DiskUsage",
    "HTTPCheck",
    "Ifconfig",
    "Primes",
    "Sleeper",
]
