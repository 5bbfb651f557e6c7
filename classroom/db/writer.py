"""Writing class transitions: batched, one transaction for all that fall due together.

Every cue of every live class is written before any screen hears of it, so this
is on the path of every cue. Actors hand their transitions to one writer per
database; while it writes a batch, the next one gathers, and each actor's
``await`` returns once its own transition is committed. A burst of classes whose
cues fall due in the same millisecond becomes one commit instead of a queue of
them.

On SQLite the writer keeps one connection of its own, on one thread, and writes
a whole batch in a single call there: no pool, no lock contention between its
own connections, one thread hop per batch. Elsewhere (PostgreSQL) it writes each
batch in one transaction through the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from classroom.db.models import Class, ClassEvent

CONFLICT = "class {class_id} is gone or was changed by another writer"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transition:
    """One class's new state and the events that led to it, ready to store."""

    class_id: int
    last_seq: int  # the class's last stored seq before this transition
    state: dict[str, Any]
    phase: str
    started_at_ms: int | None
    ended_at_ms: int | None
    events: Sequence[tuple[int, str, int, dict[str, Any]]]  # (seq, type, at_ms, payload)


class TransitionWriter(Protocol):
    async def write(self, transition: Transition) -> None:
        """Store ``transition``; raises ``LookupError`` if the class moved on meanwhile."""
        ...

    async def close(self) -> None: ...


class _Batching:
    """Gathers transitions while a batch is being written; writes them as the next one."""

    def __init__(self) -> None:
        self._pending: list[tuple[Transition, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, transition: Transition) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((transition, done))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain(), name="transition-writer")
        await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    stored = await self._write_batch([t for t, _ in batch])
                except Exception as exc:  # the whole batch failed: every actor hears
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (transition, done), ok in zip(batch, stored, strict=True):
                    if done.done():
                        continue
                    if ok:
                        done.set_result(None)
                    else:
                        done.set_exception(
                            LookupError(CONFLICT.format(class_id=transition.class_id))
                        )
        finally:
            self._drainer = None

    async def _write_batch(self, batch: list[Transition]) -> list[bool]:
        raise NotImplementedError


def _stamp(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class EngineWriter(_Batching):
    """Writes each batch in one transaction through a SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine

    async def _write_batch(self, batch: list[Transition]) -> list[bool]:
        stored = []
        async with self._engine.begin() as db:
            rows = []
            for t in batch:
                values: dict[str, Any] = {
                    "state": t.state,
                    "phase": t.phase,
                    "last_seq": t.last_seq + len(t.events),
                }
                if t.started_at_ms is not None:
                    values["started_at"] = _stamp(t.started_at_ms)
                if t.ended_at_ms is not None:
                    values["ended_at"] = _stamp(t.ended_at_ms)
                result = await db.execute(
                    update(Class)
                    .where(Class.id == t.class_id, Class.last_seq == t.last_seq)
                    .values(**values)
                )
                ok = result.rowcount == 1
                stored.append(ok)
                if ok:
                    rows += [
                        {"class_id": t.class_id, "seq": s, "type": k, "at_ms": at, "payload": p}
                        for s, k, at, p in t.events
                    ]
            if rows:
                await db.execute(insert(ClassEvent), rows)
        return stored

    async def close(self) -> None:
        return None


_UPDATE = (
    "UPDATE classes SET state = ?, phase = ?, last_seq = ?,"
    " started_at = COALESCE(?, started_at), ended_at = COALESCE(?, ended_at)"
    " WHERE id = ? AND last_seq = ?"
)
_INSERT = "INSERT INTO class_events (class_id, seq, type, at_ms, payload) VALUES (?, ?, ?, ?, ?)"


def _sqlite_stamp(ms: int | None) -> str | None:
    """A UTC instant as SQLAlchemy stores a DateTime in SQLite."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteWriter(_Batching):
    """Writes each batch in one call on its own SQLite connection.

    On this machine every wake-up of a thread costs more than the write itself,
    so a batch is written on the event loop's thread when the database is free:
    the connection does not wait for a lock there (``busy_timeout`` 0). If
    another connection holds the write lock (a sign-in, a join), the batch goes
    to the writer's own thread instead, which may wait for it. Checkpoints (which
    copy the WAL into the database and flush it to disk) never run on the loop:
    the connection's automatic checkpoint is off, and every
    :data:`CHECKPOINT_EVERY` commits a passive checkpoint runs on the thread.
    """

    CHECKPOINT_EVERY = 500

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="classroom-writer")
        self._db: sqlite3.Connection | None = None
        self._commits = 0
        self._busy_timeout_ms = -1
        self._checkpointing: asyncio.Future[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._db = db
        return self._db

    async def _write_batch(self, batch: list[Transition]) -> list[bool]:
        loop = asyncio.get_running_loop()
        try:
            stored = self._write(batch, wait_ms=0)  # on the loop: only if nobody holds the lock
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            stored = await loop.run_in_executor(self._thread, self._write, batch, 15_000)
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            self._checkpointing = loop.run_in_executor(self._thread, self._checkpoint)
            self._checkpointing.add_done_callback(self._checkpointed)
        return stored

    def _write(self, batch: list[Transition], wait_ms: int) -> list[bool]:
        db = self._connection()
        if wait_ms != self._busy_timeout_ms:
            db.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
            self._busy_timeout_ms = wait_ms
        stored = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for t in batch:
                cursor = db.execute(
                    _UPDATE,
                    (
                        json.dumps(t.state),
                        t.phase,
                        t.last_seq + len(t.events),
                        _sqlite_stamp(t.started_at_ms),
                        _sqlite_stamp(t.ended_at_ms),
                        t.class_id,
                        t.last_seq,
                    ),
                )
                ok = cursor.rowcount == 1
                stored.append(ok)
                if ok and t.events:
                    db.executemany(
                        _INSERT,
                        [(t.class_id, s, k, at, json.dumps(p)) for s, k, at, p in t.events],
                    )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return stored

    def _checkpoint(self) -> None:
        """Copy the WAL into the database, without waiting for anyone (on the thread)."""
        db = sqlite3.connect(self._path, isolation_level=None, timeout=1)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("WAL checkpoint failed: %s", done.exception())

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing

        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)


def writer_for(engine: AsyncEngine) -> TransitionWriter:
    """The fastest writer for the engine's database."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return SqliteWriter(url.database)
    return EngineWriter(engine)
