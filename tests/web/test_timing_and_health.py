"""Cues arrive on time over a real socket; health checks say what is wrong."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import websockets

from classroom.db.migrate import head_revision
from tests.conftest import LiveServer, run_server, settings_for
from tests.helpers import command, open_class, sign_in


async def test_cues_reach_a_socket_within_100_ms_of_their_instant(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers={"Cookie": cookie}
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
        await command(client, class_id, "start")
        lateness = []
        while len(lateness) < 3:  # the quick routine cues at 1, 2 and 3 s
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            received = time.time() * 1000
            if message["type"] == "cue":
                lateness.append(received - message["at"])
    assert all(-5 <= late <= 100 for late in lateness), lateness


async def test_healthz_and_readyz_answer_json(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    node = live_server.settings.node
    assert ready.json() == {"status": "ready", "schema": head_revision(), "node": node, "owns": []}
    await sign_in(client)
    class_id = await open_class(client)
    await live_server.state.registry.actor(class_id)  # what a screen or a command does
    assert (await client.get("/readyz")).json()["owns"] == [class_id]


def unmigrated_server(tmp_path: Path) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    yield from run_server(settings_for(url, tmp_path))


async def test_readyz_is_503_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    for server in unmigrated_server(tmp_path):
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            assert (await c.get("/healthz")).status_code == 200
            ready = await c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    for server in run_server(settings_for(url, tmp_path)):
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            ready = await c.get("/readyz")
        assert ready.status_code == 503
        assert "database unreachable" in ready.json()["reason"]
