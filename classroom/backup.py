"""Backing up and restoring the SQLite database (``classroom backup``, ``classroom restore``).

Copying ``classroom.db`` while the server runs gives a torn copy: recent commits
sit in ``classroom.db-wal`` until a checkpoint copies them over, and pages
change under the copy. :func:`backup` uses SQLite's online backup API instead,
which copies the database as one committed state, while classes keep writing.

:func:`restore` puts such a copy back, but only while no server runs on the
database: ``classroom serve`` holds an exclusive lock on ``<database>.lock``
beside the database for as long as it runs (:func:`lock_for_serving`), and a
restore takes the same lock. It checks the copy first (a SQLite database,
intact, classroom's, of a schema this version knows), then swaps it in
atomically and keeps the previous database as ``<database>.before-restore``.

Every refusal is a :class:`BackupError`, whose message is one line for people
(the texts are the constants below); a refusal changes nothing. PostgreSQL has
its own tools (``pg_dump``, ``pg_restore``): see docs/deployment.md, "Backups".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from classroom.config import Settings

STEP_PAGES = 256
"""Pages copied per step of a backup: 1 MiB of 4 KiB pages.

Each step reads from one snapshot of the database. While a snapshot is held,
the server's checkpoints can't start the WAL over, so it grows with every input;
short steps with a pause between them let it start over as usual.
"""
STEP_PAUSE_S = 0.005
STALLED_STEPS = 3
"""Steps in a row that made no headway before the rest is copied in one step.

SQLite starts a stepped backup over whenever another connection commits between
two steps. During a busy class that is every few milliseconds, so a backup of
many steps might never end; after a few fresh starts, the backup copies the
whole database in one step, from one snapshot. In WAL mode that blocks no
writer: the WAL just grows for as long as that one step takes.
"""

SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_SUFFIX = ".lock"
BEFORE_RESTORE_SUFFIX = ".before-restore"

NOT_SQLITE_BACKUP = (
    "the database is not SQLite: back up PostgreSQL with pg_dump (see docs/deployment.md, Backups)"
)
NOT_SQLITE_RESTORE = (
    "the database is not SQLite: restore PostgreSQL with pg_restore"
    " (see docs/deployment.md, Backups)"
)
IN_MEMORY = "the database is in memory: there is no file to {what}"
NO_DATABASE = "there is no database at {database}: nothing to back up"
TARGET_EXISTS = "{path} exists: give a new path, or --force to replace it"
TARGET_IS_FOLDER = "{path} is a folder: give the path of the file to write"
NO_FOLDER = "there is no folder {folder} to write {path} in"
COPY_DAMAGED = "the copy at {path} fails SQLite's integrity check ({detail}); nothing was kept"
NO_FILE = "there is no file {path}"
NOT_A_DATABASE = "{path} is not a SQLite database"
DAMAGED = "{path} is damaged: SQLite's integrity check says {detail}"
NOT_CLASSROOM = "{path} is not a classroom database: it has no schema version"
UNKNOWN_REVISION = "{path} is not a classroom database: its schema version {revision!r} is unknown"
NEWER_SCHEMA = (
    "{path} is from a newer version of classroom (schema {revision}; this version knows"
    " up to {head}): upgrade classroom first"
)
SERVER_RUNS = (
    "a classroom server is running on {database}: stop it first"
    " (a backup can be taken while it runs, a restore can't)"
)
IN_USE = "another classroom process (a server, or a restore) is using {database}"
CANT_LOCK = "can't lock {path}: {reason}"


class BackupError(Exception):
    """A backup or restore that can't be done; the message is one line for people."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backup:
    """A backup that was written and checked."""

    database: Path
    path: Path
    size: int
    revision: str | None

    def summary(self) -> str:
        return (
            f"backed up {self.database} to {self.path}"
            f" ({_size(self.size)}, schema {self.revision or 'none'})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored:
    """A backup that became the database."""

    source: Path
    database: Path
    revision: str
    head: str
    previous: Path | None  # the database it replaced, kept; None if there was none

    def summary(self) -> str:
        kept = (
            f"the previous database is kept as {self.previous}"
            if self.previous is not None
            else "there was no database before"
        )
        schema = (
            "its schema is up to date"
            if self.revision == self.head
            else f"`classroom serve` brings its schema up to {self.head} when it starts"
        )
        return (
            f"restored {self.source} (schema {self.revision}) as {self.database}; {kept}; {schema}"
        )


# -- where the database is ----------------------------------------------------------------


def sqlite_path(settings: Settings, *, what: str) -> Path | None:
    """The SQLite file of ``settings``' database URL; None for PostgreSQL.

    ``what`` (back up, restore) goes into the refusal of an in-memory database.
    """
    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError(IN_MEMORY.format(what=what))
    return Path(database).expanduser().absolute()


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + LOCK_SUFFIX)


