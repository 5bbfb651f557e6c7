"""A first live class in a real browser: a tablet console, a phone and a wall display.

The server owns the clock; every screen ticks its countdown locally from the
server's deadline. These tests check that the screens agree with each other.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.conftest import INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD, LiveServer
from tests.helpers import LIBRARY_TITLES

pytestmark = pytest.mark.browser

COUNTDOWN = '[data-field="countdown"]'
SEGMENT = '[data-field="segment"]'

OpenPage = Callable[[dict[str, Any]], Awaitable[Page]]
"""Opens a page on the server under test, on a device (TABLET, PHONE, WALL) of its own."""


def seconds(text: str) -> int:
    """The seconds of a countdown as the screens show it: m:ss or h:mm:ss."""
    assert re.fullmatch(r"\d+(:\d\d){1,2}", text), f"not a countdown: {text!r}"
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


async def sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(INSTRUCTOR_EMAIL)
    await page.get_by_label("Password").fill(INSTRUCTOR_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/console$"))


def routine_entry(console: Page) -> Locator:
    """The console's entry for the test's routine: the first not from the library."""
    routines = console.locator("ul.routines li")
    for title in LIBRARY_TITLES:
        routines = routines.filter(has_not=console.locator(".routine-title", has_text=title))
    return routines.first


async def open_class(console: Page) -> str:
    """Open a class of the test's routine; returns its join code."""
    await routine_entry(console).get_by_role("button", name="Open class").click()
    await expect(console).to_have_url(re.compile(r"/console/classes/\d+$"))
    code = (await console.locator("[data-join-code]").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9]{4,12}", code), code
    return code


async def join(phone: Page, code: str, nickname: str, level: str = "Standard") -> None:
    await phone.goto(f"/j/{code}")
    await expect(phone.get_by_label("Join code")).to_have_value(code)
    await phone.get_by_label("Nickname").fill(nickname)
    await phone.get_by_label(level).check()
    await phone.get_by_role("button", name="Join").tap()
    await expect(phone).to_have_url(re.compile(r"/play/\d+$"))
    await expect(phone.locator(".who")).to_have_text(nickname)


async def display_link(console: Page) -> str:
    """The display link the console shows, as a path on the server under test."""
    await console.get_by_text("Wall display link").click()
    link = console.locator("[data-display-url]")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href and "/display/" in href, href
    url = urlsplit(href)
    return f"{url.path}?{url.query}"


async def start(console: Page) -> None:
    await console.get_by_role("button", name="Start", exact=True).tap()


@dataclass(frozen=True)
class Clock:
    """What a screen shows at one moment (``at``, this machine's Date.now())."""

    remaining_ms: float
    text: str
    at: float


async def clock(page: Page) -> Clock:
    reading = await page.evaluate(
        """() => ({
            remaining: window.classroomScreen.remainingMs(),
            text: document.querySelector('[data-field="countdown"]').textContent,
            at: Date.now(),
        })"""
    )
    assert isinstance(reading["remaining"], (int, float)), reading
    return Clock(reading["remaining"], reading["text"], reading["at"])


async def countdown_changes(page: Page) -> tuple[str, str]:
    """Read the countdown, then again once it changes (it ticks once a second)."""
    first = await page.locator(COUNTDOWN).inner_text()
    await page.wait_for_function(
        "([selector, first]) => document.querySelector(selector).textContent !== first",
        arg=[COUNTDOWN, first],
        timeout=2_500,
    )
    return first, await page.locator(COUNTDOWN).inner_text()


@dataclass(frozen=True)
class FirstClass:
    """The screens of a first class, running, and its join code."""

    console: Page
    phone: Page
    display: Page
    code: str


async def first_class(open_page: OpenPage) -> FirstClass:
    """Sign in on a tablet, open a class, join it on a phone, show it on a wall, and start
    it; check that the three screens agree. ``open_page`` opens a page on the server
    under test (directly, or through a proxy) as on a device of its own."""
    console = await open_page(TABLET)
    await sign_in(console)
    code = await open_class(console)
    await live(console)

    phone = await open_page(PHONE)
    await join(phone, code, "Alex")
    await live(phone)
    # The console counts participants when the page loads (joins aren't pushed live yet).
    await console.reload()
    await expect(console.locator("[data-participant-count]")).to_have_text("1")
    await live(console)

    display = await open_page(WALL)
    await display.goto(await display_link(console))
    await live(display)
    lobby = display.locator("[data-lobby]")
    await expect(lobby).to_be_visible()
    await expect(lobby.locator(".qr svg")).to_be_visible()
    await expect(lobby).to_contain_text(code)
    screens = (console, phone, display)
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Waiting for the instructor to start")
        await expect(page.locator(COUNTDOWN)).to_have_text("--:--")

    await start(console)

    # The quick routine's first segment lasts 4 s: check everything inside it.
    await asyncio.gather(*(expect(p.locator(SEGMENT)).to_have_text("Squats") for p in screens))
    readings = await asyncio.gather(*(clock(p) for p in screens))
    reference = readings[0]
    for reading in readings:
        assert 0 < reading.remaining_ms <= 4_250, reading
        # Read a few milliseconds apart: also compare the deadlines they imply.
        apart = reading.at - reference.at
        assert abs(reading.remaining_ms - reference.remaining_ms) < 1_000, (reference, reading)
        assert abs(reading.remaining_ms + apart - reference.remaining_ms) < 1_000
        assert abs(seconds(reading.text) - seconds(reference.text)) <= 1, (reference, reading)

    changes = await asyncio.gather(countdown_changes(console), countdown_changes(phone))
    for first, then in changes:
        assert seconds(then) == seconds(first) - 1, (first, then)
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Squats")
    # The routine's cues ("one" at 0:01, "two", "three") reach the phone too.
    await expect(phone.locator('[data-field="cue"]')).to_have_text(re.compile(r"one|two|three"))
    await expect(lobby).to_be_hidden()
    await expect(display.locator(".timer")).to_have_attribute("data-kind", "work")
    return FirstClass(console, phone, display, code)


async def test_console_phone_and_display_show_the_same_running_class(
    live_server: LiveServer, new_page: NewPage
) -> None:
    await first_class(functools.partial(new_page, live_server))
