"""Revoking a wall display link from the console, in Chromium: its wall says so and stays closed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.browser.conftest import TABLET, WALL, NewPage, live
from tests.browser.test_first_class import open_class, sign_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def path_of(url: str | None) -> str:
    assert url
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_a_revoked_link_closes_its_wall_and_the_other_wall_carries_on(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    await open_class(console)
    await console.get_by_text("Wall display links").click()
    await console.get_by_role("button", name="New display link").click()
    await console.get_by_text("Wall display links").click()
    links = console.locator("[data-display-link]")
    await expect(links).to_have_count(2)
    first, second = [path_of(await links.nth(i).get_attribute("href")) for i in range(2)]

    walls = [await new_page(live_server, WALL), await new_page(live_server, WALL)]
    for wall, path in zip(walls, (first, second), strict=True):
        await wall.goto(path)
        await live(wall)

    await console.get_by_role("button", name="Revoke display link 1").click()
    await expect(console.locator("[data-display-link]")).to_have_count(1)
    revoked = walls[0].locator("[data-connection]")
    await expect(revoked).to_have_attribute("data-connection", "closed")
    await expect(revoked).to_contain_text("revoked")
    await walls[0].wait_for_timeout(3_000)  # it does not try again
    await expect(revoked).to_have_attribute("data-connection", "closed")
    await expect(walls[1].locator("[data-connection]")).to_have_attribute("data-connection", "live")
    await walls[0].reload()
    await expect(walls[0].locator("body")).to_contain_text("revoked")
