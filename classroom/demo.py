"""Demo data for ``classroom serve --demo``: an instructor, a room, routines, a class.

Run again, it reuses what it made before, so the printed links keep working.
"""

from __future__ import annotations

from sqlalchemy import select

from classroom.config import Settings
from classroom.db import classes as class_db
from classroom.db import display_links
from classroom.db import rooms as rooms_db
from classroom.db import routines as routine_db
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Class, Instructor, Room, Routine
from classroom.live.clock import MonotonicClock
from classroom.web.auth import authenticate, create_instructor
from classroom.web.tokens import Tokens

DEMO_EMAIL = "demo@classroom.local"
DEMO_PASSWORD = "demo-classroom"
DEMO_ROOM = "Studio 1"


async def prepare_demo(settings: Settings) -> list[str]:
    """Create or reuse the demo data; returns the lines to print."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            instructor = await db.scalar(select(Instructor).where(Instructor.email == DEMO_EMAIL))
            if instructor is None:
                instructor = await create_instructor(db, DEMO_EMAIL, DEMO_PASSWORD, "Demo Coach")
            elif await authenticate(db, DEMO_EMAIL, DEMO_PASSWORD) is None:
                raise SystemExit(f"classroom: the demo account {DEMO_EMAIL} has another password")
            room = await db.scalar(
                select(Room).where(Room.instructor_id == instructor.id, Room.name == DEMO_ROOM)
            )
            if room is None:
                room = await rooms_db.add_room(db, instructor.id, DEMO_ROOM)
            sources = routine_db.library_sources()
            await routine_db.seed_builtin(db, sources)
            slug = next((s.slug for s in sources if "tabata" in s.slug), sources[0].slug)
            first = await db.scalar(
                select(Routine).where(Routine.instructor_id.is_(None), Routine.slug == slug)
            )
            if first is None:  # pragma: no cover - seeded just above
                raise RuntimeError(f"the built-in routine {slug} is missing")
            demo_class = await db.scalar(
                select(Class)
                .where(Class.instructor_id == instructor.id, Class.phase == "lobby")
                .order_by(Class.id.desc())
            )
            if demo_class is None:
                now_ms = MonotonicClock().now_ms()
                demo_class = await class_db.open_class(db, instructor.id, first, now_ms=now_ms)
                demo_class.room_id = room.id  # a display paired to the room follows it
            class_id, code = demo_class.id, demo_class.join_code
            links = await display_links.of_class(db, class_id)
            link = next((link for link in links if link.revoked_at is None), None)
            if link is None:
                link = await display_links.create(db, class_id, MonotonicClock().now_ms())
            link_id = link.id
    finally:
        await engine.dispose()

    base = settings.public_url or f"http://{_host_for_links(settings.host)}:{settings.port}"
    display_token = Tokens(settings.secret_key).display(class_id, link=link_id)
    return [
        "",
        "classroom demo",
        f"  console:  {base}/console   (sign in as {DEMO_EMAIL} / {DEMO_PASSWORD})",
        f"  join:     {base}/j/{code}   (join code {code})",
        f"  display:  {base}/display/{class_id}?token={display_token}",
        "",
    ]


def _host_for_links(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
