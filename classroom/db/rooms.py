"""Reading and writing rooms and the wall displays paired to them.

The rules (names, codes, what a wall shows) are in :mod:`classroom.domain.rooms`;
this module stores them. Times are epoch milliseconds from the caller's clock.
A display's secret is random and only its SHA-256 is kept, like a console session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.models import Class, Display, Room
from classroom.domain import rooms
from classroom.domain.errors import ValidationError
from classroom.domain.session import OPEN, Phase

STALE_UNPAIRED_MS = 24 * 3600_000
"""A display never paired and not heard from this long is forgotten."""
SEEN_EVERY_MS = 15_000
"""How often a display's ``last_seen_at`` is written while it keeps asking."""


def stamp(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def ms_of(when: datetime) -> int:
    """Epoch milliseconds of a stored instant (SQLite gives it back without a zone: UTC)."""
    return int(when.replace(tzinfo=when.tzinfo or UTC).timestamp() * 1000)


# -- rooms ------------------------------------------------------------------------------


async def rooms_of(db: AsyncSession, instructor_id: int) -> list[Room]:
    found = await db.scalars(
        select(Room).where(Room.instructor_id == instructor_id).order_by(Room.name, Room.id)
    )
    return list(found)


async def room_of(db: AsyncSession, instructor_id: int, room_id: int) -> Room | None:
    """The instructor's room ``room_id``; None for another instructor's or none at all."""
    room = await db.get(Room, room_id)
    return room if room is not None and room.instructor_id == instructor_id else None


async def _check_free(db: AsyncSession, instructor_id: int, name: str, room_id: int = 0) -> None:
    for other in await rooms_of(db, instructor_id):
        if other.id != room_id and rooms.same_name(other.name, name):
            raise ValidationError(rooms.ROOM_NAME_TAKEN)


async def add_room(db: AsyncSession, instructor_id: int, raw_name: str) -> Room:
    name = rooms.normalize_room_name(raw_name)
    await _check_free(db, instructor_id, name)
    room = Room(instructor_id=instructor_id, name=name)
    db.add(room)
    await db.flush()
    return room


async def rename_room(db: AsyncSession, room: Room, raw_name: str) -> None:
    name = rooms.normalize_room_name(raw_name)
    await _check_free(db, room.instructor_id, name, room.id)
    room.name = name
    await db.flush()


async def room_classes(
    db: AsyncSession, room_id: int, now_ms: int, results_ms: int = rooms.RESULTS_SHOWN_MS
) -> list[rooms.RoomClass]:
    """The room's classes a wall may show: open ones, and those that ended in the last
    ``results_ms``."""
    ended_since = stamp(now_ms - results_ms)
    found = await db.scalars(
        select(Class).where(
            Class.room_id == room_id,
            or_(
                Class.phase.in_([phase.value for phase in OPEN]),
                and_(Class.phase == Phase.FINISHED.value, Class.ended_at >= ended_since),
            ),
        )
    )
    return [
        rooms.RoomClass(
            id=row.id,
            title=row.title,
            phase=Phase(row.phase),
            opened_ms=ms_of(row.created_at),
            ended_ms=None if row.ended_at is None else ms_of(row.ended_at),
            scheduled_ms=None if row.scheduled_at is None else ms_of(row.scheduled_at),
        )
        for row in found
    ]


# -- displays ---------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def paired(display: Display) -> bool:
    return display.paired_at is not None and display.room_id is not None


def retired(display: Display) -> bool:
    """Revoked, or paired to a room that is gone: its secret opens nothing any more."""
    return display.revoked_at is not None or (
        display.paired_at is not None and display.room_id is None
    )


async def _free_code(db: AsyncSession) -> str:
    for _ in range(10):
        code = "".join(
            secrets.choice(rooms.PAIRING_CODE_ALPHABET) for _ in range(rooms.PAIRING_CODE_LENGTH)
        )
        if await db.scalar(select(Display.id).where(Display.pairing_code == code)) is None:
            return code
    raise RuntimeError("could not find a free pairing code")  # pragma: no cover - 31^6 codes


async def new_display(db: AsyncSession, now_ms: int) -> tuple[Display, str]:
    """A display waiting to be paired, and the secret for its cookie."""
    secret = secrets.token_urlsafe(32)
    display = Display(
        secret_hash=_digest(secret),
        pairing_code=await _free_code(db),
        code_expires_at=stamp(now_ms + rooms.PAIRING_CODE_TTL_MS),
        label="",
        created_at=stamp(now_ms),
        last_seen_at=stamp(now_ms),
    )
    db.add(display)
    await db.flush()
    return display, secret


async def display_for(db: AsyncSession, secret: str) -> Display | None:
    if not secret or len(secret) > 200:
        return None
    found: Display | None = await db.scalar(
        select(Display).where(Display.secret_hash == _digest(secret))
    )
    return found


async def keep_code_fresh(db: AsyncSession, display: Display, now_ms: int) -> None:
    """Give a waiting display a new code once its code has expired."""
    if paired(display) or retired(display):
        return
    if rooms.code_expired(ms_of(display.code_expires_at), now_ms):
        display.pairing_code = await _free_code(db)
        display.code_expires_at = stamp(now_ms + rooms.PAIRING_CODE_TTL_MS)
        await db.flush()


def seen(display: Display, now_ms: int) -> None:
    """Note that the display asked; written at most every :data:`SEEN_EVERY_MS`."""
    last = display.last_seen_at
    if last is None or now_ms - ms_of(last) >= SEEN_EVERY_MS:
        display.last_seen_at = stamp(now_ms)


async def pair(db: AsyncSession, room: Room, raw_code: str, raw_label: str, now_ms: int) -> Display:
    """Pair the display showing ``raw_code`` to ``room``; raises :class:`ValidationError`."""
    label = rooms.normalize_display_label(raw_label)
    code = rooms.normalize_pairing_code(raw_code)
    display: Display | None = await db.scalar(
        select(Display).where(Display.pairing_code == code).with_for_update()
    )
    if display is None:
        raise ValidationError(rooms.UNKNOWN_PAIRING_CODE)
    if display.paired_at is not None or display.revoked_at is not None:
        raise ValidationError(rooms.USED_PAIRING_CODE)
    if rooms.code_expired(ms_of(display.code_expires_at), now_ms):
        raise ValidationError(rooms.EXPIRED_PAIRING_CODE)
    display.room_id = room.id
    display.paired_at = stamp(now_ms)
    display.label = label or f"Display {display.id}"
    # Pairing a screen again (its browser forgot its secret, or it was replaced) under
    # the name it had in this room: the new pairing takes the old one's place.
    earlier = await db.scalars(
        select(Display).where(
            Display.room_id == room.id, Display.id != display.id, Display.revoked_at.is_(None)
        )
    )
    for other in earlier:
        if rooms.same_name(other.label, display.label):
            revoke(other, now_ms)
    await db.flush()
    return display


async def displays_of(db: AsyncSession, instructor_id: int) -> list[Display]:
    """The displays paired to the instructor's rooms (not revoked)."""
    found = await db.scalars(
        select(Display)
        .join(Room, Room.id == Display.room_id)
        .where(Room.instructor_id == instructor_id, Display.revoked_at.is_(None))
        .order_by(Display.label, Display.id)
    )
    return list(found)


async def owned_display(db: AsyncSession, instructor_id: int, display_id: int) -> Display | None:
    """The instructor's paired display ``display_id``; None for anyone else's."""
    display = await db.get(Display, display_id)
    if display is None or display.room_id is None or display.revoked_at is not None:
        return None
    room = await db.get(Room, display.room_id)
    return display if room is not None and room.instructor_id == instructor_id else None


def revoke(display: Display, now_ms: int) -> None:
    display.revoked_at = stamp(now_ms)


async def forget_stale(db: AsyncSession, now_ms: int) -> None:
    """Delete displays that were never paired and have not asked for a day."""
    await db.execute(
        delete(Display).where(
            Display.paired_at.is_(None),
            Display.revoked_at.is_(None),
            Display.last_seen_at < stamp(now_ms - STALE_UNPAIRED_MS),
        )
    )
