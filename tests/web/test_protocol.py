"""The socket protocol end to end: snapshots, resume, epochs, acknowledged scores, limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from classroom.domain.scoring import NOT_REACHED, NOT_RUNNING
from classroom.hub import hub as hub_module
from classroom.hub.screens import DirectScreen
from classroom.live import registry as registry_module
from tests.conftest import SECRET, LiveServer, run_server, seed, settings_for
from tests.helpers import (
    Message,
    command,
    csrf,
    join,
    join_code,
    open_class,
    receive,
    sign_in,
    until,
)

BAD = "must be a whole number"


def score_rows(server: LiveServer) -> list[tuple[Any, ...]]:
    path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        return list(
            db.execute("SELECT participant_id, client_id, segment_index, value FROM scores")
        )


class Class:
    """A class on the live server, with its console and one joined phone."""

    def __init__(self, server: LiveServer, console: httpx.AsyncClient) -> None:
        self.server = server
        self.console = console
        self.id = 0
        self.phone_cookie = ""

    async def open(self) -> Class:
        await sign_in(self.console)
        self.id = await open_class(self.console)
        code = await join_code(self.console, self.id)
        async with httpx.AsyncClient(base_url=self.server.base_url) as phone:
            assert (await join(phone, code, "Robin")).status_code == 303
            self.phone_cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
        return self

    def url(self, **params: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.server.ws_url}/ws/classes/{self.id}" + (f"?{query}" if query else "")

    def phone(self, **params: object) -> websockets.connect:
        return websockets.connect(
            self.url(**params), additional_headers={"Cookie": self.phone_cookie}
        )

    def display(self, **params: object) -> websockets.connect:
        token = self.server.server.config.app.state.tokens.display(self.id)  # type: ignore[attr-defined]
        return websockets.connect(self.url(token=token, **params))


@pytest.fixture
async def cls(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Class]:
    yield await Class(live_server, client).open()


async def test_a_screen_resumes_after_a_disconnect_with_no_gap_and_no_duplicate(cls: Class) -> None:
    async with cls.display() as ws:
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == 0 and snapshot["epoch"]
        await command(cls.console, cls.id, "start")
        seen = [await until(ws, "cue")]  # phase, segment, then the cue at 1 s
        epoch, last = snapshot["epoch"], seen[-1]["seq"]
    # While it is away: the cues at 2 s and 3 s, and the next segment at 4 s.
    await asyncio.sleep(3.5)
    async with cls.display(since=last, epoch=epoch) as ws:
        resumed = await receive(ws)
        assert resumed == {
            "type": "resumed",
            "since": last,
            "epoch": epoch,
            "server_now": resumed["server_now"],
            "version": cls.server.state.asset_version,
        }
        replayed = [await receive(ws) for _ in range(3)]
    seqs = [m["seq"] for m in replayed]
    assert seqs == [last + 1, last + 2, last + 3]
    assert [m["type"] for m in replayed] == ["cue", "cue", "segment"]
    assert [m.get("text") for m in replayed[:2]] == ["two", "three"]


async def test_resume_reaches_past_the_buffer_into_the_log_then_falls_back_to_a_snapshot(
    cls: Class, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = cls.server.server.config.app.state.hub  # type: ignore[attr-defined]
    hub.channel(cls.id).replay = deque(maxlen=2)
    async with cls.display() as ws:
        snapshot = await receive(ws)
        await command(cls.console, cls.id, "start")
        first = await until(ws, "segment")
    await asyncio.sleep(3.2)  # three cues happen; the buffer keeps only the last two
    async with cls.display(since=first["seq"], epoch=snapshot["epoch"]) as ws:
        again = await receive(ws)
        assert again["type"] == "resumed"
        missed = [await receive(ws) for _ in range(3)]  # from the class's log
    assert [m["seq"] for m in missed] == [first["seq"] + 1, first["seq"] + 2, first["seq"] + 3]
    # More missed than a replay's worth: a snapshot is quicker than the whole story.
    monkeypatch.setattr(registry_module, "REPLAY_SIZE", 2)
    async with cls.display(since=first["seq"], epoch=snapshot["epoch"]) as ws:
        again = await receive(ws)
    assert again["type"] == "snapshot" and again["seq"] > first["seq"] + 2
    assert hub_module.REPLAY_SIZE >= 1000  # the real buffer is large; this test shrank one


async def test_a_wrong_epoch_or_a_seq_from_the_future_gets_a_snapshot(cls: Class) -> None:
    async with cls.display() as ws:
        snapshot = await receive(ws)
    for params in ({"since": 0, "epoch": "elsewhere"}, {"since": 99, "epoch": snapshot["epoch"]}):
        async with cls.display(**params) as ws:
            assert (await receive(ws))["type"] == "snapshot"


async def test_after_a_server_restart_screens_resume_in_the_same_epoch(
    migrated_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(lambda: asyncio.run(seed(migrated_url)))
    settings = settings_for(migrated_url, tmp_path)
    first = run_server(settings)
    server = next(first)
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        opened = await Class(server, console).open()
        async with opened.display() as ws:
            before = await receive(ws)
        await command(console, opened.id, "start")
    with pytest.raises(StopIteration):
        next(first)  # stops the server
    second = run_server(settings)
    server = next(second)
    try:
        opened.server = server
        async with opened.display(since=before["seq"], epoch=before["epoch"]) as ws:
            after = await receive(ws)
            # The class's history is in its log: what the restart made it miss follows.
            missed = await receive(ws)
        assert after["type"] == "resumed" and after["epoch"] == before["epoch"]
        assert missed["seq"] == before["seq"] + 1 and missed["type"] == "phase"
    finally:
        with pytest.raises(StopIteration):
            next(second)


async def test_a_score_sent_three_times_counts_once_even_across_a_reconnect(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    score = {"type": "score", "id": "tap-1", "segment": 0, "kind": "reps", "value": 1}
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        answers = []
        for _ in range(3):
            await ws.send(json.dumps(score))
            answers.append(await until(ws, "ack"))
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await ws.send(json.dumps(score))
        answers.append(await until(ws, "ack"))
        await ws.send(json.dumps({**score, "id": "tap-2"}))
        answers.append(await until(ws, "ack"))
    assert [a["duplicate"] for a in answers] == [False, True, True, True, False]
    assert [row[1:] for row in score_rows(cls.server)] == [("tap-1", 0, 1), ("tap-2", 0, 1)]


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ({"type": "score", "id": "a", "segment": 0, "kind": "reps", "value": 0}, "bad_field", BAD),
        ({"type": "score", "id": "a", "segment": 0, "kind": "reps", "value": -5}, "bad_field", BAD),
        (
            {"type": "score", "id": "a", "segment": 0, "kind": "reps", "value": 10**9},
            "bad_field",
            BAD,
        ),
        (
            {"type": "score", "id": "a", "segment": 0, "kind": "load", "value": 50},
            "rejected",
            "scored in",
        ),
        (
            {"type": "score", "id": "a", "segment": 0, "kind": "banana", "value": 1},
            "bad_field",
            "kind",
        ),
        ({"type": "score", "id": "a", "segment": 0, "value": 1}, "bad_field", "needs its kind"),
        (
            {"type": "score", "id": "a", "segment": 0, "kind": "reps", "value": 1, "rounds": 2},
            "bad_field",
            "no rounds",
        ),
        (
            {"type": "score", "id": "a", "segment": 0, "kind": "reps", "value": True},
            "bad_field",
            "whole numbers",
        ),
        (
            {"type": "score", "id": "a", "segment": "0", "kind": "reps", "value": 1},
            "bad_field",
            "whole-number",
        ),
        ({"type": "score", "segment": 0, "kind": "reps", "value": 1}, "bad_field", "needs an id"),
        (
            {"type": "score", "id": "<script>", "segment": 0, "kind": "reps", "value": 1},
            "bad_field",
            "needs an id",
        ),
        (
            {"type": "score", "id": "a", "segment": 2, "kind": "reps", "value": 1},
            "rejected",
            NOT_REACHED,
        ),
    ],
)
async def test_a_bad_score_is_refused_and_stores_nothing(
    cls: Class, message: Message, code: str, text: str
) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await ws.send(json.dumps(message))
        reply = await until(ws, "error", "ack")
    assert reply["type"] == "error" and reply["code"] == code and text in reply["message"]
    assert score_rows(cls.server) == []


async def test_a_score_before_the_class_runs_or_from_a_display_is_refused(cls: Class) -> None:
    score = json.dumps({"type": "score", "id": "early", "segment": 0, "kind": "reps", "value": 1})
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await ws.send(score)
        reply = await until(ws, "error")
        assert reply["code"] == "rejected" and reply["message"] == NOT_RUNNING
    async with cls.display() as ws:
        await until(ws, "snapshot")
        await ws.send(score)
        assert (await until(ws, "error"))["code"] == "forbidden"
    assert score_rows(cls.server) == []


async def test_a_flood_is_limited_and_the_socket_keeps_working(cls: Class) -> None:
    async with cls.display() as ws:
        await until(ws, "snapshot")
        for i in range(200):
            await ws.send(json.dumps({"type": "ping", "id": i, "t": i}))
        replies = []
        async with asyncio.timeout(5):
            while len([r for r in replies if r["type"] == "pong"]) < 40 or not any(
                r.get("code") == "rate_limited" for r in replies
            ):
                replies.append(await receive(ws))
        pongs = [r for r in replies if r["type"] == "pong"]
        assert len(pongs) <= 45  # the burst, plus what refilled meanwhile
        await asyncio.sleep(1.1)
        await ws.send(json.dumps({"type": "ping", "id": "after", "t": 0}))
        assert (await until(ws, "pong"))["id"] == "after"


async def test_compression_is_never_negotiated(cls: Class) -> None:
    async with cls.display() as ws:  # the client offers permessage-deflate by default
        offered = ws.request.headers.get("Sec-WebSocket-Extensions", "") if ws.request else ""
        assert "permessage-deflate" in offered
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


class _MonthAgo(TimestampSigner):
    """Signs as if it were 31 days ago: past a display token's 30-day life."""

    def get_timestamp(self) -> int:
        return super().get_timestamp() - 31 * 24 * 3600


