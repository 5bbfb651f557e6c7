"""Several ``classroom serve`` processes on one PostgreSQL database and one Redis.

Each test gets a database of its own (see tests/db/conftest.py) and a Redis
prefix of its own, so its nodes see only each other. Without PostgreSQL or
Redis the tests skip, saying why; in CI they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.migrate import upgrade
from classroom.db.routines import RoutineSource
from classroom.web.tokens import Tokens
from tests.conftest import REDIS_URL, SECRET, need_service, seed
from tests.db.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.helpers import Message, join
from tests.processes import Server

CUES = ", ".join(f'"at {s // 60}:{s % 60:02d}: c{s}"' for s in range(1, 120))
LONG = f"""
title: Long test
lead_in: 0
auto_cues: {{countdown: false, halfway: false, next: false, last_round: false, lead_in: false}}
blocks:
  - type: work
    name: Work
    duration: 120
    exercise: {{name: Burpees}}
    score: reps
    cues: [{CUES}]
  - type: rest
    name: Rest
    duration: 30
"""
"""Two minutes of scored work with a cue every second, then a rest."""


class Node(Server):
    """``classroom serve`` as one node of a cluster (PostgreSQL and Redis)."""

    def __init__(self, name: str, database_url: str, redis_url: str, prefix: str, data: Path):
        super().__init__(data / f"{name}.db", data)
        self.name = name
        self.log = data / f"{name}.log"
        self.env.update(
            CLASSROOM_DATABASE_URL=database_url,
            CLASSROOM_REDIS_URL=redis_url,
            CLASSROOM_REDIS_PREFIX=prefix,
            CLASSROOM_NODE=name,
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


async def scalar(database_url: str, statement: Any) -> Any:
    """One value read from the cluster's database, on a connection of its own."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await db.scalar(statement)
    finally:
        await engine.dispose()


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        need_service(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture
def cluster_db(postgres_url: str) -> str:  # noqa: F811 - the fixture above
    """A migrated PostgreSQL database with an instructor and the long routine."""
    upgrade(postgres_url)
    asyncio.run(seed(postgres_url, [RoutineSource("long", "Long test", "yaml", LONG)]))
    return postgres_url


class Cluster:
    def __init__(self, database_url: str, redis_url: str, data: Path, count: int) -> None:
        prefix = f"test-{secrets.token_hex(5)}"
        self.nodes = [
            Node(f"node{n}", database_url, redis_url, prefix, data) for n in range(1, count + 1)
        ]
        self.tokens = Tokens(SECRET)

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                with _quietly():
                    os.kill(node.process.pid, signal.SIGCONT)  # one a test left stopped
                node.stop()


class _quietly:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


@pytest.fixture
def cluster(cluster_db: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    group = Cluster(cluster_db, redis_url, tmp_path, 3)
    group.start()
    try:
        yield group
    finally:
        group.stop()


class Watch:
    """Everything one socket gets, read as it comes, so no message is missed."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.messages: list[Message] = []
        self.arrived: list[float] = []  # when each came, on the wall clock (ms)
        self._cursor = 0
        self._new = asyncio.Event()
        self.closed: int | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str, cookie: str = "") -> Watch:
        headers = {"Cookie": cookie} if cookie else None
        return cls(await websockets.connect(url, additional_headers=headers))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self.arrived.append(time.time() * 1000)
                self._new.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = self.ws.close_code or 1006
            self._new.set()

    async def next(self, *types: str, within: float = 15) -> Message:
        """The next message (after the last one returned) of one of ``types``."""
        async with asyncio.timeout(within):
            while True:
                while self._cursor < len(self.messages):
                    message = self.messages[self._cursor]
                    self._cursor += 1
                    if message["type"] in types:
                        return message
                if self.closed is not None:
                    raise ConnectionError(f"closed with {self.closed}")
                self._new.clear()
                await self._new.wait()

    async def send(self, message: Message) -> None:
        await self.ws.send(json.dumps(message))

    def numbers(self) -> list[int]:
        """The seq of every class event this socket got, in the order it got them."""
        return [m["seq"] for m in self.messages if "seq" in m and m["type"] not in ("snapshot",)]

    def start_seq(self) -> int:
        """The seq its first snapshot (or resume) left it at."""
        first = next(m for m in self.messages if m["type"] in ("snapshot", "resumed"))
        return int(first["seq"] if first["type"] == "snapshot" else first["since"])

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


class Phone:
    """A participant who joined through one node, with a socket to a node."""

    def __init__(self, client: httpx.AsyncClient, class_id: int) -> None:
        self.client = client
        self.class_id = class_id
        self.watch: Watch | None = None

    @property
    def cookie(self) -> str:
        name = f"classroom_p{self.class_id}"
        return f"{name}={self.client.cookies[name]}"

    async def connect(self, node: Node, query: str = "") -> Watch:
        url = f"{node.ws_url}/ws/classes/{self.class_id}" + (f"?{query}" if query else "")
        self.watch = await Watch.open(url, self.cookie)
        await self.watch.next("snapshot", "resumed")
        return self.watch


async def phone_on(node: Node, class_id: int, code: str, name: str) -> Phone:
    client = httpx.AsyncClient(base_url=node.base_url)
    response = await join(client, code, name)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(f"/play/{class_id}")
    return Phone(client, class_id)


def assert_gap_free(watch: Watch, last: int) -> None:
    """Every event from its snapshot on, to ``last``: each once, in order."""
    numbers = watch.numbers()
    expected = list(range(watch.start_seq() + 1, last + 1))
    assert numbers == expected, (numbers[:20], expected[:20])
