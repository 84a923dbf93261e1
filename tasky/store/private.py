"""The data directory and its files are private to the server's user (0700 / 0600).

The database holds every task's config, logs and results; other local users must not read it.
SQLite creates the -wal and -shm files with the database file's mode, so creating the database
file 0600 before SQLite opens it keeps them private too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("tasky.store")

_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create the directory 0700; warn about an existing one other users can enter or list."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Not tightened: it may be a directory the user shares on purpose (``--data .``); the
        # files inside are private anyway.
        log.warning(
            "the data directory %s is open to other users (mode %o); chmod 700 it", path, mode
        )


def private_database(path: Path) -> None:
    """Create the database file 0600 if missing; take group and other bits off existing files."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    for suffix in _DB_SUFFIXES:
        tighten(Path(f"{path}{suffix}"))


def tighten(path: Path) -> None:
    """Take group and other bits off ``path`` if it is a plain file. Anything else is left alone:
    a symbolic link planted under a database file's name (``tasky.db-shm`` -> some file of the
    server's user) had its target chmod-ed before (chmod follows links, and Linux has no
    lchmod); SQLite itself refuses to use such a link. Opened without following a link and
    changed through that descriptor, so the file checked is the file changed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # none, or a link (ELOOP): nothing of ours to tighten
        return
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)
