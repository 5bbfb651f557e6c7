"""A request id for every HTTP request and WebSocket, in the log and in the answer.

The id comes from the client's (or the proxy's) ``X-Request-ID`` header when that
is well formed: 1 to 64 letters, digits, ``.``, ``_`` or ``-``. Otherwise, or
without one, the server makes one. It is set in
:data:`classroom.logs.current_request` for the life of the request or socket, so
every line logged while serving it (uvicorn's access line included) carries it,
and it goes back in the ``X-Request-ID`` header of the response (of a socket's
handshake, too), so a user's report can be matched to the server's log. A route
with a ``class_id`` (``/play/7``, ``/console/classes/7/results``) also sets
:data:`classroom.logs.current_class` once routed, so its access line names the class.

:class:`TracedStarlette` puts this outside every other layer: the bare 500 of an
unhandled error has the header, and uvicorn's traceback line carries the id.
"""

from __future__ import annotations

import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from classroom.logs import current_class, current_request
from classroom.web.headers import SecuredStarlette

HEADER = "x-request-id"
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_of(scope: Scope) -> str:
    """The request's own id, if well formed; else a new one (16 hex digits)."""
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            given: str = value.decode("latin-1")
            if WELL_FORMED.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


class RequestIds:
    """Gives each HTTP request and WebSocket its id: in the log's context and the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start", "websocket.accept"):
                _name_the_class(scope)
            if kind in ("http.response.start", "websocket.http.response.start"):
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[HEADER] = request_id
            elif kind == "websocket.accept":
                headers = [*message.get("headers", ()), (HEADER.encode(), request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        request_token = current_request.set(request_id)
        class_token = current_class.set(None)  # until the route names one
        # Reset only once served: after an unhandled error the ids stay set, so that
        # uvicorn's line about it (logged next, in this request's own task) has them.
        await self.app(scope, receive, send_with_id)
        current_class.reset(class_token)
        current_request.reset(request_token)


def _name_the_class(scope: Scope) -> None:
    """A route with a ``class_id`` names the class the request is about (routed by now)."""
    class_id = scope.get("path_params", {}).get("class_id")
    if isinstance(class_id, int):
        current_class.set(class_id)


class TracedStarlette(SecuredStarlette):
    """A :class:`SecuredStarlette` whose every request and socket has an id (see above)."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIds(super().build_middleware_stack())
