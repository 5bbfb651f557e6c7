"""Run Alembic migrations from code (``classroom migrate``, ``serve`` on SQLite)."""

from __future__ import annotations

import logging
import time

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from classroom.resources import MIGRATIONS


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database up to ``revision``. Blocking: call it outside the event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def missing_schema(exc: BaseException) -> bool:
    """Whether ``exc`` says a table is missing: the database was never migrated."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined table
        return True
    message = str(orig)
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def database_problem(exc: BaseException) -> str:
    """What is wrong with the database, in one line for the log: never the SQL."""
    if missing_schema(exc):
        return "the database schema is not created: run `classroom migrate`"
    return f"the database is unreachable ({type(exc).__name__})"


class Waiting:
    """Says, in the log, why a task waits for the database: once, then once a minute
    while the reason stays the same (a loop that retries every second must not fill
    the log)."""

    def __init__(self, logger: logging.Logger, what: str, every_s: float = 60.0) -> None:
        self._log = logger
        self._what = what
        self._every_s = every_s
        self._said = ""
        self._said_at = 0.0

    def on(self, exc: BaseException) -> None:
        problem = database_problem(exc)
        now = time.monotonic()
        if problem != self._said or now - self._said_at >= self._every_s:
            self._log.warning("%s: %s; retrying", self._what, problem)
            self._said, self._said_at = problem, now
