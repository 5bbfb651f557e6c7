"""Migrations keep the data they move (not just the schema)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from classroom.db.migrate import downgrade, upgrade

TIMELINE = {
    "title": "T",
    "lead_in_ms": 10_000,
    "segments": [
        {"index": 0, "name": "A", "kind": "work", "start_ms": 0, "duration_ms": 20_000},
        {"index": 1, "name": "B", "kind": "rest", "start_ms": 20_000, "duration_ms": 10_000},
    ],
}


def test_0003_moves_each_class_timeline_to_its_own_table_and_back(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0002")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO instructors (id, email, password_hash, display_name, created_at)"
            " VALUES (1, 'a@b.c', 'x', '', '2026-01-01 00:00:00')"
        )
        db.execute(
            "INSERT INTO classes (id, join_code, instructor_id, title, timeline, phase, state,"
            " last_seq, created_at) VALUES (7, 'ABCDEF', 1, 'T', ?, 'lobby', '{}', 0,"
            " '2026-01-01 00:00:00')",
            (json.dumps(TIMELINE),),
        )
    upgrade(url)
    with sqlite3.connect(path) as db:
        (planned,) = db.execute("SELECT planned_ms FROM classes WHERE id = 7").fetchone()
        (moved,) = db.execute("SELECT timeline FROM class_timelines WHERE class_id = 7").fetchone()
    assert planned == 40_000 and json.loads(moved) == TIMELINE
    downgrade(url, "0002")
    with sqlite3.connect(path) as db:
        (back,) = db.execute("SELECT timeline FROM classes WHERE id = 7").fetchone()
    assert json.loads(back) == TIMELINE


def test_0005_keys_the_event_log_by_class_and_seq_without_a_rowid_and_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0004")
    events = [(7, seq, "cue", 1000 * seq, json.dumps({"index": seq})) for seq in (1, 2, 3)]
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO instructors (id, email, password_hash, display_name, created_at)"
            " VALUES (1, 'a@b.c', 'x', '', '2026-01-01 00:00:00')"
        )
        db.execute(
            "INSERT INTO classes (id, join_code, instructor_id, title, planned_ms, phase, state,"
            " last_seq, created_at) VALUES (7, 'ABCDEF', 1, 'T', 1000, 'running', '{}', 3,"
            " '2026-01-01 00:00:00')"
        )
        db.executemany(
            "INSERT INTO class_events (class_id, seq, type, at_ms, payload) VALUES (?, ?, ?, ?, ?)",
            events,
        )
    upgrade(url, "0005")
    with sqlite3.connect(path) as db:
        (table,) = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'class_events'"
        ).fetchone()
        kept = list(db.execute("SELECT * FROM class_events ORDER BY seq"))
        with pytest.raises(sqlite3.IntegrityError):  # still one event per class and seq
            db.execute("INSERT INTO class_events VALUES (7, 3, 'cue', 0, '{}')")
    assert table.rstrip().endswith("WITHOUT ROWID")
    assert kept == events
    downgrade(url, "0004")
    with sqlite3.connect(path) as db:
        back = list(db.execute("SELECT id, class_id, seq, type, at_ms, payload FROM class_events"))
    assert [row[1:] for row in back] == events and [row[0] for row in back] == [1, 2, 3]


def test_0006_gives_each_room_an_instructor_and_back(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0005")
    with sqlite3.connect(path) as db:
        for instructor in (1, 2):
            db.execute(
                "INSERT INTO instructors (id, email, password_hash, display_name, created_at)"
                f" VALUES ({instructor}, 'i{instructor}@b.c', 'x', '', '2026-01-01 00:00:00')"
            )
        db.executemany(
            "INSERT INTO rooms (id, name, created_at) VALUES (?, ?, '2026-01-01 00:00:00')",
            [(1, "Studio A"), (2, "Studio B")],
        )
        db.execute(  # a class of instructor 2 was held in Studio B
            "INSERT INTO classes (id, join_code, instructor_id, room_id, title, planned_ms, phase,"
            " state, last_seq, created_at) VALUES (7, 'ABCDEF', 2, 2, 'T', 1000, 'finished', '{}',"
            " 0, '2026-01-01 00:00:00')"
        )
    upgrade(url, "0006")
    with sqlite3.connect(path) as db:
        owners = dict(db.execute("SELECT name, instructor_id FROM rooms"))
        (room,) = db.execute("SELECT room_id FROM classes WHERE id = 7").fetchone()
        # Instructor 1 may now have a Studio B of their own, but not a second one.
        db.execute("INSERT INTO rooms (instructor_id, name, created_at) VALUES (1, 'Studio B', 0)")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO rooms (instructor_id, name, created_at) VALUES (1, 'Studio B', 0)"
            )
    assert owners == {"Studio A": 1, "Studio B": 2}
    assert room == 2
    downgrade(url, "0005")
    with sqlite3.connect(path) as db:
        names = [name for (name,) in db.execute("SELECT name FROM rooms ORDER BY id")]
        (room,) = db.execute("SELECT room_id FROM classes WHERE id = 7").fetchone()
    assert names == ["Studio A", "Studio B", "Studio B (room 3)"]
    assert room == 2


def test_0006_drops_rooms_nobody_could_own(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0005")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO rooms (id, name, created_at) VALUES (1, 'Studio A', 0)")
    upgrade(url, "0006")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM rooms").fetchone() == (0,)
