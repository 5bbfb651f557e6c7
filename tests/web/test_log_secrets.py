"""No secret the server makes or is given reaches its log, in either log format.

``classroom serve`` runs in a process of its own with its output captured, and a
whole class goes through it: an instructor made with ``classroom create-instructor``
signs in with a password, opens a class in a room, makes a display link and opens
the wall with it, two phones join and score, the room's heart-rate receiver
connects with its token, the class starts and finishes, and everyone reads the
results. Requests with ``Authorization: Bearer …`` and with secrets in the query
string go in too. Then every line of the log is searched for every secret the test
made or saw: the secret key, the password, cookies, CSRF tokens, screen tokens, the
receiver's token, the metrics token, the passwords of the database and Redis URLs.

In JSON, every line must also be a JSON object; lines about the class carry its
``class_id``, and a request's access line carries the id its ``X-Request-ID``
response header gave.

To cover a new kind of secret, add a step to :data:`STEPS` that makes the server
use it and records it with ``run.secrets.add(what, value)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy.engine import make_url

from classroom.db.migrate import upgrade
from classroom.db.routines import RoutineSource
from tests.api import bearer, make_token, receiving, register
from tests.conftest import seed
from tests.db.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.heart import LONG
from tests.helpers import command, csrf, join, join_code, sign_in, until
from tests.processes import PrivateRedis, Server, prepared
from tests.web.test_display_links import LINK
from tests.web.test_heart_bridge import Steady, add_receiver, add_room, bridge, open_in

ROUTINE = RoutineSource("long", "Long ride", "yaml", LONG)
EMAIL = "logs@example.com"


class Secrets:
    """Every secret the test made or saw, by what it is: none may be in the log."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, what: str, value: str) -> str:
        assert len(value) >= 8, f"{what} is too short to look for: {value!r}"
        self.found.append((what, value))
        return value

    def mint(self, what: str, prefix: str = "") -> str:
        """A new random secret, recorded."""
        return self.add(what, prefix + secrets.token_urlsafe(24))

    def cookies(self, who: str, client: httpx.AsyncClient) -> None:
        for name, value in client.cookies.items():
            self.add(f"{who}'s cookie {name}", value)

    def leaks(self, lines: list[str]) -> list[str]:
        """Each line that holds a secret (or its first 16 characters), saying which."""
        return [
            f"{what} in line {number}: {line}"
            for number, line in enumerate(lines, 1)
            for what, value in self.found
            if value in line or (len(value) >= 24 and value[:16] in line)
        ]


@dataclass
class Run:
    """One class through the server, and what the test learnt on the way."""

    server: Server
    console: httpx.AsyncClient
    secrets: Secrets
    password: str
    class_id: int = 0
    room_id: int = 0
    display_url: str = ""
    #: (method, path and query as sent) → the id the ``X-Request-ID`` header gave back.
    request_ids: dict[tuple[str, str], str] = field(default_factory=dict)

    def remember(self, response: httpx.Response) -> httpx.Response:
        request = response.request
        target = request.url.raw_path.decode()
        self.request_ids[(request.method, target)] = response.headers["x-request-id"]
        return response


# -- the steps of the class, in order ------------------------------------------------------


async def signs_in(run: Run) -> None:
    assert (await sign_in(run.console, EMAIL, run.password)).status_code == 303
    run.secrets.cookies("the instructor", run.console)
    run.secrets.add("the instructor's CSRF token", await csrf(run.console, "/console"))


async def opens_a_class_in_a_room(run: Run) -> None:
    run.room_id = await add_room(run.console, "Studio")
    run.class_id = await open_in(run.console, run.room_id)
    page = run.remember(await run.console.get(f"/console/classes/{run.class_id}"))
    assert page.status_code == 200


