"""Rooms and display pairing over HTTP: a real server, a real SQLite file, separate devices.

A display (its own cookie jar) opens ``/display``; the console (signed in)
pairs it to a room; ``/display/state`` then names what the display should
show. Every refused request leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.domain.rooms import (
    EMPTY_ROOM_NAME,
    EXPIRED_PAIRING_CODE,
    LONG_DISPLAY_LABEL,
    LONG_ROOM_NAME,
    MALFORMED_PAIRING_CODE,
    PAIRING_CODE_ALPHABET,
    ROOM_NAME_TAKEN,
    UNKNOWN_PAIRING_CODE,
    USED_PAIRING_CODE,
)
from classroom.web.auth import create_instructor
from classroom.web.csrf import CSRF_FAILED
from classroom.web.pairing import COOKIE, TOO_MANY_DISPLAYS
from classroom.web.rooms import BAD_START, NO_SUCH_ROOM, PAST_START, TOO_MANY_CODES
from tests.conftest import LiveServer
from tests.helpers import command, csrf, sign_in
from tests.web.test_joining import rows

OTHER_EMAIL = "other@example.com"
OTHER_PASSWORD = "another long password"
CODE = re.compile(r"data-pairing-code>([A-Z0-9]{6})<")


@pytest.fixture
async def console(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        await sign_in(client)
        yield client


@pytest.fixture
async def wall(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A wall display: a device of its own, with no sign-in."""
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        yield client


def database(server: LiveServer) -> tuple[list[tuple[Any, ...]], ...]:
    """Everything rooms and pairing can change."""
    return (
        rows(server, "SELECT * FROM rooms ORDER BY id"),
        rows(server, "SELECT * FROM displays ORDER BY id"),
        rows(server, "SELECT id, room_id, scheduled_at FROM classes ORDER BY id"),
    )


async def pairing_code(wall: httpx.AsyncClient) -> str:
    page = await wall.get("/display")
    assert page.status_code == 200, page.text
    found = CODE.search(page.text)
    assert found, page.text
    return found.group(1)


async def state(wall: httpx.AsyncClient) -> str:
    answer = await wall.get("/display/state")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert abs(body["server_now"] - time.time() * 1000) < 60_000
    target: str = body["target"]
    return target


