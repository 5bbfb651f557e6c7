"""``classroom serve`` and ``redis-server`` as processes of their own, for tests that kill
and restart them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from classroom.db.migrate import upgrade
from classroom.db.routines import RoutineSource
from tests.conftest import SECRET, free_port, need_service, seed


class Server:
    """``classroom serve`` in a process of its own, on a free loopback port."""

    def __init__(self, db: Path, data: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CLASSROOM_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "CLASSROOM_SECRET_KEY": SECRET,
            "CLASSROOM_DATA_DIR": str(data),
            "CLASSROOM_NODE": "test-node",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None  # where its output goes (nowhere if None)
        self.args: list[str] = []  # more arguments for `classroom serve`

    def start(self, *, wait: bool = True, before_exec: Callable[[], None] | None = None) -> None:
        """Start the server; with ``wait``, return once ``/readyz`` answers 200.

        Its output goes to :attr:`log` if that is set. ``before_exec`` runs in the
        child before ``classroom serve`` does (say, to lower a resource limit).
        """
        output = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "classroom.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT if self.log is not None else subprocess.DEVNULL,
                preexec_fn=before_exec,
            )
        finally:
            if self.log is not None:
                output.close()  # type: ignore[union-attr]
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Return once ``/readyz`` answers 200 (within 30 s)."""
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, "the server exited"
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def prepared(tmp_path: Path, routine: RoutineSource | None = None) -> Server:
    """A migrated SQLite database seeded with ``routine`` (or the quick one), not started."""
    db = tmp_path / "classroom.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url)
    asyncio.run(seed(url, None if routine is None else [routine]))
    return Server(db, tmp_path)


def serving(tmp_path: Path, routine: RoutineSource | None = None) -> Iterator[Server]:
    """A migrated, seeded SQLite database with ``routine``, and a server running on it."""
    server = prepared(tmp_path, routine)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivateRedis:
    """A ``redis-server`` of the test's own, that it may kill and start again; with a
    ``password``, one that asks for it."""

    def __init__(self, directory: Path, password: str = "") -> None:
        self.port = free_port()
        self.directory = directory
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            need_service("redis-server", FileNotFoundError("redis-server is not installed"))
        self.process = subprocess.Popen(
            [
                binary or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *(("--requirepass", self.password) if self.password else ()),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    probe = f"AUTH {self.password}" if self.password else "PING"
                    s.sendall(f"{probe}\r\n".encode())
                    if s.recv(16).startswith(b"+OK" if self.password else b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
