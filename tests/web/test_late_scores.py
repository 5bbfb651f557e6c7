"""Reps tapped while a phone was offline count where they were tapped.

A phone keeps the inputs it could not send and sends them when it is back,
however long the network or the server was gone. By then the class may have
moved on to another segment, or finished: each input names the segment it was
tapped in and counts there, on the boards and in the results, until a grace
period after the class ends.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from classroom.domain.scoring import LATE_INPUT_MS, NOT_REACHED, TOO_LATE
from tests.conftest import LiveServer, SkippingClock, run_server, seed, settings_for
from tests.helpers import command, until
from tests.web.test_protocol import Class, score_rows, tap


@pytest.fixture
def clock() -> SkippingClock:
    return SkippingClock()


@pytest.fixture
def skipping_server(
    migrated_url: str, tmp_path: Path, clock: SkippingClock
) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url))
    yield from run_server(settings_for(migrated_url, tmp_path), clock)


@pytest.fixture
async def cls(skipping_server: LiveServer) -> AsyncIterator[Class]:
    async with httpx.AsyncClient(base_url=skipping_server.base_url) as console:
        yield await Class(skipping_server, console).open()


async def test_reps_tapped_offline_count_in_their_segment_after_it_is_over(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.display() as wall, cls.phone() as ws:
        await until(wall, "snapshot")
        await until(ws, "snapshot")
        for i in range(3):
            await ws.send(tap(f"on{i}"))
            assert (await until(ws, "ack"))["id"] == f"on{i}"
    # The phone is offline: five more taps wait on it while the class moves on.
    waiting = [tap(f"off{i}") for i in range(5)]
    await command(cls.console, cls.id, "next")
    await command(cls.console, cls.id, "next")
    async with cls.phone() as ws:
        snapshot = await until(ws, "snapshot")
        assert snapshot["segment"]["index"] == 2
        for message in waiting:
            await ws.send(message)
        acks = [await until(ws, "ack", "error") for _ in waiting]
        board = await until(ws, "leaderboard")
        while board["class"]["people"][0]["value"] < 8:
            board = await until(ws, "leaderboard")
    assert [(a["type"], a["id"], a["duplicate"]) for a in acks] == [
        ("ack", f"off{i}", False) for i in range(5)
    ]
    rows = score_rows(cls.server)
    assert sorted((row[1], row[2]) for row in rows) == sorted(
        [(f"on{i}", 0) for i in range(3)] + [(f"off{i}", 0) for i in range(5)]
    )
    assert board["class"]["people"][0]["value"] == 8
    assert board["segment"]["segment_index"] == 0


async def test_a_score_for_a_segment_not_reached_yet_is_refused(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await ws.send(tap("ahead", segment=2, kind="reps"))
        reply = await until(ws, "error", "ack")
    assert reply == {"type": "error", "code": "rejected", "message": NOT_REACHED, "id": "ahead"}
    assert score_rows(cls.server) == []


async def test_reps_tapped_before_the_end_count_after_the_class_finished(cls: Class) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await command(cls.console, cls.id, "finish")
        assert (await until(ws, "phase"))["phase"] == "finished"
        await ws.send(tap("late"))
        reply = await until(ws, "error", "ack")
    assert reply == {"type": "ack", "id": "late", "duplicate": False}
    assert [row[1:] for row in score_rows(cls.server)] == [("late", 0, 1)]
    export = await cls.console.get(f"/console/classes/{cls.id}/results.csv")
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert [(line["nickname"], line["segment_name"], line["value"]) for line in lines] == [
        ("Robin", "Squats", "1")
    ]


async def test_after_the_grace_a_finished_class_takes_no_more_scores(
    cls: Class, clock: SkippingClock
) -> None:
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        await command(cls.console, cls.id, "finish")
        await until(ws, "phase")
        clock.skip(LATE_INPUT_MS + 1000)
        await ws.send(tap("too-late"))
        reply = await until(ws, "error", "ack")
    assert reply["type"] == "error" and reply["code"] == "rejected"
    assert reply["message"] == TOO_LATE
    assert score_rows(cls.server) == []
    # The class's actor has gone: later screens get the finished class from storage.
    async with cls.phone() as ws:
        assert (await until(ws, "snapshot"))["phase"] == "finished"
        await ws.send(tap("later"))
        reply = await until(ws, "error", "ack")
    assert reply["code"] == "rejected" and score_rows(cls.server) == []
