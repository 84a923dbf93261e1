"""Confine file paths given in task configs to the server's allowed root directories."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


class PathRefused(Exception):
    """The path is outside every allowed root (directly, through ``..`` or through a symlink)."""


def confine(raw: str, roots: Sequence[Path], *, must_exist: bool) -> Path:
    """Resolve ``raw`` (relative paths start at the first root) and check it stays inside a root.

    Symlinks are resolved before the check, so a link inside a root that points outside is
    refused. For a path that need not exist yet (a destination), its parent must exist.
    """
    if not roots:
        raise PathRefused("no root directories are allowed on this server")
    if "\x00" in raw or not raw.strip():
        raise PathRefused("empty or invalid path")
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = real_roots[0] / candidate
    resolved = Path(os.path.realpath(candidate))
    if not any(resolved == root or resolved.is_relative_to(root) for root in real_roots):
        shown = ", ".join(str(r) for r in real_roots)
        raise PathRefused(f"{raw} is outside the allowed roots ({shown})")
    if must_exist and not resolved.exists():
        raise PathRefused(f"{raw} does not exist")
    if not must_exist and not resolved.parent.is_dir():
        raise PathRefused(f"the directory of {raw} does not exist")
    return resolved
