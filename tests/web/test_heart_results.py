"""Heart rate after class: results (everyone's on the console, only your own on your
phone), charts with the segments shaded, the CSV and JSON exports, "my classes", and
"Delete my history". A real server, real sockets, a real SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

import httpx
import websockets

from tests.conftest import SkippingClock
from tests.heart import Ride, ask, hr, rows
from tests.helpers import command, csrf, join, until


async def second_phone(ride: Ride, name: str) -> str:
    code = re.search(
        r"data-join-code>([A-Z0-9]+)<",
        (await ride.console.get(f"/console/classes/{ride.id}")).text,
    ).group(1)  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=ride.server.base_url) as phone:
        assert (await join(phone, code, name)).status_code == 303
        return "; ".join(f"{k}={v}" for k, v in phone.cookies.items())


async def effort(
    ride: Ride, cookie: str, clock: SkippingClock, bpm: int, seconds: int, age: int
) -> None:
    """``seconds`` of samples at ``bpm`` from the phone with ``cookie``."""
    async with websockets.connect(ride.url(), additional_headers={"Cookie": cookie}) as ws:
        await until(ws, "snapshot")
        await ask(ws, {"type": "heart_profile", "id": "p", "age": age})
        for n in range(seconds):
            await ask(ws, hr(n, bpm))
            clock.skip(1000)


async def ended_ride(ride: Ride, clock: SkippingClock) -> str:
    """Robin 30 s at 150 bpm (81 % of 185: zone 4), Sam 20 s at 120; the class ended.
    Returns Sam's cookie."""
    sam = await second_phone(ride, "Sam")
    await effort(ride, ride.cookie, clock, 150, 31, 40)
    await effort(ride, sam, clock, 120, 21, 30)
    assert (await command(ride.console, ride.id, "finish")).status_code == 200
    for _ in range(50):  # the owner stores the last seconds as it lets the class go
        if len(rows(ride.server, "SELECT * FROM heart_totals")) == 2:
            break
        await asyncio.sleep(0.1)
    return sam


def phone_client(ride: Ride, cookie: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=ride.server.base_url, headers={"Cookie": cookie})


async def test_results_show_effort_and_a_shaded_chart_to_whom_they_belong(
    ride: Ride, clock: SkippingClock
) -> None:
    sam = await ended_ride(ride, clock)
    page = (await ride.console.get(f"/console/classes/{ride.id}/results")).text
    section = page.split("data-heart-results", 1)[1]
    robin = re.search(r'data-person="(\d+)">\s*<th scope="row">Robin</th>(.*?)</tr>', section, re.S)
    assert robin, section[:2000]
    # 30 s at 4 points a minute (and the moments the test itself took, on the real clock)
    assert re.search(r"<td data-effort>2\.[01]</td>", robin.group(2))
    assert re.search(r'<td data-zone-time="4">0:3[01]</td>', robin.group(2))
    assert "Sam" in section  # the instructor sees everyone
    assert section.count('class="heart-line"') == 2
    assert '<rect class="heart-band"' in section and "<title>Climb</title>" in section
    # A phone sees its own heart only.
    async with phone_client(ride, ride.cookie) as phone:
        mine = (await phone.get(f"/play/{ride.id}/results")).text
    own = mine.split("data-heart-results", 1)[1]
    assert "Your heart rate" in mine and "Robin" in own and "Sam" not in own
    async with phone_client(ride, sam) as phone:
        theirs = (await phone.get(f"/play/{ride.id}/results")).text.split("data-heart-results")[1]
    assert "Sam" in theirs and "Robin" not in theirs
    # The wall's results leave heart rates out.
    tokens = ride.server.server.config.app.state.tokens  # type: ignore[attr-defined]
    wall = await ride.console.get(f"/display/{ride.id}/results?token={tokens.display(ride.id)}")
    assert wall.status_code == 200 and "data-heart-results" not in wall.text


async def test_exports_carry_heart_rates(ride: Ride, clock: SkippingClock) -> None:
    await ended_ride(ride, clock)
    exported = await ride.console.get(f"/console/classes/{ride.id}/results.csv")
    table = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    by_name = {line["nickname"]: line for line in table}
    assert by_name["Robin"]["effort_points"] in ("2.0", "2.1")
    assert by_name["Robin"]["zone4_seconds"] in ("30", "31")
    assert by_name["Sam"]["zone4_seconds"] == "0" and by_name["Sam"]["max_hr"]
    data: dict[str, Any] = json.loads(
        (await ride.console.get(f"/console/classes/{ride.id}/results.json")).text
    )
    heart = {person["nickname"]: person for person in data["heart"]}
    assert heart["Robin"]["effort_points"] in (2.0, 2.1)
    assert heart["Robin"]["zone_seconds"][4] in (30, 31)
    samples = heart["Robin"]["samples"]
    assert samples and all(bpm == 150 for _, bpm in samples)
    assert [at for at, _ in samples] == sorted(at for at, _ in samples)


async def test_my_classes_adds_up_effort_and_deleting_my_history_deletes_it(
    ride: Ride, clock: SkippingClock
) -> None:
    sam = await ended_ride(ride, clock)
    async with phone_client(ride, ride.cookie) as phone:
        mine = (await phone.get("/me")).text
        assert re.search(r"Effort points across your 1 class with a strap: <strong>2\.[01]", mine)
        assert re.search(r"<td data-effort>2\.[01] pts</td>", mine)
        token = await csrf(phone, "/me")
        answer = await phone.post("/me/delete", data={"csrf_token": token, "confirm": "yes"})
        assert answer.status_code == 303
    # Robin's heart is gone, with the age Robin gave; Sam's stays.
    assert rows(ride.server, "SELECT age FROM heart_profiles") == [(30,)]
    names = rows(
        ride.server,
        "SELECT DISTINCT p.nickname FROM heart_samples s JOIN participants p"
        " ON p.id = s.participant_id",
    )
    assert names == [("Sam",)]
    assert len(rows(ride.server, "SELECT * FROM heart_totals")) == 1
    async with phone_client(ride, sam) as phone:
        assert "data-effort-total" in (await phone.get("/me")).text
