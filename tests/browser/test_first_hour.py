"""What a gym meets in its first hour with classroom, in a real browser.

A tablet console, phones and a wall, at their real sizes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live, routine_server
from tests.browser.test_first_class import (
    COUNTDOWN,
    SEGMENT,
    display_link,
    join,
    open_class,
    seconds,
    sign_in,
    start,
)
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

LEAD_IN = """
title: Lead-in
lead_in: 8
auto_cues: {countdown: false, halfway: false, next: false, last_round: false}
blocks:
  - type: work
    name: Squats
    duration: 20
    exercise: {name: Squats}
    score: reps
"""


@pytest.fixture
def lead_in_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from routine_server(migrated_url, tmp_path, "lead-in", LEAD_IN)


async def screens_of_a_class(server: LiveServer, new_page: NewPage) -> tuple[Page, Page, Page]:
    """A console, a phone that has joined and a wall, each live on one open class."""
    console = await new_page(server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    await live(console)
    phone = await new_page(server, PHONE)
    await join(phone, code, "Alex")
    await live(phone)
    wall = await new_page(server, WALL)
    await wall.goto(await display_link(console))
    await live(wall)
    return console, phone, wall


async def test_every_connected_screen_counts_the_lead_in_down(
    lead_in_server: LiveServer, new_page: NewPage
) -> None:
    screens = await screens_of_a_class(lead_in_server, new_page)
    await start(screens[0])
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Get ready")
    shown = await asyncio.gather(*(page.locator(COUNTDOWN).inner_text() for page in screens))
    for text in shown:
        assert text != "--:--"
        assert 1 <= seconds(text) <= 8, shown
    # ... and it counts: each screen's digits change within a second and a bit.
    for page, text in zip(screens, shown, strict=True):
        await expect(page.locator(COUNTDOWN)).not_to_have_text(text, timeout=2_000)
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Squats", timeout=10_000)
