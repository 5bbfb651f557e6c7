"""Shared fixtures: real databases, a real server on a free port, real clients.

PostgreSQL tests use CLASSROOM_TEST_POSTGRES_URL (default: the local server, user
postgres), Redis tests CLASSROOM_TEST_REDIS_URL (default: the local server), each
test with a key and channel prefix of its own. Without CI they skip, saying why,
when the server is missing; with CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from classroom.config import Settings
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.migrate import upgrade
from classroom.db.routines import RoutineSource, seed_builtin
from classroom.hub.protocol import SERVER_OPTIONS
from classroom.live.clock import Clock, MonotonicClock
from classroom.web.app import create_app
from classroom.web.auth import create_instructor

DATA = Path(__file__).parent / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-that-is-long-enough"
INSTRUCTOR_EMAIL = "coach@example.com"
INSTRUCTOR_PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_service(what: str, error: Exception) -> None:
    """Skip (locally) or fail (in CI) a test whose service is missing."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'classroom.db'}"


@pytest.fixture
def migrated_url(sqlite_url: str) -> str:
    upgrade(sqlite_url)
    return sqlite_url


def settings_for(url: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=url,
        secret_key=SECRET,
        data_dir=tmp_path,
        host="127.0.0.1",
        port=0,
        **extra,  # type: ignore[arg-type]
    )


async def seed(url: str, sources: list[RoutineSource] | None = None) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD, "Coach")
        quick = (DATA / "quick.yaml").read_text()
        await seed_builtin(db, sources or [RoutineSource("quick", "Quick test", "yaml", quick)])
    await engine.dispose()


@dataclass
class LiveServer:
    base_url: str
    port: int
    settings: Settings
    server: uvicorn.Server

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        """The running app's ``app.state``: its registry, tokens, asset version."""
        app: Any = self.server.config.app
        return app.state


def run_server(settings: Settings, clock: Clock | None = None) -> Iterator[LiveServer]:
    """Run the real app under uvicorn on a free port, in a thread of its own."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=port,
        **SERVER_OPTIONS,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port, settings, server)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def live_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url))
    yield from run_server(settings_for(migrated_url, tmp_path))


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url) as c:
        yield c


class SkippingClock(MonotonicClock):
    """The server's clock, which a test can move forward."""

    def __init__(self) -> None:
        super().__init__()
        self.ahead_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return super().now_ms() + self.ahead_ms

    def skip(self, ms: int) -> None:
        with self._lock:
            self.ahead_ms += ms


@pytest.fixture
def clock() -> SkippingClock:
    """The server's clock, which a test moves forward (a second per strap sample, say)."""
    return SkippingClock()


@pytest.fixture
def ride_server(migrated_url: str, tmp_path: Path, clock: SkippingClock) -> Iterator[LiveServer]:
    """The heart-rate tests' server: a ten-minute climb, on a clock they move."""
    from tests.heart import LONG

    asyncio.run(seed(migrated_url, [RoutineSource("long", "Long ride", "yaml", LONG)]))
    settings = settings_for(migrated_url, tmp_path, joins_per_minute=0)  # a class of 60
    yield from run_server(settings, clock)


@pytest.fixture
async def ride(ride_server: LiveServer) -> AsyncIterator[Any]:
    """A started class of the climb, with one phone (Robin) and a wall."""
    from tests.heart import Ride

    async with httpx.AsyncClient(base_url=ride_server.base_url) as console:
        yield await Ride(ride_server, console).open()
