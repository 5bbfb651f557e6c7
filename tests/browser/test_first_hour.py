"""What a gym meets in its first hour with classroom, in a real browser.

A tablet console, phones and a wall, at their real sizes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live, routine_server
from tests.browser.screens import open_screens
from tests.browser.test_csp import settled
from tests.browser.test_display_pairing import add_room, end_class, pair, pairing_code
from tests.browser.test_first_class import (
    COUNTDOWN,
    SEGMENT,
    display_link,
    join,
    open_class,
    seconds,
    sign_in,
    start,
)
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

LEAD_IN = """
title: Lead-in
lead_in: 8
auto_cues: {countdown: false, halfway: false, next: false, last_round: false}
blocks:
  - type: work
    name: Squats
    duration: 20
    exercise: {name: Squats}
    score: reps
"""


@pytest.fixture
def lead_in_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from routine_server(migrated_url, tmp_path, "lead-in", LEAD_IN)


async def console_and_wall(server: LiveServer, new_page: NewPage) -> tuple[Page, str, Page]:
    """A console that opened a class (and its join code), and a wall live on the class."""
    console = await new_page(server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    wall = await new_page(server, WALL)
    await wall.goto(await display_link(console))
    await live(wall)
    return console, code, wall


async def screens_of_a_class(server: LiveServer, new_page: NewPage) -> tuple[Page, Page, Page]:
    """A console, a phone that has joined and a wall, each live on one open class."""
    console, code, wall = await console_and_wall(server, new_page)
    await live(console)
    phone = await new_page(server, PHONE)
    await join(phone, code, "Alex")
    await live(phone)
    return console, phone, wall


async def squats_under_way(server: LiveServer, new_page: NewPage) -> tuple[Page, Page, Locator]:
    """A console and a phone in the lead-in routine's Squats (the lead-in skipped), and
    the phone's +1."""
    console, phone, _ = await screens_of_a_class(server, new_page)
    await start(console)
    await console.get_by_role("button", name="Next").tap()  # past the lead-in
    return console, phone, phone.get_by_role("button", name="+1: add one rep")


async def test_every_connected_screen_counts_the_lead_in_down(
    lead_in_server: LiveServer, new_page: NewPage
) -> None:
    screens = await screens_of_a_class(lead_in_server, new_page)
    await start(screens[0])
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Get ready")
    shown = await asyncio.gather(*(page.locator(COUNTDOWN).inner_text() for page in screens))
    for text in shown:
        assert text != "--:--"
        assert 1 <= seconds(text) <= 8, shown
    # ... and it counts: each screen's digits change within a second and a bit.
    for page, text in zip(screens, shown, strict=True):
        await expect(page.locator(COUNTDOWN)).not_to_have_text(text, timeout=2_000)
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Squats", timeout=10_000)


