"""Starting what a benchmark measures as processes of their own, and stopping them.

Every server and load generator is a child process started through
``bench.peers.launch``, which raises its open-file limit, has Linux stop it when the
benchmark dies, and pins it (with every thread it will start) to the CPUs asked
for. :class:`Children` knows every one of them, so that each is stopped whatever
happens: on leaving ``async with Children()``, even when the benchmark fails.

A load generator talks to its parent one line at a time, a word and an optional
JSON object (:class:`Generator` on the parent's side, :func:`say` and :func:`hear`
on the child's). :func:`run_benchmark` is the common ``main``: a scratch directory,
SIGTERM turned into a clean exit, the open-file limit raised.

Loopback only: every server listens on 127.0.0.1, on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import psutil

from bench.peers.common import raise_nofile

REPO = Path(__file__).resolve().parent.parent
SERVE = (sys.executable, "-m", "classroom.cli", "serve")
READY_S = 30.0  # how long a server may take to answer its readiness probe

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def log_problems(path: Path) -> list[str]:
    """Lines of a server's log that report an error or a traceback."""
    problems = []
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("ERROR", "CRITICAL")) or "Traceback" in line:
                problems.append(line[:300])
    return problems


# -- child processes ----------------------------------------------------------------------------


class Children:
    """Every process this benchmark started, so that each is stopped whatever happens.

    ``async with Children() as children:`` kills whatever is still running when the
    block ends, by an error or not; :meth:`stop` ends one process gently first.
    """

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Children:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.kill_all()

    async def spawn(
        self,
        command: Sequence[str],
        log: Path,
        env: dict[str, str],
        *,
        pipes: bool = False,
        cpus: Sequence[int] = (),
    ) -> asyncio.subprocess.Process:
        """Start ``command`` in the repository, its output to ``log`` (stdin and stdout
        piped to us with ``pipes``), pinned to ``cpus`` if any."""
        pin = ["--cpus", ",".join(map(str, cpus))] if cpus else []
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.peers.launch",
                *pin,
                *command,
                cwd=REPO,
                env=env,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else out,
                stderr=out,
            )
        self.processes.append(process)
        return process

    @staticmethod
    async def stop(process: asyncio.subprocess.Process, grace_s: float = 15.0) -> None:
        """SIGINT (a server then stores what it holds), then SIGKILL after ``grace_s``."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait_for(process.wait(), 10)

    async def kill_all(self) -> None:
        """SIGKILL every process still running, and reap it."""
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 10)


@dataclass
class Server:
    """A server process on 127.0.0.1, ready, with an HTTP client on it."""

    process: asyncio.subprocess.Process
    port: int
    log: Path
    http: httpx.AsyncClient

    @property
    def proc(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def ws_url(self, class_id: int) -> str:
        """A class's WebSocket address, up to the token (``?token=``)."""
        return f"ws://127.0.0.1:{self.port}/ws/classes/{class_id}?token="

    async def close(self, children: Children) -> None:
        await children.stop(self.process)
        await self.http.aclose()


async def wait_ready(
    process: asyncio.subprocess.Process,
    http: httpx.AsyncClient,
    log: Path,
    path: str = "/readyz",
    limit_s: float = READY_S,
) -> None:
    """Poll ``path`` until it answers 200; fail with the log's end if the process dies."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the server exited early:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(path, timeout=2)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {limit_s:.0f} s:\n{tail(log)}")


async def start_server(
    children: Children,
    env: dict[str, str],
    log: Path,
    *,
    port: int,
    command: Sequence[str] = SERVE,
    cpus: Sequence[int] = (),
    ready_path: str = "/readyz",
) -> Server:
    """Start a server (``classroom serve`` unless told otherwise) and wait until it is
    ready; if it never is, it is stopped before the error goes up."""
    process = await children.spawn(command, log, env, cpus=cpus)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    server = Server(process, port, log, http)
    try:
        await wait_ready(process, http, log, ready_path)
    except BaseException:
        await server.close(children)
        raise
    return server


def classroom_env(
    url: str, secret: str, *, port: int = 0, data_dir: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a ``classroom serve`` on database ``url`` (and of a generator);
    ``port`` and ``data_dir`` where the command line does not give them."""
    if port:
        extra["CLASSROOM_PORT"] = str(port)
    if data_dir is not None:
        extra["CLASSROOM_DATA_DIR"] = str(data_dir)
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CLASSROOM_DATABASE_URL": url,
        "CLASSROOM_SECRET_KEY": secret,
        "CLASSROOM_HOST": "127.0.0.1",
        # Every simulated phone comes from 127.0.0.1: no per-address limit.
        "CLASSROOM_MAX_SOCKETS_PER_ADDRESS": "0",
        **extra,
    }


