"""The asset version, and how static files are cached and compressed.

Pages link their assets with ``?v=<asset version>``; the version is a hash of
the static files and templates, and every snapshot and resumed message carries
it so that an open screen can tell it is out of date after an upgrade.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import websockets

from classroom.config import Settings
from classroom.resources import STATIC
from classroom.web.app import create_app
from classroom.web.assets import asset_version
from tests.conftest import LiveServer, settings_for
from tests.helpers import open_class, receive, sign_in

FOREVER = "public, max-age=31536000, immutable"


def version_of(server: LiveServer) -> str:
    return str(server.state.asset_version)


def test_the_version_is_a_hash_of_every_file_and_the_salt(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("one")
    (tmp_path / "b.css").write_text("two")
    first = asset_version([tmp_path])
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert asset_version([tmp_path]) == first  # the same files: the same version

    (tmp_path / "js" / "a.js").write_text("one!")
    changed = asset_version([tmp_path])
    assert changed != first
    (tmp_path / "c.js").write_text("")
    added = asset_version([tmp_path])
    assert added not in (first, changed)
    (tmp_path / "c.js").rename(tmp_path / "d.js")  # a renamed file is a change too
    assert asset_version([tmp_path]) not in (first, changed, added)
    assert asset_version([tmp_path], salt="x") != asset_version([tmp_path])


def test_the_salt_comes_from_the_environment_and_changes_the_apps_version(
    tmp_path: Path,
) -> None:
    env = {"CLASSROOM_SECRET_KEY": "s" * 32, "CLASSROOM_ASSET_SALT": " 2025-11-26 "}
    assert Settings.from_env(env).asset_salt == "2025-11-26"
    assert Settings.from_env({"CLASSROOM_SECRET_KEY": "s" * 32}).asset_salt == ""
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    plain = create_app(settings_for(url, tmp_path)).state.asset_version
    salted = create_app(settings_for(url, tmp_path, asset_salt="b")).state.asset_version
    assert plain != salted
    assert create_app(settings_for(url, tmp_path)).state.asset_version == plain


async def test_pages_link_their_assets_with_the_version(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    version = version_of(live_server)
    page = (await client.get("/login")).text
    # Every stylesheet and script; other files (icons, the manifest) are revalidated.
    links = re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css)(?:\?[^"]*)?)"', page)
    assert len(links) >= 3, page
    assert all(link.endswith(f"?v={version}") for link in links), links
    for link in links:
        response = await client.get(link)
        assert response.status_code == 200, link
        assert response.headers["cache-control"] == FOREVER, link


async def test_only_the_current_version_is_cached_for_good(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    version = version_of(live_server)
    # A module imported without ?v, an old version, or a malformed one: revalidate.
    for path in (
        "/static/classroom.js",
        "/static/upgrade.js",
        "/static/classroom.js?v=0123456789ab",
        "/static/classroom.js?v=",
        f"/static/classroom.js?v={version}&v=x",
        "/static/classroom.js?v=%00%ff",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-cache", path
        assert response.content == (STATIC / "classroom.js").read_bytes() or "upgrade" in path
    # Revalidating costs a 304 when nothing changed.
    first = await client.get("/static/classroom.js")
    again = await client.get(
        "/static/classroom.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-cache"
    # A missing file or a way out of the folder is a plain 404, cached by no one.
    for path in (
        f"/static/missing.js?v={version}",
        "/static/../pyproject.toml",
        "/static/%2e%2e/x",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "immutable" not in response.headers.get("cache-control", ""), path


async def test_static_files_are_compressed_for_browsers_that_accept_it(
    live_server: LiveServer,
) -> None:
    path = "/static/vendor/htmx-2.0.11.min.js"
    original = (STATIC / "vendor" / "htmx-2.0.11.min.js").read_bytes()
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        async with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in response.headers["vary"].lower()
        assert gzip.decompress(raw) == original
        assert len(raw) < len(original) / 2
        plain = await client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == original
        # No cookie on a static file: a cache may share it between browsers.
        assert "set-cookie" not in plain.headers


async def test_snapshots_and_resumes_carry_the_version(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    token = live_server.state.tokens.display(class_id)
    url = f"{live_server.ws_url}/ws/classes/{class_id}?token={token}"
    async with websockets.connect(url) as ws:
        snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    assert snapshot["version"] == version_of(live_server)
    resume = f"{url}&since={snapshot['seq']}&epoch={snapshot['epoch']}"
    async with websockets.connect(resume) as ws:
        resumed = await receive(ws)
    assert resumed["type"] == "resumed"
    assert resumed["version"] == version_of(live_server)


async def test_favicon_ico_is_the_apps_icon(client: httpx.AsyncClient) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == (STATIC / "icons" / "icon-192.png").read_bytes()
