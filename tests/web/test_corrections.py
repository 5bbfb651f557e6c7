"""The instructor's corrections: recorded with who and when, moving the boards, refusing bad input.

A real server on a free port with a real SQLite file; scores come from a
phone's real WebSocket, boards are read from a display's and the console's.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from markupsafe import escape

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.routines import RoutineSource
from classroom.web import corrections
from classroom.web.auth import create_instructor
from classroom.web.csrf import CSRF_FAILED
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import (
    Message,
    command,
    csrf,
    join,
    join_code,
    open_class,
    sign_in,
    until,
)

SCORED = """\
title: Scored
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Squats
    duration: 120
    exercise: {name: Squats}
    score: reps
  - type: amrap
    name: Cindy
    duration: 60
    moves: [{name: Push-ups, reps: 10}]
  - type: rest
    name: Rest
    duration: 10
  - type: for_time
    name: Sprint
    cap: 5m
    moves: [{name: Run, reps: 400}]
"""
REPS, AMRAP, REST, FOR_TIME = 0, 1, 2, 3


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("scored", "Scored", "yaml", SCORED)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


def database(server: LiveServer) -> str:
    return server.settings.database_url.removeprefix("sqlite+aiosqlite:///")


def corrections_in(server: LiveServer) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database(server)) as db:
        return list(
            db.execute(
                "SELECT participant_id, segment_index, value, rounds, deleted, previous,"
                " instructor_id, corrected_at FROM score_corrections ORDER BY id"
            )
        )


async def board_where(ws: websockets.ClientConnection, check: Callable[[Message], bool]) -> Message:
    """The first leaderboard on ``ws`` that passes ``check``."""
    async with asyncio.timeout(8):
        while True:
            board = await until(ws, "leaderboard")
            if board["class"] is not None and check(board):
                return board


def segment_row(board: Message, name: str) -> Message | None:
    segment = board["segment"]
    if segment is None:
        return None
    return next((row for row in segment["people"] if row["name"] == name), None)


class Running:
    """A running class of the Scored routine, with its console and one phone (Robin)."""

    def __init__(self, server: LiveServer, console: httpx.AsyncClient) -> None:
        self.server = server
        self.console = console
        self.id = 0
        self.robin = 0
        self.phone_cookie = ""

    async def open(self) -> Running:
        await sign_in(self.console)
        self.id = await open_class(self.console)
        code = await join_code(self.console, self.id)
        async with httpx.AsyncClient(base_url=self.server.base_url) as phone:
            assert (await join(phone, code, "Robin")).status_code == 303
            self.phone_cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
        with sqlite3.connect(database(self.server)) as db:
            (self.robin,) = db.execute(
                "SELECT id FROM participants WHERE class_id = ?", (self.id,)
            ).fetchone()
        assert (await command(self.console, self.id, "start")).status_code == 200
        return self

    def url(self, **params: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.server.ws_url}/ws/classes/{self.id}" + (f"?{query}" if query else "")

    def phone(self) -> websockets.connect:
        return websockets.connect(self.url(), additional_headers={"Cookie": self.phone_cookie})

    def display(self) -> websockets.connect:
        tokens = self.server.server.config.app.state.tokens  # type: ignore[attr-defined]
        return websockets.connect(self.url(token=tokens.display(self.id)))

    def instructor(self) -> websockets.connect:
        cookie = "; ".join(f"{k}={v}" for k, v in self.console.cookies.items())
        return websockets.connect(self.url(), additional_headers={"Cookie": cookie})

    async def tap(self, count: int, value: int = 1) -> None:
        async with self.phone() as ws:
            await until(ws, "snapshot")
            for i in range(count):
                message = {
                    "type": "score",
                    "id": f"tap{i}-{value}",
                    "segment": REPS,
                    "kind": "reps",
                    "value": value,
                }
                await ws.send(json.dumps(message))
                assert (await until(ws, "ack"))["duplicate"] is False

    async def correct(self, **fields: object) -> httpx.Response:
        token = await csrf(self.console, f"/console/classes/{self.id}/scores")
        data = {"csrf_token": token, "participant_id": self.robin, "segment_index": REPS, **fields}
        return await self.console.post(
            f"/console/classes/{self.id}/scores/corrections",
            data={k: str(v) for k, v in data.items()},
        )

    async def sheet(self) -> str:
        page = await self.console.get(f"/console/classes/{self.id}/scores")
        assert page.status_code == 200
        return page.text

    async def shown_result(self, segment: int = REPS) -> str | None:
        html = await self.sheet()
        table = re.search(rf'data-segment="{segment}">(.*?)</table>', html, re.S)
        if table is None:
            return None
        cell = re.search(
            rf'data-participant="{self.robin}">.*?<td data-result>([^<]*)</td>',
            table.group(1),
            re.S,
        )
        return None if cell is None else cell.group(1)


@pytest.fixture
async def running(server: LiveServer) -> AsyncIterator[Running]:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        yield await Running(server, console).open()


async def test_a_correction_is_recorded_with_who_and_when_and_moves_every_board(
    running: Running,
) -> None:
    await running.tap(3)
    async with running.display() as display, running.instructor() as console:
        await until(display, "snapshot")
        await until(console, "snapshot")
        before = time.time()
        response = await running.correct(value=10)
        after = time.time()
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/classes/{running.id}/scores"
        public = await board_where(
            display, lambda b: (segment_row(b, "Robin") or {}).get("shown") == "10 reps"
        )
        private = await board_where(
            console, lambda b: (segment_row(b, "Robin") or {}).get("shown") == "10 reps"
        )
    assert public["class"]["people"][0]["value"] == 10
    assert private["class"]["people"][0]["name"] == "Robin"

    ((pid, segment, value, rounds, deleted, previous, instructor_id, at),) = corrections_in(
        running.server
    )
    assert (pid, segment, value, rounds, deleted, previous) == (
        running.robin,
        REPS,
        10,
        0,
        0,
        "3 reps",
    )
    with sqlite3.connect(database(running.server)) as db:
        (coach,) = db.execute(
            "SELECT id FROM instructors WHERE email = 'coach@example.com'"
        ).fetchone()
    assert instructor_id == coach
    stamp = datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
    assert before - 2 <= stamp <= after + 2

    sheet = await running.sheet()
    assert await running.shown_result() == "10 reps"
    audit = re.search(r"<table class=\"score-table\" data-audit>(.*?)</table>", sheet, re.S)
    assert audit is not None
    cells = re.findall(r"<td>(.*?)</td>", audit.group(1), re.S)
    assert cells[1:] == ["Coach", "Robin", "1. Squats", "3 reps", "10 reps"]
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', cells[0])


async def test_deleting_a_result_takes_it_off_the_board_and_is_audited(running: Running) -> None:
    await running.tap(2)
    async with running.display() as display:
        await until(display, "snapshot")
        assert (await running.correct(action="delete")).status_code == 303
        board = await board_where(display, lambda b: segment_row(b, "Robin") is None)
    assert board["class"]["people"] == []
    ((_, _, _, _, deleted, previous, _, _),) = corrections_in(running.server)
    assert (deleted, previous) == (1, "2 reps")
    assert await running.shown_result() is None
    assert "deleted" in await running.sheet()


async def test_rounds_and_reps_and_times_are_corrected_in_their_own_shape(
    running: Running,
) -> None:
    assert (await running.correct(segment_index=AMRAP, rounds=12, value=5)).status_code == 303
    assert (await running.correct(segment_index=FOR_TIME, value="4:07")).status_code == 303
    assert (await running.correct(segment_index=FOR_TIME, value="1:02:30")).status_code == 303
    assert [row[1:5] for row in corrections_in(running.server)] == [
        (AMRAP, 12, 5, 0),
        (FOR_TIME, 247_000, 0, 0),
        (FOR_TIME, 3_750_000, 0, 0),
    ]
    assert await running.shown_result(AMRAP) == "12 + 5"
    assert await running.shown_result(FOR_TIME) == "62:30"
    assert [row[5] for row in corrections_in(running.server)] == ["", "", "4:07"]


BAD = [
    pytest.param(
        {"participant_id": 99_999, "value": 5}, corrections.UNKNOWN_PARTICIPANT, id="unknown"
    ),
    pytest.param(
        {"participant_id": "Robin", "value": 5}, corrections.UNKNOWN_PARTICIPANT, id="name"
    ),
    pytest.param({"segment_index": REST, "value": 5}, corrections.NOT_SCORED, id="rest"),
    pytest.param({"segment_index": 99, "value": 5}, corrections.NOT_SCORED, id="no-segment"),
    pytest.param({"segment_index": "-1", "value": 5}, corrections.NOT_SCORED, id="minus-one"),
    pytest.param({"value": -5}, "Reps can't be negative.", id="negative"),
    pytest.param({"value": 10**9}, "Reps can be at most 10,000.", id="absurd"),
    pytest.param({"value": "12.5"}, "Reps must be a whole number.", id="fraction"),
    pytest.param({"value": "ten"}, "Reps must be a whole number.", id="words"),
    pytest.param({"value": ""}, "Reps must be a whole number.", id="empty"),
    pytest.param({"value": 5, "rounds": 2}, "A reps result has no rounds.", id="rounds-on-reps"),
    pytest.param({"segment_index": FOR_TIME, "value": "4:99"}, corrections.BAD_TIME, id="time"),
    pytest.param({"segment_index": FOR_TIME, "value": "247"}, corrections.BAD_TIME, id="seconds"),
    pytest.param({"segment_index": FOR_TIME, "value": "0:00"}, corrections.TIME_RANGE, id="zero"),
    pytest.param(
        {"segment_index": AMRAP, "rounds": 0, "value": 0}, corrections.EMPTY_ROUNDS, id="amrap-0"
    ),
    pytest.param(
        {"segment_index": AMRAP, "rounds": 101, "value": 0},
        "Rounds can be at most 100.",
        id="rounds",
    ),
    pytest.param(
        {"action": "delete", "segment_index": AMRAP}, corrections.NOTHING_TO_DELETE, id="none"
    ),
    pytest.param({"action": "erase", "value": 5}, corrections.BAD_ACTION, id="action"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
async def test_a_bad_correction_is_refused_and_changes_nothing(
    running: Running, fields: dict[str, object], message: str
) -> None:
    await running.tap(3)
    response = await running.correct(**fields)
    assert response.status_code == 400
    assert f"data-score-error>{escape(message)}</p>" in response.text
    assert corrections_in(running.server) == []
    assert await running.shown_result() == "3 reps"


async def test_corrections_need_the_forms_csrf_token(running: Running) -> None:
    await running.tap(1)
    response = await running.console.post(
        f"/console/classes/{running.id}/scores/corrections",
        data={"participant_id": str(running.robin), "segment_index": "0", "value": "9"},
    )
    assert response.status_code == 403
    assert CSRF_FAILED.split(".")[0] in response.text
    assert corrections_in(running.server) == []


async def test_another_instructor_can_neither_see_nor_correct_the_class(
    running: Running,
) -> None:
    await running.tap(1)
    engine = make_engine(running.server.settings.database_url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, "other@example.com", "another long password", "Other")
    await engine.dispose()
    async with httpx.AsyncClient(base_url=running.server.base_url) as other:
        await sign_in(other, "other@example.com", "another long password")
        assert (await other.get(f"/console/classes/{running.id}/scores")).status_code == 404
        token = await csrf(other, "/console")
        response = await other.post(
            f"/console/classes/{running.id}/scores/corrections",
            data={
                "csrf_token": token,
                "participant_id": str(running.robin),
                "segment_index": "0",
                "value": "9",
            },
        )
        assert response.status_code == 404
        flagged = await other.get(f"/console/classes/{running.id}/scores/flagged")
        assert flagged.status_code == 404
    assert corrections_in(running.server) == []
    assert await running.shown_result() == "1 reps"


async def test_implausible_inputs_are_flagged_to_the_instructor(running: Running) -> None:
    assert (
        "Nothing flagged."
        in (await running.console.get(f"/console/classes/{running.id}/scores/flagged")).text
    )
    await running.tap(1, value=200)  # 200 reps in the first second
    fragment = await running.console.get(f"/console/classes/{running.id}/scores/flagged")
    assert fragment.status_code == 200
    assert 'data-flagged-count="1"' in fragment.text
    assert re.search(r"<strong>Robin</strong>, [^:]+:\s*200 reps at 0:0", fragment.text)
    assert "result now 200 reps" in fragment.text
    assert "200 reps at 0:0" in await running.sheet()
    # The instructor's call: correct it; the result is decided, and the flag goes.
    assert (await running.correct(value=20)).status_code == 303
    fragment = await running.console.get(f"/console/classes/{running.id}/scores/flagged")
    assert "Nothing flagged." in fragment.text
    assert await running.shown_result() == "20 reps"


async def test_a_burst_of_flags_is_one_line_and_dismissing_it_clears_it_for_good(
    running: Running,
) -> None:
    await running.tap(6, value=200)  # a burst, each input implausible
    flagged = f"/console/classes/{running.id}/scores/flagged"
    fragment = (await running.console.get(flagged)).text
    assert 'data-flagged-count="1"' in fragment
    assert "6 inputs flagged, the last 200 reps at 0:0" in fragment
    # Bad dismissals change nothing.
    for fields in ({"participant_id": "x"}, {"segment_index": "99"}, {"participant_id": "999"}):
        answer = await running.correct(action="dismiss", **fields)
        assert answer.status_code == 400
    assert 'data-flagged-count="1"' in (await running.console.get(flagged)).text
    assert (await running.correct(action="dismiss")).status_code == 303
    assert "Nothing flagged." in (await running.console.get(flagged)).text
    # Stored: a book read again from the database has them unflagged too.
    keeper = running.server.state.registry.scores
    keeper.forget(running.id)
    assert "Nothing flagged." in (await running.console.get(flagged)).text


async def test_the_sheet_and_the_forms_ask_for_a_signed_in_instructor(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.base_url) as stranger:
        page = await stranger.get(f"/console/classes/{running.id}/scores")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
