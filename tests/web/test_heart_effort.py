"""Effort over a class, through real sockets: team effort on the wall (summed and per
member), the raise rule said on the phone and kept for the next class, and the
retention period removing old samples while keeping the totals."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx
import websockets

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.heart import HeartStore
from classroom.db.models import utcnow
from classroom.db.routines import RoutineSource
from classroom.web.app import keep_heart_retention
from tests.conftest import LiveServer, SkippingClock, run_server, seed, settings_for
from tests.heart import LONG, Ride, ask, database, hr, rows
from tests.helpers import command, join, until
from tests.web.test_joining import Room, cookie_header, join_as


async def phones(room: Room, people: list[tuple[str, int]]) -> list[str]:
    """Each person joins the team given; their phones' cookies."""
    cookies = []
    for name, team in people:
        async with httpx.AsyncClient(base_url=room.server.base_url) as phone:
            answer = await join_as(phone, room.code, name, team=str(team))
            assert answer.status_code == 303, answer.text
            cookies.append("; ".join(f"{k}={v}" for k, v in phone.cookies.items()))
    return cookies


async def robin_started(
    server: LiveServer, console: httpx.AsyncClient, phone: httpx.AsyncClient
) -> tuple[int, websockets.connect]:
    """A class opened and started, Robin joined on ``phone``: the class, and how
    Robin's phone connects to it."""
    room = await Room(server, console).open()
    assert (await join(phone, room.code, "Robin")).status_code == 303
    assert (await command(console, room.id, "start")).status_code == 200
    url = f"{server.ws_url}/ws/classes/{room.id}"
    return room.id, websockets.connect(url, additional_headers={"Cookie": cookie_header(phone)})


async def test_team_effort_is_summed_and_averaged_per_member(
    ride_server: LiveServer, clock: SkippingClock
) -> None:
    async with httpx.AsyncClient(base_url=ride_server.base_url) as console:
        room = await Room(ride_server, console).open(teams=2)
        (red, red_name), (blue, blue_name) = rows(
            ride_server, f"SELECT id, name FROM teams WHERE class_id = {room.id} ORDER BY position"
        )
        cookies = await phones(room, [("Robin", red), ("Sam", red), ("Kim", blue)])
        assert (await command(console, room.id, "start")).status_code == 200
        tokens = ride_server.server.config.app.state.tokens  # type: ignore[attr-defined]
        url = f"{ride_server.ws_url}/ws/classes/{room.id}"
        sockets = [await websockets.connect(url, additional_headers={"Cookie": c}) for c in cookies]
        async with websockets.connect(f"{url}?token={tokens.display(room.id)}") as wall:
            await until(wall, "snapshot")
            for ws in sockets:
                await until(ws, "snapshot")
                await ask(ws, {"type": "heart_profile", "id": "p", "age": 40})  # max 185
            # A minute: Robin at 91 % (zone 5, 4 a minute), Sam at 54 % (zone 1, 1 a
            # minute), Kim at 91 %. Red: 5 points for 2 people; Blue: 4 for 1.
            for second in range(61):
                for ws, bpm in zip(sockets, (170, 100, 170), strict=True):
                    await ask(ws, hr(second, bpm))
                clock.skip(1000)
                await asyncio.sleep(0.02)
            async with asyncio.timeout(10):
                while True:
                    tiles = await until(wall, "heart")
                    if len(tiles["teams"]) == 2 and tiles["teams"][1]["points"] >= 5:
                        break
        for ws in sockets:
            await ws.close()
    first, second = tiles["teams"]
    assert (first["team"], first["name"], first["members"]) == (blue, blue_name, 1)
    assert (second["team"], second["name"], second["members"]) == (red, red_name, 2)
    assert 4.0 <= first["per_member"] <= 4.3 and 4.0 <= first["points"] <= 4.3
    assert 2.5 <= second["per_member"] <= 2.7 and 5.0 <= second["points"] <= 5.4


