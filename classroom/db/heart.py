"""Stored heart rate: profiles, five-second samples, totals, bridges and strap claims.

Samples arrive about once a second and are kept as one row per participant per five
seconds (the mean and the peak): a class of 60 for an hour is 43,200 rows, not
216,000, and a chart of it still shows every interval. The totals (effort points,
time per zone, the max used) are rewritten as the class runs, so they stay when
samples are removed after the retention period. The rules that compute them are in
:mod:`classroom.domain.heart`; this module only stores.

A bridge's token is random and only its SHA-256 is kept, like a display's secret.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.models import (
    BridgeStrap,
    Class,
    HeartBridge,
    HeartProfile,
    HeartSample,
    HeartTotal,
    Participant,
    Room,
    StrapClaim,
    utcnow,
)
from classroom.domain.errors import ValidationError
from classroom.domain.names import one_line
from classroom.domain.session import OPEN

STRAP_TAKEN = "Someone else in this class has that strap."
NO_SUCH_STRAP = "The room's receiver doesn't hear that strap now."
BRIDGE_LABEL_EMPTY = "Name the receiver, like “Spin room Pi”."
STRAPS_SEEN_MS = 15_000
"""A strap the bridge heard within this long is offered to phones to claim."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What a participant told us about their heart (see :class:`HeartProfile`)."""

    age: int | None = None
    max_hr: int | None = None
    raised_max_hr: int | None = None
    show_bpm: bool = False


@dataclass(frozen=True, slots=True)
class SampleRow:
    participant_id: int
    at_ms: int  # the start of its five seconds, on the server's clock
    bpm: int
    peak_bpm: int


