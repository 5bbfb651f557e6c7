"""Stored scores: inputs, undos, flags and corrections, and the roster boards show.

Inputs are written in batches: while one batch commits, the next one fills, so a
room of phones tapping at once costs a transaction per batch, not per tap. Each
input is acknowledged only after the batch that holds it has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Insert, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from classroom.db.leases import Deposed
from classroom.db.models import Class, Correction, Participant, Score, Team, utcnow
from classroom.db.writer import SqliteWriter
from classroom.domain.boards import Person
from classroom.domain.boards import Team as BoardTeam
from classroom.domain.scorebook import Entry, Fix, Taken
from classroom.domain.scoring import Division, Tally
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind
from classroom.metrics import Metrics

log = logging.getLogger(__name__)
SCORES = cast(Table, Score.__table__)

#: Hears how an input went, once: True (stored), False (a repeat of an input already
#: counted), or the exception that kept it from counting. A plain callback, not a
#: future: a big class takes thousands of inputs a second, and each future would
#: cost a scheduled callback (and a copied context) per step.
Reply = Callable[[bool | Exception], None]
#: Told which classes' inputs a failed batch held (their books may be out of step).
Failed = Callable[[int], None]

SCORE_CACHE_MIB = 64
"""The page cache of the connection that writes scores on SQLite.

Each input goes into its participant's place in the ``(participant_id,
client_id)`` index, so a class of thousands writes to thousands of pages in
turn. SQLite's default cache (2 MiB) holds a few hundred: past that, every
input reads its page back from the file.
"""
COMMIT_EVERY_S = 0.005
"""The least time between two commits of score batches (see ``ScoreStore._flush``)."""
BATCH_LIMIT = 500
"""The most inputs one commit holds: a few milliseconds of the event loop's time.

A server that fell behind for a moment has thousands queued; written in one
transaction, they would hold the loop (every read, every ack) for a fifth of a
second, and more would queue meanwhile. In batches of this size they are caught
up on between other work.
"""
SERVER_BATCH_LIMIT = 2000
"""The same, for a database server (PostgreSQL): the loop only encodes a batch, the
server writes it while the loop goes on, and a commit costs a round trip; so each
batch may hold more. At 10,000 inputs a second, a batch of 500 would have to commit
within 50 ms for the inputs not to queue; on a busy machine it doesn't."""


@dataclass(frozen=True, slots=True)
class Roster:
    """Who is in a class, as boards show them."""

    people: dict[int, Person]
    teams: tuple[BoardTeam, ...]


class ScoreStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        direct: SqliteWriter | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._commit_time = (metrics or Metrics()).commit_scores
        # On SQLite, batches go through a connection of their own, like transitions:
        # on the loop's thread when the database is free, no ORM, no thread hand-off.
        self._direct = direct
        self._queue: list[tuple[int, Entry, str, Reply]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._committed_at = 0.0  # on the loop's clock
        self.failed: Failed | None = None
        # Each class's fencing token (classroom/db/leases.py): its inputs are stored
        # only while the class's row still holds it.
        self._tokens: dict[int, int] = {}
        # On PostgreSQL, a connection of the store's own for batches (see _write_fenced).
        self._connection: AsyncConnection | None = None

    def fence(self, class_id: int, token: int) -> None:
        """Store the class's inputs only while its row holds ``token``."""
        self._tokens[class_id] = token

    def unfence(self, class_id: int) -> None:
        self._tokens.pop(class_id, None)

    async def close(self) -> None:
        """Let go of the connection batches are written on (after :meth:`drain`)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def drain(self) -> None:
        """Return once every input queued so far has been written (or has failed)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    # -- writing --------------------------------------------------------------------

    def write(self, class_id: int, taken: Taken, reply: Reply) -> None:
        """Queue a taken input; ``reply`` hears True once its batch has committed.

        If the batch fails, ``reply`` hears the exception and :attr:`failed` hears
        the class.
        """
        assert taken.entry is not None  # a repeat is answered, not written
        self._queue.append((class_id, taken.entry, taken.withdraws, reply))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            # Group commit: at most one commit every COMMIT_EVERY_S. A quiet class
            # writes each input at once; a busy one writes them in fewer, bigger
            # batches, since a commit costs far more than a row.
            wait = self._committed_at + COMMIT_EVERY_S - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            queue = self._queue
            limit = BATCH_LIMIT if self._direct is not None else SERVER_BATCH_LIMIT
            batch, self._queue = queue[:limit], queue[limit:]
            started = time.perf_counter()
            try:
                deposed = await self._write(batch)
            except Exception as exc:
                log.exception("scores not written")
                self._failed(batch, exc, {class_id for class_id, *_ in batch})
            else:
                self._commit_time.observe(time.perf_counter() - started)
                if deposed:
                    log.warning("classes %s have another owner: their inputs not stored", deposed)
                    self._failed(batch, Deposed(), deposed)
                for class_id, *_, reply in batch:
                    if class_id not in deposed:
                        _tell(reply, True)
            self._committed_at = loop.time()

    def _failed(
        self, batch: Sequence[tuple[int, Entry, str, Reply]], exc: Exception, classes: set[int]
    ) -> None:
        """Tell the inputs of ``classes`` in ``batch`` that they were not stored."""
        for class_id in classes:
            if self.failed is not None:
                self.failed(class_id)
        for class_id, *_, reply in batch:
            if class_id in classes:
                _tell(reply, exc)

    async def _write(self, batch: Sequence[tuple[int, Entry, str, Reply]]) -> set[int]:
        """Write a batch in one transaction; returns the classes that were not written.

        A class's inputs are written only if its row still holds this process's
        token, checked in the same transaction: a class another process has
        claimed meanwhile (see classroom/db/leases.py) is left out.
        """
        tokens = {class_id: self._tokens.get(class_id) for class_id in {c for c, *_ in batch}}
        fenced = {c: t for c, t in tokens.items() if t is not None}
        if self._direct is not None:
            # A DateTime as SQLAlchemy stores it in SQLite, so the ORM reads it back.
            stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
            write = functools.partial(_write_sqlite, batch, fenced, stamp)
            return await self._direct.run(write)
        withdraws = any(withdraws for _, _, withdraws, _ in batch)
        if fenced and len(fenced) == len(tokens) and not withdraws:
            engine = self._sessions.kw["bind"]
            if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
                return await self._write_fenced(engine, batch, fenced)
        async with self._sessions.begin() as db:
            deposed: set[int] = set()
            if fenced:
                # A key-share lock: a claim (which locks the row for update) waits for
                # this transaction, while the owner's own cue updates don't.
                held = await db.execute(
                    select(Class.id, Class.owner_token)
                    .where(Class.id.in_(fenced))
                    .with_for_update(key_share=True)
                )
                holding = dict(held.all())
                deposed = {c for c, t in fenced.items() if holding.get(c) != t}
                if deposed:
                    batch = [item for item in batch if item[0] not in deposed]
            withdrawals = [
                (entry.participant_id, withdraws) for _, entry, withdraws, _ in batch if withdraws
            ]
            if batch:  # the table's insert: one executemany, without the ORM's per-row work
                await db.execute(
                    _insert_new(db.get_bind().dialect.name),
                    [_row(class_id, entry) for class_id, entry, _, _ in batch],
                )
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
            return deposed

    async def _write_fenced(
        self,
        engine: AsyncEngine,
        batch: Sequence[tuple[int, Entry, str, Reply]],
        fenced: dict[int, int],
    ) -> set[int]:
        """A batch of fenced classes on PostgreSQL, in one statement: one round trip.

        The statement locks the rows of the classes that still hold their tokens
        (a key-share lock, as in :meth:`_write`), and inserts the inputs of those
        classes only. It runs on a connection of the store's own, outside any
        transaction, so it is its own transaction: no BEGIN, no COMMIT, no pool
        checkout and no ping before it. Each round trip is a turn of a busy event
        loop, and at thousands of inputs a second those turns were most of an
        input's wait for its ack.
        """
        if self._connection is None:
            self._connection = await engine.connect()
        connection = self._connection
        try:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None  # the connection is open: it has one
            rows = [_sqlite_row(class_id, entry) for class_id, entry, _, _ in batch]
            columns = [list(column) for column in zip(*rows, strict=True)]
            held = await raw.fetch(
                _POSTGRES_WRITE, list(fenced), list(fenced.values()), *columns, utcnow()
            )
        except BaseException:
            # Broken or interrupted mid-statement: a new connection for the next batch.
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()
            raise
        return set(fenced) - {row[0] for row in held}

    async def dismiss(self, class_id: int, participant_id: int, segment_index: int) -> None:
        """The instructor judged a participant's flagged inputs in a segment plausible."""
        async with self._sessions.begin() as db:
            await db.execute(
                update(Score)
                .where(
                    Score.class_id == class_id,
                    Score.participant_id == participant_id,
                    Score.segment_index == segment_index,
                    Score.flagged.is_(True),
                )
                .values(flagged=False)
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


def _tell(reply: Reply, outcome: bool | Exception) -> None:
    try:
        reply(outcome)
    except Exception:  # one screen's bug must not keep the rest of the batch unanswered
        log.exception("a score's reply failed")


#: The columns a score row sets, in the order of :func:`_sqlite_row` (then ``created_at``).
_COLUMNS = (
    "class_id",
    "participant_id",
    "client_id",
    "segment_index",
    "kind",
    "value",
    "rounds",
    "division",
    "elapsed_ms",
    "undoes",
    "withdrawn",
    "flagged",
)
# An input already stored (by an earlier owner of the class, whose book this process
# had not read yet) is left as it is, rather than failing its whole batch: each input
# is stored once, by its (participant, client id).
_INSERT = (
    f"INSERT INTO scores ({', '.join(_COLUMNS)}, created_at)"
    f" VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
    " ON CONFLICT (participant_id, client_id) DO NOTHING"
)


#: The PostgreSQL types of :data:`_COLUMNS`, for the arrays :data:`_POSTGRES_WRITE` takes.
_POSTGRES_TYPES = (
    "integer",
    "integer",
    "varchar",
    "integer",
    "varchar",
    "bigint",
    "integer",
    "varchar",
    "bigint",
    "varchar",
    "boolean",
    "boolean",
)
_ARRAYS = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_POSTGRES_TYPES, start=3))
#: A batch of fenced inputs: $1 and $2 are the classes and their tokens, then one array
#: per column of :data:`_COLUMNS`, then ``created_at``. Returns the classes whose rows
#: still held their tokens; only their inputs are stored (see ScoreStore._write_fenced).
_POSTGRES_WRITE = f"""
WITH held AS (
    SELECT classes.id FROM classes
    JOIN unnest($1::integer[], $2::bigint[]) AS fence(id, token)
        ON classes.id = fence.id AND classes.owner_token = fence.token
    FOR KEY SHARE OF classes
), stored AS (
    INSERT INTO scores ({", ".join(_COLUMNS)}, created_at)
    SELECT input.*, ${len(_COLUMNS) + 3}::timestamptz
    FROM unnest({_ARRAYS}) AS input({", ".join(_COLUMNS)})
    WHERE input.class_id IN (SELECT id FROM held)
    ON CONFLICT (participant_id, client_id) DO NOTHING
)
SELECT id FROM held
"""


