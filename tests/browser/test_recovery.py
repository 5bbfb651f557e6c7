"""Screens come back by themselves: after a server crash, a minute offline, an upgrade.

``classroom serve`` runs as a process of its own (tests/processes.py) so it can be
killed with SIGKILL and started again on the same port and SQLite database. Nobody
touches the pages: a marker set on each page before the trouble must still be
there after it (the page was not reloaded), except after an upgrade that changed
the assets, when the page must reload itself.

A screen has *recovered* when its connection shows "live" again (it had shown it
was not), on the restarted server: the class keeps its epoch across a restart, so
the screen resumes with what it missed rather than redraw from a snapshot; then its
view must match what the server says now.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from playwright.async_api import Page, expect

from classroom.db.routines import RoutineSource
from classroom.web.tokens import Tokens
from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_first_class import display_link, join, open_class, sign_in, start
from tests.browser.test_offline_reps import scores_of
from tests.conftest import SECRET
from tests.helpers import receive
from tests.processes import Server, serving

pytestmark = pytest.mark.browser

ROUTINE = """\
title: Squats then lunges
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Squats
    duration: 30
    exercise: {name: Squats}
    score: reps
  - type: work
    name: Lunges
    duration: 600
    exercise: {name: Lunges}
    score: reps
"""
RECOVER_WITHIN_S = 5.0
OFFLINE_S = 60
SEGMENT = '[data-field="segment"]'
LIVE_AGAIN = """() => {
  const screen = window.classroomScreen;
  return document.querySelector('[data-connection]').dataset.connection === 'live'
    && screen.view;
}"""
# Counts the page's attempts to connect, with the time of the latest.
COUNT_ATTEMPTS = """() => {
  window.__attempts = { count: 0, last: 0 };
  const el = document.querySelector('[data-connection]');
  new MutationObserver(() => {
    if (el.dataset.connection === 'connecting') {
      window.__attempts.count += 1;
      window.__attempts.last = performance.now();
    }
  }).observe(el, { attributes: true, attributeFilter: ['data-connection'] });
}"""
WAKE_AFTER_A_SILENT_SLEEP = """() => {
  const screen = window.classroomScreen;
  window.__asleep = screen.ws;
  screen.lastHeard -= 60_000;
  document.dispatchEvent(new Event("visibilitychange"));
}"""
NEW_SOCKET_OPEN = """() => {
  const ws = window.classroomScreen.ws;
  return ws && ws !== window.__asleep && ws.readyState === WebSocket.OPEN;
}"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serving(
        tmp_path, RoutineSource("squats-lunges", "Squats then lunges", "yaml", ROUTINE)
    )


async def mark(page: Page) -> None:
    """Leave a marker on ``page`` that only a reload removes."""
    await page.evaluate("() => { window.__untouched = true; }")


async def untouched(page: Page) -> bool:
    return bool(await page.evaluate("() => window.__untouched === true"))


async def epoch(page: Page) -> str:
    return str(await page.evaluate("() => window.classroomScreen.view.epoch"))


async def recovered(page: Page, old_epoch: str, since: float) -> float:
    """Seconds from ``since`` until ``page`` is live on the restarted server, in the
    class's same epoch (it resumed)."""
    await page.wait_for_function(LIVE_AGAIN, timeout=15_000)
    assert await epoch(page) == old_epoch
    return time.monotonic() - since


async def server_view(server: Server, class_id: int) -> dict[str, Any]:
    """The class as the server shows it now, from a socket of the test's own."""
    token = Tokens(SECRET).display(class_id)
    url = f"ws://127.0.0.1:{server.port}/ws/classes/{class_id}?token={token}"
    async with websockets.connect(url) as ws:
        return await receive(ws)


async def shows_the_servers_view(page: Page, server: Server, class_id: int) -> None:
    """``page`` has the class as the server has it: phase, segment and deadline."""
    truth = await server_view(server, class_id)
    view = await page.evaluate(
        "() => { const v = window.classroomScreen.view;"
        " return { phase: v.phase, segment: v.segment && v.segment.index, ends_at: v.ends_at }; }"
    )
    assert view == {
        "phase": truth["phase"],
        "segment": truth["segment"]["index"],
        "ends_at": truth["ends_at"],
    }, (view, truth)
    await expect(page.locator(SEGMENT)).to_have_text(truth["segment"]["name"])


async def open_three_screens(server: Server, new_page: NewPage) -> tuple[Page, Page, Page, int]:
    """A console, a joined phone and a display of a new class, all live; the class started."""
    console = await new_page(server, TABLET)  # type: ignore[arg-type]
    await sign_in(console)
    code = await open_class(console)
    class_id = int(console.url.rsplit("/", 1)[1])
    display = await new_page(server, WALL)  # type: ignore[arg-type]
    await display.goto(await display_link(console))
    phone = await new_page(server, PHONE)  # type: ignore[arg-type]
    await join(phone, code, "Alex")
    for page in (console, phone, display):
        await live(page)
    await start(console)
    for page in (console, phone, display):
        await expect(page.locator(SEGMENT)).to_have_text("Squats")
        await mark(page)
    return console, phone, display, class_id


