"""The console's controls in a real browser: phase-aware buttons, shortcuts, touch sizes."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import TABLET, NewPage
from tests.browser.test_first_class import open_class, sign_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


async def segment(page: Page) -> str:
    return (await page.locator('[data-timer] [data-field="segment"]').inner_text()).strip()


async def test_the_console_shows_the_right_controls_and_obeys_the_keyboard(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(showcase_server, TABLET)
    await sign_in(console)
    await open_class(console)
    start = console.get_by_role("button", name="Start")
    pause = console.get_by_role("button", name="Pause")
    await expect(start).to_be_visible()
    await expect(pause).to_be_hidden()  # nothing to pause in the lobby
    for name in ("Start", "End class"):
        box = await console.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 48 and box["width"] >= 48

    await console.keyboard.press("Space")  # starts the class: its 10 s lead-in
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "countdown")
    await console.keyboard.press("ArrowRight")  # the rest of the lead-in, skipped
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "running")
    assert await segment(console) == "Goblet squats"
    await expect(start).to_be_hidden()
    await expect(pause).to_be_visible()

    await console.keyboard.press("ArrowRight")
    await expect(console.locator('[data-timer] [data-field="segment"]')).to_have_text("Rest")
    await console.keyboard.press("ArrowLeft")
    await expect(console.locator('[data-timer] [data-field="segment"]')).to_have_text(
        "Goblet squats"
    )
    await console.keyboard.press("Space")
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "paused")
    await expect(console.get_by_role("button", name="Resume")).to_be_visible()
    await console.keyboard.press("Space")
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "running")

    # Typing a shout-out doesn't trigger the shortcuts.
    box = console.get_by_label("Shout-out")
    await box.fill("Blue team, push")
    await box.press("Space")
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "running")
    await console.get_by_role("button", name="Send").click()
    await expect(console.locator('[data-timer] [data-field="cue"]')).to_have_text("Blue team, push")
