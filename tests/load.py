"""Keep the machine's cores busy while a command runs: the test suite must pass on a loaded machine.

    python tests/load.py --procs 2 -- .venv/bin/pytest -q tests/test_jobs_rq.py

starts ``--procs`` processes that spin on pure-Python arithmetic (no I/O, no sleeping: each takes a
whole core whenever the scheduler gives it one), runs the command, stops the load and exits with the
command's exit code. Without a command it loads the machine until interrupted (Ctrl-C) or for
``--seconds``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time


def spin() -> None:
    """Busy-loop forever; the parent terminates it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the command and the parent, which stop us
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2,
                        help="busy processes to start (default: one per core)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="without a command: stop after this long (default: until Ctrl-C)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run under load, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    workers = [mp.Process(target=spin, daemon=True) for _ in range(args.procs)]
    for w in workers:
        w.start()
    print(f"load: {args.procs} busy process(es): {' '.join(str(w.pid) for w in workers)}", file=sys.stderr)
    try:
        if command:
            return subprocess.call(command)
        end = None if args.seconds is None else time.monotonic() + args.seconds
        while end is None or time.monotonic() < end:
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join()


if __name__ == "__main__":
    sys.exit(main())
