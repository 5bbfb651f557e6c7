"""``classroom serve --demo`` on a fresh database, and again on the same one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from classroom.demo import DEMO_EMAIL, DEMO_ROOM, prepare_demo
from tests.conftest import settings_for


async def test_the_demo_opens_a_class_in_the_demo_coachs_room_once(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, tmp_path)
    first = await prepare_demo(settings)
    again = await prepare_demo(settings)
    assert first[3] == again[3]  # the same join link: the class is reused, not opened twice
    assert any(line.strip().startswith("console:") for line in first)

    with sqlite3.connect(migrated_url.removeprefix("sqlite+aiosqlite:///")) as db:
        rooms = list(db.execute("SELECT id, instructor_id, name FROM rooms"))
        (coach,) = db.execute("SELECT id FROM instructors WHERE email = ?", (DEMO_EMAIL,))
        classes = list(db.execute("SELECT room_id, phase FROM classes"))
    assert [(owner, name) for _, owner, name in rooms] == [(coach[0], DEMO_ROOM)]
    assert classes == [(rooms[0][0], "lobby")]
