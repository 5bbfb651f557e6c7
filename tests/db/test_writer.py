"""The transition writer: batches, conflicts, a lock held elsewhere, checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from classroom.db.migrate import upgrade
from classroom.db.writer import SqliteWriter, Transition


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


async def test_the_wal_is_checkpointed_off_the_loop_every_so_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await make_db(tmp_path, classes=1)
    writer = SqliteWriter(str(path))
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", 3)
    for seq in range(6):
        await writer.write(transition(1, seq))
    assert writer._checkpointing is not None or writer._commits == 6
    await writer.close()
    with sqlite3.connect(path) as db:
        busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == done
    assert stored(path)[0] == [(1, 6, "running")]
