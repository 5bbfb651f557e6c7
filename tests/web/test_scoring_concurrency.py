"""Scores under concurrency: 200 phones, 1,000 inputs at once, repeats and replays, exact totals.

Everything is real: a uvicorn server on a free port with a SQLite file, 200
participants who join through the join page (auto-balanced into four teams),
and one WebSocket client per phone. Every phone logs five inputs at the same
moment as every other. On top of that, some phones send each input twice,
some send everything again on a new socket after every ack came in, and some
drop their socket right after sending (before any ack) and replay everything
on a new one, as a phone does after a Wi-Fi drop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from classroom.domain.teams import default_team_names, team_specs
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import command, join, join_code, open_class, sign_in

PHONES = 200
INPUTS = 5  # per phone: 1,000 in all
TEAMS = 4
ROUTINE = """title: Reps for a while
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Burpees
    duration: 180
    score: reps
"""


def behaviour(phone: int) -> str:
    """What a phone does besides sending its inputs once."""
    if phone % 7 == 3:
        return "drops"  # sends, drops the socket before any ack, replays on a new one
    if phone % 5 == 0:
        return "replays"  # gets every ack, then sends everything again on a new socket
    if phone % 4 == 1:
        return "repeats"  # sends each input twice in a row on the same socket
    return "once"


def value(phone: int, k: int) -> int:
    return 1 + (phone + k) % 3


@dataclass
class Phone:
    index: int
    cookie: str
    participant_id: int = 0
    acks: list[tuple[str, bool]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [f"p{self.index}-{k}" for k in range(INPUTS)]

    def total(self) -> int:
        return sum(value(self.index, k) for k in range(INPUTS))


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("reps", "Reps for a while", "yaml", ROUTINE)]))
    # 200 phones join from one address in a few seconds: no join rate here.
    yield from run_server(settings_for(migrated_url, tmp_path, joins_per_minute=0))


def database(server: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(server.settings.database_url.removeprefix("sqlite+aiosqlite:///"))


def add_teams(server: LiveServer, class_id: int) -> None:
    """The class's teams, set up in the lobby (as rows: the joins balance phones over them)."""
    with database(server) as db:
        db.executemany(
            "INSERT INTO teams (class_id, name, colour, letter, pattern, position)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (class_id, s.name, s.look.colour, s.look.letter, s.look.pattern, i)
                for i, s in enumerate(team_specs(default_team_names(TEAMS)))
            ],
        )


async def join_phones(server: LiveServer, code: str) -> list[Phone]:
    gate = asyncio.Semaphore(20)

    async def one(index: int) -> Phone:
        async with gate, httpx.AsyncClient(base_url=server.base_url) as browser:
            response = await join(browser, code, f"phone {index}")
            assert response.status_code == 303, response.text[:500]
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            return Phone(index, cookie)

    phones = await asyncio.gather(*(one(i) for i in range(PHONES)))
    with database(server) as db:
        ids = dict(db.execute("SELECT nickname, id FROM participants"))
    for phone in phones:
        phone.participant_id = ids[f"phone {phone.index}"]
    return phones


def score(client_id: str, phone: int, k: int) -> str:
    message = {"type": "score", "id": client_id, "segment": 0, "kind": "reps"}
    return json.dumps(message | {"value": value(phone, k)})


async def read_acks(ws: websockets.ClientConnection, phone: Phone, count: int) -> None:
    """Read until ``count`` acks have come (every input gets one, a repeat too)."""
    got = 0
    async with asyncio.timeout(30):
        while got < count:
            message = json.loads(await ws.recv())
            if message["type"] == "ack":
                phone.acks.append((message["id"], message["duplicate"]))
                got += 1
            elif message["type"] == "error":
                phone.errors.append(message)
                got += 1


