"""One class on every screen: a tablet console, a phone, a wall display and a few guests.

The accessibility, layout and screenshot tests all look at the same screens in the
same states (lobby, work, rest, paused, finished), so they share this set-up: the
showcase routine, two teams, a phone that joined by the QR's link at the beginner
level, and guests who joined and score over sockets of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_first_class import display_link, join, open_class, sign_in
from tests.conftest import LiveServer
from tests.helpers import join as join_over_http

STATES = ("lobby", "lead-in", "work", "rest", "paused", "finished")
GUESTS = ("Sam", "Priya", "Jo")
SEGMENT = '[data-timer] [data-field="segment"]'


@dataclass
class Screens:
    """The pages of one class, and what it takes to move the class along."""

    server: LiveServer
    console: Page
    phone: Page
    display: Page
    class_id: int
    code: str
    guests: dict[str, str] = field(default_factory=dict)  # nickname -> cookie header

    @property
    def pages(self) -> dict[str, Page]:
        return {"phone": self.phone, "console": self.console, "display": self.display}

    async def post(self, path: str, form: dict[str, str]) -> None:
        """Post a console form as htmx does, with the console's session and CSRF token."""
        token = await self.console.locator('input[name="csrf_token"]').first.input_value()
        response = await self.console.request.post(
            f"/console/classes/{self.class_id}{path}",
            form={"csrf_token": token, **form},
            headers={"HX-Request": "true"},
        )
        assert response.ok, f"{path} {form}: {response.status} {await response.text()}"

    async def command(self, name: str) -> None:
        await self.post("/commands", {"command": name})

    async def guest_scores(self, segment: int, reps: dict[str, int]) -> None:
        """Each guest logs ``reps[nickname]`` reps in ``segment``, acknowledged."""
        for nickname, count in reps.items():
            url = f"{self.server.ws_url}/ws/classes/{self.class_id}"
            headers = {"Cookie": self.guests[nickname]}
            async with websockets.connect(url, additional_headers=headers) as ws:
                for i in range(count):
                    message = {
                        "type": "score",
                        "id": f"{nickname}-{segment}-{i}",
                        "segment": segment,
                        "kind": "reps",
                        "value": 1,
                    }
                    await ws.send(json.dumps(message))
                acks = 0
                while acks < count:
                    acks += json.loads(await ws.recv())["type"] == "ack"

    async def segment_is(self, name: str) -> None:
        for page in self.pages.values():
            await expect(page.locator(SEGMENT)).to_have_text(name)

    async def phase_is(self, phase: str) -> None:
        for page in self.pages.values():
            await expect(page.locator("[data-timer]")).to_have_attribute("data-phase", phase)

    async def go(self, state: str) -> None:
        """Move the class to ``state`` (one of STATES, in order) and wait for every screen."""
        if state == "lobby":
            await self.phase_is("lobby")
        elif state == "lead-in":
            await self.command("start")
            await self.phase_is("countdown")
        elif state == "work":
            phase = await self.console.locator("[data-timer]").get_attribute("data-phase")
            if phase == "lobby":
                await self.go("lead-in")
            await self.command("next")  # the rest of the 10 s lead-in, skipped
            await self.segment_is("Goblet squats")
            plus = self.phone.get_by_role("button", name="Add one rep")
            for _ in range(7):
                await plus.tap()
            await self.guest_scores(0, {"Sam": 9, "Priya": 5, "Jo": 4})
            await self.phone.wait_for_function("() => !window.classroomScreen.outbox.items.length")
            await expect(self.display.locator("[data-team-board] .board-row")).to_have_count(2)
        elif state == "rest":
            await self.command("next")
            await self.segment_is("Rest")
        elif state == "paused":
            await self.command("next")
            await self.segment_is("Push-ups")
            await self.command("pause")
            await self.phase_is("paused")
        elif state == "finished":
            await self.command("finish")
            await self.phase_is("finished")
        else:
            raise ValueError(f"unknown state {state!r}")


async def open_screens(server: LiveServer, new_page: NewPage, **phone: Any) -> Screens:
    """Open a class of the showcase routine with two teams; join a phone and three guests.

    ``phone`` overrides the phone's device (for example a smaller viewport).
    """
    console = await new_page(server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    class_id = int(console.url.rsplit("/", 1)[1])
    display = await new_page(server, WALL)
    phone_page = await new_page(server, {**PHONE, **phone})
    screens = Screens(server, console, phone_page, display, class_id, code)
    await screens.post("/teams", {"count": "2"})
    await join(phone_page, code, "Alex", level="Beginner")
    for nickname in GUESTS:
        async with httpx.AsyncClient(base_url=server.base_url) as guest:
            answer = await join_over_http(guest, code, nickname)
            assert answer.status_code == 303, answer.text
            screens.guests[nickname] = "; ".join(f"{k}={v}" for k, v in guest.cookies.items())
    await display.goto(await display_link(console))
    await console.reload()
    for page in screens.pages.values():
        await live(page)
    await expect(console.locator("[data-participant-count]")).to_have_text("4")
    return screens
