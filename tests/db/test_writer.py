"""The transition writer: batches, conflicts, a lock held elsewhere, checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from classroom.db.migrate import upgrade
from classroom.db.writer import WAL_SIZE_LIMIT, SqliteWriter, Transition


async def make_db(tmp_path: Path, classes: int = 2) -> Path:
    path = tmp_path / "w.db"
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO instructors (id, email, password_hash, display_name, created_at)"
            " VALUES (1, 'a@b.c', 'x', '', '2026-01-01 00:00:00')"
        )
        for i in range(1, classes + 1):
            db.execute(
                "INSERT INTO classes (id, join_code, instructor_id, title, planned_ms, phase,"
                " state, last_seq, created_at) VALUES (?, ?, 1, 'T', 1000, 'lobby', '{}', 0,"
                " '2026-01-01 00:00:00')",
                (i, f"CODE{i:02d}"),
            )
    return path


def transition(class_id: int, last_seq: int, events: int = 1) -> Transition:
    return Transition(
        class_id=class_id,
        last_seq=last_seq,
        state={"phase": "running", "n": last_seq + events},
        phase="running",
        started_at_ms=1_764_000_000_000,
        ended_at_ms=None,
        events=[(last_seq + k + 1, "cue", 1000 + k, {"text": "go"}) for k in range(events)],
    )


def stored(path: Path) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    with sqlite3.connect(path) as db:
        classes = list(db.execute("SELECT id, last_seq, phase FROM classes ORDER BY id"))
        events = list(db.execute("SELECT class_id, seq FROM class_events ORDER BY class_id, seq"))
    return classes, events


async def test_transitions_due_together_are_written_and_a_conflict_fails_alone(
    tmp_path: Path,
) -> None:
    path = await make_db(tmp_path)
    writer = SqliteWriter(str(path))
    results = await asyncio.gather(
        writer.write(transition(1, 0, events=2)),
        writer.write(transition(2, 5)),  # class 2 is at seq 0: another writer got in
        return_exceptions=True,
    )
    await writer.close()
    assert results[0] is None
    assert isinstance(results[1], LookupError) and "class 2" in str(results[1])
    classes, events = stored(path)
    assert classes == [(1, 2, "running"), (2, 0, "lobby")]
    assert events == [(1, 1), (1, 2)]


async def test_a_write_waits_for_a_lock_held_elsewhere_without_stalling_the_loop(
    tmp_path: Path,
) -> None:
    path = await make_db(tmp_path)
    writer = SqliteWriter(str(path))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a sign-in, say, in the middle of its transaction
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    ticks = 0

    async def meanwhile() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(meanwhile())
    await writer.write(transition(1, 0))
    ticker.cancel()
    release.join()
    other.close()
    await writer.close()
    assert ticks >= 5  # the loop kept running while the write waited for the lock
    assert stored(path)[1] == [(1, 1)]


async def checkpointing_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, every: int
) -> tuple[Path, SqliteWriter]:
    """A database of one class, and a writer that checkpoints every ``every`` commits."""
    path = await make_db(tmp_path, classes=1)
    writer = SqliteWriter(str(path))
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", every)
    return path, writer


async def test_the_wal_is_checkpointed_off_the_loop_every_so_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, writer = await checkpointing_writer(tmp_path, monkeypatch, every=3)
    for seq in range(6):
        await writer.write(transition(1, seq))
    assert writer._checkpointing is not None or writer._commits == 6
    await writer.close()
    with sqlite3.connect(path) as db:
        busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == done
    assert stored(path)[0] == [(1, 6, "running")]


async def test_the_wal_starts_over_though_writes_land_while_it_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a busy class the loop writes while the thread copies the WAL, so no copy on the
    # thread ever reaches the WAL's end. Here a reader holds each copy short of a write.
    path, writer = await checkpointing_writer(tmp_path, monkeypatch, every=10)
    checkpoint = writer._checkpoint

    def checkpoint_while_a_write_lands() -> None:
        with (
            contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader,
            contextlib.closing(sqlite3.connect(path, timeout=10)) as other,
        ):
            for _ in range(2):  # the reader's snapshot is in the WAL; a write lands after it
                with other:
                    other.execute("UPDATE classes SET planned_ms = planned_ms + 1")
                if not reader.in_transaction:
                    reader.execute("BEGIN")
                    reader.execute("SELECT count(*) FROM classes").fetchone()
            checkpoint()  # copies up to the reader's snapshot only
            reader.execute("COMMIT")

    monkeypatch.setattr(writer, "_checkpoint", checkpoint_while_a_write_lands)
    caught_up: list[str] = []  # the thread each of the writer's own checkpoints ran on
    await writer.write(transition(1, 0, events=5))
    writer._connection().set_trace_callback(
        lambda sql: (
            caught_up.append(threading.current_thread().name) if "checkpoint" in sql else None
        )
    )
    for seq in range(5, 1_500, 5):  # 300 commits of a few pages each
        await writer.write(transition(1, seq, events=5))
        if writer._checkpointing is not None:
            await writer._checkpointing
    await writer.close()
    frames = (path.parent / f"{path.name}-wal").stat().st_size // (4096 + 24)
    assert frames < 150, frames  # started over every ten commits or so, not ~1,000 frames
    assert len(caught_up) >= 20  # one after each checkpoint but the last
    assert all(name.startswith("classroom-writer") for name in caught_up)  # never the loop
    assert stored(path)[0] == [(1, 1_500, "running")]


async def test_a_writer_can_have_a_bigger_page_cache_and_keeps_its_wal_file_in_bounds(
    tmp_path: Path,
) -> None:
    path = await make_db(tmp_path, classes=1)
    plain, big = SqliteWriter(str(path)), SqliteWriter(str(path), cache_mib=8)
    await big.write(transition(1, 0))
    await plain.write(transition(1, 1))
    with contextlib.closing(sqlite3.connect(":memory:")) as fresh:
        (default,) = fresh.execute("PRAGMA cache_size").fetchone()
    for writer, cache in ((plain, default), (big, -8 * 1024)):
        db = writer._connection()
        assert db.execute("PRAGMA cache_size").fetchone() == (cache,)
        assert db.execute("PRAGMA journal_size_limit").fetchone() == (WAL_SIZE_LIMIT,)
        await writer.close()
