"""Browser fixtures: Debian's Chromium driven by Playwright, and screens of every size.

Chromium comes from CHROMIUM_PATH (default /usr/bin/chromium). Without it the
browser tests skip, saying why; with CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from classroom.db.routines import RoutineSource
from tests.conftest import IN_CI, LiveServer, run_server, seed, settings_for

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
HERE = Path(__file__).parent

# The three kinds of screen of a class.
TABLET: dict[str, Any] = {"viewport": {"width": 1180, "height": 820}, "has_touch": True}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "has_touch": True,
    "is_mobile": True,
}
WALL: dict[str, Any] = {"viewport": {"width": 1920, "height": 1080}}

NewPage = Callable[[LiveServer, dict[str, Any]], Awaitable[Page]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"Chromium is not installed at {CHROMIUM} (set CHROMIUM_PATH)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> NewPage:
    """Open a page on ``server`` in a browser context of its own, like a separate device."""

    async def open_page(server: LiveServer, device: dict[str, Any]) -> Page:
        context = await browser.new_context(base_url=server.base_url, **device)
        context.set_default_timeout(5_000)
        return await context.new_page()

    return open_page


@pytest.fixture
def showcase_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server whose only routine is tests/browser/data/showcase.yaml.

    Its join and display links show a public address, as they would in a gym.
    """
    source = (HERE / "data" / "showcase.yaml").read_text()
    routine = RoutineSource("lunchtime-hiit", "Lunchtime HIIT", "yaml", source)
    asyncio.run(seed(migrated_url, [routine]))
    settings = settings_for(migrated_url, tmp_path, public_url="https://classroom.example.com")
    yield from run_server(settings)


def routine_server(migrated_url: str, tmp_path: Path, slug: str, yaml: str) -> Iterator[LiveServer]:
    """A live server whose only routine is ``yaml`` (its title is the routine's own)."""
    asyncio.run(seed(migrated_url, [RoutineSource(slug, slug, "yaml", yaml)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


async def live(page: Page) -> None:
    """Wait until ``page``'s socket is live and its screen has the class's state."""
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    await page.wait_for_function("() => window.classroomScreen && window.classroomScreen.view")