@contextlib.contextmanager
def database_lock(database: Path, busy: str) -> Iterator[None]:
    """Hold the exclusive lock on ``database``'s lock file; ``busy`` says why not, if held.

    An advisory ``flock``: the kernel lets go of it when its process ends, even
    killed, so a crashed server never leaves a stale lock. The lock file itself
    stays (removing it would let two processes lock two different files). It is
    opened to read only, so a server and a restore run by different users share it.
    """
    path = lock_path(database)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BackupError(CANT_LOCK.format(path=path, reason=exc.strerror)) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(busy.format(database=database)) from None
        yield
    finally:
        os.close(descriptor)  # lets go of the lock


def lock_for_serving(settings: Settings) -> contextlib.AbstractContextManager[object]:
    """The lock ``classroom serve`` holds on a SQLite database for its whole life, taken.

    While it is held, ``classroom restore`` refuses to replace the database. On
    PostgreSQL there is nothing to hold.
    """
    try:
        database = sqlite_path(settings, what="lock")
    except BackupError:  # in memory: no other process can reach it
        return contextlib.nullcontext()
    if database is None:
        return contextlib.nullcontext()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # as the first migrate would
    stack = contextlib.ExitStack()
    stack.enter_context(database_lock(database, IN_USE))
    return stack


# -- backup -------------------------------------------------------------------------------


def backup(
    settings: Settings,
    path: Path,
    *,
    force: bool = False,
    pages: int = STEP_PAGES,
    pause_s: float = STEP_PAUSE_S,
) -> Backup:
    """Copy the database to ``path`` while the server may be writing to it; check the copy.

    The copy is written beside ``path`` under a temporary name and renamed into
    place only once it passed ``PRAGMA integrity_check``: a failed backup never
    leaves a half-written file where a good one was expected. It is one file in
    rollback-journal mode (no ``-wal`` to keep with it), readable by its owner only.
    """
    database = sqlite_path(settings, what="back up")
    if database is None:
        raise BackupError(NOT_SQLITE_BACKUP)
    path = path.expanduser().absolute()
    if path.is_dir():
        raise BackupError(TARGET_IS_FOLDER.format(path=path))
    if os.path.lexists(path) and not force:
        raise BackupError(TARGET_EXISTS.format(path=path))
    if not path.parent.is_dir():
        raise BackupError(NO_FOLDER.format(folder=path.parent, path=path))
    if not database.is_file():
        raise BackupError(NO_DATABASE.format(database=database))

    with _temporary_beside(path) as temporary:
        try:
            # mode=rw: a database that vanished meanwhile is an error, not a new empty one.
            source = sqlite3.connect(f"{database.as_uri()}?mode=rw", uri=True, timeout=15)
        except sqlite3.Error:
            raise BackupError(NO_DATABASE.format(database=database)) from None
        with contextlib.closing(source), contextlib.closing(sqlite3.connect(temporary)) as copy:
            copy_database(source, copy, pages=pages, pause_s=pause_s)
            copy.execute("PRAGMA journal_mode=DELETE")
            problem = integrity_problem(copy)
            revision = None if problem else schema_revision(copy)
        if problem is not None:
            raise BackupError(COPY_DAMAGED.format(path=path, detail=problem))
        _fsync(temporary)
        if force:
            os.replace(temporary, path)
        else:
            try:  # a link, unlike a rename, never replaces a file that appeared meanwhile
                os.link(temporary, path)
            except FileExistsError:
                raise BackupError(TARGET_EXISTS.format(path=path)) from None
        _fsync(path.parent)
    return Backup(database=database, path=path, size=path.stat().st_size, revision=revision)


def copy_database(
    source: sqlite3.Connection,
    target: sqlite3.Connection,
    *,
    pages: int = STEP_PAGES,
    pause_s: float = STEP_PAUSE_S,
) -> None:
    """Copy ``source`` into ``target`` as one committed state, ``pages`` at a time.

    Python's ``backup`` sleeps only when the source is locked; the progress
    callback pauses after every step, so the server's checkpoints get their turn.
    When steps stop making headway (:data:`STALLED_STEPS`), the rest goes in one.
    """
    if pages < 1:
        source.backup(target)
        return
    stalled = 0
    last: int | None = None

    def progress(_status: int, remaining: int, _total: int) -> None:
        nonlocal stalled, last
        if remaining == 0:
            return
        if last is not None and remaining >= last:  # started over: a commit came between
            stalled += 1
            if stalled >= STALLED_STEPS:
                raise _Stalled
        last = remaining
        time.sleep(pause_s)

    try:
        source.backup(target, pages=pages, progress=progress)
    except _Stalled:
        source.backup(target)


class _Stalled(Exception):
    """Ends a stepped backup that keeps starting over (see :data:`STALLED_STEPS`)."""


