"""Limits on every request body, checked as it arrives and before any form is parsed.

:class:`FormLimitMiddleware` gives each request a :class:`FormBudget`, chosen by
its path: how many bytes its body may have, how many fields and files its form
may hold, and how large one field or file may be. A ``Content-Length`` over the
budget is refused before a byte is read. Otherwise the middleware counts the
body as the route reads it (``Content-Length`` or chunked alike) and watches its
form take shape: a URL-encoded form field by field, a multipart form part by
part, so a file part on a route that takes no file is refused at its headers,
before anything is kept in memory or spooled to disk. Whatever goes over the
budget is answered 413 with a sentence that says why; the route never sees it.

Starlette's own limits on ``request.form()`` stay in place behind this line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

TOO_LARGE = "That is too much to send at once."
TOO_MANY_FIELDS = "That form has too many fields."
FIELD_TOO_LARGE = "One of the form's fields is too long."
NO_FILES = "This form doesn't take files."
TOO_MANY_FILES = "Send one file at a time."


@dataclass(frozen=True, slots=True, kw_only=True)
class FormBudget:
    """What a request body may hold; ``too_large`` is the sentence for a body over it."""

    max_bytes: int
    max_fields: int
    max_part_bytes: int
    max_files: int = 0
    too_large: str = TOO_LARGE

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_fields, self.max_part_bytes) < 1 or self.max_files < 0:
            raise ValueError(f"a form budget's limits must be positive: {self!r}")


DEFAULT_BUDGET = FormBudget(max_bytes=64 * 1024, max_fields=200, max_part_bytes=32 * 1024)
"""Every form but the routine pages: sign-in, joining, the console's class, roster and
rooms forms. The largest of them (a shout-out, a roster of team names) is a few KiB."""


class FormRefused(Exception):
    """A request body went over its budget; the message says how, for people."""


class _Inspector(Protocol):
    def feed(self, data: bytes) -> None: ...


class _Nothing:
    """A body that isn't a form: only its size is counted."""

    def feed(self, data: bytes) -> None:
        pass


class _UrlEncoded:
    def __init__(self, budget: FormBudget) -> None:
        self.budget = budget
        self.fields = 0
        self.field_bytes = 0
        self.parser = QuerystringParser(
            callbacks={"on_field_start": self._start, "on_field_data": self._data}
        )

    def _start(self) -> None:
        self.fields += 1
        self.field_bytes = 0
        if self.fields > self.budget.max_fields:
            raise FormRefused(TOO_MANY_FIELDS)

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.field_bytes += end - start
        if self.field_bytes > self.budget.max_part_bytes:
            raise FormRefused(FIELD_TOO_LARGE)

    def feed(self, data: bytes) -> None:
        self.parser.write(data)


class _Multipart:
    def __init__(self, budget: FormBudget, boundary: bytes) -> None:
        self.budget = budget
        self.fields = 0
        self.files = 0
        self.part_bytes = 0
        self.header = b""
        self.disposition = b""
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
            },
        )

    def _begin(self) -> None:
        self.part_bytes = 0
        self.header = self.disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition += data[start:end]

    def _header_end(self) -> None:
        self.header = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"filename" in options:
            self.files += 1
            if self.files > self.budget.max_files:
                raise FormRefused(NO_FILES if self.budget.max_files == 0 else TOO_MANY_FILES)
        else:
            self.fields += 1
            if self.fields > self.budget.max_fields:
                raise FormRefused(TOO_MANY_FIELDS)

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.part_bytes += end - start
        if self.part_bytes > self.budget.max_part_bytes:
            raise FormRefused(self.budget.too_large if self.files else FIELD_TOO_LARGE)

    def feed(self, data: bytes) -> None:
        self.parser.write(data)


def _inspector(content_type: str, budget: FormBudget) -> _Inspector:
    kind, options = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        return _UrlEncoded(budget)
    boundary = options.get(b"boundary")
    if kind == b"multipart/form-data" and boundary:
        return _Multipart(budget, boundary)
    return _Nothing()  # not a form (or a malformed one, which the route's parser refuses)


Refusal = Callable[[Scope, str], Response]


def plain_refusal(scope: Scope, message: str) -> Response:
    return PlainTextResponse(message, status_code=413)


class FormLimitMiddleware:
    """Refuse (413) any request body over the budget of its path, as it arrives.

    ``budgets`` pairs path prefixes with budgets, most specific first; a path
    that matches none gets ``default``. ``refusal`` renders the answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        budgets: Sequence[tuple[str, FormBudget]] = (),
        default: FormBudget = DEFAULT_BUDGET,
        refusal: Refusal = plain_refusal,
    ) -> None:
        self.app = app
        self.budgets = tuple(budgets)
        self.default = default
        self.refusal = refusal

    def budget_for(self, path: str) -> FormBudget:
        return next((b for prefix, b in self.budgets if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = self.budget_for(scope["path"])
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > budget.max_bytes):
            await self._refuse(scope, receive, send, budget.too_large)
            return
        inspector = _inspector(headers.get("content-type", ""), budget)
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received, inspector
            message = await receive()
            if message["type"] == "http.request":
                body: bytes = message.get("body", b"")
                try:  # first, so the refusal names the field or file that went over
                    inspector.feed(body)
                except FormParserError:
                    inspector = _Nothing()  # malformed: the route's own parser says so
                received += len(body)
                if received > budget.max_bytes:
                    raise FormRefused(budget.too_large)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except FormRefused as refused:
            if started:  # the route answered before reading all of it: nothing to add
                return
            await self._refuse(scope, receive, send, str(refused))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        log.debug("refused a request body to %s: %s", scope["path"], message)
        response = self.refusal(scope, message)
        # The connection stays open: the server reads what is left of the body and drops
        # it unparsed, so the client, still sending, gets this answer rather than a reset.
        await response(scope, receive, send)
