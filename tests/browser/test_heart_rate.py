"""Heart rate in real Chromium: a phone pairs a (fake) Bluetooth strap, streams, loses it
and gets it back; the phone, the wall's tiles and the console's marker show it.

Headless Chromium can't reach real straps: tests/browser/fake_bluetooth.js stands in
for navigator.bluetooth, with notifications laid out byte by byte as the Heart Rate
Measurement characteristic (0x2A37) does. The server's clock is moved a second per
sample, so a minute of effort takes a few seconds of the test.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from classroom.domain.heart import max_from_age
from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_first_class import display_link, join, open_class, sign_in, start
from tests.conftest import LiveServer, SkippingClock

pytestmark = pytest.mark.browser

FAKE_BLUETOOTH = Path(__file__).parent / "fake_bluetooth.js"
MAX = max_from_age(40)  # 185 by the HUNT formula


async def stream(phone: Page, clock: SkippingClock, bpm: int, seconds: int) -> None:
    """``seconds`` of notifications at ``bpm``, one a (server) second, in a few layouts."""
    layouts = [[0x16, bpm, 0x00, 0x03], [0x06, bpm], [0x01, bpm, 0x00], [0x0E, bpm, 0x10, 0x00]]
    for n in range(seconds):
        clock.skip(1000)
        delivered = await phone.evaluate(f"window.__fakeStrap.emit({layouts[n % len(layouts)]})")
        assert delivered
        await asyncio.sleep(0.07)  # within the socket's limit of messages


async def strapped_class(server: LiveServer, new_page: NewPage) -> tuple[Page, Page, Page, str]:
    """A started class's console and wall, and Alex's phone, paired with a strap
    (age 40, bpm shown on the wall); and the class's join code."""
    console = await new_page(server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    wall = await new_page(server, WALL)
    await wall.goto(await display_link(console))
    phone = await new_page(server, PHONE)
    await phone.add_init_script(path=str(FAKE_BLUETOOTH))
    await join(phone, code, "Alex")
    for page in (console, wall, phone):
        await live(page)
    await start(console)

    # Connecting is an explicit choice, with one sentence on who sees what.
    await phone.get_by_text("Connect heart-rate strap").click()
    await expect(phone.locator(".heart-privacy")).to_contain_text("The wall shows your zone")
    await phone.get_by_label("Your age").fill("40")
    await phone.get_by_label("Show my bpm on the wall").check()
    await phone.get_by_role("button", name="Connect strap (Bluetooth)").tap()
    await expect(phone.locator("[data-heart-status]")).to_have_text(
        re.compile(r"Connected to Polar H10")
    )
    return console, wall, phone, code


async def test_a_strap_paired_on_the_phone_reaches_phone_wall_and_console(
    ride_server: LiveServer, new_page: NewPage, clock: SkippingClock
) -> None:
    console, wall, phone, _ = await strapped_class(ride_server, new_page)
    await expect(phone.locator("[data-heart-max]")).to_have_text(f"Max {MAX} bpm (from your age)")

    # A minute and more at 96 % of max: zone 5, on every screen; the console marks it.
    await stream(phone, clock, 178, 64)
    await expect(phone.locator("[data-heart-bpm]")).to_have_text("178")
    await expect(phone.locator("[data-heart-percent]")).to_have_text("96%")
    await expect(phone.locator("[data-heart-now]")).to_have_attribute("data-zone", "5")
    points = int(await phone.locator("[data-heart-points]").inner_text())
    assert 4 <= points <= 5  # 4 a minute in zone 5, for a minute and a few seconds
    tile = wall.locator(".heart-tile", has_text="Alex")
    await expect(tile).to_have_attribute("data-zone", "5")
    await expect(tile.locator(".heart-tile-percent")).to_have_text("96%")
    await expect(tile.locator(".heart-tile-bpm")).to_have_text("178 bpm · ")  # allowed
    await expect(tile.locator(".zone-badge")).to_have_text("5")  # not by colour alone
    marked = console.locator(".heart-tile[data-attention]", has_text="Alex")
    await expect(marked).to_be_visible()
    await expect(marked.locator(".heart-attention")).to_contain_text("offer the modification")

    # The strap drops out and comes back by itself (two failed tries), no new chooser.
    await phone.evaluate("window.__fakeStrap.drop(2)")
    await expect(phone.locator("[data-heart-status]")).to_contain_text("reconnecting")
    await expect(phone.locator("[data-heart-status]")).to_have_text(
        re.compile(r"Connected to Polar H10"), timeout=15_000
    )
    assert await phone.evaluate("window.__fakeStrap.requests") == 1
    await stream(phone, clock, 120, 3)
    await expect(phone.locator("[data-heart-bpm]")).to_have_text("120")
    await expect(tile.locator(".heart-tile-percent")).to_have_text("64%")
    await expect(tile).to_have_attribute("data-zone", "2")
    await expect(console.locator(".heart-tile[data-attention]")).to_have_count(0)


async def test_a_phone_without_bluetooth_says_so_and_offers_the_receiver(
    ride_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(ride_server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    phone = await new_page(ride_server, PHONE)
    await phone.add_init_script("window.__noBluetooth = true")
    await phone.add_init_script(path=str(FAKE_BLUETOOTH))
    await join(phone, code, "Sam")
    await live(phone)
    await phone.get_by_text("Connect heart-rate strap").click()
    await expect(phone.locator("[data-heart-unsupported]")).to_contain_text(
        "This browser can't reach Bluetooth straps"
    )
    await expect(phone.get_by_role("button", name="Connect strap (Bluetooth)")).to_be_hidden()
    await phone.get_by_label("Your age").fill("30")
    await phone.get_by_role("button", name="Use the room's receiver").tap()
    # This class has no room, so no receiver: the phone says so rather than wait.
    await expect(phone.locator("[data-heart-receiver-list]")).to_contain_text(
        "The room's receiver hears no strap yet"
    )
