"""Run a command as this same process, with a high open-file limit, dying with its parent.

``python -m bench.peers.launch python -m classroom.cli serve`` raises
RLIMIT_NOFILE, asks Linux for SIGTERM when the parent (the benchmark) exits,
and then execs the command: the server keeps this process id and both settings.
"""

from __future__ import annotations

import os
import sys

from bench.peers.common import prepare_process


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m bench.peers.launch COMMAND [ARG...]")
    prepare_process()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
