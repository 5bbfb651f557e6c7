"""Every page keeps to its Content-Security-Policy, in a real Chromium.

Each page reports ``securitypolicyviolation`` events (and htmx's refusals to
evaluate code) from a listener added before anything of the page runs. The walk
visits every page of the product, has htmx swap fragments in (searches, previews,
the join form's teams, the roster, controls, shout-outs) and runs a class so the
screens draw what the live socket pushes: leaderboards, team badges, cues. No
page may report anything, and every page must have been served with the policy.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, Response, expect

from classroom.domain.teams import LOOKS
from classroom.web.headers import CONTENT_SECURITY_POLICY
from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.screens import open_screens
from tests.browser.test_display_pairing import add_room, open_in, pair, pairing_code
from tests.browser.test_first_class import sign_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

LISTEN = """(() => {
  const report = (what) => window.reportViolation({ ...what, page: location.pathname });
  document.addEventListener("securitypolicyviolation", (event) => report({
    kind: "csp",
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    sample: event.sample,
    source: `${event.sourceFile}:${event.lineNumber}`,
  }));
  for (const name of ["htmx:evalDisallowedError", "htmx:eval-disallowed-error"]) {
    document.addEventListener(name, () => report({ kind: name }));
  }
})();"""

OWN_YAML = """\
title: Policy check
blocks:
  - type: warmup
    duration: 1:00
  - type: intervals
    rounds: 2
    work: 0:30
    rest: 0:15
    exercises:
      - {name: Squats}
"""


@dataclass
class Watch:
    """What the pages reported, and the policy each page was served with."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    documents: list[Awaitable[tuple[str, str | None]]] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)

    async def page(self, new_page: NewPage, server: LiveServer, device: dict[str, Any]) -> Page:
        page = await new_page(server, device)

        def reported(source: Any, what: dict[str, Any]) -> None:
            self.violations.append(what)

        await page.context.expose_binding("reportViolation", reported)
        await page.context.add_init_script(LISTEN)
        page.on("console", self._console)
        page.on("response", self._response)
        return page

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append({"kind": "console", "text": message.text})

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.documents.append(asyncio.ensure_future(self._policy(response)))

    async def _policy(self, response: Response) -> tuple[str, str | None]:
        headers = await response.all_headers()
        path = re.sub(r"^https?://[^/]+", "", response.url)
        return path, headers.get("content-security-policy")

    def clean(self) -> None:
        """Nothing reported so far."""
        assert not self.violations, "\n".join(map(str, self.violations))

    async def verdict(self, *, at_least: int) -> None:
        served = await asyncio.gather(*self.documents)
        self.visited = {path.split("?")[0] for path, _ in served}
        unprotected = [path for path, policy in served if policy != CONTENT_SECURITY_POLICY]
        assert not unprotected, f"served without the policy: {unprotected}"
        self.clean()
        assert len(self.visited) >= at_least, sorted(self.visited)


async def settled(page: Page) -> None:
    """Let htmx finish what it is doing (requests, swaps, settles)."""
    await page.wait_for_load_state("networkidle")
    await page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling')")


async def accept_dialogs(page: Page) -> None:
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)


async def test_console_pages_routines_rooms_and_a_paired_wall_keep_to_the_policy(
    live_server: LiveServer, new_page: NewPage
) -> None:
    watch = Watch()
    console = await watch.page(new_page, live_server, TABLET)
    await console.goto("/")
    await sign_in(console)  # the login page, then the console home
    await console.goto("/console/history")

    # The library, searched as you type (an htmx swap that pushes the URL).
    await console.goto("/console/routines")
    await console.get_by_label("Search by title or description").fill("quick")
    await expect(console).to_have_url(re.compile(r"q=quick"))
    await settled(console)

    # A routine written in YAML: previewed as you type, saved, then its timeline.
    await console.goto("/console/routines/new/yaml")
    await console.locator("#routine-source").fill(OWN_YAML)
    await expect(console.locator("#routine-check [data-routine-timeline]")).to_be_visible()
    await settled(console)
    await console.get_by_role("button", name="Save").click()
    await expect(console).to_have_url(re.compile(r"/console/routines/\d+$"))
    watch.clean()
    segment = console.locator(".routine-bar .routine-seg").first
    width = await segment.evaluate("(el) => el.getBoundingClientRect().width")
    bar = await console.locator(".routine-bar").evaluate("(el) => el.clientWidth")
    assert width == pytest.approx(bar * 60 / 150, rel=0.05), (width, bar)  # 1:00 of 2:30
    routine_url = console.url

    # The builder: blocks moved and removed by htmx, the preview redrawn.
    await console.goto(f"{routine_url}/edit")
    await console.get_by_role("button", name="Move block 2 up").click()
    await settled(console)
    await console.get_by_role("button", name="Remove block 1").click()
    await settled(console)
    await console.goto(f"{routine_url}/yaml")
    await console.goto("/console/routines/new")
    await settled(console)

    # A wall display: pairing code, paired to a room, welcome, then a class's lobby.
    wall = await watch.page(new_page, live_server, WALL)
    await wall.goto("/display")
    code = await pairing_code(wall)
    await add_room(console, "Studio A")
    await pair(console, code, "Studio A", "Front wall")
    await expect(wall.get_by_role("heading", name="Welcome to Studio A")).to_be_visible(
        timeout=10_000
    )
    join_code = await open_in(console, "Studio A")
    lobby = wall.locator("[data-lobby]")
    await expect(lobby).to_be_visible(timeout=10_000)
    await expect(lobby.locator(".join-code")).to_have_text(join_code)
    await live(wall)
    await live(console)

    # Errors are pages too.
    await console.goto("/console/no-such-page")
    await console.goto("/console/classes/999999")
    await wall.goto("/display/1?token=forged")

    await watch.verdict(at_least=14)


