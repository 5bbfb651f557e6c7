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
import functools
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from classroom.db.models import Class, ClassEvent

_STATE_JSON = json.JSONEncoder(allow_nan=False)  # JSON proper: never NaN or Infinity
CONFLICT = "class {class_id} is gone or was changed by another writer"
WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""When the WAL starts over, its file is cut back to this size (bytes) if it was larger."""

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Transition:
    """One class's new state and the events that led to it, ready to store."""

    class_id: int
    last_seq: int  # the class's last stored seq before this transition
    state: dict[str, Any]
    phase: str | None  # None: the same as the class's last stored transition
    started_at_ms: int | None
    ended_at_ms: int | None
    events: Sequence[tuple[int, str, int, dict[str, Any]]]  # (seq, type, at_ms, payload)
    #: The writer's fencing token (classroom/db/leases.py): the write changes nothing
    #: unless the class's row still holds it. None: not checked (tools and tests).
    token: int | None = None


class TransitionWriter(Protocol):
    async def write(self, transition: Transition) -> None:
        """Store ``transition``; raises ``LookupError`` if the class moved on meanwhile."""
        ...

    async def close(self) -> None: ...


class _Batching:
    """Gathers transitions while a batch is being written; writes them as the next one.

    The first transition of a batch schedules a flush (a plain callback, not a
    task: most batches are written without waiting for anything); every
    transition handed over before it runs joins the same batch.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Transition, asyncio.Future[None]]] = []
        self._flushing = False  # a flush is scheduled, or a batch is being written

    async def write(self, transition: Transition) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((transition, done))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        """Write the gathered batch; by default in a task (the write awaits)."""
        task = asyncio.get_running_loop().create_task(self._drain(), name="transition-writer")
        task.add_done_callback(_log_crash)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    stored = await self._write_batch([t for t, _ in batch])
                except Exception as exc:  # the whole batch failed: every actor hears
                    _fail(batch, exc)
                    continue
                _settle(batch, stored)
        finally:
            self._flushing = False

    async def _write_batch(self, batch: list[Transition]) -> list[bool]:
        raise NotImplementedError


def _settle(batch: list[tuple[Transition, asyncio.Future[None]]], stored: list[bool]) -> None:
    for (transition, done), ok in zip(batch, stored, strict=True):
        if done.done():
            continue
        if ok:
            done.set_result(None)
        else:
            done.set_exception(LookupError(CONFLICT.format(class_id=transition.class_id)))


def _fail(batch: list[tuple[Transition, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the transition writer crashed", exc_info=task.exception())


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
                values: dict[str, Any] = {"state": t.state, "last_seq": t.last_seq + len(t.events)}
                if t.phase is not None:
                    values["phase"] = t.phase
                if t.started_at_ms is not None:
                    values["started_at"] = _stamp(t.started_at_ms)
                if t.ended_at_ms is not None:
                    values["ended_at"] = _stamp(t.ended_at_ms)
                fenced = update(Class).where(Class.id == t.class_id, Class.last_seq == t.last_seq)
                if t.token is not None:
                    fenced = fenced.where(Class.owner_token == t.token)
                result = await db.execute(fenced.values(**values))
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


_INSERT = "INSERT INTO class_events (class_id, seq, type, at_ms, payload) VALUES (?, ?, ?, ?, ?)"


@functools.cache
def _update(phase: bool, started: bool, ended: bool, fenced: bool) -> str:
    """The UPDATE of a class's row, setting only what the transition changes.

    A column left out is a page left alone: the phase is indexed, so setting it
    to the same value would rewrite a page of ``ix_classes_phase`` on every cue.
    """
    sets = ["state = ?", "last_seq = ?"]
    sets += ["phase = ?"] if phase else []
    sets += ["started_at = ?"] if started else []
    sets += ["ended_at = ?"] if ended else []
    fence = " AND owner_token = ?" if fenced else ""
    return f"UPDATE classes SET {', '.join(sets)} WHERE id = ? AND last_seq = ?{fence}"


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
    to the writer's own thread instead, which may wait for it.

    Checkpoints copy the WAL into the database and flush it to disk. The
    connection's automatic checkpoint is off; every :data:`CHECKPOINT_EVERY`
    commits a passive checkpoint runs on the thread instead. SQLite starts the
    WAL over only once all of it has been copied, but while the thread copies,
    the loop keeps writing: in a busy class the thread never copies the whole
    WAL, and the WAL would grow for as long as inputs flow (hundreds of MiB in a
    minute, every page lookup slower as it grows). So after each checkpoint,
    the next write goes to the thread, which first copies what the checkpoint
    left (the frames of the commits made while it copied) and then writes,
    starting the WAL over; the loop never waits for a copy or its flush to disk.
    """

    CHECKPOINT_EVERY = 500

    def __init__(self, path: str, *, cache_mib: int | None = None) -> None:
        super().__init__()
        self._path = path
        self._cache_mib = cache_mib
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="classroom-writer")
        self._db: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None  # used on the thread only
        self._commits = 0
        self._busy_timeout_ms = -1
        self._checkpointing: asyncio.Future[None] | None = None
        self._catch_up = False  # a checkpoint ended: the next write copies what it left

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            if self._cache_mib is not None:
                db.execute(f"PRAGMA cache_size=-{int(self._cache_mib) * 1024}")
            self._db = db
        return self._db

    def _flush(self) -> None:
        """Write the batch right here, on the loop, unless another connection holds the lock."""
        if self._catch_up:  # see the class's docstring: this batch goes to the thread
            super()._flush()
            return
        batch, self._pending = self._pending, []
        try:
            stored = self._write([t for t, _ in batch], wait_ms=0)
        except sqlite3.OperationalError as exc:
            if _locked(exc):  # the writer's thread waits for the lock instead
                self._pending[:0] = batch
                super()._flush()
                return
            self._flushing = False
            _fail(batch, exc)
            return
        except Exception as exc:
            self._flushing = False
            _fail(batch, exc)
            return
        self._flushing = False
        self._committed()
        _settle(batch, stored)

    async def _write_batch(self, batch: list[Transition]) -> list[bool]:
        stored = await self._here_or_on_thread(functools.partial(self._write, batch))
        self._committed()
        return stored

    async def _here_or_on_thread(self, write: Callable[[int], T]) -> T:
        """``write(wait_ms)`` on the loop if the database is free, else on the writer's thread.

        On the thread too when a checkpoint has just ended (see the class's docstring).
        """
        if not self._catch_up:
            try:
                return write(0)  # busy_timeout 0: it doesn't wait for a lock held elsewhere
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, write, 15_000)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            loop = asyncio.get_running_loop()
            self._checkpointing = loop.run_in_executor(self._thread, self._checkpoint)
            self._checkpointing.add_done_callback(self._checkpointed)

    def _write(self, batch: list[Transition], wait_ms: int) -> list[bool]:
        db = self._begin(wait_ms)
        stored = []
        execute = db.execute
        dumps = _STATE_JSON.encode
        try:
            for t in batch:
                started, ended = t.started_at_ms, t.ended_at_ms
                params: list[Any] = [dumps(t.state), t.last_seq + len(t.events)]
                if t.phase is not None:
                    params.append(t.phase)
                if started is not None:
                    params.append(_sqlite_stamp(started))
                if ended is not None:
                    params.append(_sqlite_stamp(ended))
                params += (t.class_id, t.last_seq)
                if t.token is not None:
                    params.append(t.token)
                sql = _update(
                    t.phase is not None, started is not None, ended is not None, t.token is not None
                )
                ok = execute(sql, params).rowcount == 1
                stored.append(ok)
                if ok:
                    class_id = t.class_id
                    for seq, kind, at_ms, payload in t.events:
                        execute(_INSERT, (class_id, seq, kind, at_ms, dumps(payload)))
            execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return stored

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one transaction on this writer's connection.

        As with transitions: on the loop's thread when the database is free, else
        on the writer's thread, which waits for the lock (and after a checkpoint).
        Use one writer for either transitions or ``run``, never both: both use the
        one connection.
        """
        result = await self._here_or_on_thread(functools.partial(self._transaction, work))
        self._committed()
        return result

    def _transaction(self, work: Callable[[sqlite3.Connection], T], wait_ms: int) -> T:
        db = self._begin(wait_ms)
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _begin(self, wait_ms: int) -> sqlite3.Connection:
        """The connection, in a write transaction (waiting up to ``wait_ms`` for the lock)."""
        db = self._connection()
        if wait_ms != self._busy_timeout_ms:
            db.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
            self._busy_timeout_ms = wait_ms
        if self._catch_up and wait_ms:  # on the thread, after a checkpoint
            # What the checkpoint left: with the WAL all copied, the write below
            # starts it over (unless a reader still uses it: then after the next one).
            self._catch_up = False
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        db.execute("BEGIN IMMEDIATE")
        return db

    def _checkpoint(self) -> None:
        """Copy the WAL into the database, without waiting for anyone (on the thread)."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                self._path, isolation_level=None, timeout=1, check_same_thread=False
            )
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if done.cancelled():
            return
        if done.exception() is not None:
            log.warning("WAL checkpoint failed: %s", done.exception())
        else:  # the frames written while it copied are left for the next write
            self._catch_up = True

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing

        def shut() -> None:
            for db in (self._db, self._checkpointer):
                if db is not None:
                    db.close()
            self._db = self._checkpointer = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def sqlite_path(engine: AsyncEngine) -> str | None:
    """The file of an SQLite engine (None for any other database, or one in memory)."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return url.database
    return None


def writer_for(engine: AsyncEngine) -> TransitionWriter:
    """The fastest writer for the engine's database."""
    path = sqlite_path(engine)
    return EngineWriter(engine) if path is None else SqliteWriter(path)
