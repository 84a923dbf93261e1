"""The first code a process-mode task runs: ``python -I -B -u isolated_start.py TASKY_ROOT``.

``-I`` keeps the working directory, the script's directory, PYTHONPATH (and every other
``PYTHON*`` variable) and the user's site-packages off ``sys.path``, so a file planted there
(``orjson.py``, ``json.py``) cannot run in the task. Only the interpreter's own library and
site-packages remain. Tasky itself is then loaded from the directory the server named, by path,
so the task runs the very Tasky the server runs even when that one is not installed. The worker
modules follow the same way (see :mod:`tasky.workers.modules`).

Standard library only until Tasky is loaded: nothing else can be trusted to be importable yet.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder
from importlib.util import module_from_spec


def load_tasky(root: str) -> None:
    spec = PathFinder.find_spec("tasky", [root])
    if spec is None or spec.loader is None:
        raise SystemExit(f"tasky: no tasky package in {root}")
    module = module_from_spec(spec)
    sys.modules["tasky"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    load_tasky(sys.argv[1])
    from tasky.engine.task_process import main

    sys.exit(main())
