"""Phones get a strip of the wall's board, half as often; every input is read once.

A real server with a SQLite file; eight phones join through the join page and
log different totals, over one WebSocket each; a display watches.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from classroom.live import scoring
from classroom.live.scoring import (
    BOARD_ROWS,
    PHONE_INTERVAL_S,
    PHONE_ROWS,
    for_phones,
)
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, join, join_code, open_class, sign_in, until
from tests.web.test_scoring_concurrency import ROUTINE, add_teams, database

PHONES = 8


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("reps", "Reps for a while", "yaml", ROUTINE)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


async def started_class(server: LiveServer) -> tuple[int, list[str]]:
    """A running class with teams, and the cookie of each phone that joined it."""
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        add_teams(server, class_id)
        code = await join_code(console, class_id)
        cookies = []
        for n in range(PHONES):
            async with httpx.AsyncClient(base_url=server.base_url) as phone:
                assert (await join(phone, code, f"phone {n}")).status_code == 303
                cookies.append("; ".join(f"{k}={v}" for k, v in phone.cookies.items()))
        assert (await command(console, class_id, "start")).status_code == 200
    return class_id, cookies


def socket_urls(server: LiveServer, class_id: int) -> tuple[str, str]:
    """The class's socket URL (phones send their cookie), and the display's, with its token."""
    url = f"{server.ws_url}/ws/classes/{class_id}"
    app = server.server.config.app  # type: ignore[attr-defined]
    return url, f"{url}?token={app.state.tokens.display(class_id)}"


def score(client_id: str, value: int) -> str:
    message = {"type": "score", "id": client_id, "segment": 0, "kind": "reps", "value": value}
    return json.dumps(message)


async def boards_until(
    ws: websockets.ClientConnection, people: int, deadline_s: float
) -> list[tuple[float, dict[str, Any]]]:
    """Every ``leaderboard`` (with when it came) until one ranks ``people`` people in all."""
    got = []
    async with asyncio.timeout(deadline_s):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] != "leaderboard" or message["class"] is None:
                continue
            got.append((time.monotonic(), message))
            if sum(team["members"] for team in message["class"]["teams"]) == people:
                return got


async def test_phones_get_the_walls_board_cut_to_a_strip(server: LiveServer) -> None:
    class_id, cookies = await started_class(server)
    url, display_url = socket_urls(server, class_id)
    async with (
        websockets.connect(display_url) as display,
        websockets.connect(url, additional_headers={"Cookie": cookies[0]}) as watcher,
    ):
        await until(display, "snapshot")
        await until(watcher, "snapshot")
        # Read both screens as their boards come: when each came is part of the test.
        watching = asyncio.gather(
            boards_until(display, PHONES, 20), boards_until(watcher, PHONES, 20)
        )
        for n, cookie in enumerate(cookies):
            async with websockets.connect(url, additional_headers={"Cookie": cookie}) as phone:
                await until(phone, "snapshot")
                for k in range(n + 1):  # phone n logs n + 1 inputs of n + 1 reps
                    await phone.send(score(f"in-{n}-{k}", n + 1))
                for _ in range(n + 1):
                    assert (await until(phone, "ack"))["duplicate"] is False
            await asyncio.sleep(0.05)
        wall, strip = await watching

    final_wall, final_strip = wall[-1][1], strip[-1][1]
    # The wall ranks everyone it shows (up to its row limit); the phone strip is the same
    # board with its top rows only: every team, the leaders, the same values and names.
    assert len(final_wall["class"]["people"]) == min(PHONES, BOARD_ROWS)
    assert final_strip == for_phones(final_wall)
    assert len(final_strip["class"]["people"]) == PHONE_ROWS
    assert [row["value"] for row in final_strip["class"]["people"]] == [64.0, 49.0, 36.0]
    assert final_strip["class"]["teams"] == final_wall["class"]["teams"]
    assert final_strip["segment"]["people"] == final_wall["segment"]["people"][:PHONE_ROWS]
    # Phones get theirs at most twice a second (a little timer slack allowed).
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(strip)]
    assert all(gap >= PHONE_INTERVAL_S * 0.8 for gap in gaps), gaps


async def test_an_input_is_read_and_stored_once_whichever_way_it_arrives(
    server: LiveServer,
) -> None:
    """Inputs in a burst are taken as they arrive or through the receive loop, each once."""
    class_id, cookies = await started_class(server)
    url = f"{server.ws_url}/ws/classes/{class_id}"
    async with websockets.connect(url, additional_headers={"Cookie": cookies[0]}) as phone:
        await until(phone, "snapshot")
        # A ping, then scores, all in one write (under the socket's burst), so some queue.
        burst = [json.dumps({"type": "ping", "id": "p", "t": 1})]
        burst += [score(f"burst-{k}", 1) for k in range(19)]
        burst += [score(f"burst-{k}", 1) for k in range(19)]  # every one again
        phone.transport.write(b"".join(_frame(text) for text in burst))
        replies: list[dict[str, Any]] = []
        while len(replies) < len(burst):
            message = json.loads(await phone.recv())
            if message["type"] not in ("leaderboard", "heartbeat", "presence", "roster"):
                replies.append(message)
    acks = [r for r in replies if r["type"] == "ack"]
    assert [r for r in replies if r["type"] not in ("ack", "pong")] == []
    assert sorted(r["id"] for r in acks if not r["duplicate"]) == sorted(
        f"burst-{k}" for k in range(19)
    )
    assert len(acks) == 38
    # Replies come in the order of the messages, however each was taken.
    assert replies[0]["type"] == "pong"
    assert [r["id"] for r in acks] == [f"burst-{k}" for k in range(19)] * 2
    with database(server) as db:
        stored = db.execute("SELECT count(*), sum(value) FROM scores").fetchone()
    assert stored == (19, 19)


def _frame(text: str) -> bytes:
    """One masked text frame, as a browser sends it (mask of zeros: the payload as is)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def test_strips_keep_to_the_classs_budget_of_writes(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two phones, a budget of two strips a second for the class: each phone gets one
    # about every second (they take turns), however often the board changes.
    monkeypatch.setattr(scoring, "PHONE_WRITES_PER_S", 2)
    class_id, cookies = await started_class(server)
    url, display_url = socket_urls(server, class_id)
    async with (
        websockets.connect(display_url) as display,
        websockets.connect(url, additional_headers={"Cookie": cookies[0]}) as watcher,
        websockets.connect(url, additional_headers={"Cookie": cookies[1]}) as phone,
    ):
        for screen in (display, watcher, phone):
            await until(screen, "snapshot")
        times: dict[str, list[float]] = {"wall": [], "watcher": [], "phone": []}

        async def watch(ws: websockets.ClientConnection, name: str) -> None:
            while True:
                if json.loads(await ws.recv())["type"] == "leaderboard":
                    times[name].append(time.monotonic())

        watching = [
            asyncio.create_task(watch(display, "wall")),
            asyncio.create_task(watch(watcher, "watcher")),
        ]
        started = time.monotonic()
        for k in range(16):  # inputs for 4 s, 4 a second
            await phone.send(score(f"budget-{k}", 1))
            message = json.loads(await phone.recv())
            while message["type"] != "ack":
                if message["type"] == "leaderboard":
                    times["phone"].append(time.monotonic())
                message = json.loads(await phone.recv())
            await asyncio.sleep(0.25)
        ended = time.monotonic()
        await asyncio.sleep(1.6)
        for task in watching:
            task.cancel()
    strips = sorted(times["watcher"] + times["phone"])
    during = [at for at in strips if started <= at <= ended]
    assert len(during) <= 2 * (ended - started) + 2, strips  # the budget, and one to start
    for name in ("watcher", "phone"):
        gaps = [b - a for a, b in itertools.pairwise(times[name])]
        assert len(times[name]) >= 2 and all(gap >= 0.8 for gap in gaps), (name, gaps)
    assert len(times["wall"]) > len(times["watcher"])  # the wall keeps its own pace
