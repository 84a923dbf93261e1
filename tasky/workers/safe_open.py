"""Open a path beneath a directory descriptor without following any symbolic link.

Checking a path and then opening it by name leaves a window in which a component can be swapped
for a symlink. Here every open starts from an already-open directory descriptor and refuses
symlinks in every component, so what is opened is what was named, whatever happens meanwhile.

Linux ``openat2(2)`` does it in one call (``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``). Where it is
missing (an old kernel, or a seccomp filter that answers ENOSYS or EPERM) the path is walked one
component at a time with ``O_NOFOLLOW``, each step relative to the previous directory.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Sequence

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (the unified syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


class _Openat2:
    """The ``openat2`` system call through ctypes, and whether this kernel has it."""

    def __init__(self) -> None:
        self.available = sys.platform == "linux"
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall if self.available else None

    def __call__(self, dir_fd: int, path: str, flags: int, mode: int) -> int | None:
        """The new descriptor; None when the call is unavailable (then the caller walks)."""
        if not self.available or self._syscall is None:
            return None
        how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE)
        fd = int(
            self._syscall(
                ctypes.c_long(_SYS_OPENAT2),
                ctypes.c_int(dir_fd),
                ctypes.c_char_p(os.fsencode(path)),
                ctypes.byref(how),
                ctypes.c_size_t(ctypes.sizeof(how)),
            )
        )
        if fd >= 0:
            return fd
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            self.available = False  # the kernel has no openat2: never ask again
            return None
        if code == errno.EPERM:
            return None  # a seccomp filter (containers) refusing it; the walk is just as safe
        raise OSError(code, os.strerror(code), path)


# One per process: whether the kernel has openat2 is a property of the machine, not of a server.
_openat2 = _Openat2()


def check_names(parts: Sequence[str]) -> None:
    """Each part is one plain name: no separator, no ``.`` or ``..``, no NUL."""
    for name in parts:
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise ValueError(f"not a plain file name: {name!r}")


def open_beneath(
    dir_fd: int, parts: Sequence[str], flags: int, mode: int = 0, *, use_openat2: bool = True
) -> int:
    """Open ``parts`` (names, outermost first) beneath ``dir_fd``, following no symlink.

    No parts opens ``dir_fd``'s directory itself. A symlink anywhere raises OSError ELOOP (or
    ENOTDIR for a symlink in a directory position on the walk). ``use_openat2=False`` forces the
    walk (tests compare both).
    """
    check_names(parts)
    if not parts:
        return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    if use_openat2:
        fd = _openat2(dir_fd, "/".join(parts), flags, mode)
        if fd is not None:
            return fd
    return _walk(dir_fd, parts, flags, mode)


def open_dir_beneath(dir_fd: int, parts: Sequence[str], *, use_openat2: bool = True) -> int:
    """Open the directory ``parts`` names beneath ``dir_fd`` (no symlinks), for ``dir_fd=`` use."""
    return open_beneath(dir_fd, parts, _DIR_FLAGS, use_openat2=use_openat2)


def _walk(dir_fd: int, parts: Sequence[str], flags: int, mode: int) -> int:
    current = dir_fd
    try:
        for name in parts[:-1]:
            following = os.open(name, _DIR_FLAGS, dir_fd=current)
            if current != dir_fd:
                os.close(current)
            current = following
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=current)
    finally:
        if current != dir_fd:
            os.close(current)
