"""A screen that reconnects before the server has resumed its classes.

A phone whose socket dropped retries every few milliseconds. After a SIGKILL,
its next attempt can reach the new process before the task that resumes the
live classes has loaded them, so the socket is what loads its class first.
Whoever loads a class first, its restart policy applies, once: a class set to
pause on a restart comes back paused every time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from tests.helpers import command, join, join_code, sign_in, until
from tests.live.test_restart import LONG, open_class_with_policy, saved_events
from tests.processes import Server, serving

RESTARTS = 10
RETRY_S = 0.01


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serving(tmp_path, RoutineSource("long", "Long block", "yaml", LONG))


async def first_message_while_retrying(url: str, cookie: str) -> dict[str, Any]:
    """Retry the socket every 10 ms until it opens; its first message."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with websockets.connect(
                url, additional_headers={"Cookie": cookie}, open_timeout=2
            ) as ws:
                message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
                return message
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed):
            await asyncio.sleep(RETRY_S)
    raise AssertionError("the socket never opened")


async def test_pause_policy_holds_when_a_phone_reconnects_first(server: Server) -> None:
    async with (
        httpx.AsyncClient(base_url=server.base_url) as console,
        httpx.AsyncClient(base_url=server.base_url) as phone,
    ):
        await sign_in(console)
        class_id = await open_class_with_policy(console, "pause")
        assert (await join(phone, await join_code(console, class_id), "Robin")).status_code == 303
        cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
        url = f"ws://127.0.0.1:{server.port}/ws/classes/{class_id}"
        await command(console, class_id, "start")

        phases = []
        for _ in range(RESTARTS):
            async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if first["phase"] != "running":
                    await command(console, class_id, "resume")
                    await until(ws, "segment")  # the resume is saved and sent
            await asyncio.sleep(0.3)
            server.kill()
            before = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)

            server.start(wait=False)
            snapshot = await first_message_while_retrying(url, cookie)
            phases.append(snapshot["phase"])
            after = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)
            # Paused exactly once: one phase event more, no seq used twice.
            assert after[: len(before)] == before
            assert [seq for seq, _ in after] == list(range(1, len(after) + 1))
            assert [kind for _, kind in after[len(before) :]].count("phase") == 1
            await wait_ready(server)

        assert phases == ["paused"] * RESTARTS


async def wait_ready(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(300):
            if (await client.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not become ready")
