"""Run a command as this same process, with a high open-file limit, dying with its parent.

``python -m bench.peers.launch [--cpus 0,1] python -m classroom.cli serve`` raises
RLIMIT_NOFILE, asks Linux for SIGTERM when the parent (the benchmark) exits,
optionally restricts itself to the given CPUs, and then execs the command: the
server keeps this process id and all three settings (every thread it starts later
inherits the CPUs, which setting the affinity from outside would not give).
"""

from __future__ import annotations

import os
import sys

from bench.peers.common import prepare_process


def main(argv: list[str]) -> None:
    if argv[:1] == ["--cpus"]:
        if len(argv) < 2:
            raise SystemExit("usage: python -m bench.peers.launch [--cpus N,M] COMMAND [ARG...]")
        cpus = {int(cpu) for cpu in argv[1].split(",") if cpu}
        if hasattr(os, "sched_setaffinity") and cpus:
            os.sched_setaffinity(0, cpus)
        argv = argv[2:]
    if not argv:
        raise SystemExit("usage: python -m bench.peers.launch [--cpus N,M] COMMAND [ARG...]")
    prepare_process()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
