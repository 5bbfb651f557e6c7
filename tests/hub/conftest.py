"""Fixtures of the hub tests: a live server seeded with one routine, a running class."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from classroom.db.routines import RoutineSource
from classroom.hub import hub as hub_module
from classroom.hub.admission import SocketLimits
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, join, join_code, open_class, sign_in

DATA = Path(__file__).parent / "data"


def serve_routine(url: str, tmp_path: Path, name: str, **extra: Any) -> Iterator[LiveServer]:
    """A live server whose only routine is tests/hub/data/<name>.yaml."""
    source = (DATA / f"{name}.yaml").read_text()
    asyncio.run(seed(url, [RoutineSource(name, name.title(), "yaml", source)]))
    yield from run_server(settings_for(url, tmp_path, **extra))


@pytest.fixture
def steady_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose routine cues every second for three minutes.

    Its load tests open hundreds of walls on one display link, all from 127.0.0.1:
    no limits per link or per address.
    """
    limits = SocketLimits(per_display=0, per_address=0)
    yield from serve_routine(migrated_url, tmp_path, "steady", socket_limits=limits)


@pytest.fixture
def quiet_server(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """A server whose routine has no cues, and whose hub sends no periodic heartbeats.

    With nothing arriving on its own, every message a screen gets is either an
    answer to something it sent or an event somebody caused.
    """
    monkeypatch.setattr(hub_module, "HEARTBEAT_S", 3600.0)
    yield from serve_routine(migrated_url, tmp_path, "quiet")


@dataclass
class RunningClass:
    """A class that has started, with the console's cookies and one joined participant."""

    class_id: int
    console_cookie: str
    participant_cookie: str
    participant_id: int

    def ws_url(self, server: LiveServer, query: str = "") -> str:
        return f"{server.ws_url}/ws/classes/{self.class_id}{query}"


def cookie_of(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


async def start_class(server: LiveServer, nickname: str = "Robin") -> RunningClass:
    """Sign in, open a class of the server's routine, let one participant join, start it."""
    async with (
        httpx.AsyncClient(base_url=server.base_url) as console,
        httpx.AsyncClient(base_url=server.base_url) as phone,
    ):
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        joined = await join(phone, code, nickname)
        assert joined.status_code == 303, joined.text
        started = await command(console, class_id, "start")
        assert started.status_code == 200, started.text
        tokens: Any = server.server.config.app.state.tokens  # type: ignore[attr-defined]
        grant = tokens.verify(phone.cookies[f"classroom_p{class_id}"], class_id)
        return RunningClass(class_id, cookie_of(console), cookie_of(phone), grant.participant_id)


def server_loop(server: LiveServer) -> asyncio.AbstractEventLoop:
    """The event loop the live server runs on (in its own thread)."""
    return server.server.servers[0].get_loop()  # type: ignore[no-any-return]
