"""The site can be installed: every page links a web app manifest whose icons are served."""

from __future__ import annotations

import re

import httpx

REQUIRED = {"name", "short_name", "start_url", "display", "background_color", "theme_color"}


async def test_pages_link_a_manifest_with_icons_that_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/join")
    link = re.search(r'<link rel="manifest" href="([^"]+)">', page.text)
    assert link, "no manifest link"
    assert '<meta name="theme-color" content="#0d1117">' in page.text

    answer = await client.get(link.group(1))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = answer.json()
    assert manifest.keys() >= REQUIRED
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == manifest["background_color"] == "#0d1117"
    assert (await client.get(manifest["start_url"])).status_code == 200

    sizes = set()
    for icon in manifest["icons"]:
        served = await client.get(icon["src"])
        assert served.status_code == 200, icon
        assert served.headers["content-type"].startswith(icon["type"]), icon
        if icon["type"] == "image/png":
            assert served.content.startswith(b"\x89PNG")
            width, height = (
                int.from_bytes(served.content[16:20]),
                int.from_bytes(served.content[20:24]),
            )
            assert icon["sizes"] == f"{width}x{height}", icon
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes
    assert any("maskable" in icon["purpose"].split() for icon in manifest["icons"])
