"""Stored scores: inputs, undos, flags and corrections, and the roster boards show.

Inputs are written in batches: while one batch commits, the next one fills, so a
room of phones tapping at once costs a transaction per batch, not per tap. Each
input is acknowledged only after the batch that holds it has committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.models import Class, Correction, Participant, Score, Team, utcnow
from classroom.db.writer import SqliteWriter
from classroom.domain.boards import Person
from classroom.domain.boards import Team as BoardTeam
from classroom.domain.scorebook import Entry, Fix, Taken
from classroom.domain.scoring import Division, Tally
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind

log = logging.getLogger(__name__)
SCORES = cast(Table, Score.__table__)


@dataclass(frozen=True, slots=True)
class Roster:
    """Who is in a class, as boards show them."""

    people: dict[int, Person]
    teams: tuple[BoardTeam, ...]


class ScoreStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], direct: SqliteWriter | None = None
    ) -> None:
        self._sessions = sessions
        # On SQLite, batches go through a connection of their own, like transitions:
        # on the loop's thread when the database is free, no ORM, no thread hand-off.
        self._direct = direct
        self._queue: list[tuple[int, Taken, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    # -- writing --------------------------------------------------------------------

    def write(self, class_id: int, taken: Taken) -> asyncio.Future[bool]:
        """Queue a taken input; the future is True once it is stored."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((class_id, taken, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._write(batch)
            except Exception as exc:
                log.exception("scores not written")
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(True)

    async def _write(self, batch: Sequence[tuple[int, Taken, asyncio.Future[bool]]]) -> None:
        rows = [_row(class_id, taken.entry) for class_id, taken, _ in batch if taken.entry]
        withdrawals = [
            (taken.entry.participant_id, taken.withdraws)
            for _, taken, _ in batch
            if taken.entry is not None and taken.withdraws
        ]
        if self._direct is not None:
            await self._direct.run(functools.partial(_write_sqlite, rows, withdrawals))
            return
        async with self._sessions.begin() as db:
            if rows:  # the table's insert: one executemany, without the ORM's per-row work
                await db.execute(insert(SCORES), rows)
            if withdrawals:
                await db.execute(
                    update(Score)
                    .where(
                        or_(
                            *(
                                and_(Score.participant_id == pid, Score.client_id == cid)
                                for pid, cid in withdrawals
                            )
                        )
                    )
                    .values(withdrawn=True)
                )

    async def correct(
        self, class_id: int, fix: Fix, *, previous: str, instructor_id: int | None
    ) -> None:
        """Record an instructor's correction (the audit keeps every one)."""
        result = fix.result
        async with self._sessions.begin() as db:
            db.add(
                Correction(
                    class_id=class_id,
                    participant_id=fix.participant_id,
                    segment_index=fix.segment_index,
                    value=result.first if result else 0,
                    rounds=result.second if result else 0,
                    deleted=result is None,
                    previous=previous[:40],
                    instructor_id=instructor_id,
                )
            )

    # -- reading --------------------------------------------------------------------

    async def load(self, class_id: int) -> tuple[list[Entry], list[Fix]]:
        """A class's stored inputs, in the order they were taken, and its corrections."""
        async with self._sessions() as db:
            scores = await db.scalars(
                select(Score).where(Score.class_id == class_id).order_by(Score.id)
            )
            entries = [_entry(row) for row in scores]
            fixes = await db.scalars(
                select(Correction).where(Correction.class_id == class_id).order_by(Correction.id)
            )
            corrections = [_fix(row) for row in fixes]
        return entries, corrections

    async def corrections(self, class_id: int) -> list[Correction]:
        async with self._sessions() as db:
            rows = await db.scalars(
                select(Correction).where(Correction.class_id == class_id).order_by(Correction.id)
            )
            return list(rows)

    async def removed(self, class_id: int) -> list[int]:
        """The participants the instructor removed from a class."""
        async with self._sessions() as db:
            rows = await db.scalars(
                select(Participant.id).where(
                    Participant.class_id == class_id, Participant.removed.is_(True)
                )
            )
            return list(rows)

    async def team_settings(self, class_id: int) -> tuple[TeamMode, int]:
        """The class's team mode and its N for best-N."""
        async with self._sessions() as db:
            row = await db.get(Class, class_id)
        if row is None:
            return TeamMode.TOTAL, 3
        return TeamMode(row.team_mode), row.best_n

    async def roster(self, class_id: int) -> Roster:
        async with self._sessions() as db:
            people = await db.scalars(
                select(Participant).where(
                    Participant.class_id == class_id, Participant.removed.is_(False)
                )
            )
            teams = await db.scalars(
                select(Team).where(Team.class_id == class_id).order_by(Team.position, Team.id)
            )
            return Roster(
                people={
                    p.id: Person(
                        id=p.id,
                        name=p.nickname,
                        number=p.number or p.id,
                        team_id=p.team_id,
                        hidden=p.hidden,
                    )
                    for p in people
                },
                teams=tuple(
                    BoardTeam(
                        id=t.id, name=t.name, letter=t.letter, colour=t.colour, pattern=t.pattern
                    )
                    for t in teams
                ),
            )


_INSERT = (
    "INSERT INTO scores (class_id, participant_id, client_id, segment_index, kind, value,"
    " rounds, division, elapsed_ms, undoes, withdrawn, flagged, created_at)"
    " VALUES (:class_id, :participant_id, :client_id, :segment_index, :kind, :value,"
    " :rounds, :division, :elapsed_ms, :undoes, :withdrawn, :flagged, :created_at)"
)
_WITHDRAW = "UPDATE scores SET withdrawn = 1 WHERE participant_id = ? AND client_id = ?"


def _write_sqlite(
    rows: list[dict[str, object]], withdrawals: list[tuple[int, str]], db: sqlite3.Connection
) -> None:
    if rows:
        # A DateTime as SQLAlchemy stores it in SQLite, so the ORM reads it back.
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
        db.executemany(_INSERT, [{**row, "created_at": stamp} for row in rows])
    if withdrawals:
        db.executemany(_WITHDRAW, withdrawals)


def _row(class_id: int, entry: Entry) -> dict[str, object]:
    return {
        "class_id": class_id,
        "participant_id": entry.participant_id,
        "client_id": entry.client_id,
        "segment_index": entry.segment_index,
        "kind": entry.kind.value,
        "value": entry.value,
        "rounds": entry.rounds,
        "division": entry.division.value,
        "elapsed_ms": entry.elapsed_ms,
        "undoes": entry.undoes,
        "withdrawn": entry.withdrawn,
        "flagged": entry.flagged,
    }


def _entry(row: Score) -> Entry:
    return Entry(
        participant_id=row.participant_id,
        client_id=row.client_id,
        segment_index=row.segment_index,
        kind=ScoreKind(row.kind),
        value=row.value,
        rounds=row.rounds,
        division=Division(row.division),
        elapsed_ms=row.elapsed_ms,
        undoes=row.undoes,
        withdrawn=row.withdrawn,
        flagged=row.flagged,
    )


def _fix(row: Correction) -> Fix:
    return Fix(
        participant_id=row.participant_id,
        segment_index=row.segment_index,
        result=None if row.deleted else Tally(row.value, row.rounds),
    )
