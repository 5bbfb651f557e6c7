"""The ``classroom`` command: serve, migrate, create-instructor, routine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from classroom import __version__, logs
from classroom.config import ConfigError, Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from classroom.db.routines import RoutineSource
    from classroom.domain.timeline import Timeline
    from classroom.routine_files import LoadedRoutine

log = logging.getLogger("classroom")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classroom",
        description="A self-hosted live-session server for group fitness classes.",
    )
    parser.add_argument("--version", action="version", version=f"classroom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--demo", action="store_true", help="create demo data and print its links")
    serve.add_argument("--host", help="address to listen on (CLASSROOM_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (CLASSROOM_PORT, 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes to serve with, one per core (needs Redis and PostgreSQL)",
    )

    commands.add_parser("migrate", help="bring the database schema up to date")

    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database to PATH, while the server runs",
        description="Copy the SQLite database to PATH as one consistent state, while the"
        " server runs and classes write to it, and check the copy. For PostgreSQL use"
        " pg_dump (docs/deployment.md, Backups).",
    )
    backup.add_argument("path", metavar="PATH", help="the file to write (it must not exist)")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore = commands.add_parser(
        "restore",
        help="make the backup at PATH the SQLite database (with the server stopped)",
        description="Check the backup at PATH and make it the SQLite database, keeping the"
        " one it replaces as <database>.before-restore. The server must be stopped; it"
        " brings an older backup's schema up to date when it starts.",
    )
    restore.add_argument("path", metavar="PATH", help="a file `classroom backup` wrote")

    create = commands.add_parser("create-instructor", help="add an instructor account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="", help="the name shown in the console")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    routine = commands.add_parser("routine", help="check or import routine files")
    routine_commands = routine.add_subparsers(
        dest="routine_command", metavar="ACTION", required=True
    )
    check = routine_commands.add_parser(
        "check", help="validate a YAML, JSON or .zwo routine and print its timeline"
    )
    check.add_argument("path")
    check.add_argument("--json", action="store_true", help="print the timeline as JSON")
    store = routine_commands.add_parser(
        "import",
        help="store a routine (a file, or built-in ones) as an instructor's own",
        description="Store a routine file, or a copy of built-in routines, as the"
        " instructor's own, to use or edit. Every instructor sees the built-in routines"
        " already (classroom migrate adds them); a copy is for changing one.",
    )
    which = store.add_mutually_exclusive_group(required=True)
    which.add_argument("path", nargs="?", help="a YAML, JSON or .zwo routine file")
    which.add_argument("--builtin", metavar="NAME", help="a built-in routine, by name")
    which.add_argument("--all", action="store_true", help="every built-in routine")
    store.add_argument("--instructor", required=True, metavar="EMAIL")

    bridge = commands.add_parser(
        "hr-bridge",
        help="send the heart-rate straps in range to a room",
        description="Listen to every Bluetooth heart-rate strap in range and send their"
        " readings to a room on the classroom server, with a bridge token an instructor"
        " created for the room. Give the token in CLASSROOM_BRIDGE_TOKEN (preferred:"
        " other users of the machine can read command lines) or with --token.",
    )
    bridge.add_argument(
        "--server",
        required=True,
        metavar="URL",
        help="the server, e.g. https://classroom.example.com",
    )
    bridge.add_argument(
        "--token", help="the room's bridge token (better: the CLASSROOM_BRIDGE_TOKEN variable)"
    )
    bridge.add_argument(
        "--simulate", type=int, metavar="N", help="send N simulated straps instead of real ones"
    )
    bridge.add_argument("--adapter", metavar="NAME", help="the Bluetooth adapter, e.g. hci0")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()  # text until the settings say otherwise (classroom/logs.py)
    if args.command == "hr-bridge":  # runs in the studio, without the server's settings
        return hr_bridge(args.server, args.token, args.simulate, args.adapter)
    try:
        settings = Settings.from_env(
            demo=getattr(args, "demo", False),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            require_secret=args.command == "serve",
        )
    except ConfigError as exc:
        print(f"classroom: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, logs.secrets_of(settings))
    if args.command == "serve":
        from classroom.backup import BackupError, lock_for_serving

        try:  # held while the server runs: `classroom restore` must wait for it to stop
            lock = lock_for_serving(settings)
        except BackupError as exc:
            print(f"classroom: {exc}", file=sys.stderr)
            return 1
        with lock:
            return serve(settings, args.workers)
    if args.command in ("backup", "restore"):
        return backup_or_restore(settings, args)
    if args.command == "migrate":
        prepare_database(settings)
        print("classroom: the database schema is up to date")
        return 0
    if args.command == "create-instructor":
        return create_instructor(settings, args.email, args.name, args.password_stdin)
    if args.command == "routine" and args.routine_command == "check":
        return check_routine(args.path, as_json=args.json)
    if args.command == "routine" and args.routine_command == "import":
        if args.path is None:
            return import_builtin(settings, args.builtin, args.instructor)
        return import_routine(settings, args.path, args.instructor)
    raise AssertionError(args.command)  # argparse only lets known commands through


def prepare_database(settings: Settings) -> None:
    """Bring the schema up to date, and the built-in routines with it."""
    from classroom.db.migrate import upgrade
    from classroom.db.routines import seed_library

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    asyncio.run(seed_library(settings.database_url))


def serve(settings: Settings, workers: int = 1) -> int:
    import uvicorn

    from classroom.hub.admission import raise_descriptor_limit, socket_budget

    problem = uvicorn_problem()
    if problem is not None:
        print(f"classroom: {problem}", file=sys.stderr)
        return 1
    from classroom.hub.protocol import SERVER_OPTIONS

    problem = workers_problem(settings, workers)
    if problem is not None:
        print(f"classroom: {problem}", file=sys.stderr)
        return 2
    # Every socket is a file descriptor: take all the system allows, and keep a
    # reserve of them for the database and the logs (classroom/hub/admission.py).
    descriptors, _ = raise_descriptor_limit()
    problem = broker_problem(settings)
    if problem is None and settings.broker_url != "memory://":
        problem = joining_problem(settings)
    if problem is not None:
        print(f"classroom: {problem}", file=sys.stderr)
        return 1
    if settings.is_sqlite:
        prepare_database(settings)
    if settings.demo:
        from classroom.demo import prepare_demo

        demo = asyncio.run(prepare_demo(settings))
        for line in demo.lines:
            print(line, flush=True)
        settings = dataclasses.replace(settings, demo_receiver_token=demo.receiver_token)
    options = {
        "host": settings.host,
        "port": settings.port,
        **SERVER_OPTIONS,
        "ws_ping_interval": 20.0,  # closes half-open sockets; browsers answer pings themselves
        "ws_ping_timeout": 20.0,
        "proxy_headers": True,
        "limit_concurrency": socket_budget(descriptors),  # past it, HTTP requests get a 503
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "log_level": "info",
        "log_config": None,  # uvicorn's loggers go through ours (classroom/logs.py)
    }
    if workers > 1:  # each worker reads the same settings from the environment
        os.environ.update(
            CLASSROOM_HOST=settings.host,
            CLASSROOM_PORT=str(settings.port),
            CLASSROOM_WORKERS=str(workers),  # so that /metrics gathers every worker's
        )
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.run("classroom.cli:worker_app", factory=True, workers=workers, **options)
        return 0
    app = _prepared_app(settings)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: uvicorn has shut down cleanly
        uvicorn.Server(uvicorn.Config(app, **options)).run()
    return 0


def _prepared_app(settings: Settings) -> Starlette:
    """The app, with this process's garbage collection set up for serving."""
    from classroom.live import collector
    from classroom.web.app import create_app

    collector.manage()  # full collections between classes, not during them
    return create_app(settings)


