"""The ``classroom`` command: serve, migrate, create-instructor, routine."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from classroom import __version__
from classroom.config import ConfigError, Settings

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

    commands.add_parser("migrate", help="bring the database schema up to date")

    create = commands.add_parser("create-instructor", help="add an instructor account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="", help="the name shown in the console")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
    if args.command == "serve":
        return serve(settings)
    if args.command == "migrate":
        prepare_database(settings)
        print("classroom: the database schema is up to date")
        return 0
    if args.command == "create-instructor":
        return create_instructor(settings, args.email, args.name, args.password_stdin)
    raise AssertionError(args.command)  # argparse only lets known commands through


def prepare_database(settings: Settings) -> None:
    from classroom.db.migrate import upgrade

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


def serve(settings: Settings) -> int:
    import uvicorn

    from classroom.web.app import create_app

    if settings.is_sqlite:
        prepare_database(settings)
    if settings.demo:
        from classroom.demo import prepare_demo

        for line in asyncio.run(prepare_demo(settings)):
            print(line, flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        proxy_headers=True,
        log_level="info",
    )
    return 0


def create_instructor(settings: Settings, email: str, name: str, from_stdin: bool) -> int:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("classroom: the passwords don't match", file=sys.stderr)
            return 1

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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
