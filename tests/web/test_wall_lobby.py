"""The wall display's lobby: how many have joined, in all and by team.

The display page shows the counts as it is served; every change of the roster (a join,
a move, a removal) then reaches its socket as a `roster` message with each team's
count and look, so the wall keeps up without a reload.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.web.test_joining import Room, console_post, join_as, people, until

TEAM_COUNT = re.compile(r'wall-joined-name">([^<]+)</span> <strong>(\d+)</strong>')


@pytest.fixture
async def room(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Room]:
    opened = Room(live_server, client)
    yield opened
    await opened.close()


def display_path(room: Room, class_id: int | None = None) -> str:
    tokens = room.server.server.config.app.state.tokens  # type: ignore[attr-defined]
    return f"/display/{class_id or room.id}?token={tokens.display(room.id)}"


async def wall_counts(room: Room) -> tuple[str, list[tuple[str, int]]]:
    page = await room.console.get(display_path(room))
    assert page.status_code == 200, page.text
    total = re.search(r"data-participant-count>(\d+)<", page.text)
    assert total
    return total.group(1), [(name, int(n)) for name, n in TEAM_COUNT.findall(page.text)]


def counts(message: dict[str, Any]) -> list[tuple[str, int]]:
    return [(team["name"], team["count"]) for team in message["teams"]]


async def test_the_lobby_counts_who_joined_each_team(room: Room) -> None:
    await room.open(teams=2)
    assert await wall_counts(room) == ("0", [("Team Blue", 0), ("Team Orange", 0)])

    url = f"{room.server.ws_url}{display_path(room).replace('/display/', '/ws/classes/')}"
    async with websockets.connect(url) as wall:
        await until(wall, "snapshot")
        assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
        message = await until(wall, "roster")
        assert message["count"] == 1
        assert counts(message) == [("Team Blue", 1), ("Team Orange", 0)]
        blue, orange = message["teams"]
        assert (blue["letter"], blue["pattern"], orange["letter"]) == ("A", "stripes", "B")
        assert blue["colour"].startswith("#")

        assert (await join_as(room.phone(), room.code, "Sam")).status_code == 303
        assert counts(await until(wall, "roster")) == [("Team Blue", 1), ("Team Orange", 1)]

        (robin, *_), _ = people(room.server)
        answer = await console_post(
            room.console, room.id, f"/participants/{robin}/move", team=str(orange["id"])
        )
        assert answer.status_code == 200, answer.text
        assert counts(await until(wall, "roster")) == [("Team Blue", 0), ("Team Orange", 2)]
        answer = await console_post(room.console, room.id, f"/participants/{robin}/remove")
        assert answer.status_code == 200, answer.text
        message = await until(wall, "roster")
        assert (message["count"], counts(message)) == (1, [("Team Blue", 0), ("Team Orange", 1)])
    assert await wall_counts(room) == ("1", [("Team Blue", 0), ("Team Orange", 1)])


async def test_without_teams_the_lobby_counts_everyone(room: Room) -> None:
    await room.open()
    assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
    assert await wall_counts(room) == ("1", [])


async def test_a_display_link_for_another_class_shows_no_counts(room: Room) -> None:
    await room.open(teams=2)
    assert (await join_as(room.phone(), room.code, "Robin")).status_code == 303
    page = await room.console.get(display_path(room, class_id=room.id + 1))
    assert page.status_code == 403
    assert "Team Blue" not in page.text and "data-participant-count" not in page.text
