"""The first class in a real browser, with every page and socket through nginx.

nginx runs deploy/nginx.conf, the config docs/deployment.md gives, with only its
upstream and listen lines replaced (tests/proxy.py), in front of a real ``classroom
serve`` set up as that page says: ``CLASSROOM_PUBLIC_URL`` is the proxy's address and
``CLASSROOM_TRUSTED_PROXIES`` names the proxy. Without nginx the test skips, saying
why; in CI (which installs it) it fails.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from classroom.web.console import qr_svg
from tests.browser.test_first_class import first_class
from tests.processes import Server, prepared
from tests.proxy import Proxy, nginx, nginx_binary

pytestmark = pytest.mark.browser

# A WebSocket's line in nginx's access log: the upgrade, answered 101 Switching Protocols.
UPGRADED = re.compile(r'"GET /ws/classes/\d+\S* HTTP/1\.1" 101 ')


def public_url(proxy: Proxy) -> str:
    """CLASSROOM_PUBLIC_URL: the proxy, by a name of its own.

    The screens open the proxy by its address (127.0.0.1), and the links it hands out
    name it ``localhost``: so a link that names ``localhost`` came from
    CLASSROOM_PUBLIC_URL, not from the Host of the request that asked for it.
    """
    return f"http://localhost:{proxy.port}"


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[Server, Proxy]]:
    """``classroom serve`` on SQLite, and nginx in front of it with the documented config."""
    nginx_binary()  # skip (or fail in CI) before preparing anything
    server = prepared(tmp_path)
    server.log = tmp_path / "server.log"
    with nginx([server.port], tmp_path / "nginx") as proxy:
        server.env["CLASSROOM_PUBLIC_URL"] = public_url(proxy)
        server.env["CLASSROOM_TRUSTED_PROXIES"] = "127.0.0.1"
        server.start()
        try:
            yield server, proxy
        finally:
            server.stop()


def qr_path(svg: str) -> str:
    """The modules of a QR code: the ``d`` of its dark path."""
    found = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert found, svg
    return found.group(1)


async def shown_qr(page: Page) -> str:
    path = await page.locator(".qr svg path.qrline").first.get_attribute("d")
    assert path, "no QR code on the page"
    return path


async def upgrades(proxy: Proxy, expected: int) -> list[str]:
    """The WebSockets nginx upgraded, once ``expected`` of them have closed (nginx logs
    a socket when it closes), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in proxy.access_log().splitlines() if UPGRADED.search(line)]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.1)


async def test_the_first_class_runs_through_the_documented_nginx_config(
    behind_nginx: tuple[Server, Proxy], browser: Browser
) -> None:
    server, proxy = behind_nginx

    async def open_page(device: dict[str, Any]) -> Page:
        context = await browser.new_context(base_url=proxy.base_url, **device)
        context.set_default_timeout(5_000)
        return await context.new_page()

    # Sign-in, joining and the three sockets work through it: the upgrade, Host with
    # its port (forms' and sockets' Origin is checked against it), and the cookies.
    screens = await first_class(open_page)

    # The links and QR codes the screens hand out point at the proxy's public address.
    join_url = f"{public_url(proxy)}/j/{screens.code}"
    console, display = screens.console, screens.display
    assert await console.locator(".join-url a").get_attribute("href") == join_url
    wall_link = await console.locator("[data-display-url]").get_attribute("href")
    assert wall_link and wall_link.startswith(f"{public_url(proxy)}/display/"), wall_link
    lobby = await display.locator("[data-lobby] .join-code-label").text_content()
    assert lobby and lobby.endswith(f"go to {join_url}"), lobby
    assert await shown_qr(console) == qr_path(qr_svg(join_url))
    assert await shown_qr(display) == qr_path(qr_svg(join_url))

    # Every socket went through nginx: each is in its log, upgraded (101). The console
    # opened two (it reloaded), the phone and the wall one each.
    for page in (console, screens.phone, display):
        await page.context.close()
    assert len(await upgrades(proxy, 4)) >= 4, proxy.access_log()
    # And the server took the client's address from X-Forwarded-For, as the trusted
    # proxy gave it: uvicorn shows such a client with port 0.
    assert server.log is not None
    log = server.log.read_text()
    assert '127.0.0.1:0 - "POST /login HTTP/1.1" 303' in log, log
    assert '127.0.0.1:0 - "POST /join HTTP/1.1" 303' in log, log
