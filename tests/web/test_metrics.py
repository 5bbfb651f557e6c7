"""``/metrics``: who may read it, and what a running class shows there.

Every test runs the real server and scrapes it over HTTP, parsing the answer
with ``prometheus_client``'s own parser, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from classroom.config import ConfigError, MetricsAccess, Settings
from classroom.metrics import Metrics
from classroom.web.app import create_app
from classroom.web.metrics import NEEDS_TOKEN, MetricsListener
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, until
from tests.web.test_protocol import Class, tap

TOKEN = "scrape-token-0123456789abcdef"
NODE = "node-a"
REPO = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def serve_with(url: str, tmp_path: Path, access: MetricsAccess) -> Iterator[LiveServer]:
    asyncio.run(seed(url))
    yield from run_server(settings_for(url, tmp_path, node=NODE, metrics=access))


@pytest.fixture
def metered(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose /metrics asks for TOKEN."""
    yield from serve_with(migrated_url, tmp_path, MetricsAccess(enabled=True, token=TOKEN))


@pytest.fixture
def listening(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with /metrics on a listener of its own (a free port), asking for TOKEN."""
    access = MetricsAccess(enabled=True, token=TOKEN, listen=("127.0.0.1", 0))
    yield from serve_with(migrated_url, tmp_path, access)


@pytest.fixture
async def console(metered: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=metered.base_url) as c:
        yield c


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient, token: str = TOKEN) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "set-cookie" not in response.headers
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def instructor(cls: Class) -> websockets.connect:
    cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    return websockets.connect(cls.url(), additional_headers={"Cookie": cookie})


# -- who may read it ---------------------------------------------------------------------


async def test_metrics_are_off_by_default(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    assert live_server.settings.metrics == MetricsAccess()
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert "classroom_" not in response.text
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ünïcode-token".encode(),
    ],
)
async def test_a_missing_or_wrong_token_gets_401_and_no_figures(
    metered: LiveServer, console: httpx.AsyncClient, authorization: str | bytes | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await console.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.text == NEEDS_TOKEN
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "classroom_" not in response.text
    assert "set-cookie" not in response.headers


async def test_the_right_token_gets_the_figures_and_no_cookie(
    metered: LiveServer, console: httpx.AsyncClient
) -> None:
    response = await console.get("/metrics", headers={"Authorization": f"bearer  {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "classroom_screens",
        "classroom_classes",
        "classroom_sockets_open",
        "classroom_sockets_refused",
        "classroom_cue_lateness_seconds",
        "classroom_score_ack_seconds",
        "classroom_fanout_seconds",
        "classroom_broker_lag_seconds",
        "classroom_db_commit_seconds",
        "classroom_score_inputs",
        "classroom_commands",
        "classroom_lease_renewals",
        "classroom_lease_takeovers",
    } <= families
    samples = parse(response.text)
    assert value(samples, "classroom_lease_renewals_total") == 0
    assert value(samples, "classroom_lease_takeovers_total") == 0
    assert value(samples, "classroom_screens", role="participant") == 0


async def test_metrics_take_no_post_and_a_cross_site_one_is_refused_as_any_form(
    metered: LiveServer, console: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    foreign = await console.post("/metrics", headers={**headers, "Origin": "https://evil.test"})
    assert foreign.status_code == 403
    assert "classroom_" not in foreign.text
    same_site = await console.post("/metrics", headers=headers)
    assert same_site.status_code == 405
    assert "classroom_" not in same_site.text


async def test_refused_sockets_are_counted(metered: LiveServer, console: httpx.AsyncClient) -> None:
    metered.state.admission.refused += (
        3  # as the connection limits do (tests/web/test_socket_limits.py)
    )
    assert value(await scrape(console), "classroom_sockets_refused_total") == 3


# -- what a class shows -------------------------------------------------------------------


async def test_a_running_class_shows_its_screens_by_role_and_its_phase(
    metered: LiveServer, console: httpx.AsyncClient
) -> None:
    cls = await Class(metered, console).open()
    async with instructor(cls) as desk, cls.display() as wall, cls.phone() as phone:
        for ws in (desk, wall, phone):
            await until(ws, "snapshot")
        lobby = await scrape(console)  # a class is run here once a screen or a command needs it
        assert value(lobby, "classroom_classes", phase="lobby", owner=NODE) == 1
        assert value(lobby, "classroom_classes", phase="running", owner=NODE) == 0
        assert (await command(console, cls.id, "start")).status_code == 200
        await until(wall, "segment")  # the class is running
        running = await scrape(console)
        assert value(running, "classroom_sockets_open") == 3
    for role in ("instructor", "participant", "display"):
        assert value(running, "classroom_screens", role=role) == 1
    assert value(running, "classroom_classes", phase="running", owner=NODE) == 1
    assert value(running, "classroom_classes", phase="lobby", owner=NODE) == 0
    async with asyncio.timeout(5):  # the screens leave as their sockets close
        while True:
            after = await scrape(console)
            if all(
                value(after, "classroom_screens", role=role) == 0
                for role in ("instructor", "participant", "display")
            ):
                break
            await asyncio.sleep(0.05)


async def test_a_cue_and_scores_are_timed_and_every_input_is_counted(
    metered: LiveServer, console: httpx.AsyncClient
) -> None:
    cls = await Class(metered, console).open()
    before = await scrape(console)
    assert value(before, "classroom_cue_lateness_seconds_count", event="cue") == 0
    assert value(before, "classroom_score_ack_seconds_count") == 0
    assert (await command(console, cls.id, "start")).status_code == 200
    assert (await command(console, cls.id, "start")).status_code == 409  # already started
    async with cls.phone() as phone:
        await until(phone, "snapshot")
        cue = await until(phone, "cue")  # "one", due 1 s after the start
        assert cue["text"] == "one"
        for i in range(5):
            await phone.send(tap(f"tap-{i}"))
            assert (await until(phone, "ack"))["duplicate"] is False
        await phone.send(tap("tap-0"))  # sent again: a repeat, counted once
        assert (await until(phone, "ack"))["duplicate"] is True
        await phone.send(tap("ahead", segment=2))  # a segment not reached yet
        assert (await until(phone, "error"))["code"] == "rejected"
        await phone.send(json.dumps({"type": "score", "id": 7, "segment": 0}))  # no client id
        assert (await until(phone, "error"))["code"] == "bad_field"
    after = await scrape(console)

    assert value(after, "classroom_cue_lateness_seconds_count", event="cue") >= 1
    assert value(after, "classroom_cue_lateness_seconds_count", event="phase") == 1  # to running
    assert value(after, "classroom_score_ack_seconds_count") == 6  # the stored and the repeat
    assert value(after, "classroom_score_inputs_total", outcome="stored") == 5
    assert value(after, "classroom_score_inputs_total", outcome="repeat") == 1
    assert value(after, "classroom_score_inputs_total", outcome="refused") == 2
    assert value(after, "classroom_commands_total", outcome="applied") == 1
    assert value(after, "classroom_commands_total", outcome="rejected") == 1
    assert value(after, "classroom_db_commit_seconds_count", what="scores") >= 1
    # The start (with no lead-in, straight to running) and the cue were written first.
    assert value(after, "classroom_db_commit_seconds_count", what="transition") >= 2
    assert value(after, "classroom_fanout_seconds_count") >= 3
    # Timed from when this process follows the class (its phone came after the start).
    assert value(after, "classroom_broker_lag_seconds_count") >= 1
    for histogram, labels in (
        ("classroom_cue_lateness_seconds", {"event": "cue"}),
        ("classroom_score_ack_seconds", {}),
        ("classroom_broker_lag_seconds", {}),
    ):  # every observation is in the +Inf bucket, and took some time
        count = value(after, f"{histogram}_count", **labels)
        assert value(after, f"{histogram}_bucket", le="+Inf", **labels) == count
        assert value(after, f"{histogram}_sum", **labels) >= 0
    assert value(after, "classroom_score_ack_seconds_sum") > 0


# -- a listener of its own ------------------------------------------------------------------


async def test_metrics_on_an_address_of_their_own(listening: LiveServer) -> None:
    port = listening.state.metrics_listener.port
    assert port not in (0, listening.port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=listening.base_url) as main:
        moved = await main.get("/metrics", headers=headers)
        assert moved.status_code == 404 and "classroom_" not in moved.text
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
        refused = await scraper.get("/metrics")
        assert refused.status_code == 401 and refused.text == NEEDS_TOKEN
        samples = await scrape(scraper)
        assert value(samples, "classroom_classes", phase="lobby", owner=NODE) == 0
        assert (await scraper.get("/", headers=headers)).status_code == 404
        assert (await scraper.post("/metrics", headers=headers)).status_code == 405
        head = await scraper.head("/metrics", headers=headers)
        assert head.status_code == 200 and head.content == b""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_the_metrics_listener_stops_with_the_server(migrated_url: str, tmp_path: Path) -> None:
    access = MetricsAccess(enabled=True, listen=("127.0.0.1", 0))
    servers = serve_with(migrated_url, tmp_path, access)
    port = next(servers).state.metrics_listener.port
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200  # no token asked
    servers.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLASSROOM_METRICS": "on"}, "CLASSROOM_METRICS must be off, token, or an address"),
        ({"CLASSROOM_METRICS": "token"}, "needs CLASSROOM_METRICS_TOKEN"),
        ({"CLASSROOM_METRICS_TOKEN": "short"}, "at least 16 characters"),
        ({"CLASSROOM_METRICS_TOKEN": "a token with spaces in it"}, "at least 16 characters"),
        ({"CLASSROOM_METRICS": "127.0.0.1:99999"}, "an address to serve /metrics on"),
        ({"CLASSROOM_METRICS": "127.0.0.1"}, "an address to serve /metrics on"),
        ({"CLASSROOM_METRICS": "[nope]:9100"}, "an address to serve /metrics on"),
        ({"CLASSROOM_METRICS": "0.0.0.0:8000"}, "the server itself listens there"),
    ],
)
def test_a_bad_metrics_setting_is_refused_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="CLASSROOM_METRICS") as refused:
        Settings.from_env({"CLASSROOM_SECRET_KEY": "s" * 32, **env})
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "access"),
    [
        ({}, MetricsAccess()),
        ({"CLASSROOM_METRICS": "off", "CLASSROOM_METRICS_TOKEN": TOKEN}, MetricsAccess()),
        ({"CLASSROOM_METRICS_TOKEN": TOKEN}, MetricsAccess(enabled=True, token=TOKEN)),
        (
            {"CLASSROOM_METRICS": "Token", "CLASSROOM_METRICS_TOKEN": TOKEN},
            MetricsAccess(enabled=True, token=TOKEN),
        ),
        (
            {"CLASSROOM_METRICS": "127.0.0.1:9100"},
            MetricsAccess(enabled=True, listen=("127.0.0.1", 9100)),
        ),
        (
            {"CLASSROOM_METRICS": "[::1]:9100", "CLASSROOM_METRICS_TOKEN": TOKEN},
            MetricsAccess(enabled=True, token=TOKEN, listen=("::1", 9100)),
        ),
    ],
)
def test_metrics_settings(env: dict[str, str], access: MetricsAccess) -> None:
    assert Settings.from_env({"CLASSROOM_SECRET_KEY": "s" * 32, **env}).metrics == access


def test_serve_stops_at_start_on_a_bad_metrics_setting(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLASSROOM_SECRET_KEY": "s" * 32,
        "CLASSROOM_DATA_DIR": str(tmp_path),
        "CLASSROOM_METRICS": "everyone",
    }
    done = subprocess.run(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "classroom: CLASSROOM_METRICS must be off, token, or an address to serve /metrics on, "
        "like 127.0.0.1:9100, not 'everyone'"
    ]
    assert not (tmp_path / "classroom.db").exists()  # it stopped before doing anything


def test_each_app_keeps_its_own_figures(tmp_path: Path) -> None:
    one = create_app(settings_for("sqlite+aiosqlite:///:memory:", tmp_path))
    two = create_app(settings_for("sqlite+aiosqlite:///:memory:", tmp_path))
    first: Metrics = one.state.metrics
    second: Metrics = two.state.metrics
    first.inputs_stored.inc(4)
    assert b'classroom_score_inputs_total{outcome="stored"} 4.0' in first.exposition()
    assert b'classroom_score_inputs_total{outcome="stored"} 0.0' in second.exposition()


async def test_a_metrics_port_in_use_stops_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        access = MetricsAccess(enabled=True, listen=("127.0.0.1", taken.getsockname()[1]))
        with pytest.raises(OSError, match="address already in use"):
            await MetricsListener(Metrics(), access).start()