async def post(console: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    token = await csrf(console, "/console/rooms")
    return await console.post(path, data={"csrf_token": token, **fields})


async def add_room(console: httpx.AsyncClient, name: str) -> int:
    answer = await post(console, "/console/rooms", name=name)
    assert answer.status_code == 303, answer.text
    found = re.search(r"#room-(\d+)$", answer.headers["location"])
    assert found
    return int(found.group(1))


async def pair(
    console: httpx.AsyncClient, code: str, room_id: int, label: str = ""
) -> httpx.Response:
    return await post(console, "/console/displays", code=code, room_id=str(room_id), label=label)


async def open_class(console: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await console.get("/console")
    routine = re.search(r'name="routine_id" value="(\d+)"', page.text)
    assert routine
    token = await csrf(console, "/console")
    return await console.post(
        "/console/classes",
        data={"csrf_token": token, "routine_id": routine.group(1), **fields},
    )


async def open_in(console: httpx.AsyncClient, room_id: int, **fields: str) -> int:
    answer = await open_class(console, room_id=str(room_id), **fields)
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


async def eventually(wall: httpx.AsyncClient, target: str) -> None:
    """Wait until the display's state names ``target`` (the class's writer is asynchronous)."""
    deadline = time.monotonic() + 8
    while (seen := await state(wall)) != target:
        assert time.monotonic() < deadline, f"the display shows {seen!r}, not {target!r}"
        await asyncio.sleep(0.1)


def refused(answer: httpx.Response, message: str, status: int = 400) -> None:
    assert answer.status_code == status, answer.text
    assert message.replace("'", "&#39;") in answer.text, answer.text


# -- a display and its code --------------------------------------------------------------


async def test_a_new_display_gets_a_secret_cookie_and_shows_a_pairing_code(
    live_server: LiveServer, wall: httpx.AsyncClient
) -> None:
    assert await state(wall) == "new"  # no cookie yet
    page = await wall.get("/display")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for part in ("HttpOnly", "SameSite=lax", "Path=/", f"Max-Age={400 * 86400}"):
        assert part.lower() in cookie.lower(), cookie
    assert page.headers["cache-control"] == "no-store"
    secret = wall.cookies[COOKIE]
    assert len(secret) >= 40
    code = (CODE.search(page.text) or pytest.fail("no code")).group(1)
    assert all(c in PAIRING_CODE_ALPHABET for c in code)
    assert 'data-wall-target="pair:' + code + '"' in page.text
    ((stored_hash, stored_code, room),) = rows(
        live_server, "SELECT secret_hash, pairing_code, room_id FROM displays"
    )
    assert stored_code == code and room is None and secret not in stored_hash
    # The same display again: the same row and code, no new cookie.
    again = await wall.get("/display")
    assert "set-cookie" not in again.headers
    assert await pairing_code(wall) == code
    assert await state(wall) == f"pair:{code}"
    assert len(rows(live_server, "SELECT id FROM displays")) == 1


async def test_an_expired_code_is_renewed_while_the_display_waits(
    live_server: LiveServer, wall: httpx.AsyncClient
) -> None:
    code = await pairing_code(wall)
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows(live_server, "UPDATE displays SET code_expires_at = ?", past)
    renewed = await state(wall)
    assert renewed.startswith("pair:") and renewed != f"pair:{code}"
    assert await pairing_code(wall) == renewed.removeprefix("pair:")


async def test_an_unknown_cookie_starts_over(
    live_server: LiveServer, wall: httpx.AsyncClient
) -> None:
    wall.cookies.set(COOKIE, "x" * 5000, domain="127.0.0.1")
    assert await state(wall) == "new"
    wall.cookies.set(COOKIE, "made-up-secret", domain="127.0.0.1")
    assert await state(wall) == "new"
    await pairing_code(wall)
    assert wall.cookies[COOKIE] != "made-up-secret"


async def test_new_displays_are_limited_per_address(live_server: LiveServer) -> None:
    for _ in range(30):
        async with httpx.AsyncClient(base_url=live_server.base_url) as device:
            await pairing_code(device)
    before = database(live_server)
    async with httpx.AsyncClient(base_url=live_server.base_url) as device:
        answer = await device.get("/display")
        refused(answer, TOO_MANY_DISPLAYS, 429)
        assert answer.headers["retry-after"] == "60"
        assert COOKIE not in answer.headers.get("set-cookie", "")
        assert "data-wall-target" not in answer.text
    assert database(live_server) == before


# -- pairing ----------------------------------------------------------------------------


async def test_the_console_pairs_a_display_to_a_room(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    typed = f" {code[:3].lower()}-{code[3:].lower()} "  # as someone might type it
    answer = await pair(console, typed, room, label="Mirror TV")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/rooms?done=paired#room-{room}"
    assert await state(wall) == f"welcome:{room}::Studio A"
    page = await wall.get("/display")
    assert "Welcome to Studio A" in page.text and "No class scheduled yet." in page.text
    listing = await console.get("/console/rooms")
    entry = re.search(
        r'<li class="room-display" data-display-id="\d+">(.*?)</li>', listing.text, re.S
    )
    assert entry, listing.text
    assert "Mirror TV" in entry.group(1) and "Online" in entry.group(1)
    assert "seen just now" in entry.group(1)
    # The label is optional: a display gets a name anyway.
    other = httpx.AsyncClient(base_url=live_server.base_url)
    async with other:
        assert (await pair(console, await pairing_code(other), room)).status_code == 303
    ((label,),) = rows(live_server, "SELECT label FROM displays WHERE label != 'Mirror TV'")
    assert re.fullmatch(r"Display \d+", label)


async def test_a_display_not_heard_from_for_a_minute_is_offline(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    await pair(console, await pairing_code(wall), room)
    old = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows(live_server, "UPDATE displays SET last_seen_at = ?", old)
    listing = await console.get("/console/rooms")
    assert "Offline" in listing.text and "seen 5 min ago" in listing.text
    await state(wall)  # it asks again
    assert "Online" in (await console.get("/console/rooms")).text


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", MALFORMED_PAIRING_CODE),
        ("ABC", MALFORMED_PAIRING_CODE),
        ("ABCDE0", MALFORMED_PAIRING_CODE),  # 0 is not in the alphabet
        ("ABCDEF" * 3, MALFORMED_PAIRING_CODE),
        ("ZZZZZZ", UNKNOWN_PAIRING_CODE),
    ],
)
async def test_a_wrong_code_is_refused_and_changes_nothing(
    live_server: LiveServer,
    console: httpx.AsyncClient,
    wall: httpx.AsyncClient,
    code: str,
    message: str,
) -> None:
    room = await add_room(console, "Studio A")
    shown = await pairing_code(wall)
    if code == "ZZZZZZ" and shown == code:  # pragma: no cover - one chance in 887 million
        pytest.skip("the display happens to show ZZZZZZ")
    before = database(live_server)
    refused(await pair(console, code, room), message)
    assert database(live_server) == before
    assert await state(wall) == f"pair:{shown}"


async def test_an_expired_or_used_code_is_refused_and_changes_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows(live_server, "UPDATE displays SET code_expires_at = ?", past)
    before = database(live_server)
    refused(await pair(console, code, room), EXPIRED_PAIRING_CODE)
    assert database(live_server) == before

    rows(live_server, "UPDATE displays SET code_expires_at = ?", "2999-01-01 00:00:00.000000")
    assert (await pair(console, code, room, label="First")).status_code == 303
    second = await add_room(console, "Studio B")
    before = database(live_server)
    refused(await pair(console, code, second, label="Second"), USED_PAIRING_CODE)
    assert database(live_server) == before


async def test_bad_labels_and_rooms_are_refused_and_change_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    before = database(live_server)
    refused(await pair(console, code, room, label="x" * 41), LONG_DISPLAY_LABEL)
    for bad in ("", "abc", "-1", "99999", "1" * 30):
        answer = await post(console, "/console/displays", code=code, room_id=bad)
        refused(answer, NO_SUCH_ROOM)
    assert database(live_server) == before
    assert await state(wall) == f"pair:{code}"


async def test_wrong_codes_are_limited_per_instructor(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    wrong = "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY"
    for _ in range(10):
        refused(await pair(console, wrong, room), UNKNOWN_PAIRING_CODE)
    before = database(live_server)
    refused(await pair(console, code, room), TOO_MANY_CODES, 429)  # even the right one
    assert database(live_server) == before
    assert await state(wall) == f"pair:{code}"


async def test_every_console_form_needs_its_csrf_token(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    await pair(console, code, room)
    (display_id,) = [row[0] for row in rows(live_server, "SELECT id FROM displays")]
    before = database(live_server)
    for path, fields in (
        ("/console/rooms", {"name": "Studio B"}),
        (f"/console/rooms/{room}/name", {"name": "Studio C"}),
        ("/console/displays", {"code": code, "room_id": str(room)}),
        (f"/console/displays/{display_id}/revoke", {}),
    ):
        for token in (None, "forged"):
            data = fields if token is None else {"csrf_token": token, **fields}
            refused(await console.post(path, data=data), CSRF_FAILED, 403)
    assert database(live_server) == before


async def test_the_console_needs_a_sign_in(
    live_server: LiveServer, wall: httpx.AsyncClient
) -> None:
    answer = await wall.get("/console/rooms")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


# -- rooms --------------------------------------------------------------------------------


async def test_rooms_are_added_and_renamed(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    room = await add_room(console, "  Studio   A ")
    answer = await post(console, f"/console/rooms/{room}/name", name="Spin room")
    assert answer.status_code == 303
    assert [name for (name,) in rows(live_server, "SELECT name FROM rooms")] == ["Spin room"]
    # Its own name in another case is not taken.
    answer = await post(console, f"/console/rooms/{room}/name", name="SPIN ROOM")
    assert answer.status_code == 303
    page = await console.get(answer.headers["location"])
    assert 'value="SPIN ROOM"' in page.text and "Room renamed." in page.text
    assert "No display paired yet." in page.text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", EMPTY_ROOM_NAME),
        ("   ", EMPTY_ROOM_NAME),
        ("x" * 81, LONG_ROOM_NAME),
        ("Studio\nA", ROOM_NAME_TAKEN),  # a line break is a space: "Studio A" is taken
        ("\u202eStudio A", ROOM_NAME_TAKEN),  # an override goes: the same name again
        ("\u200b\u2066", EMPTY_ROOM_NAME),
        ("studio a", ROOM_NAME_TAKEN),
    ],
)
async def test_bad_room_names_are_refused_and_change_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, name: str, message: str
) -> None:
    room = await add_room(console, "Studio A")
    other = await add_room(console, "Studio B")
    before = database(live_server)
    refused(await post(console, "/console/rooms", name=name), message)
    answer = await post(console, f"/console/rooms/{other}/name", name=name)
    refused(answer, message)
    assert f'value="{name}"'.replace("'", "&#39;") in answer.text or not name.strip()
    assert database(live_server) == before
    assert room != other


async def test_another_instructors_rooms_and_displays_are_out_of_reach(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    await pair(console, await pairing_code(wall), room, label="Mirror TV")
    (display_id,) = [row[0] for row in rows(live_server, "SELECT id FROM displays")]
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, OTHER_EMAIL, OTHER_PASSWORD, "Other")
    await engine.dispose()
    async with (
        httpx.AsyncClient(base_url=live_server.base_url) as intruder,
        httpx.AsyncClient(base_url=live_server.base_url) as their_wall,
    ):
        await sign_in(intruder, OTHER_EMAIL, OTHER_PASSWORD)
        page = await intruder.get("/console/rooms")
        assert "Studio A" not in page.text and "Mirror TV" not in page.text
        # Their own room may have the same name.
        assert (await add_room(intruder, "Studio A")) != room
        code = await pairing_code(their_wall)
        before = database(live_server)
        refused(await pair(intruder, code, room), NO_SUCH_ROOM)
        answer = await post(intruder, f"/console/rooms/{room}/name", name="Mine now")
        assert answer.status_code == 404
        answer = await post(intruder, f"/console/displays/{display_id}/revoke")
        assert answer.status_code == 404
        refused(await open_class(intruder, room_id=str(room)), NO_SUCH_ROOM)
        assert database(live_server) == before
    assert await state(wall) == f"welcome:{room}::Studio A"


async def test_revoking_a_display_sends_it_back_to_a_new_pairing_code(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    code = await pairing_code(wall)
    await pair(console, code, room, label="Mirror TV")
    (display_id,) = [row[0] for row in rows(live_server, "SELECT id FROM displays")]
    old_secret = wall.cookies[COOKIE]
    answer = await post(console, f"/console/displays/{display_id}/revoke")
    assert answer.status_code == 303
    assert "Mirror TV" not in (await console.get("/console/rooms")).text
    assert await state(wall) == "new"
    fresh = await pairing_code(wall)
    assert fresh != code and wall.cookies[COOKIE] != old_secret
    ((revoked,),) = rows(live_server, "SELECT revoked_at FROM displays WHERE id = ?", display_id)
    assert revoked is not None
    # Revoked once is revoked: again is "no such display", and the old code is used up.
    answer = await post(console, f"/console/displays/{display_id}/revoke")
    assert answer.status_code == 404
    refused(await pair(console, code, room), USED_PAIRING_CODE)
    for bad in ("abc", "99999"):
        assert (await post(console, f"/console/displays/{bad}/revoke")).status_code == 404


# -- what a paired display shows -----------------------------------------------------------


async def test_a_paired_display_follows_its_room_from_class_to_class(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    other_room = await add_room(console, "Studio B")
    await pair(console, await pairing_code(wall), room)
    assert (await open_class(console)).status_code == 303  # no room: not this display's
    await open_in(console, other_room)
    assert await state(wall) == f"welcome:{room}::Studio A"

    first = await open_in(console, room)
    assert await state(wall) == f"class:{first}"
    page = await wall.get("/display")
    socket = re.search(r'data-socket="/ws/classes/(\d+)\?token=([^"]+)"', page.text)
    assert socket and int(socket.group(1)) == first  # a display token minted for it
    assert 'data-results-url="/display"' in page.text
    assert f'data-wall-target="class:{first}"' in page.text
    assert (await command(console, first, "start")).status_code == 200
    await eventually(wall, f"class:{first}")
    assert (await command(console, first, "finish")).status_code == 200
    await eventually(wall, f"results:{first}")
    results = await wall.get("/display")
    assert "Results: Quick test" in results.text
    assert f'data-wall-target="results:{first}"' in results.text

    # The next class in the lobby waits until the room has seen the results; started,
    # it takes the wall at once.
    second = await open_in(console, room)
    assert await state(wall) == f"results:{first}"
    assert (await command(console, second, "start")).status_code == 200
    await eventually(wall, f"class:{second}")


async def test_the_welcome_screen_shows_the_next_scheduled_class(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    await pair(console, await pairing_code(wall), room)
    later = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    class_id = await open_in(console, room, scheduled_at=later.strftime("%Y-%m-%dT%H:%M"), tz="UTC")
    at_ms = int(later.timestamp() * 1000)
    assert await state(wall) == f"welcome:{room}:{class_id}@{at_ms}:Studio A"
    page = await wall.get("/display")
    assert "Next class: <strong>Quick test</strong>" in page.text
    assert f'datetime="{later.astimezone().isoformat()}"' in page.text
    # A class due within a quarter of an hour takes the wall with its lobby.
    soon = datetime.now(UTC) + timedelta(minutes=10)
    near = await open_in(console, room, scheduled_at=soon.strftime("%Y-%m-%dT%H:%M"), tz="UTC")
    assert await state(wall) == f"class:{near}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scheduled_at": "tomorrow at six"}, BAD_START),
        ({"scheduled_at": "2020-01-01T10:00"}, PAST_START),
        ({"scheduled_at": "2999-01-01T10:00"}, "at most 5 h 30 min ahead"),
        ({"room_id": "abc"}, NO_SUCH_ROOM),
        ({"room_id": "99999"}, NO_SUCH_ROOM),
    ],
)
async def test_the_open_class_form_refuses_a_bad_room_or_start_and_opens_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, fields: dict[str, str], message: str
) -> None:
    await add_room(console, "Studio A")
    before = database(live_server)
    refused(await open_class(console, **fields), message)
    assert database(live_server) == before


async def test_the_start_time_is_read_in_the_consoles_time_zone(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    zone_now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    typed = (zone_now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    class_id = await open_in(console, room, scheduled_at=typed, tz="Asia/Tokyo")
    ((stored,),) = rows(live_server, "SELECT scheduled_at FROM classes WHERE id = ?", class_id)
    expected = (zone_now + timedelta(hours=1)).replace(second=0, microsecond=0)
    assert datetime.fromisoformat(stored).replace(tzinfo=UTC) == expected
