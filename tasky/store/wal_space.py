"""The WAL file gets its working length when the store opens, written as zeros.

A commit that makes the WAL file longer costs more than one that writes over bytes the file
already holds: with ``synchronous=FULL`` its fdatasync must then also carry the file's new length
to the disk (on ext4, a commit of the filesystem's own journal). A running server is past that
once its WAL has grown to the checkpoint's size (the writer then writes it over from its start),
but SQLite deletes the WAL when its last connection closes, so every start of the server began
with a WAL that grew by every commit for its first ~40 MB. Measured on the benchmark machine
(bench/README.md, fourteenth round): a durable commit of seven pages 0.37-0.48 ms p50 while the
file grows, 0.27-0.30 ms over written zeros. PostgreSQL zero-fills new WAL segments for the same
reason (``wal_init_zero``).

Zeros are written, not ``fallocate``-d: space allocated but never written is marked so, and its
first write changes the file's metadata again; measured, commits over such space took as long as
on a growing file (0.32-0.36 against 0.33-0.37 ms p50, three runs each).

Safe over any WAL, a crashed server's included: SQLite appends a frame right after the last valid
one, and recovery stops at the first frame whose salt or checksum does not match, which zeros
never do; zeros past the end read as if the file ended there. They are written past the file's
current end only, while the writer's connection holds the write lock (``BEGIN IMMEDIATE``), so no
commit is being written meanwhile, and the file is opened without following a symbolic link.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat

log = logging.getLogger("tasky.store")

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
_CHUNK = 1 << 20


def wal_bytes(frames: int, page_size: int) -> int:
    """The length of a WAL file that holds ``frames`` frames of ``page_size`` pages."""
    return WAL_HEADER_BYTES + frames * (FRAME_HEADER_BYTES + page_size)


def reserve_wal(conn: sqlite3.Connection, path: str, frames: int) -> None:
    """Lengthen ``path``'s WAL with zeros to hold ``frames`` frames. ``conn`` is
    the database's writing connection, in WAL mode and outside a transaction. Nothing is added
    if the WAL is already that long, is not a plain file, or the disk refuses the space (then the
    file is left as it was: the WAL grows by its commits, as without this)."""
    page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    wanted = wal_bytes(frames, page_size)
    conn.execute("BEGIN IMMEDIATE")
    try:
        lengthen_with_zeros(f"{path}-wal", wanted)
    finally:
        conn.execute("ROLLBACK")


def lengthen_with_zeros(file: str, wanted: int) -> int:
    """Write zeros past the end of ``file`` (a plain file, not followed if a link) up to
    ``wanted`` bytes, then sync it; the bytes added (0 if none could be)."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # none yet, or a symbolic link (SQLite itself refuses to use one)
        return 0
    try:
        info = os.fstat(fd)
        start = info.st_size
        if not stat.S_ISREG(info.st_mode) or start >= wanted:
            return 0
        zeros = bytes(_CHUNK)  # made here, not kept: a MiB of the server's memory otherwise
        try:
            offset = start
            while offset < wanted:
                offset += os.pwrite(fd, zeros[: min(_CHUNK, wanted - offset)], offset)
            os.fsync(fd)
        except OSError as exc:  # a full disk, a file size limit: give the space back
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            log.warning(
                "could not reserve %d bytes for %s (%s): it grows as it is used",
                wanted - start,
                file,
                exc,
            )
            return 0
        return wanted - start
    finally:
        os.close(fd)
