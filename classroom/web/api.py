"""The JSON API, under ``/api/v1``: routines, rooms, classes, results and webhooks.

Other software (a booking system, a gym's website, a script) uses it with an API token
that an instructor makes in the console (Integrations): ``Authorization: Bearer api_…``.
A token sees and changes only its instructor's things; a read-only token can't change
anything. The document that describes it all is served at ``/api/openapi.json``
(classroom/web/openapi.py), and docs/api.md shows it with curl.

Every answer is JSON. An error is ``{"code": "...", "message": "..."}``, a code for
programs and a sentence for people, as on the WebSocket; a routine that doesn't check
out adds its ``problems``. Requests are counted per token (``CLASSROOM_API_REQUESTS_PER_
MINUTE``), and wrong tokens per address; past either, the answer is 429 with
``Retry-After``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from classroom.db import routines as routine_db
from classroom.db.integrations import TokenGrant
from classroom.db.models import Class, Instructor, Participant, Room, Webhook, WebhookDelivery
from classroom.domain.commands import parse_command
from classroom.domain.errors import DomainError, ValidationError
from classroom.domain.limits import MAX_FILE_BYTES
from classroom.domain.session import TERMINAL, Phase, RestartPolicy
from classroom.live.actor import ClassFailed
from classroom.live.router import Unavailable
from classroom.routine_files import (
    CheckedRoutine,
    check_routine_file,
    stored_source,
    timeline_data,
)
from classroom.web import console, results
from classroom.web.form_limits import FormBudget
from classroom.web.throttle import AttemptWindow
from classroom.web.tokens import bearer_token
from classroom.webhooks import EVENTS, checked_events, checked_url, class_data, iso_time

API = "/api/v1"
JSON_BODY_MAX = 64 * 1024
ROUTINE_BODY_MAX = MAX_FILE_BYTES
WRONG_TOKENS_PER_MINUTE = 30
CLASSES_LISTED = 50

NO_TOKEN = "This API needs a token: send `Authorization: Bearer <token>` (make one in the console)."
BAD_TOKEN = "That API token is wrong or was revoked."
READ_ONLY = "This token is read-only; make a read-write token in the console to change things."
TOO_MANY = "Too many requests; wait a moment and try again."
TOO_MANY_WRONG = "Too many wrong tokens from this address; wait a minute and try again."
NOT_JSON = "The body must be a JSON object (Content-Type: application/json)."
BODY_TOO_LARGE = "The body is larger than the {limit} KiB this request may have."
ROUTINE_TYPES = "Send the routine as application/yaml, application/json or application/xml (.zwo)."
NO_SUCH_ROUTINE = "No such routine."
NO_SUCH_CLASS = "No such class."
NO_SUCH_WEBHOOK = "No such webhook."
BAD_ID = "{what} must be a whole number."
BAD_PHASE = "phase must be one of " + ", ".join(p.value for p in Phase) + "."
BAD_START = "scheduled_at is a time with its UTC offset, such as 2026-12-07T18:30:00+01:00."
UNKNOWN_FIELD = "Unknown field {field!r}: the fields are {fields}."
RESTART_POLICIES = ", ".join(policy.value for policy in RestartPolicy)

BUDGETS = (
    (
        f"{API}/routines",
        FormBudget(
            max_bytes=ROUTINE_BODY_MAX,
            max_fields=10,
            max_part_bytes=ROUTINE_BODY_MAX,
            too_large=BODY_TOO_LARGE.format(limit=ROUTINE_BODY_MAX // 1024),
        ),
    ),
    (
        "/api/",
        FormBudget(
            max_bytes=JSON_BODY_MAX,
            max_fields=10,
            max_part_bytes=JSON_BODY_MAX,
            too_large=BODY_TOO_LARGE.format(limit=JSON_BODY_MAX // 1024),
        ),
    ),
)
"""How large a body each API path takes, before it is read (classroom/web/form_limits.py)."""

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success: its status, code and sentence."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = headers
        self.extra = extra


def error_response(exc: ApiError) -> JSONResponse:
    body = {"code": exc.code, "message": exc.message, **exc.extra}
    return JSONResponse(body, exc.status, headers=exc.headers)


async def api_error(request: Request, exc: Exception) -> Response:
    """An HTTPException under /api (a 404 path, a 405 method) as the API's JSON error."""
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else "There is nothing at this address."
    if exc.status_code == 405:
        message = f"This address doesn't take {request.method}."
    return error_response(ApiError(exc.status_code, message, headers=exc.headers))


