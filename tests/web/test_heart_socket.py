"""Heart rate over the phone's socket: a profile, samples, the wall's tiles, bad input.

A real server on a free port with a real SQLite file; the phone and the wall are
real WebSocket clients. The server's clock is moved forward by the test (the class
runs a long segment, so moving it changes nothing else).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from classroom.domain import heart
from classroom.web import sockets
from tests.conftest import SkippingClock
from tests.heart import Ride, ask, hr, rows
from tests.helpers import Message, until


async def test_a_profile_sets_the_max_and_bad_ones_change_nothing(ride: Ride) -> None:
    async with ride.phone() as ws:
        await until(ws, "snapshot")
        bad: list[tuple[Message, str]] = [
            ({"age": "forty"}, heart.BAD_AGE),
            ({"age": 5}, heart.BAD_AGE),
            ({"age": 40.5}, heart.BAD_AGE),
            ({"max_hr": 400}, heart.BAD_MAX_HR),
            ({"max_hr": True}, heart.BAD_MAX_HR),
            ({}, sockets.AGE_OR_MAX),
            ({"age": 40, "show_bpm": "yes"}, sockets.SHOW_BPM_BOOL),
        ]
        for n, (fields, sentence) in enumerate(bad):
            answer = await ask(ws, {"type": "heart_profile", "id": f"p{n}", **fields})
            assert answer["type"] == "error" and answer["code"] == "bad_field", answer
            assert answer["message"] == sentence
        assert rows(ride.server, "SELECT * FROM heart_profiles") == []

        answer = await ask(ws, {"type": "heart_profile", "id": "ok", "age": 40})
        assert answer["type"] == "heart_profile"
        assert (answer["max_hr"], answer["max_from"]) == (heart.max_from_age(40), "age")
        answer = await ask(ws, {"type": "heart_profile", "id": "max", "max_hr": 192})
        assert (answer["max_hr"], answer["max_from"]) == (192, "entered")
        assert rows(ride.server, "SELECT age, max_hr, show_bpm FROM heart_profiles") == [
            (None, 192, 0)
        ]


async def test_samples_move_zone_and_points_and_reach_the_wall(
    ride: Ride, clock: SkippingClock
) -> None:
    async with ride.phone() as ws, ride.wall() as wall:
        await until(ws, "snapshot")
        await until(wall, "snapshot")
        await ask(ws, {"type": "heart_profile", "id": "p", "max_hr": 200})
        first = await ask(ws, hr(0, 72))
        assert first == {
            "type": "hr",
            "id": 0,
            "bpm": 72,
            "percent": 36,
            "zone": 0,
            "points": 0,
            "max_hr": 200,
            "max_from": "entered",
            "raised": None,
        }
        # A minute at 170 bpm (85 % of 200: zone 4, 4 points a minute), once a second,
        # in every layout a strap may use.
        layouts: list[dict[str, Any]] = [
            {},
            {"wide": True},
            {"contact": True},
            {"energy_kj": 12},
            {"rr_ms": [353]},
            {"wide": True, "contact": True, "energy_kj": 3, "rr_ms": [352, 354]},
        ]
        answer: Message = {}
        for n in range(1, 62):
            clock.skip(1000)
            answer = await ask(ws, hr(n, 170, **layouts[n % len(layouts)]))
            await asyncio.sleep(0.06)  # within the socket's limit of messages
        assert (answer["zone"], answer["percent"]) == (4, 85)
        # 60 s in zone 4, and the few real seconds the test took (the clock also runs).
        assert 4.0 <= answer["points"] <= 4.6
        tiles = await until(wall, "heart")
        while not tiles["tiles"] or tiles["tiles"][0]["zone"] != 4:
            tiles = await until(wall, "heart")
        (tile,) = tiles["tiles"]
        assert tile["name"] == "Robin" and tile["bpm"] is None  # not allowed: not shown
        assert tile["zone"] == 4 and tile["percent"] == 85 and not tile["stale"]


async def test_bad_samples_are_dropped_counted_and_answered(
    ride: Ride, clock: SkippingClock
) -> None:
    async with ride.phone() as ws, ride.wall() as wall:
        await until(ws, "snapshot")
        await until(wall, "snapshot")
        cases: list[tuple[Any, str, str]] = [
            ("zz", "bad_hr", sockets.HR_NEEDS_DATA),
            (None, "bad_hr", sockets.HR_NEEDS_DATA),
            (123, "bad_hr", sockets.HR_NEEDS_DATA),
            ("00" * 80, "bad_hr", sockets.HR_NEEDS_DATA),
            ("", "bad_hr", heart.EMPTY_MEASUREMENT),
            ("01", "bad_hr", heart.NO_BPM),
            ("0848", "bad_hr", heart.NO_ENERGY),
            ("104801", "bad_hr", heart.HALF_RR),
            ("0448", "hr_dropped", heart.PROBLEMS[heart.NO_CONTACT]),
            ("0014", "hr_dropped", heart.PROBLEMS[heart.OUT_OF_RANGE]),
            ("012c01", "hr_dropped", heart.PROBLEMS[heart.OUT_OF_RANGE]),
        ]
        for n, (data, code, sentence) in enumerate(cases):
            answer = await ask(ws, {"type": "hr", "id": n, "data": data})
            assert (answer["type"], answer["code"], answer["message"]) == ("error", code, sentence)
            clock.skip(1000)  # a strap's pace
        # A flood: past a strap's pace, the rest are dropped with one word each.
        for n in range(100, 110):
            await ws.send(json.dumps(hr(n, 120)))
        codes = []
        async with asyncio.timeout(5):
            while len(codes) < 10:
                reply = json.loads(await ws.recv())
                if reply.get("id", 0) >= 100:
                    codes.append(reply["type"] if reply["type"] == "hr" else reply["code"])
        assert codes.count("hr") >= 1 and "rate_limited" in codes
        # The wall is told of the good samples only, and still takes the class's events.
        tiles = await until(wall, "heart")
        assert [t["name"] for t in tiles["tiles"]] == ["Robin"]
    metrics = (await ride.console.get("/metrics")).text
    del metrics  # /metrics is off by default; the counter is read from the app below
    counter = ride.server.server.config.app.state.metrics.heart_samples  # type: ignore[attr-defined]
    assert counter.labels("garbled")._value.get() == 8
    assert counter.labels("no_contact")._value.get() == 1
    assert counter.labels("out_of_range")._value.get() == 2
    assert counter.labels("flood")._value.get() >= 1
    # Nothing but good samples is stored, once their five seconds are over.
    clock.skip(6000)
    deadline = time.monotonic() + 10
    stored: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline and not stored:
        await asyncio.sleep(0.5)
        stored = rows(ride.server, "SELECT bpm, peak_bpm FROM heart_samples")
    assert stored and all(row == (120, 120) for row in stored)


async def test_only_a_participant_sends_heart_rates(ride: Ride) -> None:
    async with ride.wall() as wall:
        await until(wall, "snapshot")
        answer = await ask(wall, hr(1, 120))
        assert answer["code"] == "forbidden"
