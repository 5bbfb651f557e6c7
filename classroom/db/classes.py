"""Reading and writing live classes: their frozen timeline, state and event log."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.models import Class, ClassEvent, ClassTimeline, Heartbeat, Routine
from classroom.db.routines import timeline_for
from classroom.db.writer import EngineWriter, Transition, TransitionWriter
from classroom.domain import session
from classroom.domain.codec import from_plain, to_plain
from classroom.domain.events import (
    CueFired,
    Event,
    ParticipantFinished,
    PhaseChanged,
    SegmentStarted,
    ShoutOut,
)
from classroom.domain.joining import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH
from classroom.domain.session import OPEN, TERMINAL, ClassPolicy, ClassState, Phase
from classroom.domain.timeline import Timeline
from classroom.metrics import Metrics


@dataclass(frozen=True, slots=True)
class LoadedClass:
    id: int
    title: str
    timeline: Timeline
    state: ClassState
    last_seq: int
    epoch: str = ""


def event_payload(event: Event) -> dict[str, Any]:
    payload: dict[str, Any] = to_plain(event)
    payload.pop("at_ms")
    return payload


_EVENTS: dict[str, type[Event]] = {
    kind.type: kind
    for kind in (PhaseChanged, SegmentStarted, CueFired, ShoutOut, ParticipantFinished)
}


def stored_event(kind: str, at_ms: int, payload: dict[str, Any]) -> Event:
    """An event as :meth:`ClassStore.persist` wrote it to the log, read back."""
    return from_plain(_EVENTS[kind], {**payload, "at_ms": at_ms})


class ClassStore:
    """Persistence for the class actor. Every transition is written before it is sent."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writer: TransitionWriter | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer or EngineWriter(sessions.kw["bind"])
        self._commit_time = (metrics or Metrics()).commit_transition
        # What each class's row holds: its phase and its start and end instants.
        self._written: dict[int, tuple[str, int | None, int | None]] = {}
        # Each class's fencing token (classroom/db/leases.py), named by every write.
        self._tokens: dict[int, int] = {}

    def fence(self, class_id: int, token: int) -> None:
        """Write the class's transitions only while its row holds ``token``."""
        self._tokens[class_id] = token

    def unfence(self, class_id: int) -> None:
        self._tokens.pop(class_id, None)
        self._written.pop(class_id, None)

    async def load(self, class_id: int) -> LoadedClass | None:
        async with self._sessions() as db:
            row = await db.get(Class, class_id)
            frozen = await db.get(ClassTimeline, class_id)
            if row is None or frozen is None:
                return None
            return LoadedClass(
                id=row.id,
                title=row.title,
                timeline=from_plain(Timeline, frozen.timeline),
                state=from_plain(ClassState, row.state),
                last_seq=row.last_seq,
                epoch=row.epoch,
            )

    async def open_ids(self) -> list[int]:
        """Classes in the lobby or live: each has an actor while the server runs."""
        async with self._sessions() as db:
            rows = await db.scalars(
                select(Class.id).where(Class.phase.in_([p.value for p in OPEN]))
            )
            return list(rows)

    async def persist(
        self, class_id: int, last_seq: int, state: ClassState, events: Sequence[Event]
    ) -> list[int]:
        """Write one transition: its events, numbered after ``last_seq``, and the new state.

        The class's one writer knows ``last_seq``, so nothing is read first; if the
        stored number differs anyway, another writer got in and nothing is written.
        """
        seqs = list(range(last_seq + 1, last_seq + 1 + len(events)))
        # The phase is written when it changes, the start and end instants once,
        # when they first appear: the class's row is rewritten on every cue, and
        # what is left alone costs nothing.
        written = (state.phase.value, state.started_at_ms, state.ended_at_ms)
        phase: str | None = written[0]
        started, ended = written[1], written[2]
        before = self._written.get(class_id)
        if before is not None:
            phase = None if before[0] == phase else phase
            started = None if before[1] == started else started
            ended = None if before[2] == ended else ended
        transition = Transition(
            class_id=class_id,
            last_seq=last_seq,
            state=to_plain(state),
            phase=phase,
            started_at_ms=started,
            ended_at_ms=ended,
            events=[
                (seq, event.type, event.at_ms, event_payload(event))
                for seq, event in zip(seqs, events, strict=True)
            ],
            token=self._tokens.get(class_id),
        )
        writing = time.perf_counter()
        await self._writer.write(transition)
        self._commit_time.observe(time.perf_counter() - writing)
        if state.phase in TERMINAL:
            self._written.pop(class_id, None)
        else:
            self._written[class_id] = written
        return seqs

    async def close(self) -> None:
        await self._writer.close()

    async def events_since(
        self, class_id: int, seq: int, limit: int | None = None
    ) -> list[ClassEvent]:
        async with self._sessions() as db:
            query = (
                select(ClassEvent)
                .where(ClassEvent.class_id == class_id, ClassEvent.seq > seq)
                .order_by(ClassEvent.seq)
            )
            rows = await db.scalars(query if limit is None else query.limit(limit))
            return list(rows)

    async def numbered_since(
        self, class_id: int, seq: int, limit: int
    ) -> list[tuple[int, Event]] | None:
        """The class's events after ``seq``, from its log; None if there are over ``limit``."""
        rows = await self.events_since(class_id, seq, limit + 1)
        if len(rows) > limit:
            return None
        return [(row.seq, stored_event(row.type, row.at_ms, row.payload)) for row in rows]


