"""Cues in a real browser: the wall's beeps and speech, the phone's vibration, wake locks.

Headless Chromium has no voices and no speaker to listen to, and we can't feel a
phone buzz, so tests/browser/data/device_stubs.js stands in for speechSynthesis,
AudioContext, navigator.vibrate, navigator.wakeLock and the page's visibility, and
records every call in ``window.__calls``. A real class runs through the console:

    lead-in (4 s)  "Get ready: Jumping jacks", then 3-2-1
    Jumping jacks  6 s: "keep it up" at 1 s, "nice and steady" at 2 s (it waits its
                   turn), "almost there" at 5 s (cut short by the next segment's cue), 3-2-1
    Rest           4 s: "Next: Squats", 3-2-1
    Squats         3 s, the last: no 3-2-1

Each utterance takes the stub 1.5 s, so the cues above crowd the voice on purpose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from classroom.db.routines import RoutineSource
from tests.browser.conftest import HERE, PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_first_class import display_link, join, open_class, sign_in, start
from tests.conftest import LiveServer, run_server, seed, settings_for

pytestmark = pytest.mark.browser

ROUTINE = """\
title: Cue check
lead_in: 4
auto_cues: {halfway: false, last_round: false}
blocks:
  - type: work
    name: Jumping jacks
    duration: 6
    cues: ["at 0:01: keep it up", "at 0:02: nice and steady", "1s before the end: almost there"]
  - type: rest
    name: Rest
    duration: 4
  - type: work
    name: Squats
    duration: 3
"""
SPOKEN = [
    "Get ready: Jumping jacks",
    "keep it up",
    "nice and steady",
    "almost there",
    "Next: Squats",
]
COUNT, GO, NO_VOICE = 880, 1320, 660  # the tones' pitches (static/cues.js TONES)
# 3-2-1 before the first segment, the rest and the squats; "go" as each starts and at the end.
TONES = [COUNT] * 3 + [GO] + [COUNT] * 3 + [GO] + [COUNT] * 3 + [GO, GO]
STUBS = (HERE / "data" / "device_stubs.js").read_text()
PHASE = "[data-timer]"


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("cue-check", "Cue check", "yaml", ROUTINE)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


async def device(
    new_page: NewPage, server: LiveServer, kind: dict[str, Any], **stub: object
) -> Page:
    """A page whose speech, audio, vibration and wake lock are the recording stubs."""
    page = await new_page(server, kind)
    await page.add_init_script(f"window.__stub = {json.dumps(stub)};")
    await page.add_init_script(STUBS)
    return page


async def console_and_wall_link(new_page: NewPage, server: LiveServer) -> tuple[Page, str]:
    """The console of a class just opened (live), and the class's display link."""
    console = await device(new_page, server, TABLET)
    await sign_in(console)
    await open_class(console)
    await live(console)
    return console, await display_link(console)


