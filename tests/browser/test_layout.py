"""The screens' layout, measured in Chromium: sizes, overflow, touch targets, motion, text.

- the wall: the countdown is at least 30% of the screen's height at 1920x1080 and at
  3840x2160, and nothing scrolls, in every state and on the results after the class;
- the phone, at 360x640 and 390x844: no element sticks out of the screen sideways, and
  the parts of the screen don't overlap;
- the console: every control is at least 44x44 CSS pixels;
- with `prefers-reduced-motion: reduce`, nothing moves;
- text grows with the browser's font size.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize

from tests.browser.conftest import PHONE, NewPage
from tests.browser.screens import STATES, open_screens
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

WALLS = (ViewportSize(width=1920, height=1080), ViewportSize(width=3840, height=2160))
PHONES = (ViewportSize(width=360, height=640), ViewportSize(width=390, height=844))
MIN_TARGET = 44  # CSS pixels, WCAG 2.5.5

SCROLLS = """() => {
    const doc = document.documentElement;
    return {width: doc.scrollWidth - doc.clientWidth, height: doc.scrollHeight - doc.clientHeight};
}"""

# Visible elements whose box reaches past the left or right edge of the screen.
STICKING_OUT = """() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.body.querySelectorAll("*")) {
        const box = el.getBoundingClientRect();
        if (!box.width || !box.height || el.closest(".visually-hidden")) continue;
        if (box.left < -0.5 || box.right > width + 0.5) {
            out.push(`${el.tagName.toLowerCase()}.${el.className} ${box.left}..${box.right}`);
        }
    }
    return out;
}"""

# Pairs of visible siblings (under `selector`) whose boxes overlap.
OVERLAPS = """(selector) => {
    const pairs = [];
    for (const parent of document.querySelectorAll(selector)) {
        const kids = [...parent.children].filter((el) => {
            const box = el.getBoundingClientRect();
            return box.width > 0 && box.height > 0 && getComputedStyle(el).position !== "absolute";
        });
        for (let i = 0; i < kids.length; i++) {
            for (let j = i + 1; j < kids.length; j++) {
                const a = kids[i].getBoundingClientRect();
                const b = kids[j].getBoundingClientRect();
                const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
                const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
                if (x > 0.5 && y > 0.5) pairs.push(`${kids[i].className} / ${kids[j].className}`);
            }
        }
    }
    return pairs;
}"""

# Controls someone taps on the console, with their size: the label stands for a
# radio button or a checkbox, as tapping it is how one sets them.
TARGETS = """() => {
    const found = [];
    const controls = "button, a.button, select, summary, input:not([type=hidden])";
    for (const el of document.querySelectorAll(controls)) {
        if (!el.checkVisibility()) continue;
        const choice = el.matches("input[type=radio], input[type=checkbox]");
        const target = choice ? el.closest("label") || el : el;
        const box = target.getBoundingClientRect();
        found.push({what: target.outerHTML.slice(0, 80), width: box.width, height: box.height});
    }
    return found;
}"""


async def wall_checks(page: Page, state: str) -> None:
    for size in WALLS:
        await page.set_viewport_size(size)
        where = f"wall {size['width']}x{size['height']} in the {state}"
        assert await page.evaluate(SCROLLS) == {"width": 0, "height": 0}, where
        if state in ("work", "rest", "paused"):
            countdown = await page.locator('[data-field="countdown"]').bounding_box()
            assert countdown is not None, where
            assert countdown["height"] >= 0.3 * size["height"], (where, countdown)
            assert countdown["y"] >= 0 and countdown["y"] + countdown["height"] <= size["height"]
            assert countdown["x"] >= 0 and countdown["x"] + countdown["width"] <= size["width"]
        for part in (".timer-segment", ".timer-head", ".timer-next", ".timer-progress"):
            found = page.locator(f".wall {part}")
            box = await found.bounding_box() if await found.count() else None
            if box is not None:  # shown in this state: wholly on the screen
                assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (where, part)
    await page.set_viewport_size(WALLS[0])


async def phone_checks(page: Page, state: str) -> None:
    for size in PHONES:
        await page.set_viewport_size(size)
        where = f"phone {size['width']}x{size['height']} in the {state}"
        assert await page.evaluate(STICKING_OUT) == [], where
        assert (await page.evaluate(SCROLLS))["width"] == 0, where
        overlaps = await page.evaluate(OVERLAPS, ".play, .timer, .scoring, .score-input, .boards")
        assert overlaps == [], (where, overlaps)
    await page.set_viewport_size(PHONE["viewport"])


async def console_checks(page: Page, state: str) -> None:
    small = [
        t
        for t in await page.evaluate(TARGETS)
        if t["width"] < MIN_TARGET or t["height"] < MIN_TARGET
    ]
    assert small == [], f"console in the {state}: controls under {MIN_TARGET}px: {small}"


async def test_every_screen_fits_in_every_state(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    screens = await open_screens(showcase_server, new_page)
    await screens.console.locator("#roster h2").wait_for()  # the roster has loaded
    for state in STATES:
        await screens.go(state)
        await wall_checks(screens.display, state)
        await phone_checks(screens.phone, state)
        await console_checks(screens.console, state)
    # After the class, the wall moves on to the results: no cursor, no scrollbars there either.
    results = await screens.display.get_attribute(".wall", "data-results-url")
    assert results
    await screens.display.goto(results)
    await wall_checks(screens.display, "results")
    assert await screens.display.evaluate("getComputedStyle(document.body).cursor") == "none"


MOTION = """() => {
    const bar = document.querySelector(".timer-progress-fill");
    const button = document.querySelector(".button");
    return [getComputedStyle(bar).transitionDuration, getComputedStyle(button).transitionDuration];
}"""


async def test_reduced_motion_stops_transitions(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    screens = await open_screens(showcase_server, new_page)
    await screens.go("work")
    page = screens.phone
    assert all(d != "0s" for d in await page.evaluate(MOTION))
    await page.emulate_media(reduced_motion="reduce")
    assert await page.evaluate(MOTION) == ["0s", "0s"]
    cue = page.locator('[data-field="cue"]')
    await cue.evaluate("(el) => { el.textContent = 'Go!'; }")
    assert await cue.evaluate("(el) => getComputedStyle(el).animationName") == "none"


SIZES = """() => {
    const parts = [".class-title", ".timer-label", ".timer-segment", ".timer-next", ".my-score",
                   ".score-undo", ".connection"];
    const size = (s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize);
    return Object.fromEntries(parts.map((s) => [s, size(s)]));
}"""


async def font_sizes(page: Page, standard: int) -> dict[str, Any]:
    """The phone's text sizes with the browser's default font size set to ``standard`` px."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Page.setFontSizes", {"fontSizes": {"standard": standard, "fixed": standard}})
    sizes: dict[str, Any] = await page.evaluate(SIZES)
    await cdp.detach()
    return sizes


async def test_text_grows_with_the_browser_font_size(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    screens = await open_screens(showcase_server, new_page)
    await screens.go("work")
    page = screens.phone
    normal = await font_sizes(page, 16)
    large = await font_sizes(page, 24)
    for selector, size in normal.items():
        assert large[selector] >= size * 1.4, (selector, size, large[selector])
    # Bigger text wraps; it doesn't push anything off the side of the screen.
    assert await page.evaluate(STICKING_OUT) == []
    await font_sizes(page, 16)