async def test_an_expired_token_is_refused(cls: Class) -> None:
    fresh = URLSafeTimedSerializer(SECRET, salt="classroom.screen-token")
    old = URLSafeTimedSerializer(SECRET, salt="classroom.screen-token", signer=_MonthAgo)
    payload = {"r": "display", "c": cls.id}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(cls.url(token=old.dumps(payload))):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(cls.url(token=fresh.dumps(payload))) as ws:
        assert (await receive(ws))["type"] == "snapshot"


async def test_screens_on_this_server_get_frames_written_straight_to_their_socket(
    cls: Class,
) -> None:
    hub = cls.server.server.config.app.state.hub  # type: ignore[attr-defined]
    async with cls.display() as ws:
        await receive(ws)
        screens = hub.screens(cls.id)
    assert screens and all(isinstance(s, DirectScreen) for s in screens)


async def test_a_console_that_connects_later_hears_who_is_there_at_once(cls: Class) -> None:
    cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    async with cls.phone() as phone:
        await until(phone, "snapshot")
        async with websockets.connect(cls.url(), additional_headers={"Cookie": cookie}) as console:
            await until(console, "snapshot")
            presence = await until(console, "presence")
    assert len(presence["participants"]) == 1 and presence["displays"] == 0


async def test_the_console_hears_who_is_connected(cls: Class) -> None:
    cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    async with websockets.connect(cls.url(), additional_headers={"Cookie": cookie}) as console:
        await until(console, "snapshot")
        async with cls.phone() as phone, cls.display():
            await until(phone, "snapshot")
            presence = await until(console, "presence")
            while presence["displays"] != 1 or not presence["participants"]:
                presence = await until(console, "presence")
        gone = await until(console, "presence")
        while gone["participants"] or gone["displays"]:
            gone = await until(console, "presence")
    assert len(presence["participants"]) == 1