async def makes_a_display_link(run: Run) -> None:
    token = await csrf(run.console, f"/console/classes/{run.class_id}")
    made = await run.console.post(
        f"/console/classes/{run.class_id}/display-links", data={"csrf_token": token}
    )
    assert made.status_code == 303
    page = (await run.console.get(f"/console/classes/{run.class_id}")).text
    urls = [url.replace("&amp;", "&") for url, _ in LINK.findall(page)]
    assert len(urls) == 2, page
    for url in urls:
        run.secrets.add("a display link's token", url.split("token=", 1)[1].split("&", 1)[0])
    run.display_url = urls[-1].removeprefix(run.server.base_url)
    assert run.remember(await run.console.get(run.display_url)).status_code == 200


async def runs_the_class(run: Run) -> None:
    """The wall, two phones and the receiver on; start, scores, finish."""
    code = await join_code(run.console, run.class_id)
    cookies = []
    for name in ("Robin", "Sam"):
        async with httpx.AsyncClient(base_url=run.server.base_url) as phone:
            run.secrets.add(f"{name}'s CSRF token", await csrf(phone, "/join"))
            assert (await join(phone, code, name)).status_code == 303
            run.secrets.cookies(name, phone)
            run.secrets.add(
                f"{name}'s participant token", phone.cookies[f"classroom_p{run.class_id}"]
            )
            cookies.append("; ".join(f"{k}={v}" for k, v in phone.cookies.items()))
    receiver = run.secrets.add(
        "the receiver's token", await add_receiver(run.console, run.room_id, "Studio Pi")
    )
    ws_base = f"ws://127.0.0.1:{run.server.port}"
    wall_query = run.display_url.split("?", 1)[1]
    url = f"{ws_base}/ws/classes/{run.class_id}"
    straps = Steady({"C4:11:22:33:44:01": 120, "C4:11:22:33:44:02": 130})
    async with (
        bridge(run.server, receiver, straps) as receiving,  # type: ignore[arg-type]
        websockets.connect(f"{url}?{wall_query}") as wall,
        websockets.connect(url, additional_headers={"Cookie": cookies[0]}) as robin,
        websockets.connect(url, additional_headers={"Cookie": cookies[1]}) as sam,
    ):
        assert wall.response is not None
        run.request_ids[("WebSocket", f"/ws/classes/{run.class_id}?{wall_query}")] = (
            wall.response.headers["x-request-id"]
        )
        for ws in (wall, robin, sam):
            await until(ws, "snapshot")
        assert (await command(run.console, run.class_id, "start")).status_code == 200
        for ws, reps in ((robin, 12), (sam, 9)):
            await until(ws, "segment")
            score = {"type": "score", "id": f"s{reps}", "segment": 0, "kind": "reps", "value": reps}
            await ws.send(json.dumps(score))
            assert (await until(ws, "ack"))["duplicate"] is False
        await until(wall, "leaderboard")
        assert not receiving.done()
        assert (await command(run.console, run.class_id, "finish")).status_code == 200
        await until(wall, "phase")


async def reads_the_results(run: Run) -> None:
    page = await run.console.get(f"/console/classes/{run.class_id}/results")
    assert page.status_code == 200 and "Robin" in page.text
    wall = run.remember(await run.console.get(run.display_url.replace("?", "/results?", 1)))
    assert wall.status_code == 200


async def sends_bearer_tokens(run: Run) -> None:
    """The metrics token, right and wrong, as ``Authorization: Bearer``."""
    token = run.server.env["CLASSROOM_METRICS_TOKEN"]
    async with httpx.AsyncClient(base_url=run.server.base_url) as scraper:
        right = await scraper.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200
        wrong = run.secrets.mint("a wrong bearer token")
        refused = await scraper.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert refused.status_code == 401