def _insert_new(dialect: str) -> Insert:
    """The scores insert that leaves an input already stored as it is (see _INSERT)."""
    if dialect == "postgresql":
        return postgresql.insert(SCORES).on_conflict_do_nothing(
            index_elements=["participant_id", "client_id"]
        )
    return sqlite.insert(SCORES).on_conflict_do_nothing(
        index_elements=["participant_id", "client_id"]
    )


_WITHDRAW = "UPDATE scores SET withdrawn = 1 WHERE participant_id = ? AND client_id = ?"

#: A score row for SQLite: the columns of :data:`_INSERT` but the last (``created_at``).
SqliteRow = tuple[int, int, str, int, str, int, int, str, int, str, bool, bool]


def _write_sqlite(
    batch: Sequence[tuple[int, Entry, str, Reply]],
    fenced: dict[int, int],
    stamp: str,
    db: sqlite3.Connection,
) -> set[int]:
    deposed: set[int] = set()
    for class_id, token in fenced.items():
        held = db.execute("SELECT owner_token FROM classes WHERE id = ?", (class_id,)).fetchone()
        if held is None or held[0] != token:
            deposed.add(class_id)
    rows = [
        (*_sqlite_row(class_id, entry), stamp)
        for class_id, entry, _, _ in batch
        if class_id not in deposed
    ]
    withdrawals = [
        (entry.participant_id, withdraws)
        for class_id, entry, withdraws, _ in batch
        if withdraws and class_id not in deposed
    ]
    if rows:
        db.executemany(_INSERT, rows)
    if withdrawals:
        db.executemany(_WITHDRAW, withdrawals)
    return deposed


def _sqlite_row(class_id: int, entry: Entry) -> SqliteRow:
    """An entry as a row (an Entry's fields are in the order of :data:`_COLUMNS`)."""
    kind, division = entry.kind.value, entry.division.value
    return (class_id, *entry[:3], kind, *entry[4:6], division, *entry[7:])


def _row(class_id: int, entry: Entry) -> dict[str, object]:
    return dict(zip(_COLUMNS, _sqlite_row(class_id, entry), strict=True))


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
