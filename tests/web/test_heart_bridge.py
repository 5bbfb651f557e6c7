"""A room's heart-rate receiver: the real ``run_bridge`` with simulated straps, on a
real server. Three straps in the room: two claimed by phones (their tiles on the
wall), one claimed by nobody (never shown). A receiver's token feeds its own room
only; a wrong or revoked token is refused; bad readings are dropped and answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.bridge import REFUSED, BridgeError, Reading, SimulatedStraps, run_bridge
from classroom.db import heart as heart_store
from classroom.db.routines import RoutineSource
from classroom.domain.heart import encode_measurement
from classroom.web import bridge_socket
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.heart import LONG, ask, database
from tests.helpers import (
    CSRF,
    Message,
    command,
    csrf,
    join,
    join_code,
    routine_to_open,
    sign_in,
    until,
)

STRAPS = ["C4:11:22:33:44:01", "C4:11:22:33:44:02", "C4:11:22:33:44:03"]


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("long", "Long ride", "yaml", LONG)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


async def add_room(console: httpx.AsyncClient, name: str) -> int:
    token = await csrf(console, "/console/rooms")
    answer = await console.post("/console/rooms", data={"csrf_token": token, "name": name})
    assert answer.status_code == 303
    return int(answer.headers["location"].rsplit("#room-", 1)[1])


async def add_receiver(console: httpx.AsyncClient, room_id: int, label: str) -> str:
    token = await csrf(console, "/console/rooms")
    answer = await console.post(
        f"/console/rooms/{room_id}/bridges", data={"csrf_token": token, "label": label}
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    found = re.search(r"CLASSROOM_BRIDGE_TOKEN=(\S+) classroom hr-bridge", answer.text)
    assert found, answer.text
    # Shown once: the page does not show it again.
    assert found.group(1) not in (await console.get("/console/rooms")).text
    return found.group(1)


async def open_in(console: httpx.AsyncClient, room_id: int) -> int:
    page = await console.get("/console")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    answer = await console.post(
        "/console/classes",
        data={"csrf_token": token, "routine_id": routine_to_open(page.text), "room_id": room_id},
    )
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


class Steady:
    """A source whose straps each read one bpm, every ``period_s``."""

    def __init__(self, straps: dict[str, int], period_s: float = 0.2) -> None:
        self.straps = straps
        self.period_s = period_s

    async def readings(self) -> AsyncIterator[Reading]:
        while True:
            for strap, bpm in self.straps.items():
                yield Reading(strap, encode_measurement(bpm, contact=True))
            await asyncio.sleep(self.period_s)


@contextlib.asynccontextmanager
async def bridge(server: LiveServer, token: str, source: Any) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_bridge(server.base_url, token, source, interval_s=0.2, stop=stop, backoff=(0.1,))
    )
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def test_claimed_straps_reach_the_wall_and_an_unclaimed_one_never_does(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        studio, other = await add_room(console, "Studio"), await add_room(console, "Annex")
        token = await add_receiver(console, studio, "Studio Pi")
        other_token = await add_receiver(console, other, "Annex Pi")
        class_id = await open_in(console, studio)
        code = await join_code(console, class_id)
        cookies = []
        for name in ("Robin", "Sam"):
            async with httpx.AsyncClient(base_url=server.base_url) as phone:
                assert (await join(phone, code, name)).status_code == 303
                cookies.append("; ".join(f"{k}={v}" for k, v in phone.cookies.items()))
        url = f"{server.ws_url}/ws/classes/{class_id}"
        tokens = server.server.config.app.state.tokens  # type: ignore[attr-defined]
        source = SimulatedStraps(3, ids=STRAPS, period_s=0.2)
        annex = Steady({STRAPS[0]: 199, "C4:99:99:99:99:99": 120})
        async with (
            bridge(server, token, source),
            bridge(server, other_token, annex),
            websockets.connect(url, additional_headers={"Cookie": cookies[0]}) as robin,
            websockets.connect(url, additional_headers={"Cookie": cookies[1]}) as sam,
            websockets.connect(f"{url}?token={tokens.display(class_id)}") as wall,
        ):
            for ws in (robin, sam, wall):
                await until(ws, "snapshot")
            # The straps the studio's receiver hears, with their live bpm; not the annex's.
            listed: list[str] = []
            async with asyncio.timeout(10):
                while len(listed) < 3:
                    answer = await ask(robin, {"type": "straps", "id": "s"})
                    listed = [s["strap"] for s in answer["straps"]]
                    await asyncio.sleep(0.2)
            assert listed == STRAPS and answer["mine"] is None
            assert all(40 <= s["bpm"] <= 200 for s in answer["straps"])
            assert (await ask(robin, {"type": "heart_profile", "id": "p", "age": 40}))["max_hr"]
            for ws, strap in ((robin, STRAPS[0]), (sam, STRAPS[1])):
                answer = await ask(ws, {"type": "claim_strap", "id": "c", "strap": strap})
                assert answer["type"] == "claimed", answer
            # Someone else's strap, a strap of another room, and nonsense: refused.
            for strap, sentence in (
                (STRAPS[0], heart_store.STRAP_TAKEN),
                ("C4:99:99:99:99:99", heart_store.NO_SUCH_STRAP),
                (7, heart_store.NO_SUCH_STRAP),
                ("x" * 65, heart_store.NO_SUCH_STRAP),
            ):
                answer = await ask(sam, {"type": "claim_strap", "id": "x", "strap": strap})
                assert (answer["type"], answer["message"]) == ("error", sentence)
            answer = await ask(sam, {"type": "straps", "id": "t"})
            assert [s["strap"] for s in answer["straps"]] == [STRAPS[1], STRAPS[2]]
            assert answer["mine"] == STRAPS[1]

            assert (await command(console, class_id, "start")).status_code == 200
            names: set[str] = set()
            seen: list[Message] = []
            async with asyncio.timeout(10):
                while names != {"Robin", "Sam"}:
                    tiles = await until(wall, "heart")
                    seen.append(tiles)
                    names = {t["name"] for t in tiles["tiles"]}
            for _ in range(3):  # a few more seconds of tiles
                seen.append(await until(wall, "heart"))
            assert all(len(t["tiles"]) <= 2 for t in seen)  # the third strap: never shown
            # The annex's receiver hears a strap with Robin's strap's id: it is not Robin's.
            robin_bpm = [
                tile["percent"] for t in seen for tile in t["tiles"] if tile["name"] == "Robin"
            ]
            assert robin_bpm and max(robin_bpm) < 100


async def test_a_wrong_or_revoked_token_is_refused(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        room = await add_room(console, "Studio")
        token = await add_receiver(console, room, "Studio Pi")
        straps = SimulatedStraps(1, period_s=0.2)
        with pytest.raises(BridgeError, match=re.escape(REFUSED)):
            await run_bridge(server.base_url, token + "x", straps, backoff=(0.1,))
        with pytest.raises(websockets.InvalidStatus, match="403"):  # no token at all
            await websockets.connect(f"{server.ws_url}/ws/bridge")
        async with bridge(server, token, straps) as running:
            await asyncio.sleep(0.5)
            assert not running.done()
            page = (await console.get("/console/rooms")).text
            bridge_id = re.search(r'data-bridge-id="(\d+)"', page).group(1)  # type: ignore[union-attr]
            form = await csrf(console, "/console/rooms")
            answer = await console.post(
                f"/console/rooms/{room}/bridges/{bridge_id}/revoke", data={"csrf_token": form}
            )
            assert answer.status_code == 303
            with pytest.raises(BridgeError, match=re.escape(REFUSED)):
                await asyncio.wait_for(running, bridge_socket.CHECK_EVERY_S + 5)
        # Another instructor can't revoke it, nor add one to a room not theirs.
        answer = await console.post(
            f"/console/rooms/{room}/bridges/999/revoke", data={"csrf_token": form}
        )
        assert answer.status_code == 404


async def test_bad_readings_are_dropped_and_answered(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        room = await add_room(console, "Studio")
        token = await add_receiver(console, room, "Studio Pi")
        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(
            f"{server.ws_url}/ws/bridge", additional_headers=headers
        ) as ws:
            hello = json.loads(await ws.recv())
            assert hello == {"type": "hello", "room": "Studio", "bridge": "Studio Pi"}
            good = {"strap": "A", "data": encode_measurement(120).hex()}
            cases: list[tuple[Any, str]] = [
                ("not json", "bad_json"),
                ({"type": "readings"}, "bad_message"),
                ({"type": "readings", "readings": [good] * 201}, "too_many"),
                ({"type": "readings", "readings": [good, {"strap": "B", "data": "zz"}]}, "dropped"),
                ({"type": "readings", "readings": [{"strap": "", "data": "0048"}]}, "dropped"),
                ({"type": "readings", "readings": [{"strap": "C", "data": "0014"}]}, "dropped"),
                ({"type": "readings", "readings": [{"strap": "D", "data": "0448"}]}, "dropped"),
            ]
            for message, code in cases:
                await ws.send(message if isinstance(message, str) else json.dumps(message))
                answer = json.loads(await ws.recv())
                assert (answer["type"], answer["code"]) == ("error", code), answer
                await asyncio.sleep(0.3)
            # Only the good strap was heard: phones are offered it, and nothing else.
            with sqlite3.connect(database(server)) as db:
                heard = list(db.execute("SELECT room_id, strap FROM bridge_straps"))
            assert heard == [(room, "A")]
            # A flood of messages: past the limit, dropped with a word.
            for _ in range(20):
                await ws.send(json.dumps({"type": "readings", "readings": [good]}))
            codes = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    while True:
                        codes.append(json.loads(await ws.recv())["code"])
            assert "rate_limited" in codes