def worker_app() -> Starlette:
    """One worker of ``classroom serve --workers N`` (a process uvicorn started)."""
    problem = uvicorn_problem()
    if problem is not None:  # only when started by hand: `classroom serve` checks first
        print(f"classroom: {problem}", file=sys.stderr)
        raise SystemExit(1)
    settings = Settings.from_env(require_secret=True)
    logs.configure(settings.log_format, logs.secrets_of(settings))
    workers = int(os.environ.get("CLASSROOM_WORKERS", "1"))
    return _prepared_app(dataclasses.replace(settings, workers=workers))


def uvicorn_problem() -> str | None:
    """Why the installed uvicorn can't serve classroom, in one line; None if it can.

    :mod:`classroom.hub.protocol` reaches into uvicorn's internals, so before
    anything else it checks that the installed uvicorn is one it has been
    tested with, and refuses to import with any other, saying why.
    """
    try:
        import classroom.hub.protocol  # noqa: F401
    except ImportError as exc:
        if exc.name != "uvicorn":  # a real import error: let its traceback show
            raise
        return str(exc)
    return None


def workers_problem(settings: Settings, workers: int) -> str | None:
    """Why ``--workers`` can't be used with these settings, in one line; None if it can."""
    if workers < 1:
        return "--workers must be 1 or more"
    if workers == 1:
        return None
    if settings.broker_url == "memory://":
        return "--workers needs CLASSROOM_REDIS_URL: the workers share class events through Redis"
    if settings.is_sqlite:
        return (
            "--workers needs PostgreSQL (CLASSROOM_DATABASE_URL=postgresql+asyncpg://...):"
            " one SQLite file is written by one process"
        )
    return None