@dataclass(frozen=True, slots=True)
class TotalRow:
    participant_id: int
    points: float
    zone_ms: tuple[int, ...]
    max_hr: int
    peak_bpm: int
    mean_bpm: int


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HeartStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    # -- profiles ------------------------------------------------------------------------

    async def profiles(self, class_id: int) -> dict[int, Profile]:
        """The heart profile of each participant of a class who has one."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(Participant.id, HeartProfile)
                .join(HeartProfile, HeartProfile.device_id == Participant.device_id)
                .where(Participant.class_id == class_id)
            )
            return {pid: _profile(row) for pid, row in rows}

    async def profile(self, participant_id: int) -> Profile:
        async with self._sessions() as db:
            device = await db.scalar(
                select(Participant.device_id).where(Participant.id == participant_id)
            )
            row = await db.get(HeartProfile, device) if device else None
            return Profile() if row is None else _profile(row)

    async def save_profile(
        self, participant_id: int, *, age: int | None, max_hr: int | None, show_bpm: bool
    ) -> Profile:
        """Keep what the person said, with their device; a raised max stays only if
        they kept the same way of saying it (a new age or max starts afresh)."""
        async with self._sessions() as db, db.begin():
            device = await db.scalar(
                select(Participant.device_id).where(Participant.id == participant_id)
            )
            if not device:
                raise ValidationError("This phone has no history to keep a profile in.")
            row = await db.get(HeartProfile, device)
            if row is None:
                row = HeartProfile(device_id=device)
                db.add(row)
            if (row.age, row.max_hr) != (age, max_hr):
                row.raised_max_hr = None
            row.age, row.max_hr, row.show_bpm = age, max_hr, show_bpm
            return _profile(row)

    async def raise_max(self, participant_id: int, max_hr: int) -> None:
        """The raise rule moved this person's max: keep it for their next class."""
        async with self._sessions() as db, db.begin():
            device = await db.scalar(
                select(Participant.device_id).where(Participant.id == participant_id)
            )
            if device:
                await db.execute(
                    update(HeartProfile)
                    .where(HeartProfile.device_id == device)
                    .values(raised_max_hr=max_hr)
                )

    # -- samples and totals -----------------------------------------------------------------

    async def write(
        self, class_id: int, samples: Sequence[SampleRow], totals: Sequence[TotalRow]
    ) -> None:
        """Store five-second samples (each once) and the latest totals, in one transaction."""
        if not samples and not totals:
            return
        async with self._sessions() as db, db.begin():
            if samples:
                insert = self._insert(HeartSample).on_conflict_do_nothing()
                now = utcnow()
                await db.execute(
                    insert,
                    [
                        {
                            "participant_id": s.participant_id,
                            "at_ms": s.at_ms,
                            "class_id": class_id,
                            "bpm": s.bpm,
                            "peak_bpm": s.peak_bpm,
                            "created_at": now,
                        }
                        for s in samples
                    ],
                )
            if totals:  # one statement for every person, not one each
                insert = self._insert(HeartTotal)
                kept = ("class_id", "points", "zone_ms", "max_hr", "peak_bpm", "mean_bpm")
                upsert = insert.on_conflict_do_update(
                    index_elements=["participant_id"],
                    set_={name: insert.excluded[name] for name in (*kept, "updated_at")},
                )
                now = utcnow()
                await db.execute(
                    upsert,
                    [
                        {
                            "participant_id": total.participant_id,
                            "class_id": class_id,
                            "points": total.points,
                            "zone_ms": list(total.zone_ms),
                            "max_hr": total.max_hr,
                            "peak_bpm": total.peak_bpm,
                            "mean_bpm": total.mean_bpm,
                            "updated_at": now,
                        }
                        for total in totals
                    ],
                )

    async def totals(self, class_id: int) -> dict[int, HeartTotal]:
        async with self._sessions() as db:
            rows = await db.scalars(select(HeartTotal).where(HeartTotal.class_id == class_id))
            return {row.participant_id: row for row in rows}

    async def samples(self, class_id: int) -> dict[int, list[tuple[int, int]]]:
        """Each participant's samples of a class, in order: (at_ms, mean bpm)."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(HeartSample.participant_id, HeartSample.at_ms, HeartSample.bpm)
                .where(HeartSample.class_id == class_id)
                .order_by(HeartSample.participant_id, HeartSample.at_ms)
            )
            found: dict[int, list[tuple[int, int]]] = {}
            for pid, at_ms, bpm in rows:
                found.setdefault(pid, []).append((at_ms, bpm))
            return found

    async def remove_samples_before(self, cutoff: datetime) -> int:
        """The retention rule: samples stored before ``cutoff`` go; totals stay."""
        async with self._sessions() as db, db.begin():
            result: Any = await db.execute(
                delete(HeartSample).where(HeartSample.created_at < cutoff)
            )
            return int(result.rowcount or 0)

    # -- bridges ---------------------------------------------------------------------------

    async def add_bridge(self, room_id: int, label: str) -> tuple[HeartBridge, str]:
        """A new receiver for a room, and its token (shown once; only its hash is kept)."""
        name = one_line(label)[:40]
        if not name:
            raise ValidationError(BRIDGE_LABEL_EMPTY)
        token = "hrb_" + secrets.token_urlsafe(32)
        async with self._sessions() as db, db.begin():
            bridge = HeartBridge(room_id=room_id, label=name, token_hash=digest(token))
            db.add(bridge)
        return bridge, token

    async def bridges(self, room_id: int) -> list[HeartBridge]:
        async with self._sessions() as db:
            rows = await db.scalars(
                select(HeartBridge)
                .where(HeartBridge.room_id == room_id, HeartBridge.revoked_at.is_(None))
                .order_by(HeartBridge.id)
            )
            return list(rows)

    async def revoke_bridge(self, room_id: int, bridge_id: int) -> bool:
        async with self._sessions() as db, db.begin():
            result: Any = await db.execute(
                update(HeartBridge)
                .where(
                    HeartBridge.id == bridge_id,
                    HeartBridge.room_id == room_id,
                    HeartBridge.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return bool(result.rowcount)

    async def bridge_by_token(self, token: str) -> tuple[HeartBridge, Room] | None:
        """The live bridge a token names, with its room; None for a wrong or revoked one."""
        async with self._sessions() as db, db.begin():
            found = (
                await db.execute(
                    select(HeartBridge, Room)
                    .join(Room, Room.id == HeartBridge.room_id)
                    .where(
                        HeartBridge.token_hash == digest(token), HeartBridge.revoked_at.is_(None)
                    )
                )
            ).first()
            if found is None:
                return None
            bridge, room = found
            bridge.last_seen_at = utcnow()
            return bridge, room

    async def bridge_live(self, bridge_id: int) -> bool:
        """Whether the bridge still stands: not revoked, nor deleted with its room."""
        async with self._sessions() as db:
            bridge = await db.get(HeartBridge, bridge_id)
            return bridge is not None and bridge.revoked_at is None

    async def room_class(self, room_id: int) -> int | None:
        """The class a room's straps count for: its open class (the newest, if several)."""
        async with self._sessions() as db:
            found = await db.scalar(
                select(Class.id)
                .where(Class.room_id == room_id, Class.phase.in_([p.value for p in OPEN]))
                .order_by(Class.id.desc())
                .limit(1)
            )
            return None if found is None else int(found)

    async def note_straps(self, room_id: int, heard: dict[str, int], at_ms: int) -> None:
        """Remember the straps a room's bridge heard, with their bpm."""
        if not heard:
            return
        async with self._sessions() as db, db.begin():
            insert = self._insert(BridgeStrap)
            upsert = insert.on_conflict_do_update(
                index_elements=["room_id", "strap"],
                set_={"bpm": insert.excluded.bpm, "seen_at_ms": insert.excluded.seen_at_ms},
            )
            await db.execute(
                upsert,
                [
                    {"room_id": room_id, "strap": strap, "bpm": bpm, "seen_at_ms": at_ms}
                    for strap, bpm in heard.items()
                ],
            )

    # -- claims ----------------------------------------------------------------------------

    async def straps_for(
        self, class_id: int, participant_id: int, now_ms: int
    ) -> tuple[list[tuple[str, int]], str | None]:
        """The straps a participant may claim (heard lately in the class's room, held by
        nobody else), with their bpm; and the one they hold, if any."""
        async with self._sessions() as db:
            room_id = await db.scalar(select(Class.room_id).where(Class.id == class_id))
            claims = {
                strap: pid
                for strap, pid in (
                    await db.execute(
                        select(StrapClaim.strap, StrapClaim.participant_id).where(
                            StrapClaim.class_id == class_id
                        )
                    )
                )
            }
            if room_id is None:
                return [], None
            heard = await db.execute(
                select(BridgeStrap.strap, BridgeStrap.bpm)
                .where(
                    BridgeStrap.room_id == room_id,
                    BridgeStrap.seen_at_ms >= now_ms - STRAPS_SEEN_MS,
                )
                .order_by(BridgeStrap.strap)
            )
            mine = next((s for s, pid in claims.items() if pid == participant_id), None)
            free = [
                (strap, bpm) for strap, bpm in heard if claims.get(strap) in (None, participant_id)
            ]
            return free, mine

    async def claim(self, class_id: int, participant_id: int, strap: str, now_ms: int) -> None:
        """Give a participant a strap their room's bridge hears (theirs alone in the class)."""
        free, _ = await self.straps_for(class_id, participant_id, now_ms)
        if strap not in {s for s, _ in free}:
            taken = await self.claimed_by(class_id, strap)
            raise ValidationError(STRAP_TAKEN if taken is not None else NO_SUCH_STRAP)
        try:
            async with self._sessions() as db, db.begin():
                await db.execute(
                    delete(StrapClaim).where(StrapClaim.participant_id == participant_id)
                )
                db.add(StrapClaim(class_id=class_id, participant_id=participant_id, strap=strap))
        except IntegrityError:  # claimed by someone else a moment ago
            raise ValidationError(STRAP_TAKEN) from None

    async def release(self, participant_id: int) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(delete(StrapClaim).where(StrapClaim.participant_id == participant_id))

    async def claimed_by(self, class_id: int, strap: str) -> int | None:
        async with self._sessions() as db:
            found = await db.scalar(
                select(StrapClaim.participant_id).where(
                    StrapClaim.class_id == class_id, StrapClaim.strap == strap
                )
            )
            return None if found is None else int(found)

    async def claims(self, class_id: int) -> dict[str, int]:
        """Strap → participant, for a class."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(StrapClaim.strap, StrapClaim.participant_id).where(
                    StrapClaim.class_id == class_id
                )
            )
            return dict(rows.all())


def _profile(row: HeartProfile) -> Profile:
    return Profile(
        age=row.age, max_hr=row.max_hr, raised_max_hr=row.raised_max_hr, show_bpm=row.show_bpm
    )
