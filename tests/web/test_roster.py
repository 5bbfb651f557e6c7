"""The instructor's roster: teams, templates, team mode, joining, rename, move and remove.

Real server and SQLite file; what a refused change left in the database is
compared with what was there before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.domain.joining import LONG_NICKNAME
from classroom.domain.scorebook import NOT_IN_CLASS
from classroom.domain.teams import BAD_COUNT, BAD_NAME, SAME_NAME
from classroom.web.auth import create_instructor
from classroom.web.participants import UNKNOWN_TEAM
from classroom.web.roster import (
    BAD_BEST_N,
    BAD_MODE,
    BAD_TEMPLATE_NAME,
    TEAMS_SET,
    UNKNOWN_TEMPLATE,
)
from tests.conftest import LiveServer
from tests.helpers import command, csrf, join_code, open_class, sign_in
from tests.web.test_joining import (
    Room,
    console_post,
    join_as,
    people,
    rows,
    shown,
    teams_of,
    until,
)

OTHER_EMAIL = "other@example.com"
OTHER_PASSWORD = "another long password"


def teams(server: LiveServer, class_id: int) -> list[tuple[Any, ...]]:
    return rows(
        server,
        "SELECT id, name, colour, letter, pattern, position FROM teams"
        " WHERE class_id = ? ORDER BY position",
        class_id,
    )


def snapshot(server: LiveServer) -> tuple[list[tuple[Any, ...]], ...]:
    """Everything the roster can change."""
    return (
        rows(server, "SELECT id, class_id, name, colour, letter, pattern, position FROM teams"),
        people(server),
        rows(server, "SELECT id, join_locked, team_mode, best_n FROM classes ORDER BY id"),
        rows(server, "SELECT id, instructor_id, name, teams FROM team_templates ORDER BY id"),
    )


@pytest.fixture
async def room(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Room]:
    opened = Room(live_server, client)
    yield opened
    await opened.close()


async def test_the_class_page_loads_the_roster_which_also_stands_alone(room: Room) -> None:
    await room.open()
    page = await room.console.get(f"/console/classes/{room.id}")
    assert f'hx-get="/console/classes/{room.id}/roster" hx-trigger="load"' in page.text
    fragment = await room.console.get(
        f"/console/classes/{room.id}/roster", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Nobody has joined yet." in fragment.text
    whole = await room.console.get(f"/console/classes/{room.id}/roster")
    assert "<html" in whole.text and "Back to the class" in whole.text


async def test_teams_from_a_count_get_default_names_and_distinct_looks(room: Room) -> None:
    await room.open()
    for name in ("Ana", "Ben", "Cy", "Di", "Ed"):
        assert (await join_as(room.phone(), room.code, name)).status_code == 303
    answer = await console_post(room.console, room.id, "/teams", count="3")
    assert answer.status_code == 200 and "Teams are set up." in answer.text
    made = teams(room.server, room.id)
    assert [t[1] for t in made] == ["Team Blue", "Team Orange", "Team Green"]
    assert [t[2:5] for t in made] == [
        ("#0072B2", "A", "stripes"),
        ("#E69F00", "B", "dots"),
        ("#009E73", "C", "checks"),
    ]
    # Everyone already in is spread out, smallest team first, in joining order.
    ids = [t[0] for t in made]
    assert [p[3] for p in people(room.server)] == [ids[0], ids[1], ids[2], ids[0], ids[1]]


async def test_renaming_and_shrinking_teams_keeps_whoever_can_stay(room: Room) -> None:
    await room.open(teams=3)
    blue, orange, green = teams_of(room.server, room.id)
    for name, team in (("Ana", blue), ("Ben", orange), ("Cy", green), ("Di", green)):
        answer = await join_as(room.phone(), room.code, name, team=str(team))
        assert answer.status_code == 303
    # Swapping two names is fine; the third team goes and its members are spread out.
    answer = await console_post(room.console, room.id, "/teams", name=["Sharks", "Blue"])
    assert answer.status_code == 200, answer.text
    assert [t[:2] for t in teams(room.server, room.id)] == [(blue, "Sharks"), (orange, "Blue")]
    assert [p[3] for p in people(room.server)] == [blue, orange, blue, orange]


async def test_a_template_saves_the_names_and_sets_up_a_later_class(room: Room) -> None:
    await room.open()
    answer = await console_post(room.console, room.id, "/teams", name=["Red", "Gold", "Jade"])
    assert answer.status_code == 200
    saved = await console_post(room.console, room.id, "/team-templates", template_name="Morning")
    assert saved.status_code == 200 and "Template saved." in saved.text
    ((template_id, names),) = rows(room.server, "SELECT id, teams FROM team_templates")
    assert json.loads(names) == ["Red", "Gold", "Jade"]
    later = await open_class(room.console)
    roster = await room.console.get(f"/console/classes/{later}/roster")
    assert "Morning (Red, Gold, Jade)" in roster.text
    used = await console_post(room.console, later, "/teams", template=str(template_id))
    assert used.status_code == 200
    assert [t[1] for t in teams(room.server, later)] == ["Red", "Gold", "Jade"]
    # Saving under the same name replaces the names.
    await console_post(room.console, later, "/teams", count="2")
    assert (
        await console_post(room.console, later, "/team-templates", template_name="Morning")
    ).status_code == 200
    assert [json.loads(t) for (t,) in rows(room.server, "SELECT teams FROM team_templates")] == [
        ["Team Blue", "Team Orange"]
    ]


async def test_team_mode_and_best_n_are_set_per_class(room: Room) -> None:
    await room.open(teams=2)
    answer = await console_post(room.console, room.id, "/team-mode", team_mode="best_n", best_n="2")
    assert answer.status_code == 200
    answer = await console_post(room.console, room.id, "/team-mode", team_mode="average")
    assert answer.status_code == 200
    assert rows(room.server, "SELECT team_mode, best_n FROM classes") == [("average", 2)]


async def test_rename_move_and_remove_reach_the_live_boards(room: Room) -> None:
    await room.open(teams=2)
    blue, orange = teams_of(room.server, room.id)
    robin, sam = room.phone(), room.phone()
    assert (await join_as(robin, room.code, "Robin", team=str(blue))).status_code == 303
    assert (await join_as(sam, room.code, "Sam", team=str(blue))).status_code == 303
    robin_id, sam_id = (p[0] for p in people(room.server))
    assert (await command(room.console, room.id, "start")).status_code == 200
    async with room.socket(robin) as ws:
        await until(ws, "snapshot")
        tap = {"type": "score", "id": "r1", "segment": 0, "kind": "reps", "value": 4}
        await ws.send(json.dumps(tap))
        assert (await until(ws, "ack"))["duplicate"] is False

        renamed = await console_post(
            room.console, room.id, f"/participants/{robin_id}/rename", nickname="Rob"
        )
        assert renamed.status_code == 200 and 'value="Rob"' in renamed.text
        moved = await console_post(
            room.console, room.id, f"/participants/{robin_id}/move", team=str(orange)
        )
        assert moved.status_code == 200
        while True:  # the board follows: new name, new team
            board = (await until(ws, "leaderboard"))["class"]
            row = next((r for r in board["people"] if r["id"] == robin_id), None)
            if row and row["name"] == "Rob" and row["team_id"] == orange:
                break
        assert {t["id"]: t["value"] for t in board["teams"]}[orange] == 4

        removed = await console_post(room.console, room.id, f"/participants/{robin_id}/remove")
        assert removed.status_code == 200 and 'value="Rob"' not in removed.text
        while True:  # gone from the board
            board = (await until(ws, "leaderboard"))["class"]
            if all(r["id"] != robin_id for r in board["people"]):
                break
        # Their inputs are refused now, and nothing is stored.
        await ws.send(json.dumps({**tap, "id": "r2"}))
        refused = await until(ws, "error")
        assert refused["code"] == "rejected" and refused["message"] == NOT_IN_CLASS
    assert rows(room.server, "SELECT client_id FROM scores") == [("r1",)]
    assert [(p[0], p[2], p[3], p[7]) for p in people(room.server)] == [
        (robin_id, "Rob", orange, 1),
        (sam_id, "Sam", blue, 0),
    ]


async def test_changes_tell_the_console_how_many_are_in(room: Room) -> None:
    await room.open()
    phone = room.phone()
    cookie = "; ".join(f"{k}={v}" for k, v in room.console.cookies.items())
    url = f"{room.server.ws_url}/ws/classes/{room.id}"
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
        await until(ws, "snapshot")
        assert (await join_as(phone, room.code, "Robin")).status_code == 303
        assert (await until(ws, "roster"))["count"] == 1
        ((pid, *_),) = people(room.server)
        await console_post(room.console, room.id, f"/participants/{pid}/remove")
        assert (await until(ws, "roster"))["count"] == 0


async def test_joining_can_be_locked_and_opened_again(room: Room) -> None:
    await room.open()
    locked = await console_post(room.console, room.id, "/joining", locked="1")
    assert locked.status_code == 200 and 'data-joining="locked"' in locked.text
    assert rows(room.server, "SELECT join_locked FROM classes") == [(1,)]
    opened = await console_post(room.console, room.id, "/joining", locked="0")
    assert 'data-joining="open"' in opened.text
    assert rows(room.server, "SELECT join_locked FROM classes") == [(0,)]


async def test_without_htmx_a_change_goes_back_to_the_roster_page(room: Room) -> None:
    await room.open()
    token = await csrf(room.console, f"/console/classes/{room.id}/roster")
    answer = await room.console.post(
        f"/console/classes/{room.id}/teams", data={"csrf_token": token, "count": "2"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/classes/{room.id}/roster"
    refused = await room.console.post(
        f"/console/classes/{room.id}/teams", data={"csrf_token": token, "count": "9"}
    )
    assert refused.status_code == 400 and "<html" in refused.text
    no_token = await room.console.post(f"/console/classes/{room.id}/teams", data={"count": "3"})
    assert no_token.status_code == 403
    assert len(teams(room.server, room.id)) == 2


BAD_CHANGES = [
    ("/teams", {"count": "1"}, 400, BAD_COUNT),
    ("/teams", {"count": "9"}, 400, BAD_COUNT),
    ("/teams", {"count": "two"}, 400, BAD_COUNT),
    ("/teams", {"name": ["Solo"]}, 400, BAD_COUNT),
    ("/teams", {"name": [f"T{i}" for i in range(9)]}, 400, BAD_COUNT),
    ("/teams", {"name": ["Sharks", "sharks"]}, 400, SAME_NAME),
    ("/teams", {"name": ["Sharks", "S" * 25]}, 400, BAD_NAME),
    ("/teams", {"template": "999"}, 400, UNKNOWN_TEMPLATE),
    ("/team-templates", {"template_name": " "}, 400, BAD_TEMPLATE_NAME),
    ("/team-templates", {"template_name": "x" * 41}, 400, BAD_TEMPLATE_NAME),
    ("/team-mode", {"team_mode": "median"}, 400, BAD_MODE),
    ("/team-mode", {"team_mode": "best_n", "best_n": "0"}, 400, BAD_BEST_N),
    ("/team-mode", {"team_mode": "best_n", "best_n": "many"}, 400, BAD_BEST_N),
    ("/participants/{robin}/rename", {"nickname": "Sam"}, 409, "How about Sam2?"),
    ("/participants/{robin}/rename", {"nickname": "x" * 25}, 400, LONG_NICKNAME),
    ("/participants/{robin}/move", {"team": "999"}, 400, UNKNOWN_TEAM),
    ("/participants/{robin}/move", {"team": "{other_team}"}, 400, UNKNOWN_TEAM),
]


@pytest.mark.parametrize(
    ("path", "fields", "status", "message"),
    BAD_CHANGES,
    ids=[f"{path.rsplit('/', 1)[-1]}-{i}" for i, (path, *_) in enumerate(BAD_CHANGES)],
)
async def test_a_bad_change_is_refused_and_changes_nothing(
    room: Room, path: str, fields: dict[str, Any], status: int, message: str
) -> None:
    await room.open(teams=2)
    assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
    assert (await join_as(room.phone(), room.code, "Sam")).status_code == 303
    other = await open_class(room.console)
    await console_post(room.console, other, "/teams", count="2")
    names = {
        "robin": str(people(room.server)[0][0]),
        "other_team": str(teams_of(room.server, other)[0]),
    }
    fields = {
        key: value.format(**names) if isinstance(value, str) else value
        for key, value in fields.items()
    }
    before = snapshot(room.server)
    answer = await console_post(room.console, room.id, path.format(**names), **fields)
    assert answer.status_code == status
    assert shown(message) in answer.text and 'role="alert"' in answer.text
    assert snapshot(room.server) == before


async def test_teams_stay_as_they_are_once_the_class_has_started(room: Room) -> None:
    await room.open(teams=2)
    assert (await command(room.console, room.id, "start")).status_code == 200
    before = snapshot(room.server)
    answer = await console_post(room.console, room.id, "/teams", count="4")
    assert answer.status_code == 409 and shown(TEAMS_SET) in answer.text
    assert snapshot(room.server) == before


async def test_an_unknown_participant_is_a_404(room: Room) -> None:
    await room.open(teams=2)
    other = await open_class(room.console)
    assert (
        await join_as(room.phone(), await join_code(room.console, other), "Elsewhere")
    ).status_code == 303
    elsewhere = people(room.server)[0][0]
    before = snapshot(room.server)
    for pid in (999_999, elsewhere):
        for action, fields in (("rename", {"nickname": "X"}), ("move", {}), ("remove", {})):
            answer = await console_post(
                room.console, room.id, f"/participants/{pid}/{action}", **fields
            )
            assert answer.status_code == 404
    assert snapshot(room.server) == before


async def test_another_instructors_class_is_not_found(room: Room, migrated_url: str) -> None:
    await room.open(teams=2)
    assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
    ((pid, *_),) = people(room.server)
    engine = make_engine(migrated_url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, OTHER_EMAIL, OTHER_PASSWORD, "Other")
    await engine.dispose()
    async with httpx.AsyncClient(base_url=room.server.base_url) as intruder:
        await sign_in(intruder, OTHER_EMAIL, OTHER_PASSWORD)
        assert (await intruder.get(f"/console/classes/{room.id}/roster")).status_code == 404
        token = await csrf(intruder, "/console")
        before = snapshot(room.server)
        for path, fields in (
            ("/teams", {"count": "3"}),
            ("/team-mode", {"team_mode": "average"}),
            ("/joining", {"locked": "1"}),
            ("/team-templates", {"template_name": "Stolen"}),
            (f"/participants/{pid}/rename", {"nickname": "Pwned"}),
            (f"/participants/{pid}/remove", {}),
        ):
            answer = await intruder.post(
                f"/console/classes/{room.id}{path}",
                data={"csrf_token": token, **fields},
                headers={"HX-Request": "true"},
            )
            assert answer.status_code == 404, path
        assert snapshot(room.server) == before
    async with httpx.AsyncClient(base_url=room.server.base_url) as nobody:
        answer = await nobody.get(f"/console/classes/{room.id}/roster")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
