"""Tasky's own files, which no file worker may reach whatever the roots say.

The data directory (database, its -wal/-shm, the lock file), the config files and the code of
the workers (and of Tasky itself): a task that could read them would see every task's config
and result; one that could write them would decide what the server runs next.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import tasky
from tasky.settings import Settings
from tasky.workers.paths import Roots

log = logging.getLogger("tasky")


def own_files(settings: Settings) -> list[Path]:
    paths = [settings.data_dir, *settings.config_files, Path(tasky.__file__).parent]
    for module in settings.worker_modules:
        paths.extend(_module_files(module))
    return paths


def _module_files(name: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []  # the registry reports a module that cannot be imported, with its own words
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]  # a package: all of it
    return [Path(spec.origin)] if spec.origin and spec.has_location else []


def file_roots(settings: Settings) -> Roots:
    """The roots file workers get: the settings' roots, carrying the files they must not reach."""
    return Roots(settings.roots, protected=own_files(settings))


def prepare_roots(settings: Settings) -> None:
    """Create missing roots (the default ./tasky-files at first start), private to this user."""
    for root in settings.roots:
        if not root.exists():
            root.mkdir(mode=0o700, parents=True)
            log.info("created the file root %s", root)
