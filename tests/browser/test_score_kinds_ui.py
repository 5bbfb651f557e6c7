"""Every other score kind's input on the phone, in Debian's Chromium.

An AMRAP (rounds + reps), a lift (load) and an effort rating (RPE) follow each
other; the phone uses the input each one shows, and the stored inputs are
exactly what was tapped, each of its segment's kind.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from classroom.db.routines import RoutineSource
from tests.browser.conftest import PHONE, NewPage, live
from tests.browser.test_first_class import join as join_on_phone
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, join_code, open_class, sign_in

pytestmark = pytest.mark.browser

ROUTINE = """\
title: Three kinds
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: amrap
    name: Cindy
    duration: 5m
    moves: [{name: Pull-ups, reps: 5}, {name: Push-ups, reps: 10}]
  - type: work
    name: Deadlift
    duration: 5m
    exercise: {name: Deadlift}
    score: load
  - type: work
    name: How hard
    duration: 5m
    exercise: {name: Rate it}
    score: effort
"""


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("kinds", "Three kinds", "yaml", ROUTINE)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


def stored(server: LiveServer) -> list[tuple[int, str, int, int]]:
    path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT segment_index, kind, value, rounds FROM scores ORDER BY id")
        return [(int(s), str(k), int(v), int(r)) for s, k, v, r in rows]


async def settled(phone: Page) -> None:
    await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")


async def test_rounds_and_reps_a_load_and_an_effort_each_go_in_as_their_kind(
    server: LiveServer, new_page: NewPage
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        phone = await new_page(server, PHONE)
        await join_on_phone(phone, code, "Kim")
        await expect(phone).to_have_url(re.compile(rf"/play/{class_id}$"))
        await live(phone)
        assert (await command(console, class_id, "start")).status_code == 200

        # AMRAP: two rounds, then 3 reps of the next one.
        round_button = phone.get_by_role("button", name="Add one round")
        await expect(round_button).to_be_visible()
        await expect(phone.get_by_role("button", name="Add one rep")).to_be_hidden()
        await round_button.tap()
        await round_button.tap()
        more = phone.get_by_role("button", name="One rep more")
        await more.tap()
        await more.tap()  # 1 + 2 = 3
        await phone.get_by_role("button", name="Log reps").tap()
        await settled(phone)

        # A lift: 5 kg to start, three steps of 5 up: 20 kg.
        assert (await command(console, class_id, "next")).status_code == 200
        heavier = phone.get_by_role("button", name="5 kg more")
        await expect(heavier).to_be_visible()
        await expect(round_button).to_be_hidden()
        for _ in range(3):
            await heavier.tap()
        await phone.get_by_role("button", name="Log weight").tap()
        await settled(phone)

        # Effort: RPE 7.
        assert (await command(console, class_id, "next")).status_code == 200
        seven = phone.get_by_role("button", name="RPE 7")
        await expect(seven).to_be_visible()
        await seven.tap()
        await settled(phone)
        await expect(seven).to_have_attribute("aria-pressed", "true")

    assert stored(server) == [
        (0, "rounds_reps", 0, 1),
        (0, "rounds_reps", 0, 1),
        (0, "rounds_reps", 3, 0),
        (1, "load", 20, 0),
        (2, "effort", 7, 0),
    ]
