"""``classroom serve --demo`` on a fresh database, and again on the same one."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from classroom.db.heart import digest
from classroom.demo import DEMO_EMAIL, DEMO_RIDERS, DEMO_ROOM, prepare_demo
from tests.conftest import settings_for
from tests.processes import Server


async def test_the_demo_opens_a_class_in_the_demo_coachs_room_once(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, tmp_path)
    first = await prepare_demo(settings)
    again = await prepare_demo(settings)
    # The same join link: the class is reused, not opened twice.
    assert first.lines[3] == again.lines[3]
    assert any(line.strip().startswith("console:") for line in first.lines)

    with sqlite3.connect(migrated_url.removeprefix("sqlite+aiosqlite:///")) as db:
        rooms = list(db.execute("SELECT id, instructor_id, name FROM rooms"))
        (coach,) = db.execute("SELECT id FROM instructors WHERE email = ?", (DEMO_EMAIL,))
        classes = list(db.execute("SELECT room_id, phase FROM classes"))
    assert [(owner, name) for _, owner, name in rooms] == [(coach[0], DEMO_ROOM)]
    assert classes == [(rooms[0][0], "lobby")]


async def test_the_demo_class_has_riders_with_simulated_straps_and_a_fresh_receiver(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, tmp_path)
    first = await prepare_demo(settings)
    again = await prepare_demo(settings)
    assert first.receiver_token != again.receiver_token
    with sqlite3.connect(migrated_url.removeprefix("sqlite+aiosqlite:///")) as db:
        riders = list(
            db.execute(
                "SELECT p.nickname, c.strap FROM participants p"
                " JOIN strap_claims c ON c.participant_id = p.id ORDER BY c.strap"
            )
        )
        receivers = list(db.execute("SELECT token_hash, revoked_at IS NULL FROM heart_bridges"))
    assert riders == [(name, f"SIM-{n:02d}") for n, name in enumerate(DEMO_RIDERS, start=1)]
    assert [live for _, live in receivers] == [False, True]  # the first start's is revoked
    assert receivers[1][0] == digest(again.receiver_token)


async def test_serve_demo_runs_the_simulated_straps(tmp_path: Path) -> None:
    """``classroom serve --demo`` on a fresh data directory: the riders' straps are heard,
    and their samples stored, with no hardware."""
    server = Server(tmp_path / "classroom.db", tmp_path)
    server.args = ["--demo"]
    server.start()
    try:
        deadline = time.monotonic() + 30
        stored = 0
        while time.monotonic() < deadline and stored < len(DEMO_RIDERS):
            await asyncio.sleep(0.5)
            with (
                contextlib.suppress(sqlite3.OperationalError),
                sqlite3.connect(tmp_path / "classroom.db") as db,
            ):
                (stored,) = db.execute(
                    "SELECT count(DISTINCT participant_id) FROM heart_samples"
                ).fetchone()
        assert stored == len(DEMO_RIDERS)
    finally:
        server.stop()
