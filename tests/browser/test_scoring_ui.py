"""The phone's score inputs and the wall's live board, in Debian's Chromium.

A phone taps +1 three times and Undo once: the wall display shows 2. In the For
Time segment that follows, the phone's Finish shows a time, on the phone and on
the wall. A participant who hid their name is "Athlete N" on the wall, and their
nickname is nowhere in the display page's HTML.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from playwright.async_api import expect

from classroom.db.routines import RoutineSource
from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_first_class import join as join_on_phone
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, csrf, join_code, open_class, sign_in

pytestmark = pytest.mark.browser

ROUTINE = """\
title: Reps then a sprint
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Squats
    duration: 120
    exercise: {name: Squats}
    score: reps
  - type: for_time
    name: Sprint
    cap: 5m
    moves: [{name: Run, reps: 400}]
"""
SECRET_NAME = "Secret Sam"


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(
        seed(migrated_url, [RoutineSource("sprint", "Reps then a sprint", "yaml", ROUTINE)])
    )
    yield from run_server(settings_for(migrated_url, tmp_path))


def participant(server: LiveServer, nickname: str) -> tuple[int, int, bool]:
    path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        pid, number, hidden = db.execute(
            "SELECT id, number, hidden FROM participants WHERE nickname = ?", (nickname,)
        ).fetchone()
    return int(pid), int(number), bool(hidden)


async def test_a_phone_scores_and_the_wall_board_follows(
    server: LiveServer, new_page: NewPage
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        tokens = server.server.config.app.state.tokens  # type: ignore[attr-defined]

        # Sam joins, hiding their name from public boards.
        async with httpx.AsyncClient(base_url=server.base_url) as sam:
            token = await csrf(sam, "/join")
            joined = await sam.post(
                "/join",
                data={
                    "csrf_token": token,
                    "code": code,
                    "nickname": SECRET_NAME,
                    "level": "standard",
                    "hidden": "1",
                },
            )
            assert joined.status_code == 303, joined.text
            sam_cookie = "; ".join(f"{k}={v}" for k, v in sam.cookies.items())
        _, sam_number, sam_hidden = participant(server, SECRET_NAME)
        assert sam_hidden

        wall = await new_page(server, WALL)
        await wall.goto(f"/display/{class_id}?token={tokens.display(class_id)}")
        await live(wall)

        phone = await new_page(server, PHONE)
        await join_on_phone(phone, code, "Alex")
        await expect(phone).to_have_url(re.compile(rf"/play/{class_id}$"))
        await live(phone)

        assert (await command(console, class_id, "start")).status_code == 200
        plus = phone.get_by_role("button", name="Add one rep")
        undo = phone.get_by_role("button", name="Undo last rep")
        await expect(plus).to_be_visible()
        await expect(undo).to_be_disabled()
        for _ in range(3):
            await plus.tap()
        await expect(undo).to_be_enabled()
        await undo.tap()
        await expect(phone.locator("[data-my-score]")).to_have_text("2")
        await phone.wait_for_function(
            "() => window.classroomScreen.outbox.items.length === 0"
        )  # every input acknowledged

        board = wall.locator("[data-people-board]")
        alex = board.locator(".board-row", has_text="Alex")
        await expect(alex.locator(".board-value")).to_have_text("2 reps")
        await expect(alex.locator(".board-rank")).to_have_text("1")
        await expect(phone.locator("[data-my-board]")).to_have_text("On the board: 1st · 2 reps")

        # Sam scores 5 over a socket of their own: the wall ranks them, by number only.
        async with websockets.connect(
            f"{server.ws_url}/ws/classes/{class_id}", additional_headers={"Cookie": sam_cookie}
        ) as ws:
            for i in range(5):
                await ws.send(
                    json.dumps(
                        {"type": "score", "id": f"sam{i}", "segment": 0, "kind": "reps", "value": 1}
                    )
                )
            acks = 0
            async with asyncio.timeout(8):
                while acks < 5:
                    message = json.loads(await ws.recv())
                    acks += message["type"] == "ack"
        athlete = f"Athlete {sam_number}"
        top = board.locator(".board-row").first
        await expect(top.locator(".board-name")).to_have_text(athlete)
        await expect(top.locator(".board-value")).to_have_text("5 reps")
        await expect(alex.locator(".board-rank")).to_have_text("2")
        await expect(alex.locator(".board-gap")).to_have_text("3 reps behind")
        html = await wall.content()
        assert athlete in html
        assert SECRET_NAME not in html
        # Reloaded mid-class, the wall draws the board at once, still without the name.
        await wall.reload()
        await expect(wall.locator("[data-people-board] .board-row").first).to_contain_text(athlete)
        assert SECRET_NAME not in await wall.content()
        # The console's board is the instructor's: every name.
        tablet = await new_page(server, TABLET)
        await tablet.context.add_cookies(
            [{"name": k, "value": v, "url": server.base_url} for k, v in console.cookies.items()]
        )
        await tablet.goto(f"/console/classes/{class_id}")
        await live(tablet)
        await expect(tablet.locator("[data-people-board] .board-row").first).to_contain_text(
            SECRET_NAME
        )
        await expect(tablet.locator("[data-flagged-slot]")).to_contain_text("Nothing flagged.")

        # For Time: Finish has no value (the server takes the time), and works once.
        assert (await command(console, class_id, "next")).status_code == 200
        finish = phone.get_by_role("button", name="Finish")
        await expect(finish).to_be_visible()
        await expect(plus).to_be_hidden()
        await phone.wait_for_timeout(1200)
        await finish.tap()
        await expect(phone.get_by_role("button", name="Finished ✓")).to_be_disabled()
        await expect(phone.locator("[data-my-score]")).to_have_text(re.compile(r"^0:0[1-9]$"))
        await expect(
            wall.locator("[data-people-board] .board-row", has_text="Alex").locator(".board-value")
        ).to_have_text(re.compile(r"^0:0[1-9]$"))
        await expect(wall.locator("[data-people-title]")).to_have_text("This segment")
        assert SECRET_NAME not in await wall.content()


async def test_each_score_kind_gets_its_own_input(server: LiveServer, new_page: NewPage) -> None:
    """The division is remembered per class, and the Finish stays done after a reload."""
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        phone = await new_page(server, PHONE)
        await join_on_phone(phone, code, "Kim")
        await live(phone)
        assert (await command(console, class_id, "start")).status_code == 200
        await expect(phone.get_by_role("button", name="Add one rep")).to_be_visible()
        await phone.get_by_label("Scaled").check()
        await phone.get_by_role("button", name="Add one rep").press("Enter")  # by keyboard
        await expect(phone.locator("[data-my-score]")).to_have_text("1")
        await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
        remembered = await phone.evaluate(
            f"() => localStorage.getItem('classroom.division.{class_id}')"
        )
        assert remembered == "scaled"
        path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT kind, value, division FROM scores").fetchall() == [
                ("reps", 1, "scaled")
            ]
        await phone.reload()
        await live(phone)
        await expect(phone.get_by_label("Scaled")).to_be_checked()
        await expect(phone.locator("[data-my-score]")).to_have_text("1")

        assert (await command(console, class_id, "next")).status_code == 200
        await phone.get_by_role("button", name="Finish").tap()
        await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
        await phone.reload()
        await live(phone)
        await expect(phone.get_by_role("button", name="Finished ✓")).to_be_disabled()
        for name in ("Add one rep", "Add one round", "Log weight", "RPE 5"):
            await expect(phone.get_by_role("button", name=name)).to_be_hidden()
        box = await phone.get_by_role("button", name="Finished ✓").bounding_box()
        assert box is not None and box["height"] >= 48 and box["width"] >= 48
