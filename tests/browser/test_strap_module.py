"""static/strap.js in a real Chromium: pairing a heart-rate strap, its notifications,
reconnecting after a drop, and browsers that can't.

Headless Chromium can't reach a real strap, so tests/browser/fake_bluetooth.js stands
in for ``navigator.bluetooth`` and is driven through ``window.__fakeStrap``. Each test
opens ``/login`` (any page of the server will do: the module is imported from it,
same-origin, under the server's Content-Security-Policy) and records every
``onState`` and ``onData`` call in ``window.events``. Reconnection waits are scaled
down to 10, 20, 40 ms, except where Playwright's clock checks the real ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import HERE, PHONE, NewPage
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

FAKE = HERE / "fake_bluetooth.js"
NAME = "Polar H10 A1B2C3D4"
FAST = [10, 20, 40]  # ms: the waits before reconnection attempts 1, 2 and 3 and on

# Import the module and make a Strap whose calls land in window.events as
# [state or "data", detail or hex, ms since the page started].
SETUP = """async (options) => {
  window.strapJs = await import("/static/strap.js");
  window.events = [];
  const note = (what, detail) => events.push([what, detail ?? null, performance.now()]);
  window.strap = new strapJs.Strap({
    onData: (hex) => note("data", hex),
    onState: (state, detail) => note(state, detail),
    ...options,
  });
}"""
LISTEN = """window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => violations.push(e.blockedURI));"""


async def strap_page(
    server: LiveServer, new_page: NewPage, *, fake: bool = True, **options: Any
) -> Page:
    """A phone on /login with strap.js imported and a Strap in ``window.strap``."""
    page = await new_page(server, PHONE)
    await page.add_init_script(LISTEN)
    if fake:
        await page.add_init_script(path=FAKE)
    await page.goto("/login")
    await page.evaluate(SETUP, options)
    return page


async def events(page: Page) -> list[list[Any]]:
    result: list[list[Any]] = await page.evaluate("events.map(([what, detail]) => [what, detail])")
    return result


async def states(page: Page) -> list[list[Any]]:
    return [event for event in await events(page) if event[0] != "data"]


async def fake(page: Page, name: str) -> Any:
    return await page.evaluate(f"__fakeStrap.{name}")


async def wait_for_state(page: Page, state: str, count: int = 1) -> None:
    await page.wait_for_function(
        "([state, count]) => events.filter(([what]) => what === state).length >= count",
        arg=[state, count],
    )


async def paired(server: LiveServer, new_page: NewPage, **options: Any) -> Page:
    page = await strap_page(server, new_page, **options)
    await page.evaluate("strap.connect()")
    await wait_for_state(page, "connected")
    await page.evaluate("events.length = 0")
    return page


async def test_pairing_chooses_connects_and_names_the_strap(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(live_server, PHONE)
    await page.add_init_script(LISTEN)
    await page.add_init_script(path=FAKE)
    modules = []
    page.on("response", lambda r: modules.append(r) if r.url.endswith("/strap.js") else None)
    answer = await page.goto("/login")
    assert answer is not None and "script-src 'self'" in answer.headers["content-security-policy"]
    await page.evaluate(SETUP, {"backoffMs": FAST})
    # Served from /static like the other modules, and the policy let it in.
    [module] = modules
    assert module.status == 200 and "javascript" in module.headers["content-type"]
    assert await page.evaluate("violations") == []

    assert await page.evaluate("strapJs.strapSupport()") == {"ok": True}
    await page.evaluate("strap.connect()")
    await wait_for_state(page, "connected")
    assert await states(page) == [["choosing", None], ["connecting", None], ["connected", NAME]]
    # The chooser offers only heart-rate straps; one chooser, one connection, subscribed.
    assert await fake(page, "options") == {"filters": [{"services": ["heart_rate"]}]}
    assert [await fake(page, name) for name in ("requests", "connects", "subscriptions")] == [
        1,
        1,
        1,
    ]
    assert await fake(page, "notifying") is True


# (bytes as the Heart Rate Measurement characteristic lays them out, hex, bpm)
LAYOUTS = [
    ([0x00, 72], "0048", 72),  # flags 0: uint8 bpm
    ([0x01, 0x2C, 0x01], "012c01", 300),  # bit 0: uint16 little-endian
    ([0x01, 0x34, 0x01], "013401", 308),
    ([0x01, 0xFF, 0x00], "01ff00", 255),  # uint16 that fits a byte
    ([0x06, 0x8C], "068c", 140),  # bits 1-2: contact supported and detected
    ([0x04, 0x5A], "045a", 90),  # contact supported, not detected
    ([0x08, 0x64, 0x10, 0x27], "08641027", 100),  # bit 3: energy expended, 10000 kJ
    ([0x10, 0x48, 0x00, 0x04, 0x20, 0x03], "104800042003", 72),  # bit 4: RR 1024, 800 /1024 s
    ([0x1F, 0x2C, 0x01, 0x64, 0x00, 0x00, 0x04, 0x55, 0x03], "1f2c01640000045503", 300),
]


async def test_each_notification_reaches_on_data_as_its_bytes_in_hex(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await paired(live_server, new_page, backoffMs=FAST)
    for data, _, _ in LAYOUTS:
        assert await page.evaluate("(bytes) => __fakeStrap.emit(bytes)", data) is True
    await wait_for_state(page, "data", len(LAYOUTS))
    assert await events(page) == [["data", hex] for _, hex, _ in LAYOUTS]


async def test_bpm_of_reads_the_bpm_as_the_flags_say(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await strap_page(live_server, new_page)
    read = await page.evaluate("(hexes) => hexes.map(strapJs.bpmOf)", [h for _, h, _ in LAYOUTS])
    assert read == [bpm for _, _, bpm in LAYOUTS]
    # Upper-case hex is read too; anything too short or not hex is no number at all.
    assert await page.evaluate("strapJs.bpmOf('012C01')") == 300
    for bad in ["", "00", "0148", "01", "zz48", "004", None]:
        assert await page.evaluate("(hex) => strapJs.bpmOf(hex)", bad) is None, bad


async def test_a_dropped_strap_reconnects_by_itself_and_notifies_again(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await paired(live_server, new_page, backoffMs=FAST)
    await page.evaluate("__fakeStrap.drop(2)")  # out of range: two attempts fail
    assert await page.evaluate("__fakeStrap.emit([0, 70])") is False  # nothing to hear
    await wait_for_state(page, "connected")
    assert await states(page) == [
        ["reconnecting", 1],
        ["reconnecting", 2],
        ["reconnecting", 3],
        ["connected", NAME],
    ]
    # Each attempt waited its turn: 10, 20 and 40 ms after the drop or the last failure.
    times = await page.evaluate("events.map(([, , at]) => at)")
    for wait, before, after in zip(FAST, times, times[1:], strict=False):
        assert after - before >= wait * 0.9, times
    # No new chooser; a new subscription, and measurements flow again.
    assert [await fake(page, name) for name in ("requests", "connects", "subscriptions")] == [
        1,
        4,
        2,
    ]
    assert await page.evaluate("__fakeStrap.emit([0, 75])") is True
    await wait_for_state(page, "data")
    assert (await events(page))[-1] == ["data", "004b"]

    # A second drop starts again from the first attempt, and the first wait.
    await page.evaluate("events.length = 0; __fakeStrap.drop()")
    await wait_for_state(page, "connected")
    assert await states(page) == [["reconnecting", 1], ["connected", NAME]]
    assert await page.evaluate("__fakeStrap.emit([1, 0x2c, 0x01])") is True
    await wait_for_state(page, "data")
    # One listener on the characteristic, however often it was subscribed.
    assert [e for e in await events(page) if e[0] == "data"] == [["data", "012c01"]]


async def test_the_real_waits_are_1_2_4_8_8_seconds(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(live_server, PHONE)
    await page.clock.install(time=0)
    await page.add_init_script(path=FAKE)
    await page.goto("/login")
    await page.evaluate(SETUP, {})
    await page.clock.pause_at(5)  # (seconds) from here, time moves only when the test says
    await page.evaluate("void strap.connect()")  # (not awaited: its steps need the clock)
    await page.clock.run_for(10)  # the fake's GATT steps take a tick each
    assert (await states(page))[-1] == ["connected", NAME]
    await page.evaluate("__fakeStrap.drop(1000)")
    now = due = 0  # ms since the drop
    for attempt, wait in enumerate([1000, 2000, 4000, 8000, 8000, 8000], start=1):
        due += wait
        await page.clock.run_for(due - 50 - now)
        assert await fake(page, "connects") == attempt, wait  # not yet
        await page.clock.run_for(100)
        now = due + 50
        assert await fake(page, "connects") == attempt + 1, wait  # now


async def test_too_many_failed_attempts_end_in_failed_with_a_sentence(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await paired(live_server, new_page, backoffMs=FAST)
    await page.evaluate("__fakeStrap.drop(1000)")  # gone for good
    await wait_for_state(page, "failed")
    gave_up = await page.evaluate("strapJs.GAVE_UP")
    assert await states(page) == [["reconnecting", n] for n in range(1, 11)] + [["failed", gave_up]]
    assert gave_up.endswith(".") and "strap" in gave_up
    await page.wait_for_timeout(200)  # and it stops trying
    assert await fake(page, "connects") == 1 + 10
    assert (await states(page))[-1] == ["failed", gave_up]


async def test_disconnect_stops_for_good(live_server: LiveServer, new_page: NewPage) -> None:
    page = await paired(live_server, new_page, backoffMs=FAST)
    await page.evaluate("strap.disconnect()")
    assert await states(page) == [["disconnected", None]]
    assert await fake(page, "disconnects") == 1
    assert await fake(page, "connected") is False
    await page.evaluate("__fakeStrap.lose()")  # a late drop event changes nothing
    await page.wait_for_timeout(150)
    assert await states(page) == [["disconnected", None]]
    assert await fake(page, "connects") == 1

    # Nor does it go on trying when stopped while reconnecting.
    await page.evaluate("strap.connect()")
    await wait_for_state(page, "connected")
    await page.evaluate("__fakeStrap.drop(1000)")
    await wait_for_state(page, "reconnecting", 2)
    await page.evaluate("strap.disconnect()")
    connects = await fake(page, "connects")
    await page.wait_for_timeout(200)
    assert await fake(page, "connects") == connects
    assert (await states(page))[-1] == ["disconnected", None]
    assert "failed" not in [state for state, _ in await states(page)]


async def test_a_cancelled_chooser_is_disconnected_not_failed(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await strap_page(live_server, new_page, backoffMs=FAST)
    await page.evaluate("__fakeStrap.cancelChooser(); strap.connect()")
    await wait_for_state(page, "disconnected")
    assert await states(page) == [["choosing", None], ["disconnected", None]]
    assert await fake(page, "connects") == 0
    # Pairing again shows the chooser again.
    await page.evaluate("events.length = 0; strap.connect()")
    await wait_for_state(page, "connected")
    assert await states(page) == [["choosing", None], ["connecting", None], ["connected", NAME]]
    assert await fake(page, "requests") == 2


async def test_a_strap_that_will_not_connect_at_all_fails_with_a_sentence(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await strap_page(live_server, new_page, backoffMs=FAST)
    await page.evaluate("__fakeStrap.failNext(1); strap.connect()")
    await wait_for_state(page, "failed")
    no_link = await page.evaluate("strapJs.NO_LINK")
    assert await states(page) == [["choosing", None], ["connecting", None], ["failed", no_link]]
    await page.wait_for_timeout(100)
    assert await fake(page, "connects") == 1  # no retries: the user pairs again


async def test_browsers_without_web_bluetooth_are_told_why(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await strap_page(live_server, new_page)
    await page.evaluate("window.__noBluetooth = true")
    assert await page.evaluate("navigator.bluetooth") is None
    no_bluetooth = await page.evaluate("strapJs.NO_BLUETOOTH")
    assert await page.evaluate("strapJs.strapSupport()") == {"ok": False, "reason": no_bluetooth}
    assert no_bluetooth == (
        "This browser can't reach Bluetooth straps (iPhones and Firefox can't); "
        "use the gym's receiver, or log your effort by hand."
    )

    # A plain-http address in a gym is not a secure context: Web Bluetooth isn't there.
    insecure = await new_page(live_server, PHONE)
    await insecure.add_init_script(
        "Object.defineProperty(window, 'isSecureContext', { get: () => false })"
    )
    await insecure.add_init_script(path=FAKE)
    await insecure.goto("/login")
    await insecure.evaluate(SETUP, {})
    assert await insecure.evaluate("strapJs.strapSupport()") == {
        "ok": False,
        "reason": "Heart-rate straps need a secure (https) address; ask the gym.",
    }
