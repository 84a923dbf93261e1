"""One peer's driver, in a process of its own as Tasky's drivers are (bench/drivers.py): send
no-op tasks one after another through the peer's own call, or in chunks through its own call for
many (as Tasky's batch driver sends chunks of 1,000 through ``submit_many``), and time them until
the last has run.

    python -m bench.peers.drive PEER --tasks 10000
    python -m bench.peers.drive PEER --tasks 10000 --chunk 1000

Prints one JSON object: the peer, the tasks, the seconds spent sending, the seconds until the
last completion.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from bench.peers import PEERS, done, reset

POLL = 0.005  # as bench/drivers.py polls Tasky's statistics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=tuple(PEERS))
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument(
        "--chunk", type=int, default=0, help="tasks per call for many (0: one call each)"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    app = importlib.import_module(f"bench.peers.{args.peer}_app")
    reset()
    began = time.perf_counter()
    if args.chunk > 0:
        for start in range(0, args.tasks, args.chunk):
            app.send_many(min(args.chunk, args.tasks - start))
    else:
        for _ in range(args.tasks):
            app.send()
    sent = time.perf_counter()
    deadline = sent + args.timeout
    while done() < args.tasks:
        if time.perf_counter() > deadline:
            print(f"{args.peer}: {done()} of {args.tasks} ran within {args.timeout:g} s")
            return 1
        time.sleep(POLL)
    finished = time.perf_counter()
    report = {
        "peer": args.peer,
        "tasks": args.tasks,
        "submit_seconds": sent - began,
        "total_seconds": finished - began,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
