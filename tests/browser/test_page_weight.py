"""Every page loads in under a second, with under 100 KB of JavaScript, htmx included.

Each page is loaded four times, each time in a new browser context (an empty
cache, as a kiosk after a reboot or a phone scanning the QR for the first time):
the first load warms the server up, the next three are timed. The time is the
page's own navigation timing, from the request to the end of its load event
(which waits for its module scripts); the median of the three must be under 1 s.
The JavaScript is every script the page fetched (``response.body()``, so
uncompressed, whatever the wire carried) plus any inline script; modules that
classroom.js imports are counted like any other.
"""

from __future__ import annotations

import statistics
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Response

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage
from tests.conftest import LiveServer
from tests.helpers import command, join, join_code, open_class, sign_in

pytestmark = pytest.mark.browser

JS_BUDGET_BYTES = 100_000
LOAD_BUDGET_MS = 1_000
TIMED_LOADS = 3
NAVIGATION = """() => {
  const [entry] = performance.getEntriesByType("navigation");
  return { load: entry.loadEventEnd, ready: entry.domContentLoadedEventEnd };
}"""
# A page that leaves htmx out (its template empties the `htmx` block) must not need it.
NEEDS_HTMX = """() => !window.htmx && [...document.querySelectorAll("*")]
  .flatMap((el) => [...el.attributes].map((a) => a.name))
  .filter((name) => name.startsWith("hx-"))"""
INLINE_SCRIPTS = """() => [...document.querySelectorAll("script:not([src])")]
  .filter((s) => !/json/.test(s.type))
  .reduce((sum, s) => sum + new TextEncoder().encode(s.textContent).length, 0)"""


def is_script(response: Response) -> bool:
    kind = response.headers.get("content-type", "")
    return response.request.resource_type == "script" or "javascript" in kind


async def load(page: Page, path: str) -> tuple[float, int, list[str]]:
    """Load ``path``: its load time (ms), the bytes of JavaScript it ran, and the scripts."""
    scripts: list[Response] = []
    errors: list[str] = []
    page.on("response", lambda response: scripts.append(response) if is_script(response) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    answer = await page.goto(path, wait_until="load")
    assert answer is not None and answer.status == 200, (path, answer and answer.status)
    timing = await page.evaluate(NAVIGATION)
    assert timing["load"] > 0, timing
    missing = await page.evaluate(NEEDS_HTMX)
    assert not missing, f"{path} has {missing} but no htmx"
    total = await page.evaluate(INLINE_SCRIPTS)
    for response in scripts:
        assert response.status == 200, (response.url, response.status)
        total += len(await response.body())
    assert not errors, (path, errors)
    return float(timing["load"]), int(total), sorted(r.url.split("/static/")[-1] for r in scripts)


async def test_each_page_loads_in_under_a_second_with_under_100_kb_of_javascript(
    live_server: LiveServer, new_page: NewPage
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server.base_url) as console,
        httpx.AsyncClient(base_url=live_server.base_url) as phone,
    ):
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        assert (await join(phone, code, "Alex")).status_code == 303
        token = live_server.state.tokens.display(class_id)

        def cookies(client: httpx.AsyncClient) -> list[dict[str, Any]]:
            return [
                {"name": k, "value": v, "url": live_server.base_url}
                for k, v in client.cookies.items()
            ]

        live_pages = [
            ("join", PHONE, f"/j/{code}", []),
            ("phone", PHONE, f"/play/{class_id}", cookies(phone)),
            ("console home", TABLET, "/console", cookies(console)),
            ("console class", TABLET, f"/console/classes/{class_id}", cookies(console)),
            ("display", WALL, f"/display/{class_id}?token={token}", []),
            ("display, pairing", WALL, "/display", []),  # a new kiosk's first screen
        ]
        results_pages = [
            ("results, console", TABLET, f"/console/classes/{class_id}/results", cookies(console)),
            ("results, phone", PHONE, f"/play/{class_id}/results", cookies(phone)),
            ("results, display", WALL, f"/display/{class_id}/results?token={token}", []),
        ]
        measured: dict[str, tuple[float, int, list[str]]] = {}
        for pages in (live_pages, results_pages):
            for name, device, path, jar in pages:
                readings = []
                for _ in range(1 + TIMED_LOADS):
                    page = await new_page(live_server, device)
                    await page.context.add_cookies(jar)  # type: ignore[arg-type]
                    readings.append(await load(page, path))
                    await page.context.close()
                timed = readings[1:]
                measured[name] = (
                    statistics.median(ms for ms, _, _ in timed),
                    max(size for _, size, _ in timed),
                    timed[-1][2],
                )
            if pages is live_pages:  # the results are those of a class that has ended
                assert (await command(console, class_id, "start")).status_code == 200
                assert (await command(console, class_id, "finish")).status_code == 200

    for name, (ms, size, scripts) in measured.items():
        print(f"{name:18} {ms:6.0f} ms  {size / 1000:5.1f} KB of JavaScript  {', '.join(scripts)}")
    for name, (ms, size, scripts) in measured.items():
        assert size < JS_BUDGET_BYTES, (name, size, scripts)
        assert ms < LOAD_BUDGET_MS, (name, ms)
    assert any("classroom.js" in s for s in measured["display"][2]), measured["display"]