async def calls(page: Page, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate(
        "(kind) => window.__calls.filter((call) => call.type === kind)", kind
    )
    return found


async def tones(page: Page) -> list[int]:
    return [call["hz"] for call in await calls(page, "tone")]


async def heard(page: Page) -> list[str]:
    """What the page's aria-live cue region said."""
    return [call["text"] for call in await calls(page, "live") if call["region"] == "cue"]


async def finished(page: Page) -> None:
    await expect(page.locator(PHASE)).to_have_attribute("data-phase", "finished", timeout=30_000)


async def test_the_wall_beeps_3_2_1_and_speaks_the_other_cues_one_at_a_time(
    server: LiveServer, new_page: NewPage
) -> None:
    console, link = await console_and_wall_link(new_page, server)
    # One wall is switched on from the console; one by its kiosk setting, and it has no voice.
    spoken = await device(new_page, server, WALL)
    await spoken.goto(link)
    voiceless = await device(new_page, server, WALL, voices=False)
    await voiceless.goto(f"{link}&sound=on")
    for page in (spoken, voiceless):
        await live(page)
    await expect(voiceless.locator("body")).to_have_attribute("data-sound", "on")
    await expect(spoken.locator("body")).to_have_attribute("data-sound", "off")
    assert await calls(spoken, "audio_context") == []  # nothing made until sound is on
    assert len(await calls(spoken, "wake_lock")) == 1  # the wall stays awake in the lobby

    await console.get_by_role("button", name="Wall sound on").tap()
    status = console.locator("[data-wall-sound-status]")
    await expect(status).to_have_text("Wall sound on: sent to 2 displays.")
    await expect(spoken.locator("body")).to_have_attribute("data-sound", "on")
    assert await spoken.evaluate("localStorage.getItem('classroom.sound')") == "on"
    assert len(await calls(spoken, "audio_context")) == 1
    # A wall that opens after the switch was sent stays quiet: sound is off until switched on.
    quiet = await device(new_page, server, WALL)
    await quiet.goto(link)
    await live(quiet)

    await start(console)
    for page in (spoken, voiceless, quiet):
        await finished(page)  # the wall moves on to the results 10 s later: read it now

    speech = await calls(spoken, "speak")
    assert [call["text"] for call in speech] == SPOKEN
    assert not any(call["overlapping"] for call in speech)
    assert {call["lang"] for call in speech} == {"en"}
    # "almost there" was still being said when the rest began: it was cut, then "Next: …".
    cancels = [call for call in await calls(spoken, "cancel") if call["speaking"]]
    assert len(cancels) == 1 and speech[3]["t"] <= cancels[0]["t"] <= speech[4]["t"]
    assert await tones(spoken) == TONES

    # No voice: each spoken cue is two short beeps instead.
    assert await calls(voiceless, "speak") == []
    heard_tones = await tones(voiceless)
    assert [hz for hz in heard_tones if hz != NO_VOICE] == TONES
    assert heard_tones.count(NO_VOICE) == 2 * len(SPOKEN)

    for kind in ("audio_context", "speak", "tone"):
        assert await calls(quiet, kind) == [], kind
    # Every screen still shows each cue in its polite aria-live region.
    for page in (console, spoken, quiet):
        said = await heard(page)
        assert "Next: Squats" in said and "Get ready: Jumping jacks" in said, said
    for page in (spoken, quiet):
        await page.wait_for_function("() => window.__wakeLocksHeld() === 0")
        assert [call["by"] for call in await calls(page, "wake_release")] == ["page"]


async def test_the_phone_vibrates_at_cues_beeps_if_asked_and_stays_awake_while_running(
    server: LiveServer, new_page: NewPage
) -> None:
    console = await device(new_page, server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    phone = await device(new_page, server, PHONE)
    await join(phone, code, "Alex")
    beeping = await device(new_page, server, PHONE)
    await join(beeping, code, "Bo")
    # Vibration is on and beeps are off, until switched: the phone remembers the choice.
    await expect(phone.get_by_label("Vibrate")).to_be_checked()
    beep = beeping.get_by_label("Beep")
    await expect(beep).not_to_be_checked()
    await beep.tap()
    await beeping.reload()
    await expect(beeping.get_by_label("Beep")).to_be_checked()
    for page in (console, phone, beeping):
        await live(page)
    assert await calls(phone, "wake_lock") == []  # the lobby may sleep

    await start(console)
    await expect(phone.locator('[data-field="segment"]')).to_have_text("Jumping jacks")
    locks = await calls(phone, "wake_lock")
    assert len(locks) == 1 and locks[0]["kind"] == "screen"
    # The phone goes to the background (the browser lets go of the lock) and comes back.
    await phone.evaluate("() => window.__setHidden(true)")
    assert [call["by"] for call in await calls(phone, "wake_release")] == ["browser"]
    await phone.evaluate("() => window.__setHidden(false)")
    await phone.wait_for_function("() => window.__wakeLocksHeld() === 1")
    assert len(await calls(phone, "wake_lock")) == 2

    for page in (phone, beeping):
        await finished(page)
    await phone.wait_for_function("() => window.__wakeLocksHeld() === 0")
    assert [call["by"] for call in await calls(phone, "wake_release")] == ["browser", "page"]

    buzzes = [call["pattern"] for call in await calls(phone, "vibrate")]
    assert buzzes.count([80]) == 9  # 3-2-1, three times
    assert buzzes.count([300]) == 4  # each segment's start, and the end
    assert buzzes.count([120, 80, 120]) == len(SPOKEN)
    assert await calls(phone, "audio_context") == [] and await tones(phone) == []
    assert [hz for hz in await tones(beeping) if hz != NO_VOICE] == TONES
    assert "Next: Squats" in await heard(phone)


async def test_a_wall_refused_audio_asks_for_one_click_and_remembers_its_setting(
    server: LiveServer, new_page: NewPage
) -> None:
    console, link = await console_and_wall_link(new_page, server)
    wall = await device(new_page, server, WALL, audioBlocked=True)
    await wall.goto(f"{link}&sound=on")
    await live(wall)
    hint = wall.get_by_role("button", name="Click to enable sound")
    await expect(hint).to_be_visible()
    await expect(wall.locator("body")).to_have_attribute("data-sound", "refused")
    # The console's switch can't get round the browser's policy either.
    await console.get_by_role("button", name="Wall sound on").tap()
    status = console.locator("[data-wall-sound-status]")
    await expect(status).to_have_text("Wall sound on: sent to 1 display.")
    await wall.wait_for_function(
        "() => window.__calls.filter((c) => c.type === 'resume').length === 2"
    )
    await expect(hint).to_be_visible()
    await hint.click()
    await expect(hint).to_be_hidden()
    await expect(wall.locator("body")).to_have_attribute("data-sound", "on")
    assert [call["allowed"] for call in await calls(wall, "resume")] == [False, False, True]

    # ?sound=off switches it off, and the wall remembers that without the parameter.
    for url in (f"{link}&sound=off", link):
        await wall.goto(url)
        await live(wall)
        await expect(wall.locator("body")).to_have_attribute("data-sound", "off")
        await expect(hint).to_be_hidden()
        assert await calls(wall, "audio_context") == []

    # The cue's entrance animation is left out for those who ask for less motion.
    cue = wall.locator('[data-field="cue"]')
    await wall.evaluate("() => window.classroomScreen.showCue('Go')")
    animation = "(el) => getComputedStyle(el).animationName"
    assert await cue.evaluate(animation) == "cue-in"
    await wall.emulate_media(reduced_motion="reduce")
    assert await cue.evaluate(animation) == "none"