def tap(client_id: str, **fields: object) -> str:
    return json.dumps(
        {"type": "score", "id": client_id, "segment": 0, "kind": "reps", "value": 1, **fields}
    )


async def test_screens_get_a_leaderboard_as_scores_come_in(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.display() as screen, cls.phone() as ws:
        await until(screen, "snapshot")
        await until(ws, "snapshot")
        for i in range(3):
            await ws.send(tap(f"t{i}"))
            assert (await until(ws, "ack"))["duplicate"] is False
        async with asyncio.timeout(5):
            while True:
                board = await until(screen, "leaderboard")
                people = board["class"]["people"]
                if people and people[0]["value"] == 3:
                    break
    assert people[0]["name"] == "Robin" and people[0]["rank"] == 1
    assert board["class"]["unit"] == "reps"
    assert board["segment"]["segment_index"] == 0


async def test_an_undo_takes_a_tap_back_once(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        undo = json.dumps({"type": "score", "id": "u1", "segment": 0, "undo": "a"})
        for message in (tap("a"), tap("b"), undo):
            await ws.send(message)
            assert (await until(ws, "ack", "error"))["type"] == "ack"
        await ws.send(undo)  # the same undo again
        assert (await until(ws, "ack"))["duplicate"] is True
    keeper = cls.server.server.config.app.state.registry.scores  # type: ignore[attr-defined]
    book = await keeper.book(cls.id)
    assert [row[1] for row in score_rows(cls.server)] == ["a", "b", "u1"]
    (participant,) = {row[0] for row in score_rows(cls.server)}
    assert book.result(participant, 0).first == 1


async def test_a_score_is_always_the_sockets_own_participants(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await ws.send(tap("mine", participant=999, participant_id=999))
        assert (await until(ws, "ack"))["duplicate"] is False
    rows = score_rows(cls.server)
    assert len(rows) == 1 and rows[0][0] != 999


async def test_a_participant_over_the_input_limit_on_two_sockets_is_told_and_nothing_is_lost(
    cls: Class,
) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as first, cls.phone() as second:
        await until(first, "snapshot")
        await until(second, "snapshot")
        for i in range(35):  # under each socket's own limit, over the participant's together
            await first.send(tap(f"a{i}"))
            await second.send(tap(f"b{i}"))
        replies: list[Message] = []
        async with asyncio.timeout(10):
            while len(replies) < 70:
                for ws in (first, second):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            message = await until(ws, "ack", "error")
                            replies.append(message)
    acked = {m["id"] for m in replies if m["type"] == "ack"}
    limited = [m for m in replies if m["type"] == "error"]
    assert limited and all(m["code"] == "rate_limited" and "id" not in m for m in limited)
    assert len(acked) + len(limited) == 70
    assert {row[1] for row in score_rows(cls.server)} == acked


async def test_a_hidden_name_never_reaches_a_public_screen_and_boards_come_at_most_4_a_second(
    cls: Class,
) -> None:
    code = await join_code(cls.console, cls.id)
    async with httpx.AsyncClient(base_url=cls.server.base_url) as phone:
        token = await csrf(phone, "/join")
        joined = await phone.post(
            "/join",
            data={
                "csrf_token": token,
                "code": code,
                "nickname": "Secret Sam",
                "level": "standard",
                "hidden": "1",
            },
        )
        assert joined.status_code == 303
        cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
    await command(cls.console, cls.id, "start")
    sam = websockets.connect(cls.url(), additional_headers={"Cookie": cookie})
    console_cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    instructor = websockets.connect(
        cls.url(), additional_headers={"Cookie": console_cookie, "Origin": cls.server.base_url}
    )
    async with cls.display() as wall, cls.phone() as robin, sam as ws, instructor as console:
        for screen in (wall, robin, ws, console):
            await until(screen, "snapshot")
        started = asyncio.get_running_loop().time()
        for i in range(30):  # 30 inputs in about 1.5 s
            await ws.send(tap(f"s{i}"))
            await robin.send(tap(f"r{i}"))
            await asyncio.sleep(0.05)
        public: list[str] = []
        async with asyncio.timeout(5):
            while True:
                raw = await wall.recv()
                if '"leaderboard"' not in raw:
                    continue
                public.append(str(raw))
                people = json.loads(raw)["class"]["people"]
                if sum(person["value"] for person in people) == 60:
                    break
        elapsed = asyncio.get_running_loop().time() - started
        async with asyncio.timeout(5):
            while True:
                board = await until(console, "leaderboard")
                if sum(person["value"] for person in board["class"]["people"]) == 60:
                    break
        async with asyncio.timeout(5):
            while True:
                mine = await until(robin, "leaderboard")
                if sum(person["value"] for person in mine["class"]["people"]) == 60:
                    break
    assert all("Secret Sam" not in message for message in public)
    assert "Secret Sam" not in json.dumps(mine)
    names = {person["name"] for person in json.loads(public[-1])["class"]["people"]}
    assert names == {"Robin", "Athlete 2"}
    assert {person["name"] for person in board["class"]["people"]} == {"Robin", "Secret Sam"}
    # 60 inputs, yet at most one board per 250 ms (and one more that was already due).
    assert len(public) <= elapsed * 4 + 2
