"""Every HTTP response carries the security headers: pages, fragments, files, errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from classroom.web.app import create_app
from classroom.web.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from tests.conftest import LiveServer, settings_for
from tests.helpers import open_class, sign_in

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert len(response.headers.get_list("content-security-policy")) == 1


def test_the_policy_allows_only_this_server_and_no_inline_code() -> None:
    assert dict(SECURITY_HEADERS) == EXPECTED
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in CONTENT_SECURITY_POLICY.split("; ")
    )
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert not any("unsafe" in source for sources in directives.values() for source in sources)


async def test_public_responses_carry_the_headers(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    version = live_server.state.asset_version
    for path in (
        "/",
        "/login",
        "/join",
        "/me",
        "/healthz",
        "/readyz",
        "/schemas/routine.schema.json",
        f"/static/app.css?v={version}",
        "/static/classroom.js",
        "/static/no-such-file.js",
        "/no-such-page",
        "/console",  # a redirect to sign in
        "/display/1",  # no token: refused
    ):
        assert_secured(await client.get(path))
    assert_secured(await client.post("/login", data={}))  # no token: 403
    assert_secured(await client.post("/login", headers={"Origin": "http://evil.example"}))
    assert_secured(await client.delete("/"))  # 405


@pytest.mark.parametrize("htmx", [False, True])
async def test_console_pages_and_fragments_carry_the_headers(
    client: httpx.AsyncClient, htmx: bool
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    headers = {"HX-Request": "true"} if htmx else {}
    for path in (
        "/console",
        f"/console/classes/{class_id}",
        f"/console/classes/{class_id}/roster",
        f"/console/classes/{class_id}/scores/flagged",
        "/console/routines?q=quick",
        "/console/rooms",
        f"/console/classes/{class_id}/results.csv",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code < 500, path
        assert_secured(response)


async def test_even_an_unhandled_error_carries_the_headers(tmp_path: Path) -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///unused.db", tmp_path))

    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    app.router.routes.append(Route("/broken", broken))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    assert_secured(response)