async def test_every_page_recovers_within_5_s_and_the_phone_resends_its_queue(
    server: Server, new_page: NewPage
) -> None:
    console, phone, display, class_id = await open_three_screens(server, new_page)
    pages = {"console": console, "phone": phone, "display": display}
    participant = int(
        await phone.locator("[data-participant]").get_attribute("data-participant") or 0
    )
    plus = phone.get_by_role("button", name="Add one rep")
    for _ in range(2):
        await plus.tap()
    await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
    epochs = {name: await epoch(page) for name, page in pages.items()}

    server.kill()
    for page in pages.values():
        await expect(page.locator("[data-connection]")).not_to_have_attribute(
            "data-connection", "live", timeout=10_000
        )
    for _ in range(5):  # queued in localStorage while the server is down
        await plus.tap()
    await expect(phone.locator("[data-my-score]")).to_have_text("7")
    assert await phone.evaluate("() => window.classroomScreen.outbox.items.length") == 5

    server.start()  # returns as soon as /readyz answers 200
    ready = time.monotonic()
    took = await asyncio.gather(
        *(recovered(page, epochs[name], ready) for name, page in pages.items())
    )
    print("recovered after the server was ready (s):", dict(zip(pages, took, strict=True)))
    for name, seconds in zip(pages, took, strict=True):
        assert seconds < RECOVER_WITHIN_S, (name, took)

    # The queue went out again, was acknowledged, and each input counts once.
    await phone.wait_for_function(
        "() => window.classroomScreen.outbox.items.length === 0", timeout=10_000
    )
    rows = scores_of(server, participant)
    assert len(rows) == 7 and len({client_id for client_id, _, _ in rows}) == 7, rows
    alex = display.locator("[data-people-board] .board-row", has_text="Alex")
    await expect(alex.locator(".board-value")).to_have_text("7 reps")
    await expect(phone.locator("[data-my-score]")).to_have_text("7")
    for name, page in pages.items():
        await shows_the_servers_view(page, server, class_id)
        assert await untouched(page), f"the {name} was reloaded"

    # A phone woken from a sleep in which it heard nothing drops that socket at once.
    await phone.evaluate(WAKE_AFTER_A_SILENT_SLEEP)
    await phone.wait_for_function(NEW_SOCKET_OPEN, timeout=3_000)
    await live(phone)


async def test_the_display_survives_three_restarts_and_a_minute_offline(
    server: Server, new_page: NewPage
) -> None:
    _, _, display, class_id = await open_three_screens(server, new_page)
    for restart in range(3):
        old_epoch = await epoch(display)
        server.kill()
        await expect(display.locator("[data-connection]")).to_have_attribute(
            "data-connection", "reconnecting"
        )
        server.start()
        took = await recovered(display, old_epoch, time.monotonic())
        assert took < RECOVER_WITHIN_S, (restart, took)
        await shows_the_servers_view(display, server, class_id)

    # The network goes away for a minute; the squats end meanwhile, and the display
    # hears of the lunges only when it is back.
    await display.evaluate(COUNT_ATTEMPTS)
    went = time.monotonic()
    await display.context.set_offline(True)
    await expect(display.locator("[data-connection]")).not_to_have_attribute(
        "data-connection", "live"
    )
    await asyncio.sleep(OFFLINE_S - (time.monotonic() - went))
    attempts = await display.evaluate(
        "() => ({ ...window.__attempts, ago: performance.now() - window.__attempts.last })"
    )
    # It kept trying all minute, never more than the capped delay apart.
    assert attempts["count"] >= OFFLINE_S // 4, attempts
    assert attempts["ago"] < 4_500, attempts
    back = time.monotonic()
    await display.context.set_offline(False)
    await display.wait_for_function(
        "() => document.querySelector('[data-connection]').dataset.connection === 'live'",
        timeout=15_000,
    )
    took = time.monotonic() - back
    assert took < RECOVER_WITHIN_S, took
    await shows_the_servers_view(display, server, class_id)
    assert await untouched(display), "the display was reloaded"


async def test_a_screen_reloads_itself_after_an_upgrade_that_changes_the_assets(
    server: Server, new_page: NewPage
) -> None:
    _, phone, display, class_id = await open_three_screens(server, new_page)
    participant = int(
        await phone.locator("[data-participant]").get_attribute("data-participant") or 0
    )
    old = await display.evaluate("() => window.classroomScreen.view.version")
    assert old == await phone.evaluate("() => window.classroomScreen.view.version")
    server.kill()
    await expect(phone.locator("[data-connection]")).not_to_have_attribute(
        "data-connection", "live"
    )
    plus = phone.get_by_role("button", name="Add one rep")
    for _ in range(3):  # waiting in localStorage when the new version arrives
        await plus.tap()

    server.env["CLASSROOM_ASSET_SALT"] = "upgraded"  # as if the static files had changed
    server.start()
    for page in (phone, display):
        await page.wait_for_function("() => window.__untouched === undefined", timeout=15_000)
        await live(page)
        version = await page.evaluate("() => window.classroomScreen.view.version")
        assert version and version != old, (version, old)
        script = await page.locator('script[src*="classroom.js"]').get_attribute("src")
        assert script and script.endswith(f"?v={version}"), script
        await mark(page)
    # The reloaded phone sent what was waiting, once each.
    await phone.wait_for_function(
        "() => window.classroomScreen.outbox.items.length === 0", timeout=10_000
    )
    assert len(scores_of(server, participant)) == 3
    await expect(phone.locator("[data-my-score]")).to_have_text("3")
    await shows_the_servers_view(display, server, class_id)
    # Once reloaded, they stay: no loop.
    await asyncio.sleep(2)
    for page in (phone, display):
        assert await untouched(page)