# -- the line protocol between a benchmark and its load generator --------------------------------


class Generator:
    """A load generator process, seen from the benchmark: one line each way at a time."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    async def hear(self, word: str, timeout_s: float) -> dict[str, Any]:
        """Wait (at most ``timeout_s``) for the line ``word [JSON]``; its JSON object."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"the load generator did not say {word!r} within {timeout_s:.0f} s"
            ) from None
        text = line.decode().strip()
        if not text:
            raise RuntimeError(f"the load generator exited:\n{tail(self.log)}")
        head, _, payload = text.partition(" ")
        if head != word:
            raise RuntimeError(f"the load generator said {text[:300]!r}, not {word!r}")
        return json.loads(payload) if payload else {}

    async def say(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        await self.process.stdin.drain()


def say(word: str, payload: dict[str, Any] | None = None) -> None:
    """The generator's side: one line to the benchmark."""
    line = word if payload is None else f"{word} {json.dumps(payload, allow_nan=False)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def listen(timeout_s: float) -> list[str]:
    """The generator's side: the benchmark's next line, as words."""
    line: str = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), timeout_s)
    return line.split()


async def hear(expected: str, timeout_s: float) -> None:
    """The generator's side: wait for the word ``expected``; anything else ends it."""
    words = await listen(timeout_s)
    if words != [expected]:
        raise SystemExit(f"generator: expected {expected!r} on stdin, got {' '.join(words)!r}")


# -- CPU --------------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy, all cores together.

    Soft interrupts (where loopback TCP is processed) are left out: they are
    the benchmark's own traffic more than anyone else's.
    """
    times = psutil.cpu_times()
    counted = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    counted -= getattr(times, "softirq", 0.0)
    # Linux counts guest time inside user time too; steal (the hypervisor's) stays in.
    return float(counted - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0))


async def settle(limit_s: float, busy_percent: float = 50.0) -> float:
    """Wait (at most ``limit_s``) until the rest of the machine uses under half a core."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = machine_busy_s()
        await asyncio.sleep(1.0)
        if 100 * (machine_busy_s() - before) < busy_percent:
            break
    return time.monotonic() - started


def pinning(spec: str) -> tuple[list[int], list[int]]:
    """The server's and the generator's CPUs from ``--pin`` (empty: not pinned)."""
    if spec == "none":
        return [], []
    if spec == "auto":
        usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return ([usable[0]], [usable[1]]) if len(usable) >= 2 else ([], [])
    try:
        server, generator = (
            [int(cpu) for cpu in part.split(",") if cpu] for part in spec.split(":")
        )
    except ValueError:
        message = f"--pin: expected SERVER:GENERATOR CPUs, 'auto' or 'none', not {spec!r}"
        raise SystemExit(message) from None
    return server, generator


PIN_HELP = (
    "CPUs of the server and of the load generator, as SERVER:GENERATOR (e.g. 0:1),"
    " or 'none'; 'auto' gives each its own one of the first two CPUs (the default)"
)


# -- the benchmark's process ----------------------------------------------------------------------


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every clean-up, unlike the default


def run_benchmark(
    name: str, body: Callable[[Path], Coroutine[Any, Any, T]], *, sockets: int = 0
) -> T:
    """Run ``body(scratch directory)`` on a fresh event loop, as a benchmark's main.

    SIGTERM unwinds like an error (every child is stopped); the open-file limit is
    raised for ``sockets`` connections; the scratch directory is removed at the end.
    """
    signal.signal(signal.SIGTERM, _terminated)
    raise_nofile(max(65_536, 2 * sockets + 1_024))
    workdir = Path(tempfile.mkdtemp(prefix=f"classroom-{name}-"))
    try:
        return asyncio.run(body(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