async def uses_the_api_and_webhooks(run: Run) -> None:
    """An API token opens and runs a class; a webhook's first post fails, then is retried."""
    token = run.secrets.add("an API token", await make_token(run.console, "Booking"))
    with contextlib.contextmanager(receiving)() as receiver:
        receiver.fail_first = {"class.opened"}
        _, secret = await register(run.console, receiver.url, ["class.opened", "class.finished"])
        run.secrets.add("a webhook's secret", secret)
        async with httpx.AsyncClient(
            base_url=f"{run.server.base_url}/api/v1", headers=bearer(token)
        ) as api:
            listed = (await api.get("/routines")).json()["routines"]
            routine = next(r["id"] for r in listed if r["title"] == ROUTINE.title)
            opened = await api.post("/classes", json={"routine_id": routine})
            assert opened.status_code == 201, opened.text
            class_id = opened.json()["id"]
            run.secrets.add(
                "the API's display link token", opened.json()["display_url"].split("token=")[1]
            )
            for control in ("start", "finish"):
                done = await api.post(f"/classes/{class_id}/commands", json={"command": control})
                assert done.status_code == 200, done.text
            assert (await api.get(f"/classes/{class_id}/results")).status_code == 200
            wrong = run.secrets.mint("a wrong API token", "api_")
            refused = await api.get("/rooms", headers=bearer(wrong))
            assert refused.status_code == 401
        await receiver.wait_for("class.opened", 2)  # the failed post, and its retry
        await receiver.wait_for("class.finished")


async def sends_secrets_in_query_strings(run: Run) -> None:
    query = "&".join(
        f"{name}={run.secrets.mint(f'a {name} in a query string')}"
        for name in ("token", "api_key", "client_secret", "password")
    )
    async with httpx.AsyncClient(base_url=run.server.base_url) as client:
        assert run.remember(await client.get(f"/healthz?{query}")).status_code == 200
        stray = run.secrets.mint("a token sent to a missing page")
        missing = run.remember(await client.get(f"/nowhere?lang=en&token={stray}"))
        assert missing.status_code == 404


async def sends_request_ids(run: Run) -> None:
    """A well-formed ``X-Request-ID`` is kept; a malformed one is replaced."""
    async with httpx.AsyncClient(base_url=run.server.base_url) as client:
        given = await client.get("/healthz?given", headers={"X-Request-ID": "lb-42.a_b"})
        assert run.remember(given).headers["x-request-id"] == "lb-42.a_b"
        for bad in ("has space", "x" * 65, "semi;colon"):
            answer = await client.get("/healthz?bad", headers={"X-Request-ID": bad})
            assert re.fullmatch(r"[0-9a-f]{16}", answer.headers["x-request-id"]), bad


Step = Callable[[Run], Awaitable[None]]
STEPS: list[Step] = [
    signs_in,
    opens_a_class_in_a_room,
    makes_a_display_link,
    runs_the_class,
    reads_the_results,
    sends_bearer_tokens,
    uses_the_api_and_webhooks,
    sends_secrets_in_query_strings,
    sends_request_ids,
]


# -- the server, in each format ------------------------------------------------------------


@pytest.fixture
def minted() -> Secrets:
    return Secrets()


@pytest.fixture(params=["text", "json"])
def server(request: pytest.FixtureRequest, tmp_path: Path, minted: Secrets) -> Iterator[Server]:
    """The server in each log format: text on SQLite, JSON with two workers on PostgreSQL
    and Redis, both with passwords in their URLs."""
    if request.param == "text":
        yield from started(prepared(tmp_path, ROUTINE), tmp_path, minted, "text")
        return
    database_url = request.getfixturevalue("postgres_url")
    upgrade(database_url)
    asyncio.run(seed(database_url, [ROUTINE]))
    # The local PostgreSQL trusts its clients: the password is carried, not checked.
    with_password = make_url(database_url).set(password=minted.mint("the database password"))
    redis = PrivateRedis(tmp_path, minted.mint("the Redis password"))
    redis.start()
    server = Server(tmp_path / "unused.db", tmp_path)
    server.env.update(
        CLASSROOM_DATABASE_URL=with_password.render_as_string(hide_password=False),
        CLASSROOM_REDIS_URL=redis.url,
        CLASSROOM_REDIS_PREFIX=f"test-{secrets.token_hex(4)}",
    )
    del server.env["CLASSROOM_NODE"]  # each worker names itself
    server.args = ["--workers", "2"]
    try:
        yield from started(server, tmp_path, minted, "json")
    finally:
        redis.kill()


