"""Reading and writing files inside the roots through descriptors, for file workers.

Every open starts at the root's descriptor and follows no symlink (:mod:`tasky.workers.safe_open`),
so swapping a component for a symlink after a check changes nothing. Only regular files with a
single hard link are read or replaced: a hard link inside a root to a file outside it is refused,
and so is a FIFO or a device (opened non-blocking, so it cannot wedge the task). A destination is
written to a new private temporary file in its directory and renamed over the old name, which
replaces the directory entry and never writes through whatever the name pointed at.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tasky.workers.paths import PathRefused, as_roots, own_identities, refuse_own, split_path
from tasky.workers.safe_open import open_beneath, open_dir_beneath

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class SourceFile:
    file: BinaryIO
    path: Path
    stat: os.stat_result


@dataclass(slots=True)
class Destination:
    file: BinaryIO
    path: Path


def _refusal(raw: str, exc: OSError) -> PathRefused:
    if exc.errno in (errno.ELOOP, errno.EXDEV):
        return PathRefused(f"{raw}: symbolic links are not followed (the path must be a real path)")
    if exc.errno == errno.ENOENT:
        return PathRefused(f"{raw} does not exist")
    if exc.errno == errno.ENOTDIR:
        # O_DIRECTORY | O_NOFOLLOW on a symlink answers ENOTDIR, so this is often a symlink too.
        return PathRefused(
            f"{raw}: a component is not a real directory (symbolic links are not followed)"
        )
    if exc.errno == errno.ENXIO:
        return PathRefused(f"{raw} is not a regular file")
    return PathRefused(f"{raw}: {exc.strerror or exc}")


def _check_regular(raw: str, st: os.stat_result, roots: Sequence[Path]) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise PathRefused(f"{raw}: symbolic links are not followed (the path must be a real path)")
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"{raw} is not a regular file")
    if st.st_nlink > 1:
        # Another name for the same data may lie outside the roots (or be Tasky's database).
        raise PathRefused(f"{raw} has more than one hard link; such files are refused")
    if (st.st_dev, st.st_ino) in own_identities(roots):
        raise PathRefused(f"{raw} is one of Tasky's own files (its data, config or code)")


def _check_dir_not_own(raw: str, dir_fd: int, roots: Sequence[Path]) -> None:
    st = os.fstat(dir_fd)
    if (st.st_dev, st.st_ino) in own_identities(roots):
        raise PathRefused(f"{raw} is one of Tasky's own files (its data, config or code)")


@contextlib.contextmanager
def _root_fd(root: Path) -> Iterator[int]:
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PathRefused(f"the root directory {root} cannot be opened: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _dir(raw: str, root_fd: int, names: Sequence[str], roots: Sequence[Path]) -> Iterator[int]:
    try:
        fd = open_dir_beneath(root_fd, names)
    except OSError as exc:
        raise _refusal(raw, exc) from None
    try:
        _check_dir_not_own(raw, fd, roots)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_source(raw: str, roots: Sequence[Path]) -> Iterator[SourceFile]:
    """Open a regular, single-link file inside the roots for reading, through descriptors."""
    root, names = split_path(raw, roots)
    if not names:
        raise PathRefused(f"{raw} is not a regular file")
    with _root_fd(root) as root_fd, _dir(raw, root_fd, names[:-1], roots) as dir_fd:
        try:
            fd = open_beneath(dir_fd, names[-1:], _READ_FLAGS)
        except OSError as exc:
            raise _refusal(raw, exc) from None
        try:
            st = os.fstat(fd)
            _check_regular(raw, st, roots)
            os.set_blocking(fd, True)
            file = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
    with file:
        yield SourceFile(file, root.joinpath(*names), st)


@contextlib.contextmanager
def replace_file(
    raw: str,
    roots: Sequence[Path],
    *,
    default_name: str,
    source: os.stat_result | None = None,
) -> Iterator[Destination]:
    """Write a file inside the roots: a new temporary file renamed over ``raw`` on success.

    ``raw`` naming an existing directory means ``default_name`` inside it. An existing
    destination must be a regular single-link file, and not ``source`` itself. On an exception
    the temporary file is removed and the destination is left as it was.
    """
    root, names = split_path(raw, roots)
    with _root_fd(root) as root_fd:
        try:
            into = open_dir_beneath(root_fd, names)
        except OSError:
            into = -1  # not an existing real directory: the last name is the file's name
        if into >= 0:
            os.close(into)
            names = [*names, default_name]
            refuse_own(root.joinpath(*names), roots, raw)
        if not names:
            raise PathRefused(f"{raw} is not a file name")
        with _dir(raw, root_fd, names[:-1], roots) as dir_fd:
            name = names[-1]
            _check_existing(raw, dir_fd, name, roots, source)
            yield from _write_and_rename(dir_fd, name, root.joinpath(*names), source)


def _check_existing(
    raw: str, dir_fd: int, name: str, roots: Sequence[Path], source: os.stat_result | None
) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise PathRefused(f"{raw} is a directory")
    _check_regular(raw, st, roots)
    if source is not None and (st.st_dev, st.st_ino) == (source.st_dev, source.st_ino):
        raise PathRefused("source and destination are the same file")


def _write_and_rename(
    dir_fd: int, name: str, path: Path, source: os.stat_result | None
) -> Iterator[Destination]:
    temp = f".tasky-{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, _TEMP_FLAGS, 0o600, dir_fd=dir_fd)
    done = False
    try:
        with os.fdopen(fd, "wb") as file:
            yield Destination(file, path)
            file.flush()
            if source is not None:
                # The source's permission bits and times, but never set-id bits on a copy.
                os.fchmod(file.fileno(), stat.S_IMODE(source.st_mode) & 0o777)
                os.utime(file.fileno(), ns=(source.st_atime_ns, source.st_mtime_ns))
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)


def check_path(raw: str, roots: Sequence[Path], *, kind: str, must_exist: bool) -> Path:
    """Check a path a program will open itself; return it with no symlink in it.

    Every component must be a real directory (no symlink) inside a root and not Tasky's own; the
    last, if it exists, a directory or a regular single-link file (``kind``: any, file or dir).
    The program opens the path by name later, so a component swapped for a symlink after this
    check would still be followed: that race cannot be closed from outside the program. The
    check narrows it to the moment between this call and the program's own open.
    """
    allowed = as_roots(roots)
    root, names = split_path(raw, allowed)
    path = root.joinpath(*names)
    with _root_fd(root) as root_fd:
        if not names:
            st: os.stat_result | None = os.fstat(root_fd)
        else:
            with _dir(raw, root_fd, names[:-1], allowed) as dir_fd:
                try:
                    st = os.stat(names[-1], dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
    if st is None:
        if must_exist:
            raise PathRefused(f"{raw} does not exist")
        return path
    if stat.S_ISDIR(st.st_mode):
        if kind == "file":
            raise PathRefused(f"{raw} is not a file")
        if (st.st_dev, st.st_ino) in own_identities(allowed):
            raise PathRefused(f"{raw} is one of Tasky's own files (its data, config or code)")
        return path
    if kind == "dir":
        raise PathRefused(f"{raw} is not a directory")
    _check_regular(raw, st, allowed)
    return path
