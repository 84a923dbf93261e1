"""``python -m tasky``: the ``tasky`` command.

``-m`` puts the working directory first on ``sys.path``, so anything imported from now on (the
server's own dependencies, a worker's late imports) could come from a file planted there. Drop it
before importing more: Tasky is already found, and ``--workers`` finds a module in the working
directory by its path (tasky.workers.modules). ``python -P -m tasky`` avoids even the first step.
"""

import os
import sys

if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == os.path.realpath(os.getcwd()):
    del sys.path[0]

# Imported only now, on purpose: after the path is clean.
from tasky.cli import main

main()
