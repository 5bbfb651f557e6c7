"""The JSON API under /api/v1: tokens, what each may see and do, and bad input.

A real server (uvicorn on a free port, a SQLite file); tokens are made where an
instructor makes them, on the console's Integrations page.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import ApiToken, Class, Routine, Webhook
from classroom.web.auth import create_instructor
from tests.api import bearer, make_token
from tests.conftest import DATA, LiveServer, run_server, seed, settings_for
from tests.helpers import csrf, open_class, sign_in

OTHER_EMAIL = "other@example.com"
OTHER_PASSWORD = "another long password"


async def rows(url: str, model: Any) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            return int(await db.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


@pytest.fixture
async def console(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        await sign_in(client)
        yield client


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{live_server.base_url}/api/v1") as client:
        yield client


async def routine_id(api: httpx.AsyncClient, token: str) -> int:
    listed = (await api.get("/routines", headers=bearer(token))).json()["routines"]
    return int(next(r["id"] for r in listed if r["title"] == "Quick test"))


# -- tokens ------------------------------------------------------------------------------


async def test_a_token_is_shown_once_and_only_its_hash_is_kept(
    live_server: LiveServer, console: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Booking system", "read")
    assert token.startswith("api_") and len(token) > 40
    again = await console.get("/console/integrations")
    assert token not in again.text and "Booking system" in again.text
    assert "Read only" in again.text
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        stored = (await db.scalars(select(ApiToken))).one()
    await engine.dispose()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not stored.can_write
    answer = await api.get("/routines", headers=bearer(token))
    assert answer.status_code == 200
    assert {"Quick test"} <= {r["title"] for r in answer.json()["routines"]}
    assert answer.headers["cache-control"] == "no-store"
    assert "set-cookie" not in answer.headers  # no browser id for a program


async def test_a_read_only_token_reads_and_is_refused_every_write(
    live_server: LiveServer, console: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    reader = await make_token(console, "Website", "read")
    writer = await make_token(console, "Booking", "write")
    routine = await routine_id(api, reader)
    opened = await api.post("/classes", json={"routine_id": routine}, headers=bearer(writer))
    class_id = opened.json()["id"]
    url = live_server.settings.database_url
    before = (await rows(url, Class), await rows(url, Routine), await rows(url, Webhook))
    writes = [
        ("POST", "/classes", {"json": {"routine_id": routine}}),
        ("POST", f"/classes/{class_id}/commands", {"json": {"command": "start"}}),
        ("POST", "/routines", {"content": (DATA / "quick.yaml").read_bytes()}),
        ("POST", "/webhooks", {"json": {"url": "https://example.com/hook"}}),
        ("DELETE", "/webhooks/1", {}),
    ]
    for method, path, body in writes:
        headers = bearer(reader)
        if "content" in body:
            headers["Content-Type"] = "application/yaml"
        answer = await api.request(method, path, headers=headers, **body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json() == {
            "code": "forbidden",
            "message": "This token is read-only; make a read-write token in the console"
            " to change things.",
        }
    after = (await rows(url, Class), await rows(url, Routine), await rows(url, Webhook))
    assert after == before
    status = await api.get(f"/classes/{class_id}", headers=bearer(reader))
    assert status.status_code == 200 and status.json()["phase"] == "lobby"
    # Checking a routine stores nothing, so a read-only token may.
    checked = await api.post(
        "/routines/validate",
        content=(DATA / "quick.yaml").read_bytes(),
        headers={**bearer(reader), "Content-Type": "application/yaml"},
    )
    assert checked.status_code == 200 and checked.json()["ok"] is True


async def test_a_revoked_token_is_refused_from_then_on(
    console: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Old booking system")
    assert (await api.get("/rooms", headers=bearer(token))).status_code == 200
    page = await console.get("/console/integrations")
    token_id = page.text.split('data-token-id="')[1].split('"')[0]
    revoked = await console.post(
        f"/console/integrations/tokens/{token_id}/revoke",
        data={"csrf_token": await csrf(console, "/console/integrations")},
    )
    assert revoked.status_code == 303
    answer = await api.get("/rooms", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "unauthorized",
        "message": "That API token is wrong or was revoked.",
    }
    assert answer.headers["www-authenticate"] == "Bearer"
    again = await console.post(
        f"/console/integrations/tokens/{token_id}/revoke",
        data={"csrf_token": await csrf(console, "/console/integrations")},
    )
    assert again.status_code == 404


async def test_another_instructors_things_are_invisible(
    live_server: LiveServer, console: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    url = live_server.settings.database_url
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, OTHER_EMAIL, OTHER_PASSWORD, "Other coach")
    await engine.dispose()
    mine = await make_token(console, "Mine")
    routine = await routine_id(api, mine)
    own_routine = await api.post(
        "/routines",
        content=(DATA / "quick.yaml").read_bytes().replace(b"Quick test", b"Only mine"),
        headers={**bearer(mine), "Content-Type": "application/yaml"},
    )
    assert own_routine.status_code == 201, own_routine.text
    class_id = (
        await api.post("/classes", json={"routine_id": routine}, headers=bearer(mine))
    ).json()["id"]
    hook = await api.post("/webhooks", json={"url": "https://example.com/h"}, headers=bearer(mine))
    hook_id = hook.json()["id"]

    async with httpx.AsyncClient(base_url=live_server.base_url) as other_console:
        await sign_in(other_console, OTHER_EMAIL, OTHER_PASSWORD)
        theirs = await make_token(other_console, "Theirs")
    listed = (await api.get("/routines", headers=bearer(theirs))).json()["routines"]
    assert "Only mine" not in {r["title"] for r in listed}
    assert (await api.get("/classes", headers=bearer(theirs))).json() == {"classes": []}
    assert (await api.get("/webhooks", headers=bearer(theirs))).json()["webhooks"] == []
    not_found = [
        ("GET", f"/routines/{own_routine.json()['id']}", None),
        ("GET", f"/classes/{class_id}", None),
        ("POST", f"/classes/{class_id}/commands", {"command": "start"}),
        ("GET", f"/classes/{class_id}/results", None),
        ("GET", f"/classes/{class_id}/results.csv", None),
        ("GET", f"/webhooks/{hook_id}/deliveries", None),
        ("DELETE", f"/webhooks/{hook_id}", None),
    ]
    for method, path, body in not_found:
        answer = await api.request(method, path, json=body, headers=bearer(theirs))
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "not_found"
    # Nor can they open a class of a routine of mine.
    refused = await api.post(
        "/classes", json={"routine_id": own_routine.json()["id"]}, headers=bearer(theirs)
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == "Pick a routine from the list."
    # Nothing of mine changed.
    status = await api.get(f"/classes/{class_id}", headers=bearer(mine))
    assert status.json()["phase"] == "lobby"
    assert len((await api.get("/webhooks", headers=bearer(mine))).json()["webhooks"]) == 1


# -- bad input ---------------------------------------------------------------------------


async def test_calls_without_a_good_token_are_refused_in_json(
    api: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    good = await make_token(console, "Good")
    tries: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic Y29hY2g6cGFzcw=="},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {good[:-2]}"},
        {"Authorization": "Bearer api_" + "x" * 500},
        {"Authorization": f"Token {good}"},
    ]
    for headers in tries:
        answer = await api.get("/classes", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_wrong_paths_and_methods_answer_in_json(
    api: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Paths")
    nowhere = await api.get("/nothing-here", headers=bearer(token))
    assert nowhere.status_code == 404
    assert nowhere.json() == {"code": "not_found", "message": "There is nothing at this address."}
    for path in ("/classes/abc", "/classes/99999999999999999999", "/classes/0", "/routines/-1"):
        answer = await api.get(path, headers=bearer(token))
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "not_found"
    wrong = await api.put("/classes", headers=bearer(token))
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


async def test_bad_class_requests_get_a_sentence_and_change_nothing(
    live_server: LiveServer, api: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Bad input")
    routine = await routine_id(api, token)
    soon = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"json": []}, 400, "The body must be a JSON object (Content-Type: application/json)."),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, ""),
        ({"content": b"routine_id=1", "headers": {"Content-Type": "text/plain"}}, 415, ""),
        ({"json": {}}, 400, "routine_id must be a whole number."),
        ({"json": {"routine_id": "1"}}, 400, "routine_id must be a whole number."),
        ({"json": {"routine_id": True}}, 400, "routine_id must be a whole number."),
        ({"json": {"routine_id": 2**40}}, 400, "routine_id must be a whole number."),
        ({"json": {"routine_id": 999999}}, 400, "Pick a routine from the list."),
        ({"json": {"routine_id": routine, "colour": "red"}}, 400, ""),
        ({"json": {"routine_id": routine, "room_id": 77}}, 400, ""),
        ({"json": {"routine_id": routine, "on_restart": "explode"}}, 400, ""),
        ({"json": {"routine_id": routine, "on_restart": {}}}, 400, ""),
        ({"json": {"routine_id": routine, "scheduled_at": "tomorrow"}}, 400, ""),
        (
            {
                "json": {
                    "routine_id": routine,
                    "scheduled_at": soon.replace(tzinfo=None).isoformat(),
                }
            },
            400,
            "scheduled_at is a time with its UTC offset, such as 2026-12-07T18:30:00+01:00.",
        ),
        (
            {"json": {"routine_id": routine, "scheduled_at": "2001-01-01T10:00:00Z"}},
            400,
            "That start time has passed. Pick a later time, or leave it empty.",
        ),
        ({"json": {"routine_id": routine, "scheduled_at": "2999-01-01T10:00:00Z"}}, 400, ""),
        (
            {
                "content": b"{" + b" " * 70_000 + b"}",
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "",
        ),
    ]
    before = await rows(live_server.settings.database_url, Class)
    for request, status, message in bad:
        headers = {**bearer(token), **request.pop("headers", {})}
        answer = await api.post("/classes", headers=headers, **request)
        assert answer.status_code == status, (request, answer.text)
        body = answer.json()
        assert set(body) == {"code", "message"} and body["message"].endswith(".")
        if message:
            assert body["message"] == message
    assert await rows(live_server.settings.database_url, Class) == before
    assert (await api.get("/classes?phase=started", headers=bearer(token))).status_code == 400
    assert (await api.get("/classes?colour=red", headers=bearer(token))).status_code == 400


async def test_bad_commands_are_refused_and_the_class_stays_as_it_was(
    api: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Commands")
    routine = await routine_id(api, token)
    class_id = (
        await api.post("/classes", json={"routine_id": routine}, headers=bearer(token))
    ).json()["id"]
    for body, status in [
        ({"command": "explode"}, 400),
        ({"command": "mark_finished"}, 400),
        ({"command": "jump"}, 400),
        ({"command": "extend", "seconds": "30"}, 400),
        ({"command": "pause"}, 409),  # not running yet
        ({"command": "next", "colour": 1}, 400),
        ({"command": "cancel", "from_segment": [1]}, 400),  # checked though cancel needs none
        ({"command": "cancel", "text": 5}, 400),
    ]:
        answer = await api.post(f"/classes/{class_id}/commands", json=body, headers=bearer(token))
        assert answer.status_code == status, (body, answer.text)
    status_now = await api.get(f"/classes/{class_id}", headers=bearer(token))
    assert status_now.json()["phase"] == "lobby"
    results = await api.get(f"/classes/{class_id}/results", headers=bearer(token))
    assert results.status_code == 409
    assert results.json()["message"] == "Results appear once the class has started."


# -- routines ----------------------------------------------------------------------------


def cli_check(path: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "classroom.cli", "routine", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr


async def test_validate_says_what_classroom_routine_check_says(
    api: httpx.AsyncClient, console: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = await make_token(console, "Checker", "read")
    broken = "title: Broken\nblocks:\n  - type: work\n    duration: -3\n  - type: dance\n"
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    code, said = cli_check(path)
    assert code == 1
    answer = await api.post(
        "/routines/validate",
        content=broken.encode(),
        headers={**bearer(token), "Content-Type": "application/yaml"},
    )
    assert answer.status_code == 200
    checked = answer.json()
    assert checked["ok"] is False and checked["timeline"] is None
    for problem in checked["problems"]:
        where = problem["path"] or "routine"
        if problem["line"] is not None:
            where = f"line {problem['line']}, {where}"
        assert f"  {where}: {problem['message']}" in said.splitlines()
    assert len(checked["problems"]) == len(said.splitlines()) - 1  # the count's line

    good = await api.post(
        "/routines/validate",
        content=(DATA / "quick.yaml").read_bytes(),
        headers={**bearer(token), "Content-Type": "application/yaml"},
    )
    assert good.json()["ok"] is True
    assert good.json()["timeline"]["title"] == "Quick test"
    for content_type in ("text/plain", "multipart/form-data", ""):
        refused = await api.post(
            "/routines/validate",
            content=broken.encode(),
            headers={**bearer(token), "Content-Type": content_type},
        )
        assert refused.status_code == 415


async def test_routines_are_stored_from_yaml_and_json_and_refused_with_their_problems(
    live_server: LiveServer, api: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Routines")
    as_json = '{"title": "From JSON", "blocks": [{"type": "work", "name": "Row", "duration": 60}]}'
    made = await api.post(
        "/routines",
        content=as_json.encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/api/v1/routines/{made.json()['id']}"
    got = (
        await api.get(made.headers["location"].removeprefix("/api/v1"), headers=bearer(token))
    ).json()
    assert got["title"] == "From JSON" and got["format"] == "json" and got["source"] == as_json
    assert got["timeline"]["total_seconds"] == 60
    before = await rows(live_server.settings.database_url, Routine)
    for content, kind in [
        (b"title: No blocks\n", "application/yaml"),
        (b"\xff\xfe", "application/yaml"),
        (b"[1, 2]", "application/json"),
        (("title: " + "x" * 200 + "\nblocks: [{type: rest, duration: 5}]").encode(), "text/yaml"),
        (b"<workout_file><oops", "application/xml"),
    ]:
        refused = await api.post(
            "/routines", content=content, headers={**bearer(token), "Content-Type": kind}
        )
        assert refused.status_code == 400, (content, refused.text)
        body = refused.json()
        assert body["code"] == "invalid_routine" and body["problems"]
    too_big = await api.post(
        "/routines",
        content=b"#" * (2 * 1024 * 1024 + 10),
        headers={**bearer(token), "Content-Type": "application/yaml"},
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "too_large"
    assert await rows(live_server.settings.database_url, Routine) == before


# -- limits ------------------------------------------------------------------------------


@pytest.fixture
def limited_server(migrated_url: str, tmp_path: Path) -> Any:
    import asyncio

    asyncio.run(seed(migrated_url))
    yield from run_server(settings_for(migrated_url, tmp_path, api_requests_per_minute=5))


async def test_requests_past_the_rate_get_429_with_retry_after(limited_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=limited_server.base_url) as console:
        await sign_in(console)
        token = await make_token(console, "Busy")
        other = await make_token(console, "Quiet")
        answers = [
            (await console.get("/api/v1/rooms", headers=bearer(token))).status_code
            for _ in range(7)
        ]
        assert answers == [200] * 5 + [429] * 2
        limited = await console.get("/api/v1/rooms", headers=bearer(token))
        assert limited.json()["code"] == "too_many_requests"
        assert 0 < int(limited.headers["retry-after"]) <= 60
        # Counted per token: another token is still served.
        assert (await console.get("/api/v1/rooms", headers=bearer(other))).status_code == 200
        # Wrong tokens are counted per address, and then refused before they are checked.
        wrong = [
            (await console.get("/api/v1/rooms", headers=bearer("api_wrong"))).status_code
            for _ in range(31)
        ]
        assert wrong == [401] * 30 + [429]
        blocked = await console.get("/api/v1/rooms", headers=bearer(other))
        assert blocked.status_code == 429
        assert blocked.json()["message"].startswith("Too many wrong tokens")


async def test_the_openapi_document_describes_every_route(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    from classroom.web.api import routes

    served = await console.get("/api/openapi.json")
    assert served.status_code == 200
    document = served.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"{live_server.base_url}/api/v1"}]
    described = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    routed = {
        (route.path.removeprefix("/api/v1").replace(":int", ""), method)
        for route in routes
        if route.path.startswith("/api/v1")
        for method in (route.methods or ())
        if method != "HEAD"
    }
    assert described == routed


async def test_open_class_page_is_unchanged_for_the_console(
    console: httpx.AsyncClient,
) -> None:
    """The console's form and the API open classes through one path."""
    class_id = await open_class(console)
    assert (await console.get(f"/console/classes/{class_id}")).status_code == 200
