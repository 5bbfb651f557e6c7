"""Joining from a phone: teams, levels, hidden names, numbers, device cookies and rejoining.

Real server, real SQLite file, real WebSocket clients; the database is read
directly to check what was stored, and that a refused join stored nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from markupsafe import escape

from classroom.domain.joining import EMPTY_NICKNAME, LONG_NICKNAME
from classroom.web.participants import (
    DEVICE_COOKIE,
    JOIN_LOCKED,
    REMOVED,
    TEAMS_LOCKED,
    UNKNOWN_TEAM,
)
from tests.conftest import LiveServer
from tests.helpers import command, csrf, join_code, open_class, sign_in, until


def shown(message: str) -> str:
    """A message as a page shows it (HTML-escaped)."""
    return str(escape(message))


def rows(server: LiveServer, sql: str, *params: object) -> list[tuple[Any, ...]]:
    path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        return list(db.execute(sql, params))


def people(server: LiveServer) -> list[tuple[Any, ...]]:
    """Every participant row: id, class, nickname, team, number, device, hidden, removed, level."""
    return rows(
        server,
        "SELECT id, class_id, nickname, team_id, number, device_id, hidden, removed, level"
        " FROM participants ORDER BY id",
    )


def teams_of(server: LiveServer, class_id: int) -> list[int]:
    found = rows(server, "SELECT id FROM teams WHERE class_id = ? ORDER BY position", class_id)
    return [team_id for (team_id,) in found]


async def join_as(
    phone: httpx.AsyncClient, code: str, nickname: str, **fields: str
) -> httpx.Response:
    token = await csrf(phone, "/join")
    data = {"csrf_token": token, "code": code, "nickname": nickname, "level": "standard"}
    return await phone.post("/join", data={**data, **fields})


async def console_post(
    console: httpx.AsyncClient, class_id: int, path: str, **fields: str | list[str]
) -> httpx.Response:
    token = await csrf(console, f"/console/classes/{class_id}/roster")
    return await console.post(
        f"/console/classes/{class_id}{path}",
        data={"csrf_token": token, **fields},
        headers={"HX-Request": "true"},
    )


def cookie_header(phone: httpx.AsyncClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in phone.cookies.items())


class Room:
    """A class on the live server with its console signed in, and phones to join it."""

    def __init__(self, server: LiveServer, console: httpx.AsyncClient) -> None:
        self.server = server
        self.console = console
        self.id = 0
        self.code = ""
        self._phones: list[httpx.AsyncClient] = []

    async def open(self, teams: int = 0) -> Room:
        await sign_in(self.console)
        self.id = await open_class(self.console)
        self.code = await join_code(self.console, self.id)
        if teams:
            answer = await console_post(self.console, self.id, "/teams", count=str(teams))
            assert answer.status_code == 200, answer.text
        return self

    def phone(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.server.base_url)
        self._phones.append(client)
        return client

    async def close(self) -> None:
        for client in self._phones:
            await client.aclose()

    def socket(self, phone: httpx.AsyncClient) -> websockets.connect:
        return websockets.connect(
            f"{self.server.ws_url}/ws/classes/{self.id}",
            additional_headers={"Cookie": cookie_header(phone)},
        )


@pytest.fixture
async def room(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Room]:
    opened = Room(live_server, client)
    yield opened
    await opened.close()


async def test_joining_numbers_people_in_order_and_remembers_the_device(room: Room) -> None:
    await room.open()
    first, second = room.phone(), room.phone()
    answer = await join_as(first, room.code, "Robin", level="beginner")
    assert answer.status_code == 303 and answer.headers["location"] == f"/play/{room.id}"
    cookies = answer.headers.get_list("set-cookie")
    device = next(c for c in cookies if c.startswith(DEVICE_COOKIE + "="))
    assert "HttpOnly" in device and "Max-Age=31536000" in device and "SameSite=lax" in device
    assert any(c.startswith(f"classroom_p{room.id}=") for c in cookies)
    # Typed in lower case with a dash, hiding the name.
    typed = room.code.lower()[:3] + "-" + room.code.lower()[3:]
    assert (await join_as(second, typed, "Sam", hidden="1")).status_code == 303
    stored = people(room.server)
    assert [(p[2], p[4], p[6], p[8]) for p in stored] == [
        ("Robin", 1, 0, "beginner"),
        ("Sam", 2, 1, "standard"),
    ]
    assert stored[0][5] == first.cookies[DEVICE_COOKIE]
    assert stored[1][5] == second.cookies[DEVICE_COOKIE] != stored[0][5]
    page = await first.get(f"/play/{room.id}")
    assert page.status_code == 200 and "Robin" in page.text


async def test_the_qr_link_offers_the_class_teams_and_auto(room: Room) -> None:
    await room.open(teams=3)
    phone = room.phone()
    page = await phone.get(f"/j/{room.code}")
    assert page.status_code == 200
    assert f'value="{room.code}"' in page.text
    assert 'name="team" value="auto" checked' in page.text
    for team_id, name in zip(
        teams_of(room.server, room.id), ["Blue", "Orange", "Green"], strict=True
    ):
        assert f'name="team" value="{team_id}"' in page.text and f"Team {name}" in page.text
    typed = await phone.get("/join/teams", params={"code": room.code.lower()})
    assert "Team Orange" in typed.text and "<html" not in typed.text
    assert "Team" not in (await phone.get("/join/teams", params={"code": "ZZZZZZ"})).text


async def test_names_keep_their_emoji_and_lose_their_bidi_controls(room: Room) -> None:
    """The one policy for names (classroom/domain/names.py), through the real forms."""
    await room.open()
    answer = await console_post(
        room.console, room.id, "/teams", name=["\u202eRed\u202c Sharks", "Blu\u200be", "\u2066"]
    )
    assert answer.status_code == 200, answer.text
    phone = room.phone()
    assert (
        await join_as(phone, room.code, "\U0001f469\u200d\U0001f4bb Ada\u202e")
    ).status_code == 303
    names = rows(room.server, "SELECT name FROM teams WHERE class_id = ? ORDER BY id", room.id)
    assert [name for (name,) in names] == ["Red Sharks", "Blue"]
    ((nickname,),) = rows(room.server, "SELECT nickname FROM participants")
    assert nickname == "\U0001f469\u200d\U0001f4bb Ada"
    page = (await room.phone().get(f"/j/{room.code}")).text
    assert "Red Sharks" in page and "\u202e" not in page


async def test_a_chosen_team_is_kept_and_auto_fills_the_smallest_team(room: Room) -> None:
    await room.open(teams=2)
    blue, orange = teams_of(room.server, room.id)
    assert (await join_as(room.phone(), room.code, "Ana", team=str(blue))).status_code == 303
    assert (await join_as(room.phone(), room.code, "Ben", team=str(blue))).status_code == 303
    assert (await join_as(room.phone(), room.code, "Cy", team="auto")).status_code == 303
    assert (await join_as(room.phone(), room.code, "Di")).status_code == 303  # no field: auto
    assert (await join_as(room.phone(), room.code, "Ed")).status_code == 303  # a tie: the first
    assert [(p[2], p[3]) for p in people(room.server)] == [
        ("Ana", blue),
        ("Ben", blue),
        ("Cy", orange),
        ("Di", orange),
        ("Ed", blue),
    ]


async def test_auto_balance_breaks_a_tie_by_past_results_on_the_device(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    earlier = await Room(live_server, client).open()
    strong = httpx.AsyncClient(base_url=live_server.base_url)
    async with strong:
        assert (await join_as(strong, earlier.code, "Strong")).status_code == 303
        (strong_id,) = [p[0] for p in people(live_server) if p[2] == "Strong"]
        # What an earlier class stored for this device: 60 reps, one of them undone.
        path = live_server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO scores (class_id, participant_id, client_id, segment_index, kind,"
                " value, created_at, rounds, division, elapsed_ms, undoes, withdrawn, flagged)"
                " VALUES (?, ?, ?, 0, 'reps', ?, '2026-01-01', 0, 'rx', 0, ?, ?, 0)",
                [
                    (earlier.id, strong_id, "a", 60, "", 0),
                    (earlier.id, strong_id, "b", 1, "", 1),
                    (earlier.id, strong_id, "c", 1, "b", 0),
                ],
            )
        for with_history in (False, True):
            room = await Room(live_server, client).open(teams=2)
            blue, orange = teams_of(live_server, room.id)
            async with httpx.AsyncClient(base_url=live_server.base_url) as other:
                regular = strong if with_history else other
                assert (await join_as(regular, room.code, "Reg", team=str(blue))).status_code == 303
                async with httpx.AsyncClient(base_url=live_server.base_url) as weak:
                    assert (
                        await join_as(weak, room.code, "Weak", team=str(orange))
                    ).status_code == 303
                async with httpx.AsyncClient(base_url=live_server.base_url) as newcomer:
                    assert (await join_as(newcomer, room.code, "New")).status_code == 303
            placed = {p[2]: p[3] for p in people(live_server) if p[1] == room.id}
            # Sizes tie at 1-1: without history the first team, with it the weaker one.
            assert placed["New"] == (orange if with_history else blue)


async def test_rejoin_after_a_reload_keeps_the_participant_team_and_score(room: Room) -> None:
    await room.open(teams=2)
    _, orange = teams_of(room.server, room.id)
    phone = room.phone()
    assert (await join_as(phone, room.code, "Robin", team=str(orange))).status_code == 303
    ((pid, *_),) = people(room.server)
    await command(room.console, room.id, "start")
    async with room.socket(phone) as ws:
        await until(ws, "snapshot")
        await ws.send(
            json.dumps({"type": "score", "id": "t1", "segment": 0, "kind": "reps", "value": 5})
        )
        assert (await until(ws, "ack"))["duplicate"] is False

    # A reload after the class cookie is gone: the device cookie finds the participant.
    phone.cookies.delete(f"classroom_p{room.id}")
    page = await phone.get(f"/play/{room.id}")
    assert page.status_code == 200 and "Robin" in page.text
    assert f"classroom_p{room.id}" in phone.cookies
    # Scanning the QR again, or joining again with another nickname: the same participant.
    again = await phone.get(f"/j/{room.code}")
    assert again.status_code == 303 and again.headers["location"] == f"/play/{room.id}"
    phone.cookies.delete(f"classroom_p{room.id}")
    rejoin = await join_as(phone, room.code, "Someone else", team="auto")
    assert rejoin.status_code == 303 and rejoin.headers["location"] == f"/play/{room.id}"
    assert [(p[0], p[2], p[3]) for p in people(room.server)] == [(pid, "Robin", orange)]

    # The score still counts: the next input adds to it, on the same participant.
    async with room.socket(phone) as ws:
        await until(ws, "snapshot")
        await ws.send(
            json.dumps({"type": "score", "id": "t2", "segment": 0, "kind": "reps", "value": 3})
        )
        assert (await until(ws, "ack"))["duplicate"] is False
        while True:
            board = (await until(ws, "leaderboard"))["class"]
            mine = [row for row in board["people"] if row["id"] == pid]
            if mine and mine[0]["value"] == 8:
                break
        team_rows = {row["id"]: row["value"] for row in board["teams"]}
        assert team_rows[orange] == 8
    assert rows(room.server, "SELECT participant_id, value FROM scores ORDER BY id") == [
        (pid, 5),
        (pid, 3),
    ]


async def test_a_locked_class_refuses_newcomers_but_lets_its_people_back(room: Room) -> None:
    await room.open()
    regular = room.phone()
    assert (await join_as(regular, room.code, "Robin")).status_code == 303
    assert (await console_post(room.console, room.id, "/joining", locked="1")).status_code == 200
    before = people(room.server)
    newcomer = room.phone()
    refused = await join_as(newcomer, room.code, "Late")
    assert refused.status_code == 403 and shown(JOIN_LOCKED) in refused.text
    assert people(room.server) == before
    assert shown(JOIN_LOCKED) in (await newcomer.get(f"/j/{room.code}")).text
    regular.cookies.delete(f"classroom_p{room.id}")
    assert (await join_as(regular, room.code, "Robin")).status_code == 303
    assert people(room.server) == before
    assert (await console_post(room.console, room.id, "/joining", locked="0")).status_code == 200
    assert (await join_as(newcomer, room.code, "Late")).status_code == 303


async def test_after_the_start_teams_are_locked_and_newcomers_are_balanced(room: Room) -> None:
    await room.open(teams=2)
    blue, orange = teams_of(room.server, room.id)
    assert (await join_as(room.phone(), room.code, "Ana", team=str(blue))).status_code == 303
    assert (await command(room.console, room.id, "start")).status_code == 200
    before = people(room.server)
    late = room.phone()
    picked = await join_as(late, room.code, "Late", team=str(blue))
    assert picked.status_code == 409 and shown(TEAMS_LOCKED) in picked.text
    assert 'name="team" value=' not in picked.text  # the form now offers no choice
    assert people(room.server) == before
    assert (await join_as(late, room.code, "Late")).status_code == 303
    assert people(room.server)[-1][2:4] == ("Late", orange)


async def test_a_removed_participant_cannot_come_back_on_the_same_device(room: Room) -> None:
    await room.open()
    phone = room.phone()
    assert (await join_as(phone, room.code, "Robin")).status_code == 303
    ((pid, *_),) = people(room.server)
    answer = await console_post(room.console, room.id, f"/participants/{pid}/remove")
    assert answer.status_code == 200
    before = people(room.server)
    refused = await join_as(phone, room.code, "Robin again")
    assert refused.status_code == 403 and shown(REMOVED) in refused.text
    page = await phone.get(f"/play/{room.id}")
    assert page.status_code == 403 and shown(REMOVED) in page.text
    assert people(room.server) == before


async def test_a_taken_nickname_gets_a_free_variant(room: Room) -> None:
    await room.open()
    assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
    assert (await join_as(room.phone(), room.code, "Robin2")).status_code == 303
    before = people(room.server)
    taken = await join_as(room.phone(), room.code, "Robin")
    assert taken.status_code == 409 and "How about Robin3?" in taken.text
    assert people(room.server) == before


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"nickname": "x" * 25}, 400, LONG_NICKNAME),
        ({"nickname": "\u200b\u200c\u200d\ufeff"}, 400, EMPTY_NICKNAME),
        ({"team": "999999"}, 400, UNKNOWN_TEAM),
        ({"team": "blue"}, 400, UNKNOWN_TEAM),
        ({"team": "other"}, 400, UNKNOWN_TEAM),  # a team of another class
        ({"level": "elite"}, 400, "Pick beginner, standard or advanced."),
        ({"code": "ZZZZZZ"}, 404, "No class is open with that code"),
    ],
)
async def test_a_bad_join_is_refused_and_changes_nothing(
    room: Room, fields: dict[str, str], status: int, message: str
) -> None:
    await room.open(teams=2)
    if fields.get("team") == "other":
        other = await open_class(room.console)
        await console_post(room.console, other, "/teams", count="2")
        fields = {"team": str(teams_of(room.server, other)[0])}
    before = people(room.server)
    phone = room.phone()
    answer = await join_as(
        phone, fields.pop("code", room.code), fields.pop("nickname", "Robin"), **fields
    )
    assert answer.status_code == status
    assert shown(message) in answer.text
    assert people(room.server) == before
    assert f"classroom_p{room.id}" not in phone.cookies