async def test_a_raised_max_is_said_on_the_phone_and_kept_for_the_next_class(
    ride_server: LiveServer, clock: SkippingClock
) -> None:
    async with (
        httpx.AsyncClient(base_url=ride_server.base_url) as console,
        httpx.AsyncClient(base_url=ride_server.base_url) as phone,
    ):
        class_id, connect = await robin_started(ride_server, console, phone)
        async with connect as ws:
            await until(ws, "snapshot")
            await ask(ws, {"type": "heart_profile", "id": "p", "max_hr": 160})
            raised = []
            for n in range(32):  # held at 172 for over 30 s: the max goes up by 10
                answer = await ask(ws, hr(n, 172))
                raised.append(answer["raised"])
                clock.skip(1000)
                await asyncio.sleep(0.02)
        assert [r for r in raised if r is not None] == [170]
        assert answer["max_hr"] == 170 and answer["max_from"] == "raised"
        assert rows(ride_server, "SELECT max_hr, raised_max_hr FROM heart_profiles") == [(160, 170)]
        # The next class, from the same phone: the raised max carries on.
        phone.cookies.delete(f"classroom_p{class_id}")
        _, connect = await robin_started(ride_server, console, phone)
        async with connect as ws:
            await until(ws, "snapshot")
            answer = await ask(ws, hr(0, 150))
        assert (answer["max_hr"], answer["max_from"]) == (170, "raised")


async def test_old_samples_go_after_the_retention_period_and_totals_stay(
    ride_server: LiveServer, clock: SkippingClock
) -> None:
    async with (
        httpx.AsyncClient(base_url=ride_server.base_url) as console,
        httpx.AsyncClient(base_url=ride_server.base_url) as phone,
    ):
        class_id, connect = await robin_started(ride_server, console, phone)
        async with connect as ws:
            await until(ws, "snapshot")
            for n in range(21):
                await ask(ws, hr(n, 140))
                clock.skip(1000)
        assert (await command(console, class_id, "finish")).status_code == 200
    for _ in range(50):
        if rows(ride_server, "SELECT * FROM heart_totals"):
            break
        await asyncio.sleep(0.1)
    samples = rows(ride_server, "SELECT at_ms FROM heart_samples ORDER BY at_ms")
    assert len(samples) >= 4
    old = utcnow() - timedelta(days=200)
    with sqlite3.connect(database(ride_server)) as db:  # the first two, stored long ago
        db.execute(
            "UPDATE heart_samples SET created_at = ? WHERE at_ms <= ?",
            (old.isoformat(" "), samples[1][0]),
        )
    engine = make_engine(ride_server.settings.database_url)
    store = HeartStore(make_sessionmaker(engine), "sqlite")
    keeping = asyncio.create_task(keep_heart_retention(store, 180))
    try:
        for _ in range(50):
            if len(rows(ride_server, "SELECT * FROM heart_samples")) == len(samples) - 2:
                break
            await asyncio.sleep(0.1)
    finally:
        keeping.cancel()
        await engine.dispose()
    kept = rows(ride_server, "SELECT at_ms FROM heart_samples ORDER BY at_ms")
    assert kept == samples[2:]
    assert len(rows(ride_server, "SELECT * FROM heart_totals")) == 1


async def test_effort_carries_on_after_a_restart(
    migrated_url: str, tmp_path: Path, clock: SkippingClock
) -> None:
    """The server stores each person's totals as it goes (and on its way down); the next
    process to run the class carries on from them."""
    routine = RoutineSource("long", "Long ride", "yaml", LONG)
    await asyncio.to_thread(lambda: asyncio.run(seed(migrated_url, [routine])))
    settings = settings_for(migrated_url, tmp_path)
    first = run_server(settings, clock)
    server = await asyncio.to_thread(next, first)
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        ride = await Ride(server, console).open()
        async with ride.phone() as ws:
            await until(ws, "snapshot")
            await ask(ws, {"type": "heart_profile", "id": "p", "age": 40})
            for n in range(31):  # 30 s in zone 5: 2 points
                before = await ask(ws, hr(n, 175))
                clock.skip(1000)
    await asyncio.to_thread(first.close)
    assert 2.0 <= before["points"] <= 2.2

    again = run_server(settings, clock)
    server = await asyncio.to_thread(next, again)
    try:
        ride.server = server
        async with ride.phone() as ws:
            await until(ws, "snapshot")
            for n in range(31, 62):  # 30 s more, from the stored 2 points
                after = await ask(ws, hr(n, 175))
                clock.skip(1000)
        assert 4.0 <= after["points"] <= 4.4
    finally:
        await asyncio.to_thread(again.close)