# -- restore ------------------------------------------------------------------------------


def restore(settings: Settings, source: Path) -> Restored:
    """Make the backup at ``source`` the database, keeping the one it replaces.

    ``source`` itself is never opened for writing: it is copied beside the
    database first, and that copy is checked and renamed over the database.
    """
    database = sqlite_path(settings, what="restore")
    if database is None:
        raise BackupError(NOT_SQLITE_RESTORE)
    source = source.expanduser().absolute()
    if not source.is_file():
        raise BackupError(NO_FILE.format(path=source))
    with source.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(NOT_A_DATABASE.format(path=source))
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # a fresh install's data directory
    if not database.parent.is_dir():
        raise BackupError(NO_FOLDER.format(folder=database.parent, path=database))

    with _temporary_beside(database) as temporary:
        shutil.copyfile(source, temporary)
        revision, head = _restorable(temporary, source)
        _fsync(temporary)
        with database_lock(database, SERVER_RUNS):
            _same_owner_and_mode(temporary, database)
            previous = _keep_previous(database)
            # The old database's WAL and its index must not meet the new file: SQLite
            # would read the old pages back from them. Gone first, they never do.
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            os.replace(temporary, database)
            _fsync(database.parent)
    return Restored(
        source=source, database=database, revision=revision, head=head, previous=previous
    )


def _restorable(copy: Path, source: Path) -> tuple[str, str]:
    """The schema revision of ``copy`` (a copy of ``source``) and this version's head.

    Raises :class:`BackupError` unless it is an intact classroom database of a schema
    this version knows (the same as its own, or older: ``serve`` migrates it).
    """
    try:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            problem = integrity_problem(db)
            if problem is not None:
                raise BackupError(DAMAGED.format(path=source, detail=problem))
            revision = schema_revision(db)
            db.execute("PRAGMA journal_mode=DELETE")  # one file; serve turns WAL back on
    except sqlite3.DatabaseError as exc:
        raise BackupError(DAMAGED.format(path=source, detail=_said(exc))) from None
    if revision is None:
        raise BackupError(NOT_CLASSROOM.format(path=source))
    known = schema_revisions()
    head = known[-1]
    if revision in known:
        return revision, head
    if revision.isdigit() and head.isdigit() and int(revision) > int(head):
        raise BackupError(NEWER_SCHEMA.format(path=source, revision=revision, head=head))
    raise BackupError(UNKNOWN_REVISION.format(path=source, revision=revision))


def _keep_previous(database: Path) -> Path | None:
    """Copy the database about to be replaced to ``<database>.before-restore``.

    Through SQLite, so that commits still in its WAL come along, into one file;
    a database SQLite can't read (the reason for some restores) is copied as is.
    Read-only: a connection that could write would copy the WAL into the old file
    when it closes, even into one SQLite can't read.
    """
    if not database.exists():
        return None
    kept = database.with_name(database.name + BEFORE_RESTORE_SUFFIX)
    with _temporary_beside(kept) as temporary:
        try:
            old = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=15)
            with contextlib.closing(old), contextlib.closing(sqlite3.connect(temporary)) as copy:
                old.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.DatabaseError:
            shutil.copyfile(database, temporary)
        _fsync(temporary)
        os.replace(temporary, kept)
    return kept


# -- checks -------------------------------------------------------------------------------


def integrity_problem(db: sqlite3.Connection) -> str | None:
    """What ``PRAGMA integrity_check`` finds first, or None if the database is intact."""
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return _said(exc)
    findings = [str(row[0]) for row in rows]
    if findings == ["ok"]:
        return None
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"{findings[0][:200]!r}{more}"


def schema_revision(db: sqlite3.Connection) -> str | None:
    """The Alembic revision the database's schema is at; None if it has none."""
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    return None if row is None else str(row[0])


def schema_revisions() -> list[str]:
    """Every schema revision this version of classroom knows, oldest first."""
    from alembic.script import ScriptDirectory

    from classroom.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


# -- files --------------------------------------------------------------------------------


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A new empty file in ``path``'s folder (so a rename onto ``path`` is atomic).

    Whatever is left of it, and of SQLite's files beside it, goes on the way out.
    """
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
    finally:
        for leftover in ("", "-journal", "-wal", "-shm"):
            Path(f"{temporary}{leftover}").unlink(missing_ok=True)


def _same_owner_and_mode(path: Path, like: Path) -> None:
    """Give ``path`` the owner and permissions of ``like``, if it exists (and we may).

    A restore run as root must not leave the server's user a database it can't open.
    """
    try:
        status = like.stat()
    except FileNotFoundError:
        return
    os.chmod(path, status.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(path, status.st_uid, status.st_gid)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder after a rename in it) to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _said(exc: sqlite3.Error) -> str:
    return repr(str(exc)[:200])


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    return f"{size / 1024:.0f} KiB"