Handler = Callable[[Request, "Caller"], Awaitable[Response]]


class Caller:
    """Who is calling: the token's grant, and its instructor."""

    def __init__(self, grant: TokenGrant, instructor: Instructor) -> None:
        self.grant = grant
        self.instructor = instructor


def endpoint(handler: Handler, *, write: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A route's function: the token checked and counted, errors answered as JSON."""

    async def run(request: Request) -> Response:
        try:
            caller = await _caller(request, write=write)
            response = await handler(request, caller)
        except ApiError as exc:
            return error_response(exc)
        except HTTPException as exc:  # raised by what the console shares (bad room, time)
            return error_response(ApiError(exc.status_code, str(exc.detail)))
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return run


async def _caller(request: Request, *, write: bool) -> Caller:
    state = request.app.state
    address = request.client.host if request.client else ""
    now = time.monotonic()
    wrong: AttemptWindow = state.api_wrong_tokens
    wait = wrong.retry_after(address, address, now)  # counted per address alone
    if wait > 0:
        raise ApiError(429, TOO_MANY_WRONG, headers={"Retry-After": str(math.ceil(wait))})
    token = bearer_token(request.headers.get("authorization"))
    if not token:
        raise ApiError(401, NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    grant = await state.integrations.grant(token)
    if grant is None:
        wrong.failed(address, address, now)
        raise ApiError(401, BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    rate: AttemptWindow | None = state.api_rate
    if rate is not None:
        key = str(grant.token_id)
        wait = rate.retry_after(key, key, now)  # counted per token alone
        if wait > 0:
            raise ApiError(429, TOO_MANY, headers={"Retry-After": str(math.ceil(wait))})
        rate.failed(key, key, now)  # counts the request
    if write and not grant.can_write:
        raise ApiError(403, READ_ONLY)
    async with state.sessions() as db:
        instructor = await db.get(Instructor, grant.instructor_id)
    if instructor is None:  # removed since: its tokens went with it
        raise ApiError(401, BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return Caller(grant, instructor)


# -- reading requests ---------------------------------------------------------------------


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, BODY_TOO_LARGE.format(limit=limit // 1024))
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ApiError(413, BODY_TOO_LARGE.format(limit=limit // 1024))
    return bytes(data)


async def _json_object(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, NOT_JSON)
    try:
        data = json.loads(await _body(request, JSON_BODY_MAX))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, NOT_JSON) from None
    if not isinstance(data, dict):
        raise ApiError(400, NOT_JSON)
    for key in data:
        if key not in fields:
            listed = ", ".join(fields)
            raise ApiError(400, UNKNOWN_FIELD.format(field=str(key)[:40], fields=listed))
    return data


def _path_id(request: Request, name: str, missing: str) -> int:
    """A path's id (its route takes only digits); one no row can have is not found."""
    value = request.path_params.get(name)
    if not isinstance(value, int) or not 0 < value < 2**31:
        raise ApiError(404, missing)
    return value


def _whole(data: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise ApiError(400, BAD_ID.format(what=key))
    return value


# -- routines -----------------------------------------------------------------------------


async def list_routines(request: Request, caller: Caller) -> Response:
    async with request.app.state.sessions() as db:
        rows = await routine_db.visible_to(db, caller.instructor.id)
    return JSONResponse(
        {
            "routines": [
                {
                    "id": entry.row.id,
                    "title": entry.row.title,
                    "builtin": entry.row.instructor_id is None,
                    "minutes": entry.minutes,
                    "segments": entry.segments,
                }
                for entry in rows
            ]
        }
    )


async def get_routine(request: Request, caller: Caller) -> Response:
    routine_id = _path_id(request, "routine_id", NO_SUCH_ROUTINE)
    async with request.app.state.sessions() as db:
        row = await routine_db.get_visible(db, caller.instructor.id, routine_id)
    if row is None:
        raise ApiError(404, NO_SUCH_ROUTINE)
    timeline = routine_db.timeline_for(row)
    return JSONResponse(
        {
            "id": row.id,
            "title": row.title,
            "builtin": row.instructor_id is None,
            "format": row.source_format,
            "source": row.source,
            "timeline": timeline_data(timeline),
        }
    )


_ROUTINE_FORMATS = {
    "application/json": "routine.json",
    "application/yaml": "routine.yaml",
    "application/x-yaml": "routine.yaml",
    "text/yaml": "routine.yaml",
    "application/xml": "routine.zwo",
    "text/xml": "routine.zwo",
}


async def _checked_routine(request: Request) -> tuple[CheckedRoutine, bytes]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = _ROUTINE_FORMATS.get(media)
    if filename is None:
        raise ApiError(415, ROUTINE_TYPES)
    data = await _body(request, ROUTINE_BODY_MAX)
    return check_routine_file(data, filename=filename), data


def _problems(checked: CheckedRoutine) -> list[dict[str, Any]]:
    return [
        {"path": problem.path, "line": problem.line, "message": problem.message}
        for problem in checked.problems
    ]


async def validate_routine(request: Request, caller: Caller) -> Response:
    """The checks of ``classroom routine check``, with its messages; nothing is stored."""
    checked, _ = await _checked_routine(request)
    warnings = list(checked.loaded.warnings) if checked.loaded is not None else []
    return JSONResponse(
        {
            "ok": checked.ok,
            "problems": _problems(checked),
            "warnings": warnings,
            "timeline": (
                timeline_data(checked.timeline)
                if checked.ok and checked.timeline is not None
                else None
            ),
        }
    )


async def create_routine(request: Request, caller: Caller) -> Response:
    checked, data = await _checked_routine(request)
    if not checked.ok:
        message = "The routine has problems: " + "; ".join(str(p) for p in checked.problems)
        raise ApiError(400, message[:2000], code="invalid_routine", problems=_problems(checked))
    loaded = checked.loaded
    assert loaded is not None  # it checked out
    source_format, source = stored_source(loaded, data)
    async with request.app.state.sessions.begin() as db:
        row = await routine_db.store_routine(
            db, caller.instructor.id, loaded.routine.title, source_format, source
        )
    body = {
        "id": row.id,
        "title": row.title,
        "builtin": False,
        "format": row.source_format,
        "warnings": list(loaded.warnings),
    }
    return JSONResponse(body, 201, headers={"Location": f"{API}/routines/{row.id}"})


# -- rooms --------------------------------------------------------------------------------


async def list_rooms(request: Request, caller: Caller) -> Response:
    async with request.app.state.sessions() as db:
        rows = await db.scalars(
            select(Room).where(Room.instructor_id == caller.instructor.id).order_by(Room.name)
        )
        rooms = [{"id": room.id, "name": room.name} for room in rows]
    return JSONResponse({"rooms": rooms})


# -- classes ------------------------------------------------------------------------------

CLASS_FIELDS = ("routine_id", "room_id", "scheduled_at", "on_restart")


async def _class_status(request: Request, row: Class) -> dict[str, Any]:
    base = console.public_base(request)
    async with request.app.state.sessions() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.class_id == row.id, Participant.removed.is_(False))
        )
    links = [] if Phase(row.phase) in TERMINAL else await console.class_links(request, row)
    return {
        **class_data(row, base),
        "routine_id": row.routine_id,
        "created_at": iso_time(row.created_at),
        "participants": int(count or 0),
        "display_url": links[0].url if links else None,
        "console_url": f"{base}/console/classes/{row.id}",
    }


async def _own_class(request: Request, caller: Caller) -> Class:
    class_id = _path_id(request, "class_id", NO_SUCH_CLASS)
    async with request.app.state.sessions() as db:
        row: Class | None = await db.get(Class, class_id)
    if row is None or row.instructor_id != caller.instructor.id:
        raise ApiError(404, NO_SUCH_CLASS)  # another's class: as if it didn't exist
    return row


async def list_classes(request: Request, caller: Caller) -> Response:
    unknown = set(request.query_params) - {"phase"}
    if unknown:
        raise ApiError(400, UNKNOWN_FIELD.format(field=sorted(unknown)[0][:40], fields="phase"))
    phase = request.query_params.get("phase")
    query = (
        select(Class)
        .where(Class.instructor_id == caller.instructor.id)
        .order_by(Class.created_at.desc(), Class.id.desc())
        .limit(CLASSES_LISTED)
    )
    if phase is not None:
        if phase not in {p.value for p in Phase}:
            raise ApiError(400, BAD_PHASE)
        query = query.where(Class.phase == phase)
    async with request.app.state.sessions() as db:
        rows = list(await db.scalars(query))
    base = console.public_base(request)
    return JSONResponse({"classes": [class_data(row, base) for row in rows]})


async def open_class(request: Request, caller: Caller) -> Response:
    data = await _json_object(request, CLASS_FIELDS)
    routine_id = _whole(data, "routine_id", required=True)
    room_id = _whole(data, "room_id", required=False)
    scheduled = data.get("scheduled_at")
    if scheduled is not None:
        if not isinstance(scheduled, str):
            raise ApiError(400, BAD_START)
        try:
            when = datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, BAD_START) from None
        if when.tzinfo is None:
            raise ApiError(400, BAD_START)
    policy = data.get("on_restart", RestartPolicy.CONTINUE.value)
    if not isinstance(policy, str) or policy not in {p.value for p in RestartPolicy}:
        raise ApiError(400, f"on_restart is one of {RESTART_POLICIES}.")
    assert routine_id is not None  # required
    row = await console.open_new_class(
        request,
        caller.instructor,
        routine_id,
        room="" if room_id is None else str(room_id),
        scheduled_at=scheduled,
        on_restart=RestartPolicy(policy),
    )
    status = await _class_status(request, row)
    return JSONResponse(status, 201, headers={"Location": f"{API}/classes/{row.id}"})


async def get_class(request: Request, caller: Caller) -> Response:
    row = await _own_class(request, caller)
    return JSONResponse(await _class_status(request, row))


async def class_command(request: Request, caller: Caller) -> Response:
    """A control, as the console's buttons send it: start, pause, next, finish, …"""
    row = await _own_class(request, caller)
    data = await _json_object(request, ("command", "seconds", "index", "from_segment", "text"))
    for key in ("seconds", "index", "from_segment"):  # each checked, used by the command or not
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ApiError(400, f"{key} must be a whole number.")
    if data.get("text") is not None and not isinstance(data["text"], str):
        raise ApiError(400, "text must be text.")
    try:
        control = parse_command(data.get("command"), data)
        await request.app.state.registry.submit(row.id, control)
    except ValidationError as exc:
        raise ApiError(400, str(exc)) from None
    except (ClassFailed, Unavailable) as exc:
        raise ApiError(503, str(exc)) from None
    except DomainError as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse(await _class_status(request, await _own_class(request, caller)))


async def _started_class(request: Request, caller: Caller) -> Class:
    row = await _own_class(request, caller)
    if Phase(row.phase) is Phase.LOBBY:
        raise ApiError(409, results.NOT_STARTED)
    return row


async def class_results(request: Request, caller: Caller) -> Response:
    row = await _started_class(request, caller)
    return JSONResponse(await results.results_data(request, row))


async def class_results_csv(request: Request, caller: Caller) -> Response:
    row = await _started_class(request, caller)
    return results.csv_response(row, await results.results_table(request, row))


# -- webhooks -----------------------------------------------------------------------------


def _webhook(row: Webhook) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events.split(),
        "created_at": iso_time(row.created_at),
    }


def delivery_data(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "event": row.event,
        "state": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "created_at": iso_time(row.created_at),
        "next_attempt_at": iso_time(row.next_attempt_at) if row.state == "pending" else None,
        "finished_at": iso_time(row.finished_at),
    }


async def list_webhooks(request: Request, caller: Caller) -> Response:
    rows = await request.app.state.integrations.webhooks(caller.instructor.id)
    return JSONResponse({"webhooks": [_webhook(row) for row in rows], "events": list(EVENTS)})


async def add_webhook(request: Request, caller: Caller) -> Response:
    data = await _json_object(request, ("url", "events"))
    try:
        url = checked_url(data.get("url"))
        events = checked_events(data.get("events", list(EVENTS)))
        row, secret = await request.app.state.integrations.add_webhook(
            caller.instructor.id, url, events
        )
    except ValidationError as exc:
        raise ApiError(400, str(exc)) from None
    body = {**_webhook(row), "secret": secret}
    return JSONResponse(body, 201, headers={"Location": f"{API}/webhooks/{row.id}"})


async def remove_webhook(request: Request, caller: Caller) -> Response:
    webhook_id = _path_id(request, "webhook_id", NO_SUCH_WEBHOOK)
    if not await request.app.state.integrations.remove_webhook(caller.instructor.id, webhook_id):
        raise ApiError(404, NO_SUCH_WEBHOOK)
    return Response(status_code=204)


async def webhook_deliveries(request: Request, caller: Caller) -> Response:
    webhook_id = _path_id(request, "webhook_id", NO_SUCH_WEBHOOK)
    store = request.app.state.integrations
    if await store.webhook(caller.instructor.id, webhook_id) is None:
        raise ApiError(404, NO_SUCH_WEBHOOK)
    rows = await store.deliveries(caller.instructor.id, webhook_id)
    return JSONResponse({"deliveries": [delivery_data(row) for row in rows]})


async def openapi_document(request: Request) -> Response:
    from classroom.web.openapi import document

    return JSONResponse(document(console.public_base(request)))


def _resource(path: str, **methods: Handler | tuple[Handler, bool]) -> Route:
    """One route for all of a path's methods, so that a 405 lists them all in ``Allow``.

    Each method names its handler, or ``(handler, True)`` when it changes things (a
    read-write token's)."""
    runs = {}
    for method, spec in methods.items():
        handler, write = spec if isinstance(spec, tuple) else (spec, False)
        runs[method] = endpoint(handler, write=write)

    async def dispatch(request: Request) -> Response:
        return await runs[request.method if request.method != "HEAD" else "GET"](request)

    return Route(f"{API}{path}", dispatch, methods=list(runs))


routes = [
    Route("/api/openapi.json", openapi_document, methods=["GET"]),
    _resource("/routines", GET=list_routines, POST=(create_routine, True)),
    _resource("/routines/validate", POST=validate_routine),
    _resource("/routines/{routine_id:int}", GET=get_routine),
    _resource("/rooms", GET=list_rooms),
    _resource("/classes", GET=list_classes, POST=(open_class, True)),
    _resource("/classes/{class_id:int}", GET=get_class),
    _resource("/classes/{class_id:int}/commands", POST=(class_command, True)),
    _resource("/classes/{class_id:int}/results", GET=class_results),
    _resource("/classes/{class_id:int}/results.csv", GET=class_results_csv),
    _resource("/webhooks", GET=list_webhooks, POST=(add_webhook, True)),
    _resource("/webhooks/{webhook_id:int}", DELETE=(remove_webhook, True)),
    _resource("/webhooks/{webhook_id:int}/deliveries", GET=webhook_deliveries),
]
