"""Who owns each live class: a lease with a fencing token, on the class's row.

Theory of operation
    A process is alive while its heartbeat (the ``heartbeats`` table, written
    every second) is younger than :data:`LEASE_MS`. A class's row names its
    owner (``owner_node``) and a fencing token (``owner_token``). A process
    *claims* a class whose owner is nobody, or a process that is no longer
    alive, by raising the token by one in a compare-and-set on the row; at most
    one claimer wins. The owner renews every lease it holds at once, by its
    heartbeat: no write per class.

    Every write of the owner names its token (see
    :class:`~classroom.db.writer.Transition` and
    :meth:`~classroom.db.scores.ScoreStore.fence`): once another process has
    claimed the class, the deposed owner's writes change nothing and fail, so it
    can't write an event, reuse a ``seq`` or acknowledge a score.

    A process that stops cleanly *releases* its classes (no owner, the token
    raised), so another claims each at once and runs it on without a pause. One
    that died is found out when its heartbeat is :data:`LEASE_MS` old; the class
    then follows its restart policy from the dead owner's last heartbeat.

Standalone
    One process on its own (the embedded default: no Redis) is the only owner
    there is: it claims every class at start, whoever held it, since that can
    only have been an earlier run of the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.models import Class, Heartbeat
from classroom.domain.session import OPEN

LEASE_MS = 5_000
"""A process whose heartbeat is older than this is taken for dead, and its classes claimed."""


class Deposed(LookupError):
    """A write of a process that no longer owns its class: it changed nothing."""

    def __init__(self) -> None:
        super().__init__("another process owns this class now")


@dataclass(frozen=True, slots=True)
class Lease:
    """A class this process now owns."""

    class_id: int
    token: int
    #: When the class was last looked after, if it was left without an owner (its
    #: owner died, or no process took it for a while): its restart policy applies.
    down_since: int | None
    #: The process that owned it before (None: nobody, or it handed it back).
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class Owned:
    """A class that another process, alive, owns."""

    node: str


class LeaseStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        node: str,
        *,
        standalone: bool,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self._sessions = sessions
        self.node = node
        self.standalone = standalone
        self.lease_ms = lease_ms
        # This node's last heartbeat before this process started: a class this node
        # held then was held by an earlier run of it, which is gone.
        self.previous_beat: int | None = None
        self._claimed: set[int] = set()

    async def claim(self, class_id: int, now_ms: int) -> Lease | Owned | None:
        """Own the class if nobody alive does; None if there is no such class."""
        async with self._sessions.begin() as db:
            row = (
                await db.execute(
                    select(Class.owner_node, Class.owner_token, Class.released_at_ms)
                    .where(Class.id == class_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:
                return None
            holder, token, released_at = row
            if holder == self.node and class_id in self._claimed:
                return Lease(class_id, token, None, holder)
            down_since = await self._down_since(db, holder, released_at, now_ms)
            if isinstance(down_since, Owned):
                return down_since
            result = await _updated(
                db,
                update(Class)
                .where(Class.id == class_id, Class.owner_token == token)
                .values(owner_node=self.node, owner_token=token + 1, released_at_ms=None),
            )
            if result.rowcount != 1:  # pragma: no cover - the row lock keeps others out
                return Owned(holder or "")
        self._claimed.add(class_id)
        return Lease(class_id, token + 1, down_since, holder)

    async def _down_since(
        self, db: AsyncSession, holder: str | None, released_at: int | None, now_ms: int
    ) -> int | Owned | None:
        """When the class was last looked after, if it was left; Owned if it still is."""
        if holder is None:
            if released_at is not None and now_ms - released_at > self.lease_ms:
                return released_at  # handed back, and nobody took it for a while
            return None  # never owned, or handed back just now: it runs on
        if holder == self.node:  # an earlier run of this node held it
            return self.previous_beat if self.previous_beat is not None else now_ms
        alive_at = await db.scalar(select(Heartbeat.alive_at_ms).where(Heartbeat.node == holder))
        if not self.standalone and alive_at is not None and now_ms - alive_at <= self.lease_ms:
            return Owned(holder)
        return now_ms if alive_at is None else min(alive_at, now_ms)

    async def release(self, class_ids: Iterable[int], now_ms: int) -> list[int]:
        """Hand classes back (this process is stopping); returns those it still held."""
        ids = list(class_ids)
        if not ids:
            return []
        released = []
        async with self._sessions.begin() as db:
            for class_id in ids:
                result = await _updated(
                    db,
                    update(Class)
                    .where(Class.id == class_id, Class.owner_node == self.node)
                    .values(
                        owner_node=None, owner_token=Class.owner_token + 1, released_at_ms=now_ms
                    ),
                )
                if result.rowcount == 1:
                    released.append(class_id)
        self._claimed.difference_update(ids)
        return released

    def forget(self, class_id: int) -> None:
        """This process no longer holds the class (it ended, or another took it)."""
        self._claimed.discard(class_id)

    async def held(self) -> dict[int, int]:
        """The classes this node owns now, by the database, each with its token."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(Class.id, Class.owner_token).where(Class.owner_node == self.node)
            )
            return {class_id: token for class_id, token in rows.all()}

    async def orphans(self, now_ms: int) -> list[int]:
        """Open classes that no living process owns: each may be claimed."""
        async with self._sessions() as db:
            alive = select(Heartbeat.node).where(Heartbeat.alive_at_ms >= now_ms - self.lease_ms)
            rows = await db.scalars(
                select(Class.id).where(
                    Class.phase.in_([p.value for p in OPEN]),
                    Class.owner_node.is_(None)
                    | Class.owner_node.not_in(alive)
                    # held by an earlier run of this node
                    | ((Class.owner_node == self.node) & Class.id.not_in(self._claimed)),
                )
            )
            return list(rows)

    async def alive(self, now_ms: int) -> int:
        """How many processes are alive now (their heartbeat is younger than a lease)."""
        async with self._sessions() as db:
            count = await db.scalar(
                select(func.count())
                .select_from(Heartbeat)
                .where(Heartbeat.alive_at_ms >= now_ms - self.lease_ms)
            )
            return int(count or 0)

    async def owners(self) -> dict[int, str | None]:
        """Every open class with its owner's name (None: none yet)."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(Class.id, Class.owner_node).where(Class.phase.in_([p.value for p in OPEN]))
            )
            return {class_id: node for class_id, node in rows.all()}


async def _updated(db: AsyncSession, statement: Update) -> CursorResult[Any]:
    """Run an UPDATE (its rows are not in the session) and return its result."""
    result = await db.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result)
