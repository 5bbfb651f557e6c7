"""``/metrics``: the process's figures (:mod:`classroom.metrics`), for whom the settings allow.

``CLASSROOM_METRICS`` (see :class:`~classroom.config.MetricsAccess`) chooses:

off (the default)
    ``/metrics`` answers 404, as any page that doesn't exist.
token
    ``/metrics`` on the server's own port, for requests that carry
    ``Authorization: Bearer <CLASSROOM_METRICS_TOKEN>``; any other gets 401 and
    no figures.
an address (``HOST:PORT``)
    ``/metrics`` on a listener of its own (:class:`MetricsListener`), such as a
    loopback or private address the scraper reaches and phones don't; the
    server's port answers 404. The token, if one is set, is asked for there too.

A scrape is a GET: the CSRF middleware leaves it alone, so it never sets a
cookie, and it is never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from classroom.config import MetricsAccess
from classroom.metrics import CONTENT_TYPE, Metrics
from classroom.web.tokens import bearer_token

log = logging.getLogger(__name__)

NEEDS_TOKEN = "Reading /metrics needs a valid bearer token (CLASSROOM_METRICS_TOKEN)."
NOT_FOUND = "Not Found"
REQUEST_TIMEOUT_S = 10.0
MAX_REQUEST_BYTES = 8192
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to a scrape, whichever listener it came to."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


#: This process's figures, or (with ``serve --workers N``) every worker's.
Figures = Callable[[], Awaitable[bytes]]


def figures_of(metrics: Metrics) -> Figures:
    async def figures() -> bytes:
        return metrics.exposition()

    return figures


async def answer(figures: Figures, access: MetricsAccess, authorization: str | None) -> Answer:
    """The figures, or 401 and none when a token is asked for and not given."""
    if access.token and not bearer_matches(authorization, access.token):
        return Answer(
            401,
            NEEDS_TOKEN.encode(),
            (
                ("content-type", _TEXT),
                ("www-authenticate", 'Bearer realm="metrics"'),
                ("cache-control", "no-store"),
            ),
        )
    return Answer(
        200, await figures(), (("content-type", CONTENT_TYPE), ("cache-control", "no-store"))
    )


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as a bearer token."""
    credentials = bearer_token(authorization)
    return bool(credentials) and hmac.compare_digest(credentials.encode(), token.encode())


async def metrics_page(request: Request) -> Response:
    """``GET /metrics`` on the server's own port."""
    access: MetricsAccess = request.app.state.settings.metrics
    if not access.enabled or access.listen is not None:
        return PlainTextResponse(NOT_FOUND, 404, headers={"cache-control": "no-store"})
    scrape = await answer(request.app.state.figures, access, request.headers.get("authorization"))
    return Response(scrape.body, scrape.status, headers=dict(scrape.headers))


class MetricsListener:
    """``/metrics`` on an address of its own: a small HTTP/1.1 server on the event loop.

    It answers ``GET /metrics`` (and ``HEAD``), one request a connection, and
    reads the figures on the loop, as the server's own port would; anything
    else is 404 or 405, and a request that is malformed, too large or too slow
    is closed.
    """

    def __init__(self, figures: Figures, access: MetricsAccess, *, shared: bool = False) -> None:
        if access.listen is None:
            raise ValueError("a metrics listener needs an address to listen on")
        self._figures = figures
        self._access = access
        self._shared = shared  # several workers listen on the address (SO_REUSEPORT)
        self._server: asyncio.Server | None = None
        self.host, self.port = access.listen

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_port=self._shared or None
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                writer.write(await self._respond(reader))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> bytes:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        try:
            event = connection.next_event()
            while event is h11.NEED_DATA:
                connection.receive_data(await reader.read(4096))
                event = connection.next_event()
        except h11.RemoteProtocolError:
            return b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        if not isinstance(event, h11.Request):
            return b""  # the client went away
        method = event.method
        path = event.target.partition(b"?")[0]
        if method not in (b"GET", b"HEAD"):
            scrape = Answer(405, b"Method Not Allowed", (("content-type", _TEXT), ("allow", "GET")))
        elif path != b"/metrics":
            scrape = Answer(404, NOT_FOUND.encode(), (("content-type", _TEXT),))
        else:
            authorization = next(
                (
                    value.decode("latin-1")
                    for name, value in event.headers
                    if name == b"authorization"
                ),
                None,
            )
            scrape = await answer(self._figures, self._access, authorization)
        headers = [
            *scrape.headers,
            ("content-length", str(len(scrape.body))),
            ("x-content-type-options", "nosniff"),
            ("connection", "close"),
        ]
        out = connection.send(h11.Response(status_code=scrape.status, headers=headers)) or b""
        if method != b"HEAD":
            out += connection.send(h11.Data(data=scrape.body)) or b""
        out += connection.send(h11.EndOfMessage()) or b""
        return out
