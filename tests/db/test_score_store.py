"""Score batches on SQLite go through a connection of their own, and wait for a lock if held."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db import scores
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Class, Instructor, Participant
from classroom.db.scores import ScoreStore
from classroom.db.writer import SqliteWriter
from classroom.domain.scorebook import Entry, Taken
from classroom.domain.scoring import Division
from classroom.domain.timeline import ScoreKind


def entry(client_id: str, participant_id: int, *, undoes: str = "", value: int = 1) -> Entry:
    return Entry(
        participant_id=participant_id,
        client_id=client_id,
        segment_index=0,
        kind=ScoreKind.REPS,
        value=value,
        rounds=0,
        division=Division.RX,
        elapsed_ms=1_000,
        undoes=undoes,
    )


def write(store: ScoreStore, class_id: int, taken: Taken) -> asyncio.Future[bool | Exception]:
    """Queue ``taken``; the future holds what its reply heard."""
    heard: asyncio.Future[bool | Exception] = asyncio.get_running_loop().create_future()
    store.write(class_id, taken, heard.set_result)
    return heard


async def a_class(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """A class with one participant: their ids."""
    async with sessions.begin() as db:
        coach = Instructor(email="c@example.com", password_hash="x")
        db.add(coach)
        await db.flush()
        cls = Class(join_code="ABCDEF", instructor_id=coach.id, title="T", planned_ms=1, state={})
        db.add(cls)
        await db.flush()
        person = Participant(class_id=cls.id, nickname="Ana")
        db.add(person)
        await db.flush()
        return cls.id, person.id


async def test_batches_are_stored_read_back_and_wait_for_a_held_lock(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    sessions = make_sessionmaker(engine)
    class_id, pid = await a_class(sessions)
    path = migrated_url.removeprefix("sqlite+aiosqlite:///")
    writer = SqliteWriter(path)
    store = ScoreStore(sessions, writer)
    try:
        first = [write(store, class_id, Taken(entry(f"t{i}", pid))) for i in range(3)]
        assert await asyncio.gather(*first) == [True, True, True]

        # Another connection holds the write lock: the next batch waits on the writer's thread.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        undo = write(store, class_id, Taken(entry("u1", pid, undoes="t0", value=0), "t0"))
        await asyncio.sleep(0.3)
        assert not undo.done()
        holder.execute("COMMIT")
        holder.close()
        assert await asyncio.wait_for(undo, 10) is True

        entries, fixes = await store.load(class_id)
    finally:
        await writer.close()
        await engine.dispose()
    assert fixes == []
    assert [(e.client_id, e.withdrawn, e.undoes) for e in entries] == [
        ("t0", True, ""),
        ("t1", False, ""),
        ("t2", False, ""),
        ("u1", False, "t0"),
    ]


async def test_a_backlog_is_written_in_batches_of_a_few_milliseconds_each(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that fell behind has thousands queued; here 120, with a limit of 50.
    monkeypatch.setattr(scores, "BATCH_LIMIT", 50)
    batches: list[int] = []
    write_rows = scores._write_sqlite

    def counted(rows: Sequence[tuple[object, ...]], *args: object) -> set[int]:
        batches.append(len(rows))
        return write_rows(rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(scores, "_write_sqlite", counted)
    engine = make_engine(migrated_url)
    sessions = make_sessionmaker(engine)
    class_id, pid = await a_class(sessions)
    writer = SqliteWriter(migrated_url.removeprefix("sqlite+aiosqlite:///"))
    store = ScoreStore(sessions, writer)
    try:
        heard = [write(store, class_id, Taken(entry(f"b{i}", pid))) for i in range(120)]
        assert await asyncio.gather(*heard) == [True] * 120
        entries, _ = await store.load(class_id)
    finally:
        await writer.close()
        await engine.dispose()
    assert batches == [50, 50, 20]
    assert [e.client_id for e in entries] == [f"b{i}" for i in range(120)]
