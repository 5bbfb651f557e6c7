"""Screens agree on the remaining time whatever their own clocks say.

Four screens of one class, each with its clock set wrong by an init script (two
phones at +5 s and -5 s, the console at +2 s, the display at -3 s: ``Date`` and
``performance.timeOrigin`` are shifted, as on a device whose clock is off). The
script keeps the true time in ``window.__trueNow`` for the test.

Each screen's remaining time is read from its screen model
(``classroomScreen.remainingMs()``) with the true instant of the reading, and
compared with the server's: the deadline the server sends every screen
(``ends_at``, from a socket of the test's own) against the server's own clock
(``registry.clock``, read in the server's process). The readings of a round are
taken together but not at one instant, so each is brought to a common instant
with the true clock; what is left is each screen's error.

The digits are checked too: every screen records the true instant its countdown
changes, and the same change happens on every screen, and on the second by the
server's clock, within 100 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live, routine_server
from tests.browser.test_first_class import display_link, join, open_class, sign_in, start
from tests.conftest import LiveServer
from tests.helpers import receive

pytestmark = pytest.mark.browser

ROUTINE = """\
title: One long plank
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Plank
    duration: 90
    exercise: {name: Plank}
"""
SKEWED_CLOCK = """
(skew => {
  const TrueDate = Date;
  const trueNow = TrueDate.now.bind(TrueDate);
  const trueOrigin = performance.timeOrigin;
  window.__trueNow = trueNow;
  class SkewedDate extends TrueDate {
    constructor(...args) {
      if (args.length) super(...args);
      else super(trueNow() + skew);
    }
    static now() {
      return trueNow() + skew;
    }
  }
  window.Date = SkewedDate;
  Object.defineProperty(performance, "timeOrigin", { get: () => trueOrigin + skew });
})(%d);
"""
# Each screen records the true instant its countdown text changes.
WATCH_FLIPS = """() => {
  window.__flips = [];
  const el = document.querySelector('[data-field="countdown"]');
  new MutationObserver(() => window.__flips.push([el.textContent, window.__trueNow()]))
    .observe(el, { childList: true, characterData: true, subtree: true });
}"""
READ = """() => ({
  remaining: window.classroomScreen.remainingMs(),
  at: window.__trueNow(),
  skewed: Date.now(),
})"""
TOLERANCE_MS = 100
ROUNDS = 30


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from routine_server(migrated_url, tmp_path, "plank", ROUTINE)


async def skewed_page(
    new_page: NewPage, server: LiveServer, device: dict[str, Any], skew_ms: int
) -> Page:
    page = await new_page(server, device)
    await page.add_init_script(SKEWED_CLOCK % skew_ms)
    return page


def server_clock_offset(server: LiveServer) -> float:
    """The server's clock minus this machine's true clock, in ms."""
    clock = server.state.registry.clock
    before = time.time() * 1000
    server_now = clock.now_ms()
    after = time.time() * 1000
    return float(server_now - (before + after) / 2)


async def test_screens_with_skewed_clocks_show_the_same_remaining_time(
    server: LiveServer, new_page: NewPage
) -> None:
    console = await skewed_page(new_page, server, TABLET, 2_000)
    await sign_in(console)
    code = await open_class(console)
    class_id = int(console.url.rsplit("/", 1)[1])
    display = await skewed_page(new_page, server, WALL, -3_000)
    await display.goto(await display_link(console))
    fast = await skewed_page(new_page, server, PHONE, 5_000)
    slow = await skewed_page(new_page, server, PHONE, -5_000)
    await join(fast, code, "Fast")
    await join(slow, code, "Slow")
    screens = {"console": console, "display": display, "fast phone": fast, "slow phone": slow}
    for page in screens.values():
        await live(page)
    skews = {
        name: await page.evaluate("() => Date.now() - window.__trueNow()")
        for name, page in screens.items()
    }
    assert [round(s / 1000) for s in skews.values()] == [2, -3, 5, -5], skews

    await start(console)
    for page in screens.values():
        await expect(page.locator('[data-field="segment"]')).to_have_text("Plank")
        # Clock sync has had its round trips (not just the snapshot's server_now).
        await page.wait_for_function("() => window.classroomScreen.bestRtt < Infinity")
        await page.evaluate(WATCH_FLIPS)
    token = server.state.tokens.display(class_id)
    async with websockets.connect(f"{server.ws_url}/ws/classes/{class_id}?token={token}") as ws:
        snapshot = await receive(ws)
    ends_at = snapshot["ends_at"]  # the server's deadline for the segment, on its own clock
    assert snapshot["segment"]["name"] == "Plank" and isinstance(ends_at, int), snapshot

    errors: dict[str, list[float]] = {name: [] for name in screens}
    spread: list[float] = []
    gaps: list[float] = []
    for _ in range(ROUNDS):
        offset = server_clock_offset(server)
        readings = await asyncio.gather(*(page.evaluate(READ) for page in screens.values()))
        gaps.append(max(r["at"] for r in readings) - min(r["at"] for r in readings))
        common = readings[0]["at"]  # bring every reading to one true instant
        remaining = []
        for name, reading in zip(screens, readings, strict=True):
            assert reading["remaining"] is not None, (name, reading)
            at_common = reading["remaining"] + (reading["at"] - common)
            remaining.append(at_common)
            server_remaining = ends_at - (common + offset)
            errors[name].append(at_common - server_remaining)
        spread.append(max(remaining) - min(remaining))
        await asyncio.sleep(0.1)

    report = {name: (round(min(e)), round(max(e))) for name, e in errors.items()}
    for name, error in errors.items():
        assert max(abs(e) for e in error) < TOLERANCE_MS, (name, report)
    assert max(spread) < TOLERANCE_MS, (spread, report)
    print(
        f"errors vs the server (ms): {report}; spread between screens {max(spread):.0f} ms; "
        f"readings of a round {statistics.median(gaps):.0f} ms apart (median)"
    )

    # The digits: every screen shows each second at the same true instant.
    flips = {name: await page.evaluate("() => window.__flips") for name, page in screens.items()}
    offset = server_clock_offset(server)
    late: list[float] = []
    for name, changes in flips.items():
        shown = [text for text, _ in changes]
        assert len(shown) >= 3, (name, changes)
        for text, at in changes:
            minutes, seconds = (int(part) for part in text.split(":"))
            # "1:05" appears when 65 s are left: at ends_at - 65 s by the server's clock.
            due = ends_at - (minutes * 60 + seconds) * 1000 - offset
            late.append(at - due)
            assert abs(at - due) < TOLERANCE_MS, (name, text, at - due, changes)
    print(
        f"countdown changes {statistics.median(late):.0f} ms after the second (median), "
        f"{max(late):.0f} ms at most"
    )