async def test_the_join_page_names_the_class_fills_in_a_free_nickname_and_cuts_nothing(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    await join(await new_page(live_server, PHONE), code, "Robin")

    phone = await new_page(live_server, PHONE)
    await phone.goto(f"/j/{code}")
    # Before anyone types a name: which class, whose, and when.
    await expect(phone.locator("[data-joining]")).to_have_text(
        re.compile(r"Quick test\s+with Coach\s+· starting soon")
    )
    nickname = phone.get_by_label("Nickname")
    await nickname.fill("Robin")
    await phone.get_by_role("button", name="Join").tap()
    await expect(phone.get_by_role("alert")).to_contain_text("How about Robin2?")
    await expect(nickname).to_have_value("Robin2")  # one tap from joining
    # A name over 24 characters is not cut short without a word: it comes back whole.
    long = "Alexandra-Konstantinopoulou"  # 27 characters
    await nickname.fill(long)
    await expect(nickname).to_have_value(long)
    await phone.get_by_role("button", name="Join").tap()
    await expect(phone.get_by_role("alert")).to_have_text(
        "Nicknames are at most 24 characters; this one has 27."
    )
    await expect(nickname).to_have_value(long)
    await nickname.fill("Robin2")
    await phone.get_by_role("button", name="Join").tap()
    await expect(phone).to_have_url(re.compile(r"/play/\d+$"))


async def test_a_finished_class_s_code_says_it_has_ended_and_leads_to_its_results(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    code = await open_class(console)
    took_part = await new_page(live_server, PHONE)
    await join(took_part, code, "Robin")
    await live(console)
    await start(console)
    await end_class(console)

    stranger = await new_page(live_server, PHONE)
    await stranger.goto(f"/j/{code}")
    await expect(stranger.get_by_role("heading", level=1)).to_have_text("Quick test has ended")
    await expect(stranger.get_by_label("Nickname")).to_have_count(0)  # no form to fill in
    await expect(stranger.get_by_role("link", name="Results of this class")).to_be_visible()

    await took_part.goto(f"/j/{code}")
    await expect(took_part.get_by_role("heading", level=1)).to_have_text("Quick test has ended")
    await took_part.get_by_role("link", name="Your results").tap()
    await expect(took_part.get_by_role("heading", name="Results: Quick test")).to_be_visible()


async def test_in_the_lobby_no_team_leads_with_nothing(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    screens = await open_screens(showcase_server, new_page)
    line = screens.phone.locator("[data-my-team]")
    await expect(line).to_contain_text("no scores yet")
    await expect(line).not_to_contain_text("leading")
    await expect(line).not_to_contain_text("pts")


async def test_the_wall_lobby_of_a_class_without_teams_shows_its_title(
    live_server: LiveServer, new_page: NewPage
) -> None:
    _, _, wall = await console_and_wall(live_server, new_page)
    title = wall.get_by_role("heading", level=1, name="Quick test")
    await expect(title).to_be_visible()
    box = await title.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 30, box
    qr = await wall.locator("[data-lobby] .qr svg").bounding_box()
    assert qr is not None and qr["y"] >= box["y"] + box["height"], (box, qr)  # below it


async def test_the_wall_lobby_shows_names_arriving_and_hides_those_asked(
    live_server: LiveServer, new_page: NewPage
) -> None:
    _, code, wall = await console_and_wall(live_server, new_page)
    names = wall.locator("[data-joined-names] li")
    await expect(names).to_have_count(0)
    await join(await new_page(live_server, PHONE), code, "Robin")
    await expect(names).to_have_text(["Robin"])
    hidden = await new_page(live_server, PHONE)
    await hidden.goto(f"/j/{code}")
    await hidden.get_by_label("Nickname").fill("Secret Sam")
    await hidden.get_by_label("Hide my name from public boards").check()
    await hidden.get_by_role("button", name="Join").tap()
    await expect(hidden).to_have_url(re.compile(r"/play/\d+$"))
    await expect(names).to_have_text(["Athlete 2", "Robin"])  # the newest first
    await wall.reload()  # the page as served says the same
    await expect(names).to_have_text(["Athlete 2", "Robin"])
    await expect(wall.locator("[data-lobby]")).not_to_contain_text("Secret Sam")


async def test_pairing_a_wall_again_under_its_name_replaces_the_old_entry(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    await add_room(console, "Studio A")
    first = await new_page(live_server, WALL)
    await first.goto("/display")
    await pair(console, await pairing_code(first), "Studio A", "Front wall")
    # The wall's browser forgets its secret (a new kiosk profile): paired again.
    again = await new_page(live_server, WALL)
    await again.goto("/display")
    await pair(console, await pairing_code(again), "Studio A", "front wall")
    await expect(console.locator(".room-display")).to_have_count(1)
    await expect(console.locator(".room-display")).to_contain_text("front wall")
    # Another name is another screen: both stay.
    side = await new_page(live_server, WALL)
    await side.goto("/display")
    await pair(console, await pairing_code(side), "Studio A", "Side wall")
    await expect(console.locator(".room-display")).to_have_count(2)


async def test_the_console_home_puts_the_open_class_first(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console, code, _ = await console_and_wall(live_server, new_page)
    await console.goto("/console")
    now = console.get_by_role("heading", name="Now")
    await expect(now).to_be_visible()
    open_a_class = console.get_by_role("heading", name="Open a class")
    now_box, open_box = await now.bounding_box(), await open_a_class.bounding_box()
    assert now_box and open_box and now_box["y"] < open_box["y"]
    assert now_box["y"] < 820, "the open class is on the tablet's first screen"
    current = console.locator(".current-classes li")
    await expect(current).to_have_count(1)
    await expect(current).to_contain_text(f"code {code} · in the lobby")
    await current.get_by_role("link", name="Quick test").click()
    await expect(console.locator("[data-join-code]")).to_have_text(code)


async def test_undo_sits_a_thumb_clear_of_plus_one(
    lead_in_server: LiveServer, new_page: NewPage
) -> None:
    _, phone, plus = await squats_under_way(lead_in_server, new_page)
    undo = phone.get_by_role("button", name="Undo last rep")
    await expect(plus).to_be_visible()
    above, below = await plus.bounding_box(), await undo.bounding_box()
    assert above is not None and below is not None
    assert below["y"] - (above["y"] + above["height"]) >= 48, (above, below)
    assert below["height"] >= 48  # still a real target when it is meant


EMOM = """
title: EMOM
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false}
blocks:
  - type: emom
    minutes: 2
    moves:
      - {name: Kettlebell swings, reps: 15}
      - {name: Goblet squats, reps: 12}
"""


@pytest.fixture
def emom_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from routine_server(migrated_url, tmp_path, "emom", EMOM)


async def test_an_emom_minutes_rep_target_is_on_every_screen(
    emom_server: LiveServer, new_page: NewPage
) -> None:
    screens = await screens_of_a_class(emom_server, new_page)
    await start(screens[0])
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Kettlebell swings")
        await expect(page.locator('[data-field="target"]')).to_have_text("Target: 15 reps")
    await screens[0].get_by_role("button", name="Next").tap()
    for page in screens:
        await expect(page.locator(SEGMENT)).to_have_text("Goblet squats")
        await expect(page.locator('[data-field="target"]')).to_have_text("Target: 12 reps")


async def test_during_the_rest_the_phone_says_what_you_just_did(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console, phone, _ = await screens_of_a_class(live_server, new_page)
    await start(console)
    plus = phone.get_by_role("button", name="+1: add one rep")
    for _ in range(3):
        await plus.tap()
    await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
    last = phone.locator("[data-my-last]")
    await expect(last).to_be_hidden()  # while the segment runs, the score shows instead
    await console.get_by_role("button", name="Next").tap()
    await expect(phone.locator(SEGMENT)).to_have_text("Rest")
    await expect(last).to_have_text("Squats: you did 3 reps")
    await phone.reload()  # remembered on the phone
    await expect(last).to_have_text("Squats: you did 3 reps")


async def test_after_a_correction_the_phone_shows_the_corrected_value_as_its_own(
    lead_in_server: LiveServer, new_page: NewPage
) -> None:
    console, phone, plus = await squats_under_way(lead_in_server, new_page)
    for _ in range(3):
        await plus.tap()
    yours = phone.locator("[data-my-score]")
    await expect(yours).to_have_text("3")
    # The instructor saw 7 (a phone left in a bag), and corrects it on the score sheet.
    class_page = console.url
    await console.goto(f"{class_page}/scores")
    row = console.locator("form.score-fix").filter(has=console.locator("button", has_text="Alex"))
    await row.get_by_label("Reps").fill("7")
    await row.get_by_role("button", name="Correct Alex").click()
    await expect(yours).to_have_text("7")
    await expect(phone.locator("[data-my-board]")).to_contain_text("7 reps")
    await phone.reload()  # kept on the phone
    await expect(yours).to_have_text("7")


SHORT = """
title: Short
lead_in: 0
auto_cues: {countdown: true, halfway: false, next: false, last_round: false}
blocks:
  - {type: work, name: Plank, duration: 6}
  - {type: rest, name: Rest, duration: 10}
"""


@pytest.fixture
def short_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from routine_server(migrated_url, tmp_path, "short", SHORT)


async def test_after_plus_30_s_the_bar_spans_the_longer_segment_and_the_3_2_1_goes(
    short_server: LiveServer, new_page: NewPage
) -> None:
    screens = await screens_of_a_class(short_server, new_page)
    console = screens[0]
    await start(console)
    for page in screens:
        await expect(page.locator('[data-field="cue"]')).to_have_text("3", timeout=8_000)
    await console.get_by_role("button", name="+30 s").tap()
    for page in screens:
        await expect(page.locator('[data-field="cue"]')).to_have_text("", timeout=2_000)
        await expect(page.locator(COUNTDOWN)).to_have_text(re.compile(r"0:3[1-3]"))
        part = await page.evaluate(
            """() => Number(/scaleX\\(([\\d.]+)\\)/.exec(
                document.querySelector('[data-field="segment-progress"]').style.transform)[1])"""
        )
        # About 3 s of 36: the bar shows the segment so far, not nothing.
        assert 0.04 < part < 0.2, part


@pytest.mark.parametrize("kind", ["emom", "amrap"])
async def test_the_builders_move_rows_fit_the_tablet(
    live_server: LiveServer, new_page: NewPage, kind: str
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    await console.goto("/console/routines/new")
    await console.locator("#new-kind").select_option(kind)
    await console.get_by_role("button", name="+ Add block").click()
    block = console.locator(f'.routine-block[data-kind="{kind}"]').last
    await expect(block).to_be_visible()
    await block.get_by_role("button", name="+ Add a move").click()
    block = console.locator(f'.routine-block[data-kind="{kind}"]').last
    rows = block.locator(".routine-exercise")
    await expect(rows).to_have_count(2)  # the starter move and the new one
    await settled(console)  # the builder swapped in whole, and checked
    edge = await block.bounding_box()
    assert edge is not None
    for i in range(await rows.count()):
        for part in (rows.nth(i).get_by_label("Reps"), rows.nth(i).locator(".routine-remove")):
            box = await part.bounding_box()
            assert box is not None and box["x"] + box["width"] <= edge["x"] + edge["width"], (
                box,
                edge,
            )
    width = await console.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1180, f"the page scrolls sideways: {width} px"


async def test_a_burst_of_taps_is_one_flag_line_that_the_instructor_can_dismiss(
    lead_in_server: LiveServer, new_page: NewPage
) -> None:
    console, phone, plus = await squats_under_way(lead_in_server, new_page)
    for _ in range(30):
        await plus.tap()
    await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
    await console.goto(f"{console.url}/scores")
    lines = console.locator(".flagged-list li")
    await expect(lines).to_have_count(1)
    line = re.compile(r"Alex, 1\. Squats:\s+\d+ inputs flagged, the last 1 rep at")
    await expect(lines).to_contain_text(line)
    await lines.get_by_role("button", name=re.compile("Dismiss")).click()
    await expect(console.get_by_text("Nothing flagged.")).to_be_visible()


async def test_the_builder_chooses_what_each_block_scores_and_warns_when_nothing_is(
    live_server: LiveServer, new_page: NewPage
) -> None:
    console = await new_page(live_server, TABLET)
    await sign_in(console)
    await console.goto("/console/routines/new")  # a warm-up and intervals to start from
    warning = console.locator("[data-routine-warning]")
    intervals = console.locator('.routine-block[data-kind="intervals"]')
    await expect(intervals.get_by_label("Phones score")).to_have_value("reps")
    await expect(warning).to_have_count(0)
    await intervals.get_by_label("Phones score").select_option("none")
    await expect(warning).to_contain_text("Nothing in this class is scored")
    await console.locator("#new-kind").select_option("emom")
    await console.get_by_role("button", name="+ Add block").click()
    emom = console.locator('.routine-block[data-kind="emom"]')
    await expect(emom.get_by_label("Phones score")).to_have_value("reps")  # its start
    await expect(warning).to_have_count(0)
    await console.locator("#new-kind").select_option("amrap")
    await console.get_by_role("button", name="+ Add block").click()
    await expect(console.get_by_text("Scored in rounds + reps")).to_be_visible()
    await console.get_by_role("button", name="Save").click()
    await expect(console).to_have_url(re.compile(r"/console/routines/\d+$"))
    # Saved as chosen: the intervals unscored, the EMOM in reps.
    await console.goto(f"{console.url}/edit")
    scores = console.get_by_label("Phones score")
    await expect(scores).to_have_count(2)
    await expect(scores.nth(0)).to_have_value("none")
    await expect(scores.nth(1)).to_have_value("reps")


async def test_the_walls_results_read_from_across_the_room_on_a_time_axis(
    showcase_server: LiveServer, new_page: NewPage
) -> None:
    screens = await open_screens(showcase_server, new_page)
    for state in ("work", "rest", "paused", "finished"):
        await screens.go(state)
    link = await screens.display.evaluate("() => location.pathname + location.search")
    path, query = link.split("?", 1)
    wall = screens.display
    await wall.goto(f"{path}/results?{query}")
    await expect(wall.get_by_role("heading", level=1)).to_contain_text("Results")
    cells = wall.locator('[data-board="people"] td, [data-board="people"] th')
    size = "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))"
    sizes = await cells.evaluate_all(size)
    assert sizes and min(sizes) >= 40, sizes  # 5 m away, at 1080p
    # Alex logged as a beginner: the division is on the board, and ranks after Rx.
    alex = wall.locator('[data-board="people"] tbody tr', has_text="Alex")
    await expect(alex.locator("[data-division]")).to_have_text("Beginner")
    await expect(wall.locator('[data-board="people"] tbody tr').last).to_contain_text("Alex")
    ticks = await wall.locator(".results-chart .chart-axes text").all_text_contents()
    # Minutes into the class where the segment ended (Goblet squats: 45 s), not its number.
    assert "1. Goblet squats0:45" in ticks, ticks
    names = await wall.locator(".results-chart .chart-name").all_text_contents()
    assert "Goblet squats" in names, names  # the segments' names under their times
    # Everything the wall shows is on the screen: it can't scroll.
    for part in ('[data-board="people"]', '[data-board="teams"]', ".results-chart svg"):
        box = await wall.locator(part).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 1080, (part, box)
        assert box["x"] + box["width"] <= 1920, (part, box)