async def run_phone(url: str, phone: Phone, go: asyncio.Event) -> None:
    headers = {"Cookie": phone.cookie}
    ids = phone.ids()
    messages = [score(cid, phone.index, k) for k, cid in enumerate(ids)]
    kind = behaviour(phone.index)
    async with websockets.connect(url, additional_headers=headers) as ws:
        while json.loads(await ws.recv())["type"] != "snapshot":
            pass
        await go.wait()
        for message in messages:
            await ws.send(message)
            if kind == "repeats":
                await ws.send(message)
        if kind == "drops":
            ws.transport.abort()  # gone before any ack, like a phone losing its Wi-Fi
        else:
            await read_acks(ws, phone, len(messages) * (2 if kind == "repeats" else 1))
    if kind in ("drops", "replays"):
        async with websockets.connect(url, additional_headers=headers) as ws:
            while json.loads(await ws.recv())["type"] != "snapshot":
                pass
            for message in messages:
                await ws.send(message)
            await read_acks(ws, phone, len(messages))


async def final_board(ws: websockets.ClientConnection, expected: dict[int, int]) -> dict[str, Any]:
    """The display's leaderboard once its team totals are the ones expected (or the last one)."""
    board: dict[str, Any] = {}
    try:
        async with asyncio.timeout(10):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] != "leaderboard" or message["class"] is None:
                    continue
                board = message
                teams = {row["id"]: row["value"] for row in message["class"]["teams"]}
                if teams == expected:
                    return board
    except TimeoutError:
        pass
    return board


async def test_a_thousand_inputs_from_200_phones_at_once_count_exactly_once(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        add_teams(server, class_id)
        phones = await join_phones(server, await join_code(console, class_id))
        assert (await command(console, class_id, "start")).status_code == 200

    url = f"{server.ws_url}/ws/classes/{class_id}"
    app = server.server.config.app  # type: ignore[attr-defined]
    display_url = f"{url}?token={app.state.tokens.display(class_id)}"
    with database(server) as db:
        team_of = dict(db.execute("SELECT id, team_id FROM participants"))
    team_totals: dict[int, int] = defaultdict(int)
    for phone in phones:
        team_totals[team_of[phone.participant_id]] += phone.total()

    go = asyncio.Event()
    async with websockets.connect(display_url) as display:
        tasks = [asyncio.create_task(run_phone(url, phone, go)) for phone in phones]
        await asyncio.sleep(0.5)  # every phone connected and waiting
        go.set()
        await asyncio.gather(*tasks)
        board = await final_board(display, dict(team_totals))

    assert [phone.errors for phone in phones if phone.errors] == []
    # Every input acknowledged, and acknowledged as new exactly once.
    for phone in phones:
        new = Counter(cid for cid, duplicate in phone.acks if not duplicate)
        acked = Counter(cid for cid, _ in phone.acks)
        kind = behaviour(phone.index)
        assert set(acked) == set(phone.ids()), (phone.index, kind, phone.acks)
        if kind == "drops":
            # The first socket's acks were lost with it: the replay's ack says new for an
            # input the server hadn't read yet, a repeat for one it had already stored.
            assert all(n == 1 for n in new.values()), (phone.index, phone.acks)
        else:
            assert new == Counter(phone.ids()), (phone.index, kind, phone.acks)
            assert all(acked[cid] == 2 for cid in phone.ids()) == (kind != "once")

    # Stored exactly once each, and adding up to exactly what was sent.
    with database(server) as db:
        rows = list(db.execute("SELECT participant_id, client_id, value, withdrawn FROM scores"))
    expected = {
        (phone.participant_id, cid, value(phone.index, k))
        for phone in phones
        for k, cid in enumerate(phone.ids())
    }
    assert len(rows) == PHONES * INPUTS
    assert {(pid, cid, v) for pid, cid, v, _ in rows} == expected
    assert not any(withdrawn for *_, withdrawn in rows)

    # The live book's totals, as the instructor's board ranks everyone.
    totals = {phone.participant_id: phone.total() for phone in phones}
    pair = app.state.registry.scores.boards(class_id, 0, public=False)
    assert pair is not None
    segment_board, class_board = pair
    assert {row.id: row.value for row in class_board.people} == totals
    assert segment_board is not None
    assert {row.id: row.value for row in segment_board.people} == totals

    # The board every screen got last: each team's total is its members' sum.
    assert board, "the display got no leaderboard"
    assert {row["id"]: row["value"] for row in board["class"]["teams"]} == team_totals
    assert sum(row["members"] for row in board["class"]["teams"]) == PHONES
    for row in board["class"]["people"]:
        assert row["value"] == totals[row["id"]]
    assert board["class"]["people"][0]["value"] == max(totals.values())
