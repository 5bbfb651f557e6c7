"""Signing in and out, CSRF on every form, throttling, and create-instructor."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from classroom import cli
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Instructor, InstructorSession
from classroom.web.auth import BAD_CREDENTIALS, COOKIE
from classroom.web.csrf import CSRF_FAILED
from classroom.web.throttle import AttemptWindow
from tests.conftest import INSTRUCTOR_EMAIL, LiveServer
from tests.helpers import csrf, sign_in


async def session_count(url: str) -> int:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        count = await db.scalar(select(func.count()).select_from(InstructorSession))
    await engine.dispose()
    return int(count or 0)


async def test_the_console_needs_a_signed_in_instructor(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/console"


async def test_sign_in_sets_a_safe_session_cookie_and_opens_the_console(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    response = await sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert (await client.get("/console")).status_code == 200
    assert await session_count(live_server.settings.database_url) == 1


async def test_sign_out_ends_the_session_on_the_server(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    await sign_in(client)
    stolen = client.cookies[COOKIE]
    token = await csrf(client, "/console")
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert await session_count(live_server.settings.database_url) == 0
    # The old cookie opens nothing any more, even if someone kept a copy.
    async with httpx.AsyncClient(base_url=live_server.base_url, cookies={COOKIE: stolen}) as other:
        assert (await other.get("/console")).status_code == 303


@pytest.mark.parametrize(
    ("email", "password"),
    [("coach@example.com", "wrong password"), ("nobody@example.com", "correct horse battery")],
)
async def test_a_wrong_email_and_a_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, email: str, password: str
) -> None:
    response = await sign_in(client, email, password)
    assert response.status_code == 400
    assert BAD_CREDENTIALS.replace("'", "&#39;") in response.text
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("token", [None, "", "forged-token"])
async def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, live_server: LiveServer, token: str | None
) -> None:
    await client.get("/login")  # the browser has its CSRF cookie
    data = {"email": INSTRUCTOR_EMAIL, "password": "correct horse battery", "next": "/console"}
    if token is not None:
        data["csrf_token"] = token
    response = await client.post("/login", data=data)
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert CSRF_FAILED.startswith("This form has expired")
    assert await session_count(live_server.settings.database_url) == 0


async def test_every_post_route_checks_csrf(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for path in ("/logout", "/console/classes", "/join", "/console/classes/1/commands"):
        response = await client.post(path, data={"csrf_token": "nope"})
        assert response.status_code in (403, 404), path
        if response.status_code == 403:
            assert "This form has expired" in response.text


def test_attempts_are_counted_per_address_in_a_window() -> None:
    # Wrong pairing codes and new displays (sign-in: tests/web/test_sign_in_throttle.py).
    throttle = AttemptWindow(per_account=5, per_address=20, window_s=900)
    for i in range(20):
        assert throttle.retry_after(f"user{i}@x", "10.0.0.1", now=i) == 0
        throttle.failed(f"user{i}@x", "10.0.0.1", now=i)
    assert throttle.retry_after("fresh@x", "10.0.0.1", now=30) == pytest.approx(870)
    assert throttle.retry_after("fresh@x", "10.0.0.2", now=30) == 0  # another address
    assert throttle.retry_after("fresh@x", "10.0.0.1", now=901) == 0  # the window has passed


def test_create_instructor_reads_the_password_from_stdin(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert cli.main(["create-instructor", "--email", " Ann@Gym.example ", "--password-stdin"]) == 0
    assert "created instructor ann@gym.example" in capsys.readouterr().out

    async def stored() -> Instructor | None:
        engine = make_engine(migrated_url)
        async with make_sessionmaker(engine)() as db:
            row = await db.scalar(select(Instructor).where(Instructor.email == "ann@gym.example"))
        await engine.dispose()
        return row

    row = asyncio.run(stored())
    assert row is not None and row.password_hash.startswith("$argon2")
    assert "a long enough secret" not in row.password_hash


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("ann@gym.example", "short\n", "at least 10 characters"),
        ("not-an-email", "a long enough secret\n", "is not an email address"),
    ],
)
def test_create_instructor_refuses_bad_input(
    migrated_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    email: str,
    password: str,
    error: str,
) -> None:
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(password))
    assert cli.main(["create-instructor", "--email", email, "--password-stdin"]) == 1
    assert error in capsys.readouterr().err


def test_create_instructor_refuses_a_second_account_with_the_same_email(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    for expected in (0, 1):
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
        assert (
            cli.main(["create-instructor", "--email", "ann@gym.example", "--password-stdin"])
            == expected
        )
    assert "already exists" in capsys.readouterr().err


def test_serve_refuses_to_start_without_a_secret_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("CLASSROOM_SECRET_KEY", raising=False)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(tmp_path))
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CLASSROOM_SECRET_KEY is not set" in err