async def test_a_class_on_every_screen_keeps_to_the_policy(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    watch = Watch()

    async def watched(server: LiveServer, device: dict[str, Any]) -> Page:
        return await watch.page(new_page, server, device)

    # The join page on its own: typing the code swaps the class's teams in.
    joining = await watched(showcase_server, PHONE)
    await joining.goto("/join")

    screens = await open_screens(showcase_server, watched)
    console, phone, display = screens.console, screens.phone, screens.display
    await accept_dialogs(console)
    await joining.get_by_label("Join code").fill(screens.code)
    badges = joining.locator("#team-choice .team-badge")
    await expect(badges).to_have_count(2)
    watch.clean()
    colour = await badges.first.evaluate(
        "(el) => getComputedStyle(el).getPropertyValue('--team-colour').trim()"
    )
    assert colour.lower() == LOOKS[0].colour.lower()

    # The roster, loaded and changed by htmx on the class page, and as a page of its own.
    roster = console.locator("#roster")
    await expect(roster.locator("[data-team] .team-badge")).to_have_count(2)
    await roster.get_by_role("button", name="Lock joining").click()
    await expect(console.locator("#roster [data-joining]")).to_have_attribute(
        "data-joining", "locked"
    )
    await roster.get_by_role("button", name="Open joining").click()
    await expect(console.locator("#roster [data-joining]")).to_have_attribute(
        "data-joining", "open"
    )
    # Its refresh (hx-trigger's eval-free stand-in for a filter) waits while someone types.
    nickname = roster.get_by_label("Nickname of Alex")
    await nickname.fill("Alexandra")
    refresh = """() => htmx.ajax("GET", location.pathname + "/roster",
        {source: "#roster", target: "#roster", swap: "outerHTML"}).then(() =>
        [...document.querySelectorAll("#roster input[name=nickname]")].map((el) => el.value))"""
    assert "Alexandra" in await console.evaluate(refresh)  # kept: the refresh was held
    await console.locator("h1").click()  # focus leaves the roster
    assert "Alexandra" not in await console.evaluate(refresh)
    await expect(roster.get_by_label("Nickname of Alex")).to_have_value("Alex")
    await console.goto(f"/console/classes/{screens.class_id}/roster")
    await console.goto(f"/console/classes/{screens.class_id}")
    await live(console)

    # Controls and a shout-out through htmx; what the socket pushes, on every screen.
    for state in ("work", "rest", "paused"):
        await screens.go(state)
    shout = console.get_by_label("Shout-out")
    await shout.fill("Blue team, 20 reps behind!")
    await console.locator("form.shout").get_by_role("button", name="Send").click()
    await expect(phone.locator('[data-timer] [data-field="cue"]')).to_contain_text("Blue team")
    await expect(shout).to_have_value("")  # the form empties itself once sent
    await expect(display.locator("[data-team-board] .board-row .team-badge")).to_have_count(2)
    await console.locator("[data-control='resume'] button").click()
    await expect(console.locator("[data-timer]")).to_have_attribute("data-phase", "running")
    await console.goto(f"/console/classes/{screens.class_id}/scores")
    await console.goto(f"/console/classes/{screens.class_id}")
    await live(console)
    await screens.go("finished")

    # Results on all three screens, the phone's history, and an error page.
    await phone.goto(f"/play/{screens.class_id}/results")
    await console.goto(f"/console/classes/{screens.class_id}/results")
    await display.goto(str(await display.get_attribute(".wall", "data-results-url")))
    await phone.goto("/me")
    await expect(phone.locator(".team-badge").first).to_be_visible()
    await phone.goto("/play/999999")

    await watch.verdict(at_least=10)
