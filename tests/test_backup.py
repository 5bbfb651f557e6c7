"""``classroom backup`` and ``classroom restore``: a consistent copy while a class scores,
and a restore that refuses anything but an intact classroom database, with the server down.

The main test runs the real server on a SQLite file, with phones logging reps over
real WebSockets, and runs ``classroom backup`` as a process of its own while they
do. Every score acknowledged before the backup began must come back from the
restored copy, and the copy must hold the database as it was at one instant.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import websockets

from classroom import backup as backups
from classroom import cli
from classroom.db.migrate import upgrade
from classroom.db.routines import RoutineSource
from tests.helpers import command, join, join_code, open_class, sign_in
from tests.processes import Server, prepared

PHONES = 6
PACE_S = 0.15  # between one phone's inputs: under the server's 10 inputs a second
ROUTINE = RoutineSource(
    "reps",
    "Reps for a while",
    "yaml",
    """title: Reps for a while
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Burpees
    duration: 600
    score: reps
""",
)


def classroom(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``classroom ARGS`` as a process of its own, with ``env``'s settings."""
    return subprocess.run(
        [sys.executable, "-m", "classroom.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_env(data: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment of a deployment whose data directory is ``data``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    env["CLASSROOM_DATA_DIR"] = str(data)
    if database_url is not None:
        env["CLASSROOM_DATABASE_URL"] = database_url
    return env


def stored_scores(db: Path) -> dict[int, tuple[str, str, int]]:
    """The scores table: id -> (nickname, client id, value)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT s.id, p.nickname, s.client_id, s.value FROM scores s"
            " JOIN participants p ON p.id = s.participant_id"
        ).fetchall()
    connection.close()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text.removesuffix("\n")


# -- a backup while a class scores ---------------------------------------------------------


@dataclass
class Phone:
    nickname: str
    cookie: str
    acked_before_backup: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)


@dataclass
class Scoring:
    """Phones logging reps: what the test tells them, and hears from them."""

    phones: list[Phone]
    backup_began: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    acked: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until_each_has(self, acks: int) -> None:
        async with asyncio.timeout(30), self.acked:
            await self.acked.wait_for(lambda: min(len(p.acked) for p in self.phones) >= acks)


async def keep_scoring(url: str, phone: Phone, scoring: Scoring) -> None:
    """Log reps one after another until told to stop; note each input's ack as it comes.

    An input is acknowledged only once it is committed, so one acknowledged before
    ``backup_began`` was set is in the database before the backup process started.
    """
    async with websockets.connect(url, additional_headers={"Cookie": phone.cookie}) as ws:
        while json.loads(await ws.recv())["type"] != "snapshot":
            pass
        k = 0
        while not scoring.stop.is_set():
            client_id = f"{phone.nickname}-{k}"
            score = {"type": "score", "id": client_id, "segment": 0, "kind": "reps"}
            await ws.send(json.dumps(score | {"value": 1 + k % 5}))
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await ws.recv())
                    assert message["type"] != "error", message
                    if message["type"] == "ack" and message["id"] == client_id:
                        break
            if not scoring.backup_began.is_set():
                phone.acked_before_backup.append(client_id)
            phone.acked.append(client_id)
            async with scoring.acked:
                scoring.acked.notify_all()
            k += 1
            await asyncio.sleep(PACE_S)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "live").mkdir()
    server = prepared(tmp_path / "live", ROUTINE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_backup_taken_while_phones_score_holds_every_acknowledged_score(
    live: Server, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        phones = []
        for i in range(PHONES):
            async with httpx.AsyncClient(base_url=live.base_url) as browser:
                assert (await join(browser, code, f"phone{i}")).status_code == 303
                cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
                phones.append(Phone(f"phone{i}", cookie))
        assert (await command(console, class_id, "start")).status_code == 200

    url = f"ws://127.0.0.1:{live.port}/ws/classes/{class_id}"
    scoring = Scoring(phones)
    tasks = [asyncio.create_task(keep_scoring(url, phone, scoring)) for phone in phones]
    await scoring.until_each_has(5)

    copy = tmp_path / "backups" / "class.db"
    copy.parent.mkdir()
    scoring.backup_began.set()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "classroom.cli", "backup", str(copy)),
        env=live.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    during = {p.nickname: len(p.acked) for p in phones}
    await scoring.until_each_has(max(during.values()) + 3)  # the class scores on after it
    scoring.stop.set()
    await asyncio.gather(*tasks)

    assert process.returncode == 0, err.decode()
    live_db = Path(live.env["CLASSROOM_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
    assert one_line(out.decode()).startswith(f"classroom: backed up {live_db} to {copy} (")
    assert one_line(out.decode()).endswith(f", schema {backups.schema_revisions()[-1]})")
    assert sum(during.values()) > sum(len(p.acked_before_backup) for p in phones)  # it ran

    fresh = tmp_path / "fresh"
    restored = classroom("restore", str(copy), env=settings_env(fresh))
    assert restored.returncode == 0, restored.stderr
    assert one_line(restored.stdout) == (
        f"classroom: restored {copy} (schema {backups.schema_revisions()[-1]}) as"
        f" {fresh / 'classroom.db'}; there was no database before; its schema is up to date"
    )

    now = stored_scores(live_db)
    then = stored_scores(fresh / "classroom.db")
    # Every score acknowledged before the backup began is in it ...
    kept = {client_id for _, client_id, _ in then.values()}
    for phone in phones:
        assert set(phone.acked_before_backup) <= kept
    # ... and it is the database as it was at one instant: scores are numbered as they
    # are committed, so that is every score up to one number and none after it.
    assert then == {id: row for id, row in now.items() if id <= max(then)}
    assert len(then) < len(now)  # scores logged after the backup are not in it
    for phone in phones:  # each phone's inputs, in the order it sent them, up to some point
        mine = [client_id for nickname, client_id, _ in then.values() if nickname == phone.nickname]
        assert mine == phone.acked[: len(mine)]


# -- the stepped copy ------------------------------------------------------------------------


def test_a_stepped_copy_ends_while_a_writer_commits_between_every_step(tmp_path: Path) -> None:
    source_path = tmp_path / "busy.db"
    with sqlite3.connect(source_path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE reps (id INTEGER PRIMARY KEY, note TEXT)")
        db.executemany("INSERT INTO reps (note) VALUES (?)", [("x" * 400,)] * 2_000)
    db.close()
    copied = threading.Event()

    def write() -> None:  # commits as fast as it can until the copy is done (or 20 s)
        with sqlite3.connect(source_path, isolation_level=None) as db:
            db.execute("PRAGMA busy_timeout=5000")
            for _ in range(200_000):
                if copied.wait(0.001):
                    break
                db.execute("INSERT INTO reps (note) VALUES ('y')")
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    source = sqlite3.connect(source_path, check_same_thread=False)
    target = sqlite3.connect(tmp_path / "copy.db", check_same_thread=False)
    before = source.execute("SELECT count(*) FROM reps").fetchone()[0]
    copying = threading.Thread(
        target=backups.copy_database, args=(source, target), kwargs={"pages": 4}
    )
    copying.start()
    copying.join(20)
    ended_while_writing = not copying.is_alive()
    copied.set()  # the writer stops; a copy still going then ends too
    writer.join(30)
    copying.join(60)
    try:
        assert ended_while_writing, "the copy never ended while the writer wrote"
        assert backups.integrity_problem(target) is None
        ids = [row[0] for row in target.execute("SELECT id FROM reps ORDER BY id")]
        assert ids == list(range(1, len(ids) + 1)) and len(ids) >= before
    finally:
        source.close()
        target.close()


# -- restore while a server runs -------------------------------------------------------------


def routine_titles(db: Path) -> set[str]:
    with sqlite3.connect(db) as connection:
        titles = {row[0] for row in connection.execute("SELECT title FROM routines")}
    connection.close()
    return titles


def other_backup(tmp_path: Path) -> Path:
    """A backup of another deployment's database, which has a routine called "Elsewhere"."""
    other = tmp_path / "other"
    other.mkdir()
    prepared(other, RoutineSource("elsewhere", "Elsewhere", "yaml", ROUTINE.source))
    copy = tmp_path / "elsewhere.db"
    assert classroom("backup", str(copy), env=settings_env(other)).returncode == 0
    return copy


def test_restore_is_refused_while_a_server_runs_on_the_database(
    live: Server, tmp_path: Path
) -> None:
    copy = other_backup(tmp_path)
    data = tmp_path / "live"
    database = data / "classroom.db"
    files = sorted(path.name for path in data.iterdir())

    refused = classroom("restore", str(copy), env=live.env)

    assert refused.returncode == 1
    assert one_line(refused.stderr) == (
        f"classroom: {backups.SERVER_RUNS.format(database=database)}"
    )
    assert refused.stdout == ""
    assert sorted(path.name for path in data.iterdir()) == files
    assert "Elsewhere" not in routine_titles(database)
    assert httpx.get(f"{live.base_url}/readyz").status_code == 200

    live.stop()
    done = classroom("restore", str(copy), env=live.env)
    assert done.returncode == 0, done.stderr
    assert f"the previous database is kept as {database}.before-restore;" in done.stdout
    assert "Elsewhere" in routine_titles(database)
    assert "Elsewhere" not in routine_titles(data / "classroom.db.before-restore")
    live.start()  # and the restored database serves


def crashed(data: Path) -> Path:
    """A database whose server was killed mid-class: its last commit is still in the WAL.

    That commit renames the routine "Quick test" to "Last words".
    """
    data.mkdir()
    prepared(data)
    database = data / "classroom.db"
    crash = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode=WAL')\n"
        "db.execute('PRAGMA wal_autocheckpoint=0')\n"
        "db.execute(\"UPDATE routines SET title = 'Last words' WHERE title = 'Quick test'\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(database)], check=True, timeout=30)
    assert Path(f"{database}-wal").stat().st_size > 0
    return database


def test_a_restore_over_a_crashed_servers_database_keeps_its_last_commits_aside(
    tmp_path: Path,
) -> None:
    copy = other_backup(tmp_path)
    database = crashed(tmp_path / "crashed")
    database.chmod(0o640)

    done = classroom("restore", str(copy), env=settings_env(database.parent))

    assert done.returncode == 0, done.stderr
    assert database.stat().st_mode & 0o777 == 0o640  # as the database it replaced
    titles = routine_titles(database)
    assert "Elsewhere" in titles and "Last words" not in titles
    kept = database.with_name("classroom.db.before-restore")
    assert "Last words" in routine_titles(kept) and "Elsewhere" not in routine_titles(kept)
    for db in (database, kept):
        with sqlite3.connect(db) as connection:
            assert backups.integrity_problem(connection) is None
        connection.close()


def test_a_restore_over_a_damaged_database_keeps_it_as_it_was_and_leaves_its_wal_out(
    tmp_path: Path,
) -> None:
    copy = other_backup(tmp_path)
    database = crashed(tmp_path / "crashed")
    damaged = b"not a database any more" + database.read_bytes()[23:]
    database.write_bytes(damaged)

    done = classroom("restore", str(copy), env=settings_env(database.parent))

    assert done.returncode == 0, done.stderr
    assert database.with_name("classroom.db.before-restore").read_bytes() == damaged
    with sqlite3.connect(database) as connection:  # the old WAL must not reach the new file
        assert backups.integrity_problem(connection) is None
    connection.close()
    titles = routine_titles(database)
    assert "Elsewhere" in titles and "Last words" not in titles


def test_serve_refuses_to_start_while_another_process_holds_the_database(
    tmp_path: Path,
) -> None:
    server = prepared(tmp_path)
    database = tmp_path / "classroom.db"
    with backups.database_lock(database, "held"):
        done = classroom("serve", "--port", "0", env=server.env)
    assert done.returncode == 1
    assert done.stderr == f"classroom: {backups.IN_USE.format(database=database)}\n"


# -- restore refuses what isn't a classroom backup ------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stopped deployment's data directory (with its database), as the settings say."""
    data = tmp_path / "data"
    data.mkdir()
    prepared(data)
    for name in [name for name in os.environ if name.startswith("CLASSROOM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(data))
    return data


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def a_backup(deployment: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "good.db"
    assert cli.main(["backup", str(copy)]) == 0
    return copy


def foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()


def at_revision(revision: str):  # type: ignore[no-untyped-def]
    def change(path: Path) -> None:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        db.close()

    return change


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def scribbled(path: Path) -> None:
    """Overwrite the last pages (the schema version, on its own page, still reads)."""
    with sqlite3.connect(path) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        (version_page,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'alembic_version'"
        ).fetchone()
    db.close()
    data = bytearray(path.read_bytes())
    assert version_page * page < len(data) - 3 * page
    data[-3 * page :] = bytes(range(256)) * (3 * page // 256)
    path.write_bytes(bytes(data))


def newer() -> str:
    return f"{int(backups.schema_revisions()[-1]) + 1:04d}"


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (lambda p: p.write_text("name,reps\nana,12\n"), backups.NOT_A_DATABASE),
        (truncated, backups.DAMAGED.split("{detail}")[0]),
        (scribbled, backups.DAMAGED.split("{detail}")[0]),
        (lambda p: (p.unlink(), foreign(p)), backups.NOT_CLASSROOM),
        (at_revision("abc123"), backups.UNKNOWN_REVISION.replace("{revision!r}", "'abc123'")),
        (lambda p: at_revision(newer())(p), backups.NEWER_SCHEMA),
        (lambda p: p.unlink(), backups.NO_FILE),
    ],
    ids=["csv", "truncated", "scribbled", "foreign", "unknown-schema", "newer-schema", "missing"],
)
def test_restore_refuses_what_is_not_an_intact_classroom_backup(
    deployment: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spoil,  # type: ignore[no-untyped-def]
    says: str,
) -> None:
    copy = a_backup(deployment, tmp_path)
    spoil(copy)
    before = contents(deployment)
    capsys.readouterr()

    assert cli.main(["restore", str(copy)]) == 1

    out, err = capsys.readouterr()
    expected = says.format(path=copy, revision=newer(), head=backups.schema_revisions()[-1])
    assert out == ""
    assert one_line(err).startswith(f"classroom: {expected}")
    assert contents(deployment) == before  # nothing changed, nothing left behind


def test_restore_of_an_older_schema_says_serve_brings_it_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    revisions = backups.schema_revisions()
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    old.mkdir()
    upgrade(f"sqlite+aiosqlite:///{old / 'classroom.db'}", revisions[-2])
    for name in [name for name in os.environ if name.startswith("CLASSROOM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(old))
    assert cli.main(["backup", str(tmp_path / "old.db")]) == 0
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(fresh))
    capsys.readouterr()

    assert cli.main(["restore", str(tmp_path / "old.db")]) == 0

    assert one_line(capsys.readouterr().out) == (
        f"classroom: restored {tmp_path / 'old.db'} (schema {revisions[-2]}) as"
        f" {fresh / 'classroom.db'}; there was no database before;"
        f" `classroom serve` brings its schema up to {revisions[-1]} when it starts"
    )
    assert cli.main(["migrate"]) == 0  # what serve does first on SQLite
    with sqlite3.connect(fresh / "classroom.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (revisions[-1],)
    db.close()


def test_restore_with_postgresql_settings_points_to_pg_restore(
    deployment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    copy = a_backup(deployment, tmp_path)
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/gym")
    capsys.readouterr()
    assert cli.main(["restore", str(copy)]) == 1
    assert capsys.readouterr().err == f"classroom: {backups.NOT_SQLITE_RESTORE}\n"


# -- backup refusals -------------------------------------------------------------------------


def test_a_backup_never_replaces_a_file_unless_forced(
    deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "monday.db"
    existing.write_bytes(b"last week's backup")
    capsys.readouterr()

    assert cli.main(["backup", str(existing)]) == 1
    assert capsys.readouterr().err == (
        f"classroom: {backups.TARGET_EXISTS.format(path=existing)}\n"
    )
    assert existing.read_bytes() == b"last week's backup"

    assert cli.main(["backup", "--force", str(existing)]) == 0
    assert existing.read_bytes().startswith(backups.SQLITE_HEADER)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_a_backup_with_postgresql_settings_points_to_pg_dump(
    deployment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/gym")
    assert cli.main(["backup", str(tmp_path / "gym.db")]) == 1
    err = capsys.readouterr().err
    assert err == f"classroom: {backups.NOT_SQLITE_BACKUP}\n"
    assert "pg_dump" in err and "docs/deployment.md" in err
    assert not (tmp_path / "gym.db").exists()


def test_a_backup_of_a_database_that_does_not_exist_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith("CLASSROOM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(tmp_path / "data"))
    database = tmp_path / "data" / "classroom.db"
    assert cli.main(["backup", str(tmp_path / "x.db")]) == 1
    assert capsys.readouterr().err == (
        f"classroom: {backups.NO_DATABASE.format(database=database)}\n"
    )
    assert not database.exists() and not (tmp_path / "x.db").exists()
