"""axe-core on every screen, at its own size: no serious or critical violations.

axe (tests/browser/vendor/axe.min.js, test-only) is injected into each page as it
stands: the phone, the console and the wall display in the lobby and while the class
runs, the join page, the console's home and Integrations, and the results pages of
each screen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import PHONE, NewPage
from tests.browser.screens import open_screens
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
BLOCKING = ("serious", "critical")
RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
        nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
    }));
}"""

SHOW_EVERY_INPUT = """() => {
    for (const el of document.querySelectorAll("[data-input-kind]:not([data-input-kind=reps])")) {
        el.hidden = false;
    }
}"""


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations on ``page``."""
    if not await page.evaluate("() => Boolean(window.axe)"):
        # Evaluated, not added as a <script>: the pages' CSP refuses inline scripts.
        await page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    if os.environ.get("CLASSROOM_AXE_ALL"):  # to look at the minor ones too
        print(report(page.url, found))
    return [v for v in found if v["impact"] in BLOCKING]


def report(where: str, found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} ({v['url']})")
        for node in v["nodes"][:5]:
            summary = " ".join(str(node["summary"]).split())
            lines.append(f"    at {node['target']}: {summary}")
    return "\n".join(lines)


class Audit:
    """Collects every page's violations, to fail once with all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked: list[str] = []

    async def check(self, where: str, page: Page) -> None:
        # Colours are checked as they settle, not halfway through a cue's fade-in.
        await page.emulate_media(reduced_motion="reduce")
        await page.wait_for_load_state("networkidle")
        found = await violations(page)
        self.checked.append(where)
        if found:
            self.problems.append(report(where, found))

    def verdict(self) -> None:
        assert not self.problems, "axe found serious or critical problems:\n" + "\n".join(
            self.problems
        )


async def test_every_screen_passes_axe(showcase_server: LiveServer, new_page: NewPage) -> None:
    audit = Audit()
    joining = await new_page(showcase_server, PHONE)
    await joining.goto("/join")
    await audit.check("join page (phone)", joining)

    screens = await open_screens(showcase_server, new_page)
    for state in ("lobby", "work", "rest", "paused"):
        await screens.go(state)
        if state == "rest":
            continue  # looks like work; the states around it are checked
        for screen, page in screens.pages.items():
            await audit.check(f"{screen} in the {state}", page)
        if state == "work":  # the inputs of the other score kinds, shown for a moment
            await screens.phone.evaluate(SHOW_EVERY_INPUT)
            await audit.check("phone with every score input", screens.phone)
            await screens.phone.evaluate(SHOW_EVERY_INPUT.replace("false", "true"))

    await screens.go("finished")
    results = {
        "phone": f"/play/{screens.class_id}/results",
        "console": f"/console/classes/{screens.class_id}/results",
        "display": str(await screens.display.get_attribute(".wall", "data-results-url")),
    }
    for screen, path in results.items():
        page = screens.pages[screen]
        await page.goto(path)
        await audit.check(f"{screen} results", page)
    await screens.console.goto("/console")
    await audit.check("console home", screens.console)
    # Integrations, as it looks just after making a token (shown once) and a webhook.
    await screens.console.goto("/console/integrations")
    await screens.console.get_by_label("New token").fill("Booking system")
    await screens.console.get_by_role("button", name="Make token").click()
    await screens.console.get_by_label("URL").fill("https://booking.example.com/hooks")
    await screens.console.get_by_role("button", name="Add webhook").click()
    await audit.check("console integrations", screens.console)
    audit.verdict()
    assert len(audit.checked) == 16, audit.checked
