"""Demo data for ``classroom serve --demo``: an instructor, a room, routines, a class.

Run again, it reuses what it made before, so the printed links keep working.

The demo class also has riders with heart-rate straps, simulated: a receiver for the
demo room (its token made afresh at each start, the one before revoked), and a rider
in the class for each simulated strap, who has claimed it. The server runs the
receiver with :class:`~classroom.bridge.SimulatedStraps` (see ``classroom serve``), so
a visitor sees the wall's tiles move without any hardware.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.config import Settings
from classroom.db import classes as class_db
from classroom.db import display_links
from classroom.db import rooms as rooms_db
from classroom.db import routines as routine_db
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.heart import digest
from classroom.db.models import (
    Class,
    HeartBridge,
    Instructor,
    Participant,
    Room,
    Routine,
    StrapClaim,
    utcnow,
)
from classroom.live.clock import MonotonicClock
from classroom.web.auth import authenticate, create_instructor
from classroom.web.tokens import Tokens

DEMO_EMAIL = "demo@classroom.local"
DEMO_PASSWORD = "demo-classroom"
DEMO_ROOM = "Studio 1"
DEMO_RECEIVER = "Demo receiver (simulated straps)"
DEMO_RIDERS = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hiro")
"""The demo class's riders with (simulated) straps: SIM-01 to SIM-08, in this order."""


@dataclass(frozen=True, slots=True)
class Demo:
    lines: list[str]  # what to print
    receiver_token: str  # for the simulated straps' receiver


async def prepare_demo(settings: Settings) -> Demo:
    """Create or reuse the demo data; returns the lines to print, and the receiver's token."""
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
            await _riders(db, demo_class)
            token = await _receiver(db, room)
            links = await display_links.of_class(db, class_id)
            link = next((link for link in links if link.revoked_at is None), None)
            if link is None:
                link = await display_links.create(db, class_id, MonotonicClock().now_ms())
            link_id = link.id
    finally:
        await engine.dispose()

    base = settings.public_url or f"http://{host_for_links(settings.host)}:{settings.port}"
    display_token = Tokens(settings.secret_key).display(class_id, link=link_id)
    lines = [
        "",
        "classroom demo",
        f"  console:  {base}/console   (sign in as {DEMO_EMAIL} / {DEMO_PASSWORD})",
        f"  join:     {base}/j/{code}   (join code {code})",
        f"  display:  {base}/display/{class_id}?token={display_token}",
        f"  {len(DEMO_RIDERS)} riders wear simulated heart-rate straps: start the class"
        " to see their tiles",
        "",
    ]
    return Demo(lines, token)


async def _riders(db: AsyncSession, demo_class: Class) -> None:
    """The class's riders with straps, each with the strap claimed (made once)."""
    await db.flush()
    have = set(
        await db.scalars(select(Participant.nickname).where(Participant.class_id == demo_class.id))
    )
    numbers = await db.scalars(
        select(Participant.number).where(Participant.class_id == demo_class.id)
    )
    number = max(numbers, default=0)
    for n, name in enumerate(DEMO_RIDERS, start=1):
        if name in have:
            continue
        number += 1
        rider = Participant(class_id=demo_class.id, nickname=name, number=number)
        db.add(rider)
        await db.flush()
        db.add(StrapClaim(class_id=demo_class.id, participant_id=rider.id, strap=f"SIM-{n:02d}"))


async def _receiver(db: AsyncSession, room: Room) -> str:
    """A new token for the demo room's receiver; the one from the last start is revoked."""
    for old in await db.scalars(
        select(HeartBridge).where(
            HeartBridge.room_id == room.id,
            HeartBridge.label == DEMO_RECEIVER,
            HeartBridge.revoked_at.is_(None),
        )
    ):
        old.revoked_at = utcnow()
    token = "hrb_" + secrets.token_urlsafe(32)
    db.add(HeartBridge(room_id=room.id, label=DEMO_RECEIVER, token_hash=digest(token)))
    return token


def host_for_links(host: str) -> str:
    """The address links to this server name: a loopback one when it listens on all."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