def joining_problem(settings: Settings) -> str | None:
    """Why this process can't join the others of its deployment (schema, secret key)."""
    import time

    from classroom.cluster_checks import cluster_problem
    from classroom.db.engine import make_engine
    from classroom.db.migrate import head_revision

    async def check() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            return await cluster_problem(
                engine,
                head=head_revision(),
                secret_key=settings.secret_key,
                now_ms=int(time.time() * 1000),
            )
        except Exception as exc:  # the database is unreachable: /readyz says so, and why
            log.warning("could not check the other processes: %s", type(exc).__name__)
            return None
        finally:
            await engine.dispose()

    if settings.is_sqlite:
        prepare_database(settings)  # the schema is brought up to date on SQLite
    return asyncio.run(check())


def broker_problem(settings: Settings) -> str | None:
    """Why the broker can't be used (Redis unreachable, say), in one line; None if it can."""
    from classroom.broker import BrokerError, broker_for

    async def connect() -> None:
        broker = broker_for(settings.broker_url, prefix=settings.redis_prefix)
        try:
            await broker.start()
        finally:
            await broker.close()

    try:
        asyncio.run(connect())
    except BrokerError as exc:
        return str(exc)
    return None


def create_instructor(settings: Settings, email: str, name: str, from_stdin: bool) -> int:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("classroom: the passwords don't match", file=sys.stderr)
            return 1
    logs.keep_secret(password)

    async def run() -> None:
        from classroom.db.engine import make_engine, make_sessionmaker
        from classroom.web.auth import create_instructor as create

        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine).begin() as db:
                await create(db, email, password, name)
        finally:
            await engine.dispose()

    if settings.is_sqlite:
        prepare_database(settings)
    try:
        asyncio.run(run())
    except ValueError as exc:
        print(f"classroom: {exc}", file=sys.stderr)
        return 1
    print(f"classroom: created instructor {email.strip().lower()}")
    return 0


def _load_timeline(path: str) -> tuple[LoadedRoutine, Timeline] | None:
    """Read and compile a routine file; print every problem and return None if it fails."""
    from classroom.domain.words import counted
    from classroom.routine_files import check_routine_file

    checked = check_routine_file(path)
    if checked.loaded is not None and checked.timeline is not None and checked.ok:
        return checked.loaded, checked.timeline
    if len(checked.problems) == 1 and not checked.problems[0].path and checked.loaded:
        print(f"{path}: {checked.problems[0].message}", file=sys.stderr)  # it can't compile
        return None
    print(f"{path}: {counted(len(checked.problems), 'problem')}", file=sys.stderr)
    for problem in checked.problems:
        print(f"  {problem}", file=sys.stderr)
    return None


