"""The screens' assets: their version, and how the static files are served.

The **asset version** is a hash of every static file and template, computed once
at start-up. Pages link their CSS and JavaScript as ``/static/…?v=<version>``,
and every ``snapshot`` and ``resumed`` message carries it, so a screen that has
been open since before an upgrade notices the change when it reconnects and
reloads itself (a kiosk display has no one to press reload).

Static files are compressed with gzip when the browser accepts it. A URL with
the current ``?v=`` never changes, so it may be cached for a year; any other
URL (a module imported without ``?v=``, an old version) must be revalidated,
which costs a ``304`` when nothing changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from starlette.datastructures import MutableHeaders, QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from classroom.resources import STATIC

VERSION_LENGTH = 12
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def asset_version(directories: Iterable[Path], salt: str = "") -> str:
    """A short hash of every file under ``directories`` (names and contents), and ``salt``."""
    digest = hashlib.sha256(salt.encode())
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:VERSION_LENGTH]


class CachedStatic:
    """Serve ``directory``: versioned URLs cached for good, the rest revalidated."""

    def __init__(self, directory: Path, version: str) -> None:
        self.version = version
        self.files: ASGIApp = GZipMiddleware(
            StaticFiles(directory=str(directory)), minimum_size=1024, compresslevel=6
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        current = query.get("v") == self.version
        policy = FOREVER if current else REVALIDATE

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                MutableHeaders(scope=message)["cache-control"] = policy
            await send(message)

        try:
            await self.files(scope, receive, send_with_policy)
        except HTTPException as exc:  # a missing file: a plain answer, not a page
            await PlainTextResponse(exc.detail, exc.status_code)(scope, receive, send)


async def favicon(request: Request) -> Response:
    """``/favicon.ico``, which browsers and bookmarks ask for whatever a page links: the
    app's icon (a PNG: every browser takes one under that name)."""
    return FileResponse(
        STATIC / "icons" / "icon-192.png",
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
