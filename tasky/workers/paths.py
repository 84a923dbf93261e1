"""Where file workers may go: the server's root directories, minus Tasky's own files.

A path from a task config is split into a root and plain names (``..`` is refused, not
resolved); :mod:`tasky.workers.files` then opens those names beneath the root's descriptor with
no symlink following, so the lexical path below the root is the real one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path


class PathRefused(Exception):
    """The path is outside every allowed root (directly, through ``..`` or through a symlink)."""


class Roots(tuple[Path, ...]):
    """The allowed root directories (real paths), and Tasky's own files that no root exposes.

    ``protected`` holds the data directory, the config files and the worker code: refused
    whatever the roots say, so even ``--root /`` cannot read or overwrite the database.
    """

    protected: tuple[Path, ...]

    def __new__(cls, roots: Iterable[Path], protected: Iterable[Path] = ()) -> Roots:
        self = super().__new__(cls, (Path(os.path.realpath(r)) for r in roots))
        self.protected = tuple(Path(os.path.realpath(p)) for p in protected)
        return self


def as_roots(roots: Sequence[Path]) -> Roots:
    return roots if isinstance(roots, Roots) else Roots(roots)


def split_path(raw: str, roots: Sequence[Path]) -> tuple[Path, list[str]]:
    """The root ``raw`` lies in and the names below it; relative paths start at the first root.

    Only lexical: the caller opens the names beneath the root without following symlinks.
    """
    allowed = as_roots(roots)
    if not allowed:
        raise PathRefused("no root directories are allowed on this server")
    if "\x00" in raw or not raw.strip():
        raise PathRefused("empty or invalid path")
    candidate = Path(raw)
    names = [n for n in candidate.parts if n not in ("/", ".")]
    if ".." in names:
        raise PathRefused(f"{raw} is outside the allowed roots ('..' is not allowed)")
    if not candidate.is_absolute():
        root = allowed[0]
    else:
        inside = [r for r in allowed if candidate == r or candidate.is_relative_to(r)]
        if not inside:
            shown = ", ".join(str(r) for r in allowed)
            raise PathRefused(f"{raw} is outside the allowed roots ({shown})")
        root = max(inside, key=lambda r: len(r.parts))
        names = names[len(root.parts) - 1 :]
    refuse_own(root.joinpath(*names), allowed, raw)
    return root, names


def refuse_own(path: Path, roots: Sequence[Path], raw: str) -> None:
    """Refuse a path that is, or lies inside, one of Tasky's own files or directories."""
    for own in as_roots(roots).protected:
        if path == own or path.is_relative_to(own):
            raise PathRefused(f"{raw} is one of Tasky's own files (its data, config or code)")


def own_identities(roots: Sequence[Path]) -> set[tuple[int, int]]:
    """(device, inode) of Tasky's own files as they are now, to catch other names for them."""
    found: set[tuple[int, int]] = set()
    for own in as_roots(roots).protected:
        try:
            st = os.stat(own)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def confine(raw: str, roots: Sequence[Path], *, must_exist: bool) -> Path:
    """Resolve ``raw`` (relative paths start at the first root) and check it stays inside a root.

    For workers that only look at metadata (DiskUsage); workers that read or write contents use
    :mod:`tasky.workers.files`, which also closes the race between this check and the open.
    Symlinks are resolved before the check, so a link inside a root that points outside is
    refused. For a path that need not exist yet (a destination), its parent must exist.
    """
    allowed = as_roots(roots)
    if not allowed:
        raise PathRefused("no root directories are allowed on this server")
    if "\x00" in raw or not raw.strip():
        raise PathRefused("empty or invalid path")
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = allowed[0] / candidate
    resolved = Path(os.path.realpath(candidate))
    if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        shown = ", ".join(str(r) for r in allowed)
        raise PathRefused(f"{raw} is outside the allowed roots ({shown})")
    refuse_own(resolved, allowed, raw)
    if must_exist and not resolved.exists():
        raise PathRefused(f"{raw} does not exist")
    if not must_exist and not resolved.parent.is_dir():
        raise PathRefused(f"the directory of {raw} does not exist")
    return resolved
