"""Reps tapped while the server is down survive a reload and count once each.

``classroom serve`` runs as a process of its own (as in tests/live/test_restart.py)
so it can be killed and started again on the same SQLite database. A phone taps
+1 sixty times while the server is down: the taps wait in localStorage, the page
goes away and comes back after the restart, resends them, and the database
holds exactly sixty scores. Sending the whole queue again (acknowledged items
copied back into localStorage, then a reload) stores nothing more: scores are
deduplicated by their client id.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from classroom.db.routines import RoutineSource
from tests.browser.conftest import PHONE, NewPage, live
from tests.browser.test_first_class import join as join_on_phone
from tests.helpers import command, join_code, open_class, sign_in
from tests.processes import Server, serving

pytestmark = pytest.mark.browser

LONG_REPS = """\
title: Long reps
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Squats
    duration: 120
    exercise: {name: Squats}
    score: reps
  - type: rest
    name: Rest
    duration: 10
"""
TAPS = 60  # more than a socket may send at once: the queue goes out paced
SENT_WITHIN_MS = 30_000  # at 8 a second, plus a retry round for anything dropped


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serving(tmp_path, RoutineSource("long-reps", "Long reps", "yaml", LONG_REPS))


def scores_of(server: Server, participant_id: int) -> list[tuple[str, int, int]]:
    path = server.env["CLASSROOM_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT client_id, segment_index, value FROM scores WHERE participant_id = ?",
            (participant_id,),
        )
        return list(rows)


async def stored(context: BrowserContext, origin: str, key: str) -> Any:
    """A localStorage item of ``origin``, read from the browser's storage (no page needed)."""
    state = await context.storage_state()
    for entry in state["origins"]:
        if entry["origin"] == origin:
            for item in entry["localStorage"]:
                if item["name"] == key:
                    return json.loads(item["value"])
    return None


async def joined_phone(
    server: Server, new_page: NewPage, console: httpx.AsyncClient
) -> tuple[Page, int, int]:
    """A class opened on the console and a phone that joined it: (phone, class, participant)."""
    await sign_in(console)
    class_id = await open_class(console)
    code = await join_code(console, class_id)
    phone = await new_page(server, PHONE)  # type: ignore[arg-type]
    await join_on_phone(phone, code, "Alex")
    await expect(phone).to_have_url(re.compile(rf"/play/{class_id}$"))
    await live(phone)
    participant = await phone.locator("[data-participant]").get_attribute("data-participant")
    return phone, class_id, int(participant or 0)


