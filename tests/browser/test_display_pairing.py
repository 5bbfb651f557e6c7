"""A wall display paired to a room follows it, with nobody touching it.

The display (1920x1080) opens ``/display`` and shows a pairing code; the tablet
console pairs it to a room. From then on the display is never touched again:
it finds the class opened in its room, its start, its end, and the next class
in the same room by itself, and goes back to a pairing code when revoked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Dialog, Page, expect

from classroom.db.routines import RoutineSource
from tests.browser.conftest import TABLET, WALL, NewPage
from tests.browser.test_accessibility import report, violations
from tests.browser.test_first_class import open_class, routine_entry, sign_in, start
from tests.browser.test_recovery import mark, untouched
from tests.conftest import DATA, LiveServer
from tests.processes import Server, serving

pytestmark = pytest.mark.browser

FOLLOWS_WITHIN_MS = 10_000  # the display asks every 2.5-3.5 s, then loads the page
CODE = "[data-pairing-code]"
# The gym's devices agree on a zone the server (UTC here) doesn't share, and a 24-hour clock.
PLACE: dict[str, Any] = {"locale": "en-GB", "timezone_id": "Europe/Paris"}


async def pairing_code(display: Page) -> str:
    code = (await display.locator(CODE).inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code), code
    return code


async def assert_accessible(page: Page) -> None:
    found = await violations(page)
    assert not found, report(page.url, found)


async def assert_kiosk_friendly(display: Page) -> None:
    """No cursor, no scrollbars, nothing to click; and axe finds nothing serious."""
    await assert_accessible(display)
    layout = await display.evaluate(
        """() => ({
            cursor: getComputedStyle(document.body).cursor,
            overflowX: document.documentElement.scrollWidth > innerWidth,
            overflowY: document.documentElement.scrollHeight > innerHeight,
            clickable: [...document.querySelectorAll("a, button, input, select, textarea")]
                .filter((el) => el.offsetParent !== null).length,
        })"""
    )
    assert layout == {"cursor": "none", "overflowX": False, "overflowY": False, "clickable": 0}


async def add_room(console: Page, name: str) -> None:
    await console.goto("/console/rooms")
    await console.get_by_label("New room").fill(name)
    await console.get_by_role("button", name="Add room").tap()
    await expect(console.get_by_role("status")).to_have_text("Room added.")


async def pair(console: Page, code: str, room: str, label: str) -> None:
    await console.goto("/console/rooms")
    await console.get_by_label("Pairing code").fill(code.lower())
    await console.locator('.rooms-pair select[name="room_id"]').select_option(label=room)
    await console.get_by_label("Display name").fill(label)
    await console.get_by_role("button", name="Pair display").tap()
    await expect(console.get_by_role("status")).to_contain_text("Display paired")
    await expect(console.locator(".room-display", has_text=label)).to_be_visible()


async def open_in(console: Page, room: str, starts: datetime | None = None) -> str:
    """Open a class of the first routine in ``room``; returns its join code."""
    await console.goto("/console")
    form = routine_entry(console)
    await form.locator('select[name="room_id"]').select_option(label=room)
    if starts is not None:
        await form.get_by_label("Starts at").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    return await open_class(console)


async def end_class(console: Page) -> None:
    async def confirm(dialog: Dialog) -> None:
        await dialog.accept()

    console.once("dialog", confirm)
    await console.get_by_role("button", name="End class").tap()
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "finished")


async def shows_lobby_of(display: Page, code: str) -> None:
    lobby = display.locator("[data-lobby]")
    await expect(lobby).to_be_visible(timeout=FOLLOWS_WITHIN_MS)
    await expect(lobby.locator(".join-code")).to_have_text(code)
    await expect(lobby.locator(".qr svg")).to_be_visible()


async def test_a_paired_display_follows_its_room_into_a_new_class(
    live_server: LiveServer, new_page: NewPage
) -> None:
    display = await new_page(live_server, WALL)
    await display.goto("/display")
    code = await pairing_code(display)
    await expect(display.get_by_role("heading")).to_have_text("Pair this display")
    await assert_kiosk_friendly(display)

    console = await new_page(live_server, TABLET)
    await sign_in(console)
    await add_room(console, "Studio A")
    await pair(console, code, "Studio A", "Front wall")
    welcome = display.get_by_role("heading", name="Welcome to Studio A")
    await expect(welcome).to_be_visible(timeout=FOLLOWS_WITHIN_MS)
    await expect(display.locator("[data-wall-clock]")).to_have_text(re.compile(r"\d{1,2}:\d\d"))
    await expect(display.get_by_text("No class scheduled yet.")).to_be_visible()
    await assert_kiosk_friendly(display)
    await console.goto("/console/rooms")
    await expect(console.locator(".room-display")).to_contain_text("Online")
    await assert_accessible(console)

    # A class opens in the room: its lobby, its start, its end, with nobody at the wall.
    first = await open_in(console, "Studio A")
    await shows_lobby_of(display, first)
    await expect(display.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    await start(console)
    await expect(display.locator('[data-timer] [data-field="segment"]')).to_have_text("Squats")
    await expect(display.locator("[data-lobby]")).to_be_hidden()
    countdown = display.locator('[data-field="countdown"]')
    await expect(countdown).to_have_text(re.compile(r"0:0[1-4]"))
    await end_class(console)
    await expect(display.locator("[data-timer]")).to_have_attribute("data-phase", "finished")

    # The next class opens in the same room: the wall celebrates the one that ended
    # first (for minutes, not seconds), and moves into the next one once it starts.
    second = await open_in(console, "Studio A")
    assert second != first
    results = display.get_by_role("heading", name="Results: Quick test")
    await expect(results).to_be_visible(timeout=FOLLOWS_WITHIN_MS + 12_000)
    await mark(display)
    await asyncio.sleep(8)  # two polls and more: it stays
    assert await untouched(display), "the wall left the results with the next class unstarted"
    await expect(display.locator("[data-lobby]")).to_have_count(0)
    await start(console)
    await expect(display.locator('[data-timer] [data-field="segment"]')).to_have_text(
        "Squats", timeout=FOLLOWS_WITHIN_MS
    )
    assert display.url.endswith("/display")

    # Revoked: back to a pairing code, a new one.
    await console.goto("/console/rooms")
    await console.get_by_role("button", name="Revoke Front wall").tap()
    await expect(console.get_by_role("status")).to_contain_text("Display revoked")
    await expect(display.locator(CODE)).to_be_visible(timeout=FOLLOWS_WITHIN_MS)
    assert await pairing_code(display) != code


async def test_the_welcome_screen_shows_the_next_scheduled_class(
    live_server: LiveServer, new_page: NewPage
) -> None:
    display = await new_page(live_server, {**WALL, **PLACE})
    await display.goto("/display")
    console = await new_page(live_server, {**TABLET, **PLACE})
    await sign_in(console)
    await add_room(console, "Spin room")
    await pair(console, await pairing_code(display), "Spin room", "Bikes")
    await expect(display.get_by_text("No class scheduled yet.")).to_be_visible(
        timeout=FOLLOWS_WITHIN_MS
    )
    # Two hours ahead, in the console's (and the display's) own time zone.
    here = datetime.now(ZoneInfo(PLACE["timezone_id"]))
    starts = (here + timedelta(hours=2)).replace(second=0, microsecond=0)
    await open_in(console, "Spin room", starts)
    upcoming = display.locator(".wall-next")
    await expect(upcoming).to_contain_text("Next class: Quick test", timeout=FOLLOWS_WITHIN_MS)
    # The page comes with the time in the server's zone; the wall's clock tick shows it
    # in the room's own.
    await expect(display.locator("[data-wall-time]")).to_have_text(
        # The browser writes the hour as a number: "0:23" just after midnight, "13:05" later.
        re.compile(rf"0?{starts.hour}:{starts.minute:02d}\s*$"),
        timeout=FOLLOWS_WITHIN_MS,
    )
    await assert_kiosk_friendly(display)


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Server]:
    """``classroom serve`` in a process of its own, with the quick routine."""
    quick = (DATA / "quick.yaml").read_text()
    yield from serving(tmp_path, RoutineSource("quick", "Quick test", "yaml", quick))


async def test_a_paired_display_outlives_a_server_restart_and_still_follows(
    restartable: Server, new_page: NewPage
) -> None:
    server: Any = restartable  # new_page only needs its base_url
    display = await new_page(server, WALL)
    await display.goto("/display")
    console = await new_page(server, TABLET)
    await sign_in(console)
    await add_room(console, "Studio A")
    await pair(console, await pairing_code(display), "Studio A", "Front wall")
    welcome = display.get_by_role("heading", name="Welcome to Studio A")
    await expect(welcome).to_be_visible(timeout=FOLLOWS_WITHIN_MS)
    await mark(display)

    restartable.kill()
    await asyncio.sleep(3)  # the display asks in vain meanwhile
    restartable.start()
    await asyncio.sleep(6)
    assert await untouched(display), "the display reloaded with nothing new to show"
    await expect(welcome).to_be_visible()

    code = await open_in(console, "Studio A")
    await shows_lobby_of(display, code)
