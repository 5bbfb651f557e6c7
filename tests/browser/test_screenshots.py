"""The screenshots of docs/screens.md and the README, taken by every test run.

One class goes through its main states (lobby, lead-in, work, rest, paused, finished); in each,
the phone (390x844), the console (1180x820) and the wall display (1920x1080) are saved
as docs/images/screens/<screen>-<state>.png, and the wall's results page as
display-results.png. Each state is shot at the same second of its segment, so a run
only changes the images when the screens changed. Then a wall display is paired to a
room: its pairing code, the console's rooms page and the room's welcome screen.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import TABLET, WALL, NewPage
from tests.browser.screens import STATES, open_screens
from tests.browser.test_display_pairing import add_room, pair, pairing_code
from tests.browser.test_first_class import sign_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images" / "screens"
COUNTDOWN = '[data-timer] [data-field="countdown"]'
CUE = '[data-timer] [data-field="cue"]'
# The second of its segment at which each running state is shot.
AT = {"lead-in": "0:07", "work": "0:40", "rest": "0:14"}


async def save(page: Page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # a tap may have scrolled the phone
    image = await page.screenshot(animations="disabled", caret="hide")
    path = IMAGES / f"{name}.png"
    if not path.exists() or path.read_bytes() != image:
        path.write_bytes(image)


async def test_every_screen_in_every_state(showcase_server: LiveServer, new_page: NewPage) -> None:
    screens = await open_screens(showcase_server, new_page)
    for state in STATES:
        await screens.go(state)
        if state in AT:
            await asyncio.gather(
                *(
                    expect(page.locator(COUNTDOWN)).to_have_text(AT[state], timeout=10_000)
                    for page in screens.pages.values()
                )
            )
        else:  # no cue left over from the segment before
            await asyncio.gather(
                *(
                    expect(page.locator(CUE)).to_be_empty(timeout=10_000)
                    for page in screens.pages.values()
                )
            )
        for screen, page in screens.pages.items():
            await save(page, f"{screen}-{state}")
    results = await screens.display.get_attribute(".wall", "data-results-url")
    assert results
    await screens.display.goto(results)
    await save(screens.display, "display-results")


async def test_pairing_a_display(showcase_server: LiveServer, new_page: NewPage) -> None:
    display = await new_page(showcase_server, WALL)
    await display.goto("/display")
    code = await pairing_code(display)
    await save(display, "display-pairing")
    console = await new_page(showcase_server, TABLET)
    await sign_in(console)
    await add_room(console, "Studio A")
    await pair(console, code, "Studio A", "Front wall")
    await save(console, "console-rooms")
    welcome = display.get_by_role("heading", name="Welcome to Studio A")
    await expect(welcome).to_be_visible(timeout=10_000)
    await save(display, "display-welcome")
