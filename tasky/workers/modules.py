"""Where worker modules come from, and how a task process loads exactly the same ones.

``tasky serve --workers NAME`` looks NAME up on Python's path first (installed packages,
PYTHONPATH). If it is not there, the working directory is searched for exactly that module
(``NAME.py`` or the package ``NAME/``), which is then loaded by its path: a console script such as
``tasky`` does not put the working directory on ``sys.path``, yet the user named the module and
expects the one beside them. The directory itself never joins ``sys.path``, so a planted
``orjson.py`` or ``json.py`` next to it can never shadow a real module.

A process-mode task runs in an isolated interpreter (``python -I``) that sees none of this. The
server describes where each worker module's top-level package lives (:func:`origin_of`) and the
task process loads it from exactly there (:func:`load_origin`), nothing else.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import find_spec, module_from_spec
from pathlib import Path
from types import ModuleType
from typing import TypedDict


class ModuleOrigin(TypedDict):
    """Where a top-level module was loaded from, as a task process needs to know it."""

    name: str
    # The directories holding it (several only for a namespace package spread over many).
    dirs: list[str]
    # Those of ``dirs`` that are on the server's own path, so modules beside it import too.
    path: list[str]


def _hint(name: str) -> str:
    """The module name a user who typed a file name probably meant."""
    hint = name.removesuffix(".py").replace("/", ".").strip(".")
    return f" (a module name, not a file: did you mean {hint!r}?)" if hint != name else ""


def _not_found(name: str, cwd: Path) -> str:
    searched = [str(cwd), *(p for p in sys.path if p)]
    top = name.partition(".")[0]
    return (
        f"No module named {name!r}{_hint(name)}. Searched the working directory and Python's "
        f"path: {', '.join(searched)}. Run tasky from the folder that holds {top}.py (or the "
        f"package {top}/), install the module, or add its folder to PYTHONPATH."
    )


def _beside(top: str, missing: str, cwd: Path) -> str:
    return (
        f"{top} imports {missing}, which lies beside it in {cwd}: the working directory is not "
        f"on Python's path (a file planted there must not shadow a real module). Make {top} a "
        f"package ({top}/__init__.py importing `from . import {missing}`), install it, or put its "
        "folder on PYTHONPATH."
    )


def _check_name(name: str) -> None:
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"--workers takes a module name, not {name!r}{_hint(name)}")


def _exec_new(spec: ModuleSpec) -> ModuleType:
    module = module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def load_from(name: str, dirs: list[str]) -> ModuleType:
    """Load the top-level module ``name`` from exactly these directories, not via sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = PathFinder.find_spec(name, dirs)
    if spec is None or (spec.loader is None and not spec.submodule_search_locations):
        raise ModuleNotFoundError(f"No module named {name!r} in {', '.join(dirs)}", name=name)
    return _exec_new(spec)


def import_worker_module(name: str, cwd: Path | None = None) -> ModuleType:
    """Import the module the user named: from Python's path, else from the working directory."""
    _check_name(name)
    cwd = cwd or Path.cwd()
    top = name.partition(".")[0]
    if top not in sys.modules and find_spec(top) is None:
        try:
            load_from(top, [str(cwd)])
        except ModuleNotFoundError as exc:
            if exc.name == top:
                raise ModuleNotFoundError(_not_found(name, cwd), name=name) from None
            if exc.name and PathFinder.find_spec(exc.name.partition(".")[0], [str(cwd)]):
                raise ModuleNotFoundError(_beside(top, exc.name, cwd), name=exc.name) from exc
            raise  # the module was found; something it imports is missing
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise ModuleNotFoundError(_not_found(name, cwd), name=name) from None
        raise


def _same_dir(a: str, b: str) -> bool:
    return Path(a or ".").resolve() == Path(b or ".").resolve()


def origin_of(module_name: str) -> ModuleOrigin | None:
    """Where the (already imported) top-level package of ``module_name`` lives; None when the
    task process has it anyway (Tasky itself, built-in modules)."""
    top = module_name.partition(".")[0]
    if top == "tasky":
        return None
    module = sys.modules.get(top)
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        dirs = [str(Path(p).resolve().parent) for p in spec.submodule_search_locations]
    elif spec.has_location and spec.origin:
        dirs = [str(Path(spec.origin).resolve().parent)]
    else:
        return None
    dirs = list(dict.fromkeys(dirs))
    path = [d for d in dirs if any(_same_dir(d, entry) for entry in sys.path)]
    return ModuleOrigin(name=top, dirs=dirs, path=path)


def load_origin(origin: ModuleOrigin) -> None:
    """In a task process: make the server's worker package importable, exactly as it found it.

    Its directories go to the end of ``sys.path`` (only those the server had on its path), so
    they can never shadow the standard library or installed packages.
    """
    for entry in origin["path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    load_from(origin["name"], origin["dirs"])
