"""A server killed mid-class (SIGKILL) and started again on the same database.

Under the "continue" policy the class runs on by the wall clock, as if the server
had never stopped; under "pause" it sits where it had got to. Either way every
transition saved before the kill is still there.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from tests.helpers import command, csrf, open_class, routine_to_open, sign_in
from tests.processes import Server, serving

LONG = """\
title: Long block
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Warm-up row
    duration: 3
  - type: work
    name: Steady row
    duration: 60
    cues: ["at 0:20: keep it steady"]
  - type: cooldown
    name: Stretch
    duration: 30
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serving(tmp_path, RoutineSource("long", "Long block", "yaml", LONG))


def saved_events(db_url: str, class_id: int) -> list[tuple[int, str]]:
    path = db_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT seq, type FROM class_events WHERE class_id = ? ORDER BY seq", (class_id,)
        )
        return list(rows)


async def first_snapshot(server: Server, class_id: int, cookies: httpx.Cookies) -> dict[str, Any]:
    header = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/ws/classes/{class_id}", additional_headers=header
    ) as ws:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        return message


async def run_until_killed(server: Server, policy: str) -> tuple[int, httpx.Cookies, int, float]:
    """Open and start a class, kill the server 5 s into "Steady row".

    Returns the class, the console's cookies, the last seq a screen saw, and how
    much of "Steady row" was left (ms) at the kill.
    """
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        page = await console.get("/console")
        assert 'name="on_restart"' in page.text
        class_id = await open_class_with_policy(console, policy)
        header = {"Cookie": "; ".join(f"{k}={v}" for k, v in console.cookies.items())}
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/ws/classes/{class_id}", additional_headers=header
        ) as ws:
            await command(console, class_id, "start")
            last_seq = 0
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await ws.recv())
                    last_seq = message.get("seq") or last_seq
                    if message["type"] == "segment" and message["segment"]["index"] == 1:
                        ends_at = message["ends_at"]
                        break
            await asyncio.sleep(5)
            left_at_kill = ends_at - time.time() * 1000
            server.kill()
        return class_id, console.cookies, last_seq, left_at_kill


async def open_class_with_policy(console: httpx.AsyncClient, policy: str) -> int:
    if policy == "continue":
        return await open_class(console)
    page = await console.get("/console")
    token = await csrf(console, "/console")
    routine_id = routine_to_open(page.text)
    response = await console.post(
        "/console/classes",
        data={"csrf_token": token, "routine_id": routine_id, "on_restart": policy},
    )
    assert response.status_code == 303
    return int(response.headers["location"].rsplit("/", 1)[1])


async def test_after_sigkill_a_continuing_class_is_where_the_wall_clock_says(
    server: Server,
) -> None:
    class_id, cookies, last_seq, left_at_kill = await run_until_killed(server, "continue")
    killed_at = time.time() * 1000
    before = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)
    assert [seq for seq, _ in before] == list(range(1, len(before) + 1))
    assert before[-1][0] >= last_seq  # everything a screen saw had been saved first

    server.start()
    snapshot = await first_snapshot(server, class_id, cookies)
    expected_left = left_at_kill - (time.time() * 1000 - killed_at)
    assert snapshot["phase"] == "running"
    assert snapshot["segment"]["name"] == "Steady row"
    assert abs(snapshot["remaining_ms"] - expected_left) < 1000
    after = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)
    assert after[: len(before)] == before


async def test_after_sigkill_a_pausing_class_sits_where_it_had_got_to(server: Server) -> None:
    class_id, cookies, last_seq, left_at_kill = await run_until_killed(server, "pause")
    before = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)
    assert before[-1][0] >= last_seq
    await asyncio.sleep(3)  # the class must not move on while the server is down

    server.start()
    snapshot = await first_snapshot(server, class_id, cookies)
    assert snapshot["phase"] == "paused"
    assert snapshot["segment"]["name"] == "Steady row"
    # Paused at the last heartbeat before the kill: at most a second before it.
    assert left_at_kill - 100 <= snapshot["remaining_ms"] <= left_at_kill + 1100
    after = saved_events(server.env["CLASSROOM_DATABASE_URL"], class_id)
    assert after[: len(before)] == before and after[-1][1] == "phase"
