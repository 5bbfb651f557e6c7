"""CSRF: a form's token is bound to the browser's session, and unsafe requests
must come from one of the server's own origins."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from markupsafe import escape
from sqlalchemy import func, select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Routine
from classroom.web.auth import COOKIE as SESSION_COOKIE
from classroom.web.csrf import COOKIE, CSRF_FAILED
from tests.conftest import (
    INSTRUCTOR_EMAIL,
    INSTRUCTOR_PASSWORD,
    LiveServer,
    run_server,
    seed,
    settings_for,
)
from tests.helpers import csrf, open_class, sign_in

PUBLIC_URL = "https://gym.example.org/classroom"
KIOSK_ORIGIN = "https://kiosk.example.net"
SHORT_YAML = """\
title: Planted
blocks:
  - type: intervals
    rounds: 1
    work: 0:20
    rest: 0:10
    exercises:
      - {name: Burpees}
"""


def plant(client: httpx.AsyncClient, value: str) -> None:
    """Put ``value`` in the browser's CSRF cookie, as a neighbour setting cookies could."""
    client.cookies.delete(COOKIE)
    client.cookies.set(COOKIE, value, domain="127.0.0.1")


def refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert str(escape(CSRF_FAILED)) in response.text


async def class_state(live_server: LiveServer, client: httpx.AsyncClient, class_id: int) -> dict:
    """The class as its instructor's socket sees it on connect: phase and sequence."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers={"Cookie": cookie}
    ) as ws:
        snapshot = json.loads(await ws.recv())
    return {"phase": snapshot["phase"], "seq": snapshot["seq"]}


async def routine_count(live_server: LiveServer) -> int:
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        count = int(await db.scalar(select(func.count()).select_from(Routine)) or 0)
    await engine.dispose()
    return count


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The server's log, uvicorn's own error log included (it doesn't reach the root)."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            yield caplog
    finally:
        uvicorn_errors.removeHandler(caplog.handler)


def no_traceback(log: pytest.LogCaptureFixture) -> None:
    assert not any(record.exc_info for record in log.records), log.text
    assert "Traceback" not in log.text


@pytest.fixture
async def console(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await sign_in(client)
    return client


@pytest.fixture
async def class_id(console: httpx.AsyncClient) -> int:
    return await open_class(console)


# -- the token is bound to the session -------------------------------------------------


async def test_a_planted_csrf_cookie_gives_no_token_for_a_signed_in_instructor(
    live_server: LiveServer, console: httpx.AsyncClient, class_id: int
) -> None:
    # The attacker visits the site, gets a validly signed cookie and the token of its forms,
    async with httpx.AsyncClient(base_url=live_server.base_url) as attacker:
        attacker_token = await csrf(attacker, "/login")
        planted = attacker.cookies[COOKIE]
    # plants that cookie in the instructor's browser (a sibling service on the host can),
    plant(console, planted)
    before = await class_state(live_server, console, class_id)
    # and has a page post a shout-out (and a start) to the console with the token it knows.
    for data in ({"command": "shout", "text": "pwned"}, {"command": "start"}):
        response = await console.post(
            f"/console/classes/{class_id}/commands",
            data={"csrf_token": attacker_token, **data},
            headers={"HX-Request": "true"},
        )
        refused(response)
    assert before == {"phase": "lobby", "seq": 0}
    assert await class_state(live_server, console, class_id) == before


async def test_a_token_from_another_instructors_session_is_refused(
    live_server: LiveServer, console: httpx.AsyncClient, class_id: int
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as attacker:
        await sign_in(attacker)  # the same account, another browser: another session
        attacker_token = await csrf(attacker, "/console")
        planted = attacker.cookies[COOKIE]
    plant(console, planted)
    response = await console.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": attacker_token, "command": "start"},
    )
    refused(response)
    assert (await class_state(live_server, console, class_id))["phase"] == "lobby"


async def test_the_consoles_own_token_works_and_differs_from_its_cookie(
    live_server: LiveServer, console: httpx.AsyncClient, class_id: int
) -> None:
    token = await csrf(console, f"/console/classes/{class_id}")
    assert token != console.cookies[COOKIE]
    assert console.cookies[SESSION_COOKIE] not in token
    response = await console.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": token, "command": "shout", "text": "Nice work"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    response = await console.post(
        f"/console/classes/{class_id}/commands", data={"csrf_token": token, "command": "start"}
    )
    assert response.status_code == 303
    assert (await class_state(live_server, console, class_id))["phase"] != "lobby"


async def test_signing_in_rotates_the_binding(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    # A cookie the attacker planted before the instructor signs in (fixation)...
    async with httpx.AsyncClient(base_url=live_server.base_url) as attacker:
        attacker_token = await csrf(attacker, "/login")
        planted = attacker.cookies[COOKIE]
    plant(client, planted)
    before_sign_in = await csrf(client, "/login")
    assert before_sign_in == attacker_token  # anonymous: the same id, the same token
    response = await sign_in(client)
    assert response.status_code == 303
    # ...is replaced on sign-in, and neither old token opens anything.
    assert client.cookies[COOKIE] != planted
    class_id = await open_class(client)
    for token in (attacker_token, before_sign_in):
        response = await client.post(
            f"/console/classes/{class_id}/commands", data={"csrf_token": token, "command": "start"}
        )
        refused(response)
    after = await csrf(client, "/console")
    assert after not in (attacker_token, before_sign_in)


async def test_a_cookie_not_signed_by_the_server_is_replaced_and_its_token_refused(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    plant(client, "forged.cookie")
    response = await client.post(
        "/login",
        data={"csrf_token": "forged.cookie", "email": INSTRUCTOR_EMAIL, "password": "x" * 12},
    )
    refused(response)
    assert client.cookies[COOKIE] != "forged.cookie"


@pytest.mark.parametrize(
    "cookie",
    [
        'classroom_csrf=\xff\xfe; classroom_session="',
        "classroom_csrf=; classroom_csrf=a.b.c",
        "classroom_csrf" + "=x" * 2000,
    ],
)
async def test_a_mangled_cookie_header_gets_a_fresh_cookie_and_no_traceback(
    live_server: LiveServer, cookie: str, server_log: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        headers = {"Cookie": cookie.encode("latin-1")}
        page = await client.get("/login", headers=headers)
        assert page.status_code == 200
        assert COOKIE in page.cookies
        response = await client.post(
            "/login",
            content=b"csrf_token=x.y&email=a%40b.c&password=long+enough+pw",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        refused(response)
    no_traceback(server_log)


# -- unsafe requests must come from one of our origins ---------------------------------


CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},  # another port of the same host is another origin
    {"Referer": "http://evil.example/page"},
    {"Referer": "not a url"},
    {"Referer": "http://[::1"},  # not even parseable
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: "=".join(*h.items()))
async def test_a_cross_origin_control_is_refused_even_with_the_right_token(
    live_server: LiveServer,
    console: httpx.AsyncClient,
    class_id: int,
    headers: dict[str, str],
    server_log: pytest.LogCaptureFixture,
) -> None:
    token = await csrf(console, f"/console/classes/{class_id}")
    server_log.clear()
    response = await console.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": token, "command": "start"},
        headers={**headers, "HX-Request": "true"},
    )
    refused(response)
    assert (await class_state(live_server, console, class_id)) == {"phase": "lobby", "seq": 0}
    ours = [r for r in server_log.records if r.name.startswith("classroom")]
    assert len(ours) == 1 and "refused a cross-origin POST" in ours[0].getMessage()
    no_traceback(server_log)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_every_unsafe_method_is_checked(
    console: httpx.AsyncClient, class_id: int, method: str
) -> None:
    response = await console.request(
        method, f"/console/classes/{class_id}", headers={"Origin": "http://evil.example"}
    )
    refused(response)
    same_site = await console.request(
        method, f"/console/classes/{class_id}", headers={"Origin": str(console.base_url)}
    )
    assert same_site.status_code == 405  # past the check, to the route: no such method


async def test_a_cross_origin_upload_is_refused_and_stores_nothing(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    before = await routine_count(live_server)
    token = await csrf(console, "/console/routines")
    files = {"file": ("planted.yaml", SHORT_YAML.encode(), "application/octet-stream")}
    response = await console.post(
        "/console/routines/upload",
        data={"csrf_token": token},
        files=files,
        headers={"Origin": "http://evil.example"},
    )
    refused(response)
    assert await routine_count(live_server) == before
    response = await console.post(
        "/console/routines/upload",
        data={"csrf_token": token},
        files=files,
        headers={"Origin": str(console.base_url)},
    )
    assert response.status_code == 303, response.text
    assert await routine_count(live_server) == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser: no Origin, no Referer
        {"Origin": "{base}"},
        {"Origin": "{base}/"},
        {"Referer": "{base}/console/classes/1"},
    ],
    ids=["no-origin", "origin", "origin-slash", "referer"],
)
async def test_same_origin_and_non_browser_posts_work(
    live_server: LiveServer, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    token = await csrf(client, "/login")
    sent = {k: v.format(base=live_server.base_url) for k, v in headers.items()}
    response = await client.post(
        "/login",
        data={"csrf_token": token, "email": INSTRUCTOR_EMAIL, "password": INSTRUCTOR_PASSWORD},
        headers=sent,
    )
    assert response.status_code == 303, response.text


# -- configured origins -------------------------------------------------------------------


@pytest.fixture
def proxied_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url))
    settings = settings_for(
        migrated_url, tmp_path, public_url=PUBLIC_URL, allowed_origins=(KIOSK_ORIGIN,)
    )
    yield from run_server(settings)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://gym.example.org", True),  # CLASSROOM_PUBLIC_URL's origin
        ("https://GYM.example.org", True),
        (KIOSK_ORIGIN, True),  # one of CLASSROOM_ALLOWED_ORIGINS
        ("http://gym.example.org", False),  # the same host over http is another origin
        ("https://shop.gym.example.org", False),  # a sibling subdomain
    ],
)
async def test_the_public_url_and_allowed_origins_may_post(
    proxied_server: LiveServer, origin: str, allowed: bool
) -> None:
    async with httpx.AsyncClient(base_url=proxied_server.base_url) as browser:
        token = await csrf(browser, "/login")
        response = await browser.post(
            "/login",
            data={
                "csrf_token": token,
                "email": INSTRUCTOR_EMAIL,
                "password": INSTRUCTOR_PASSWORD,
            },
            headers={"Origin": origin},
        )
    if allowed:
        assert response.status_code == 303, response.text
    else:
        refused(response)