def check_routine(path: str, *, as_json: bool) -> int:
    from classroom.routine_files import timeline_data, timeline_text

    result = _load_timeline(path)
    if result is None:
        return 1
    loaded, timeline = result
    for warning in loaded.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    if as_json:
        print(json.dumps(timeline_data(timeline), ensure_ascii=False, allow_nan=False))
    else:
        print(timeline_text(timeline), end="")
    return 0


def import_routine(settings: Settings, path: str, email: str) -> int:
    from classroom.db.routines import RoutineSource
    from classroom.routine_files import stored_source

    result = _load_timeline(path)
    if result is None:
        return 1
    loaded, _ = result
    source_format, source = stored_source(loaded, Path(path).read_bytes())

    title = loaded.routine.title
    stored = _store_routines(settings, email, [RoutineSource("", title, source_format, source)])
    if stored is None:
        return 1
    for warning in loaded.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(f"classroom: stored {title!r} as {stored[0]}")
    return 0


def import_builtin(settings: Settings, name: str | None, email: str) -> int:
    """Copy one built-in routine (``name``), or all of them, into an instructor's own."""
    from classroom.db.routines import library_sources

    sources = library_sources()
    if name is not None:
        sources = [source for source in sources if source.slug == name]
        if not sources:
            known = ", ".join(source.slug for source in library_sources())
            print(
                f"classroom: there is no built-in routine {name!r} (there are {known})",
                file=sys.stderr,
            )
            return 1
    stored = _store_routines(settings, email, sources)
    if stored is None:
        return 1
    for source, slug in zip(sources, stored, strict=True):
        print(f"classroom: stored {source.title!r} as {slug}")
    return 0


def _store_routines(
    settings: Settings, email: str, sources: list[RoutineSource]
) -> list[str] | None:
    """Store ``sources`` as the instructor's own routines; their slugs, or None (said why)."""

    async def run() -> list[str] | None:
        from sqlalchemy import select

        from classroom.db.engine import make_engine, make_sessionmaker
        from classroom.db.models import Instructor
        from classroom.db.routines import store_routine
        from classroom.web.auth import normalize_email

        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine).begin() as db:
                instructor = await db.scalar(
                    select(Instructor).where(Instructor.email == normalize_email(email))
                )
                if instructor is None:
                    return None
                slugs = []
                for source in sources:
                    row = await store_routine(
                        db, instructor.id, source.title, source.source_format, source.source
                    )
                    slugs.append(row.slug)
                return slugs
        finally:
            await engine.dispose()

    if settings.is_sqlite:
        prepare_database(settings)
    slugs = asyncio.run(run())
    if slugs is None:
        print(f"classroom: no instructor has the email {email}", file=sys.stderr)
    return slugs


def backup_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    """``classroom backup PATH`` or ``classroom restore PATH``: one line either way."""
    from classroom.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            done = backup(settings, Path(args.path), force=args.force).summary()
        else:
            done = restore(settings, Path(args.path)).summary()
    except BackupError as exc:
        print(f"classroom: {exc}", file=sys.stderr)
        return 1
    print(f"classroom: {done}")
    return 0


def hr_bridge(server: str, token: str | None, simulate: int | None, adapter: str | None) -> int:
    """Relay the heart-rate straps in range (or simulated ones) to the server's room."""
    from classroom.bridge import BleakStraps, BridgeError, SimulatedStraps, run_bridge

    token = (token or os.environ.get("CLASSROOM_BRIDGE_TOKEN", "")).strip()
    logs.keep_secret(token)
    if not token:
        print(
            "classroom: hr-bridge needs the room's bridge token:"
            " set CLASSROOM_BRIDGE_TOKEN (or give --token)",
            file=sys.stderr,
        )
        return 2
    if simulate is not None and simulate < 1:
        print("classroom: --simulate must be 1 or more", file=sys.stderr)
        return 2
    source = SimulatedStraps(simulate) if simulate is not None else BleakStraps(adapter)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: the bridge has stopped
            asyncio.run(run_bridge(server, token, source))
    except BridgeError as exc:
        print(f"classroom: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