def started(server: Server, tmp_path: Path, minted: Secrets, log_format: str) -> Iterator[Server]:
    server.env.update(
        CLASSROOM_LOG_FORMAT=log_format,
        CLASSROOM_SECRET_KEY=minted.mint("the secret key"),
        CLASSROOM_METRICS_TOKEN=minted.mint("the metrics token"),
    )
    server.log = tmp_path / "server.log"
    # The instructor's password goes in through the command line, whose log is kept too.
    password = minted.mint("the instructor's password")
    made = subprocess.run(
        [
            sys.executable,
            *("-m", "classroom.cli", "create-instructor", "--email", EMAIL, "--password-stdin"),
        ],
        input=f"{password}\n",
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    server.log.write_text(made.stderr)
    server.env["TEST_PASSWORD"] = password  # for the steps: the instructor signs in with it
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def run_a_class(server: Server, minted: Secrets) -> Run:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        run = Run(server, console, minted, server.env["TEST_PASSWORD"])
        for step in STEPS:
            await step(run)
    await asyncio.sleep(0.5)  # the last lines written
    server.stop()  # and the lines of its shutdown
    return run


TEXT_LINE = re.compile(
    r"(?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*?)"
    r"(?: class=(?P<class_id>\d+))?(?: request=(?P<request_id>[A-Za-z0-9._-]+))?"
)


def parsed(log_format: str, number: int, line: str) -> dict[str, Any]:
    """A line of the log as its fields (time, level, logger, message, class_id, request_id)."""
    if log_format == "text":
        found = TEXT_LINE.fullmatch(line)
        assert found, f"line {number} is not a log line: {line}"
        fields = {k: v for k, v in found.groupdict().items() if v is not None}
        if "class_id" in fields:
            fields["class_id"] = int(fields["class_id"])
        return fields
    try:
        record = json.loads(line)
    except ValueError:
        pytest.fail(f"line {number} is not JSON: {line}")
    assert isinstance(record, dict), line
    assert {"time", "level", "logger", "message"} <= set(record), line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), line
    return record


async def test_no_secret_reaches_the_log_and_lines_name_their_class_and_request(
    server: Server, minted: Secrets
) -> None:
    run = await run_a_class(server, minted)
    assert server.log is not None
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert minted.leaks(lines) == []

    log_format = server.env["CLASSROOM_LOG_FORMAT"]
    records = [parsed(log_format, number, line) for number, line in enumerate(lines, 1)]
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL") or "exception" in r]
    # Each request's access line carries the id its X-Request-ID header gave back.
    for (method, target), request_id in run.request_ids.items():
        mine = [r for r in records if r.get("request_id") == request_id]
        if method == "WebSocket":  # a socket's own lines: the wall's, about its class
            assert [r["message"] for r in mine] == ["display connected", "display disconnected"]
            assert all(r["class_id"] == run.class_id for r in mine), mine
            continue
        path = target.split("?", 1)[0]
        access = [r for r in mine if r["logger"] == "uvicorn.access"]
        assert len(access) == 1 and f'"{method} {path}' in access[0]["message"], (target, mine)
        if re.match(rf"/(display|console/classes)/{run.class_id}\b", path):  # the class's
            assert access[0]["class_id"] == run.class_id, access
    # Lines about the class, on its console pages, name it; others don't.
    page = [r for r in records if f"GET /console/classes/{run.class_id} " in r["message"]]
    assert page and all(r.get("class_id") == run.class_id for r in page), page
    assert all("class_id" not in r for r in records if "/healthz" in r["message"])
