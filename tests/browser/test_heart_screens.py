"""The heart-rate screens of docs/screens.md, taken by every test run, and checked.

A class of 30, then 60, people with straps (their phones' sockets send samples, as a
phone with a strap does): the wall shows a tile each, every tile on the screen and its
text large enough to read from 5 m at 1080p; the phone shows its own heart big; the
console marks the one held over 95 % of max for over a minute.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from playwright.async_api import Page, expect

from classroom.domain.heart import encode_measurement
from tests.browser.conftest import NewPage
from tests.browser.test_heart_rate import strapped_class, stream
from tests.browser.test_screenshots import IMAGES, save
from tests.conftest import LiveServer, SkippingClock
from tests.helpers import join as join_as

pytestmark = pytest.mark.browser

NAMES = [
    "Robin", "Sam", "Ana", "Jo", "Priya", "Mateo", "Aiko", "Noah", "Fatima", "Liam",
    "Chloé", "Kwame", "Sofia", "Ravi", "Emma", "Yusuf", "Mia", "Lucas", "Zoe", "Omar",
    "Hana", "Leo", "Ines", "Kai", "Nora", "Diego", "Lena", "Arjun", "Maya", "Felix",
    "Ada", "Bruno", "Cleo", "Dev", "Elif", "Finn", "Gia", "Hugo", "Isla", "Jonas",
    "Keiko", "Luca", "Mina", "Nico", "Olga", "Pablo", "Qiu", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Wes", "Xena", "Yara", "Zane", "Amara", "Basil", "Cora", "Dario",
]  # fmt: skip
LEGIBLE_PX = 20
"""Text at least this high (a 1080p wall, read from 5 m: about 1.9 % of its height)."""


class Straps:
    """People who joined through their phones' sockets, each with a strap that goes on
    sending a sample a second (as a phone with a strap does) until :meth:`stop`."""

    def __init__(self, server: LiveServer, code: str, class_id: int) -> None:
        self.server, self.code, self.class_id = server, code, class_id
        self.sockets: list[tuple[websockets.ClientConnection, int]] = []
        self._sending = asyncio.get_running_loop().create_task(self._send())

    async def join(self, people: list[str]) -> None:
        for name in people:
            n = len(self.sockets)
            async with httpx.AsyncClient(base_url=self.server.base_url) as phone:
                answer = await join_as(phone, self.code, name)
                assert answer.status_code == 303, answer.text
                cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
            ws = await websockets.connect(
                f"{self.server.ws_url}/ws/classes/{self.class_id}",
                additional_headers={"Cookie": cookie},
            )
            age, show = 25 + n % 30, n % 3 == 0
            await ws.send(
                json.dumps({"type": "heart_profile", "id": "p", "age": age, "show_bpm": show})
            )
            self.sockets.append((ws, 95 + (n * 37) % 90))

    async def _send(self) -> None:
        second = 0
        while True:
            for n, (ws, bpm) in enumerate(list(self.sockets)):
                data = encode_measurement(bpm + second % 3, contact=True).hex()
                await ws.send(json.dumps({"type": "hr", "id": f"{n}-{second}", "data": data}))
            second += 1
            await asyncio.sleep(1)

    async def stop(self) -> None:
        self._sending.cancel()
        for ws, _ in self.sockets:
            await ws.close()


async def legible_and_on_screen(wall: Page, count: int) -> None:
    tiles = wall.locator(".heart-tile")
    await expect(tiles).to_have_count(count)
    boxes = await tiles.evaluate_all(
        """tiles => tiles.map(t => {
             const r = t.getBoundingClientRect();
             const px = (part) => parseFloat(getComputedStyle(t.querySelector(part)).fontSize);
             return [r.left, r.top, r.right, r.bottom, px('.heart-tile-name'),
                     px('.heart-tile-percent')];
           })"""
    )
    for left, top, right, bottom, name_px, percent_px in boxes:
        assert left >= 0 and right <= 1920 and top >= 0 and bottom <= 1080, (
            left,
            top,
            right,
            bottom,
        )
        assert name_px >= LEGIBLE_PX and percent_px >= 2 * LEGIBLE_PX, (name_px, percent_px)


async def test_the_heart_screens(
    ride_server: LiveServer, new_page: NewPage, clock: SkippingClock
) -> None:
    console, wall, phone, code = await strapped_class(ride_server, new_page)
    class_id = int(console.url.rsplit("/", 1)[1])
    await stream(phone, clock, 179, 65)  # over 95 % of 185 for over a minute
    await expect(console.locator(".heart-tile[data-attention]")).to_have_count(1)

    async def keep_streaming() -> None:  # Alex's strap goes on while the others arrive
        while True:
            await phone.evaluate("window.__fakeStrap.emit([0x06, 179])")
            await asyncio.sleep(0.8)

    streaming = asyncio.create_task(keep_streaming())
    straps = Straps(ride_server, code, class_id)
    try:
        await straps.join(NAMES[:29])
        await asyncio.sleep(6)  # a few seconds of effort each
        await legible_and_on_screen(wall, 30)
        await save(wall, "display-heart-30")
        await straps.join(NAMES[29:59])
        await asyncio.sleep(3)
        await legible_and_on_screen(wall, 60)
        await save(wall, "display-heart-60")
    finally:
        streaming.cancel()
        await straps.stop()
    await expect(phone.locator("[data-heart-bpm]")).to_have_text("179")
    await save(phone, "phone-heart")
    image = await console.locator(".console-heart").screenshot(animations="disabled")
    (IMAGES / "console-heart.png").write_bytes(image)