async def test_reps_tapped_offline_survive_a_reload_and_count_once(
    server: Server, new_page: NewPage
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        phone, class_id, participant_id = await joined_phone(server, new_page, console)
        outbox_key = f"classroom.outbox.{class_id}.{participant_id}"
        scored_key = f"classroom.scored.{class_id}.{participant_id}"

        assert (await command(console, class_id, "start")).status_code == 200
    button = phone.locator("[data-score-button]")
    await expect(phone.locator('[data-field="segment"]')).to_have_text("Squats")
    await expect(button).to_be_visible()

    server.kill()
    await expect(phone.locator("[data-connection]")).not_to_have_attribute(
        "data-connection", "live", timeout=10_000
    )
    for _ in range(TAPS):
        await button.tap()
    await expect(phone.locator("[data-my-score]")).to_have_text(str(TAPS))
    context = phone.context
    queued = await stored(context, server.base_url, outbox_key)
    assert [(item["type"], item["segment"], item["value"]) for item in queued] == [
        ("score", 0, 1)
    ] * TAPS
    assert len({item["id"] for item in queued}) == TAPS

    # The page goes away while the server is down (a reload would not load), and the queue stays.
    await phone.goto("about:blank")
    assert await stored(context, server.base_url, outbox_key) == queued

    server.start()  # the class runs on (policy "continue"): still in its 120 s first segment
    await phone.goto(f"/play/{class_id}")
    await live(phone)
    await expect(phone.locator("[data-my-score]")).to_have_text(str(TAPS))
    await phone.wait_for_function(
        "(key) => JSON.parse(localStorage.getItem(key) || '[]').length === 0",
        arg=outbox_key,
        timeout=SENT_WITHIN_MS,
    )
    rows = scores_of(server, participant_id)
    assert sorted(rows) == sorted((item["id"], 0, 1) for item in queued)
    assert await stored(context, server.base_url, scored_key) == TAPS

    # The same taps again, as if acknowledged ones had never been forgotten: no more stored.
    await phone.evaluate(
        "([key, items]) => localStorage.setItem(key, JSON.stringify(items))", [outbox_key, queued]
    )
    await phone.reload()
    await live(phone)
    await phone.wait_for_function(
        "(key) => JSON.parse(localStorage.getItem(key) || '[]').length === 0",
        arg=outbox_key,
        timeout=SENT_WITHIN_MS,
    )
    await expect(phone.locator("[data-my-score]")).to_have_text(str(TAPS))
    assert await stored(context, server.base_url, scored_key) == TAPS
    assert sorted(scores_of(server, participant_id)) == sorted(rows)


SHORT_THEN_LONG = """\
title: Short then long
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Squats
    duration: 6
    exercise: {name: Squats}
    score: reps
  - type: work
    name: Lunges
    duration: 120
    exercise: {name: Lunges}
    score: reps
"""
OFFLINE_TAPS = 12


@pytest.fixture
def short_server(tmp_path: Path) -> Iterator[Server]:
    source = RoutineSource("short-then-long", "Short then long", "yaml", SHORT_THEN_LONG)
    yield from serving(tmp_path, source)


async def test_reps_tapped_while_the_server_is_down_count_after_their_segment_is_over(
    short_server: Server, new_page: NewPage
) -> None:
    """The server comes back after the segment the reps were tapped in has ended."""
    server = short_server
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        phone, class_id, participant_id = await joined_phone(server, new_page, console)
        outbox_key = f"classroom.outbox.{class_id}.{participant_id}"
        assert (await command(console, class_id, "start")).status_code == 200
    button = phone.locator("[data-score-button]")
    await expect(phone.locator('[data-field="segment"]')).to_have_text("Squats")

    server.kill()
    for _ in range(OFFLINE_TAPS):
        await button.tap()
    await expect(phone.locator("[data-my-score]")).to_have_text(str(OFFLINE_TAPS))
    await phone.wait_for_timeout(6_000)  # Squats is over while the server is down
    server.start()  # policy "continue": the class is in Lunges now

    await live(phone)  # the page reconnects by itself and sends its queue
    await expect(phone.locator('[data-field="segment"]')).to_have_text("Lunges")
    await phone.wait_for_function(
        "(key) => JSON.parse(localStorage.getItem(key) || '[]').length === 0",
        arg=outbox_key,
        timeout=SENT_WITHIN_MS,
    )
    rows = scores_of(server, participant_id)
    assert len(rows) == OFFLINE_TAPS and {(segment, value) for _, segment, value in rows} == {
        (0, 1)
    }
    # The phone's results count them, in the segment they were tapped in.
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        assert (await command(console, class_id, "finish")).status_code == 200
    await phone.goto(f"/play/{class_id}/results")
    squats = phone.locator('[data-segment="0"] tr.is-you [data-result]')
    await expect(squats).to_have_text(f"{OFFLINE_TAPS} reps")


KEPT = """(id) => {
  const screen = window.classroomScreen;
  screen.outbox.items.push({ type: "score", id, segment: 0, kind: "reps", value: 1 });
  screen.receive({ type: "error", code: "unavailable", id, message: "try again" });
  const kept = screen.outbox.items.some((item) => item.id === id);
  screen.receive({ type: "error", code: "rejected", id, message: "that segment is over" });
  const dropped = !screen.outbox.items.some((item) => item.id === id);
  return { kept, dropped };
}"""


async def test_an_input_the_class_could_not_take_just_now_stays_queued(
    server: Server, new_page: NewPage
) -> None:
    # `unavailable` (the class is moving to another process, say): the phone sends it
    # again later. `rejected`: it never will.
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        phone = await new_page(server, PHONE)
        await join_on_phone(phone, code, "Kim")
        await expect(phone).to_have_url(re.compile(rf"/play/{class_id}$"))
        await live(phone)
        assert await phone.evaluate(KEPT, "abcdefgh12345678") == {"kept": True, "dropped": True}