async def open_class(
    db: AsyncSession,
    instructor_id: int,
    routine: Routine,
    *,
    now_ms: int,
    policy: ClassPolicy | None = None,
) -> Class:
    """Open a class of ``routine`` in the lobby at ``now_ms``, freezing its timeline."""
    timeline = timeline_for(routine)
    for _ in range(10):
        code = new_join_code()
        taken = await db.scalar(select(Class.id).where(Class.join_code == code))
        if taken is None:
            break
    else:  # pragma: no cover - 31^6 codes; ten collisions in a row means a broken RNG
        raise RuntimeError("could not find a free join code")
    row = Class(
        join_code=code,
        instructor_id=instructor_id,
        routine_id=routine.id,
        title=routine.title,
        planned_ms=timeline.lead_in_ms + timeline.total_ms,
        phase=Phase.LOBBY.value,
        state=to_plain(session.open_class(now_ms, policy)),
        last_seq=0,
    )
    db.add(row)
    await db.flush()
    db.add(ClassTimeline(class_id=row.id, timeline=to_plain(timeline)))
    await db.flush()
    return row


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


class HeartbeatStore:
    """When each server process was last known alive (and a digest of its secret key)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], secret_check: str | None = None
    ) -> None:
        self._sessions = sessions
        self._secret_check = secret_check

    async def last(self, node: str) -> int | None:
        async with self._sessions() as db:
            row = await db.get(Heartbeat, node)
            return None if row is None else row.alive_at_ms

    async def prune(self, before_ms: int) -> int:
        """Forget processes last alive before ``before_ms`` that own no class (each start
        of a process adds a row); returns how many."""
        owners = select(Class.owner_node).where(Class.owner_node.is_not(None))
        async with self._sessions.begin() as db:
            result = await db.execute(
                delete(Heartbeat)
                .where(Heartbeat.alive_at_ms < before_ms, Heartbeat.node.not_in(owners))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def beat(self, node: str, at_ms: int) -> None:
        async with self._sessions.begin() as db:
            await db.merge(Heartbeat(node=node, alive_at_ms=at_ms, secret_check=self._secret_check))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A class that has ended, as the history lists it."""

    id: int
    title: str
    phase: str
    started_at: datetime | None
    planned_ms: int
    ran_ms: int  # time the class ran: pauses and skipped time not counted
    wall_ms: int | None  # from start to end on the clock, pauses included
    participants: int


def history_entry(row: Class, participants: int) -> HistoryEntry:
    state = from_plain(ClassState, row.state)
    wall = None
    if state.started_at_ms is not None and state.ended_at_ms is not None:
        wall = state.ended_at_ms - state.started_at_ms
    return HistoryEntry(
        id=row.id,
        title=row.title,
        phase=row.phase,
        started_at=row.started_at,
        planned_ms=row.planned_ms,
        ran_ms=session.elapsed_ms(state, state.ended_at_ms or 0),
        wall_ms=wall,
        participants=participants,
    )
