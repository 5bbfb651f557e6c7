"""A server started on a database nobody migrated says so, in one line, and waits."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from classroom.db.migrate import Waiting, database_problem, missing_schema
from tests.db.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.processes import Server

pytestmark = pytest.mark.postgres

MIGRATE = "the database schema is not created: run `classroom migrate`"


def test_an_unmigrated_postgresql_database_is_named_as_such_and_the_log_stays_quiet(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "unused.db", tmp_path)
    server.env["CLASSROOM_DATABASE_URL"] = postgres_url
    server.log = tmp_path / "serve.log"
    server.start(wait=False)
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{server.base_url}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 503
        assert answer.json()["reason"] == MIGRATE
        time.sleep(5)  # five heartbeats, two resume attempts
    finally:
        server.stop()
    log = server.log.read_text()
    warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, log  # the heartbeat's and the resume's, once each
    assert all(line.endswith(f"{MIGRATE}; retrying") for line in warnings), log
    assert "SQL" not in log and "Traceback" not in log, log


def test_waiting_says_a_problem_once_a_minute_and_a_new_one_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from sqlalchemy.exc import OperationalError

    missing = OperationalError("SELECT 1", {}, Exception("no such table: heartbeats"))
    refused = OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    assert missing_schema(missing) and not missing_schema(refused)
    assert not missing_schema(ValueError("no such table: x"))  # not the database's word
    assert database_problem(refused) == "the database is unreachable (OperationalError)"
    waiting = Waiting(logging.getLogger("test"), "not yet", every_s=3600)
    with caplog.at_level(logging.WARNING):
        for exc in (missing, missing, missing, refused, refused, missing):
            waiting.on(exc)
    assert [record.getMessage() for record in caplog.records] == [
        f"not yet: {MIGRATE}; retrying",
        "not yet: the database is unreachable (OperationalError); retrying",
        f"not yet: {MIGRATE}; retrying",
    ]
