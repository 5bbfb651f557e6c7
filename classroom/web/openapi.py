"""The OpenAPI 3.1 document of the API (classroom/web/api.py), served at /api/openapi.json.

It is written out here rather than gathered from the routes: it is the contract other
software is built against, so it changes only on purpose. The test suite checks the
server against it (tests/web/test_api_schema.py), request by generated request.
"""

from __future__ import annotations

from typing import Any

from classroom import __version__
from classroom.domain.limits import MAX_FILE_BYTES
from classroom.domain.session import Phase, RestartPolicy
from classroom.webhooks import EVENTS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_RATE = {
    "description": "Too many requests (per token), or too many wrong tokens (per address).",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}
_UNAUTHORIZED = {
    "description": "No token, or a wrong or revoked one.",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}


def _responses(ok: dict[str, Any], *errors: int, status: str = "200") -> dict[str, Any]:
    texts = {
        400: "The request was refused: the message says why.",
        403: "The token is read-only.",
        404: "No such thing among the token's instructor's.",
        409: "Not now: the class isn't in a phase that allows it.",
        413: "The body is too large.",
        415: "The body isn't of a type this address takes.",
        503: "The class can't be reached just now; try again.",
    }
    responses: dict[str, Any] = {status: ok, "401": _UNAUTHORIZED, "429": _RATE}
    for code in errors:
        responses[str(code)] = _error(texts[code])
    return responses


def _id_parameter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "integer", "minimum": 1},
    }


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "For programs, e.g. not_found."},
            "message": {"type": "string", "description": "A sentence for people."},
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    },
    "Problem": {
        "type": "object",
        "required": ["path", "line", "message"],
        "properties": {
            "path": {"type": "string", "description": "Where, e.g. blocks[2].rounds."},
            "line": {"type": ["integer", "null"]},
            "message": {"type": "string"},
        },
    },
    "RoutineSummary": {
        "type": "object",
        "required": ["id", "title", "builtin", "minutes", "segments"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "builtin": {"type": "boolean"},
            "minutes": {"type": "integer"},
            "segments": {"type": "integer"},
        },
    },
    "Routine": {
        "type": "object",
        "required": ["id", "title", "builtin", "format", "source", "timeline"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "builtin": {"type": "boolean"},
            "format": {"enum": ["yaml", "json"]},
            "source": {"type": "string"},
            "timeline": _ref("Timeline"),
        },
    },
    "RoutineCreated": {
        "type": "object",
        "required": ["id", "title", "builtin", "format", "warnings"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "builtin": {"const": False},
            "format": {"enum": ["yaml", "json"]},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Timeline": {
        "type": "object",
        "description": "As `classroom routine check --json` prints it; times in seconds.",
        "required": ["title", "total_seconds", "segment_count", "segments"],
        "properties": {
            "title": {"type": "string"},
            "total_seconds": {"type": "number"},
            "lead_in_seconds": {"type": "number"},
            "segment_count": {"type": "integer"},
            "segments": {"type": "array", "items": {"type": "object"}},
            "cues": {"type": "array", "items": {"type": "object"}},
            "lead_in_cues": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Validation": {
        "type": "object",
        "required": ["ok", "problems", "warnings", "timeline"],
        "properties": {
            "ok": {"type": "boolean"},
            "problems": {"type": "array", "items": _ref("Problem")},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "timeline": {"oneOf": [_ref("Timeline"), {"type": "null"}]},
        },
    },
    "Room": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    },
    "Class": {
        "type": "object",
        "required": [
            "id",
            "title",
            "phase",
            "room_id",
            "join_code",
            "join_url",
            "scheduled_at",
            "started_at",
            "ended_at",
            "results_url",
        ],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "phase": {"enum": [phase.value for phase in Phase]},
            "room_id": {"type": ["integer", "null"]},
            "join_code": {"type": "string"},
            "join_url": {"type": "string", "format": "uri"},
            "scheduled_at": _NULLABLE_TIME,
            "started_at": _NULLABLE_TIME,
            "ended_at": _NULLABLE_TIME,
            "results_url": {"type": "string", "format": "uri"},
        },
    },
    "ClassStatus": {
        "allOf": [
            _ref("Class"),
            {
                "type": "object",
                "required": [
                    "routine_id",
                    "created_at",
                    "participants",
                    "display_url",
                    "console_url",
                ],
                "properties": {
                    "routine_id": {"type": ["integer", "null"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "participants": {"type": "integer", "minimum": 0},
                    "display_url": {
                        "type": ["string", "null"],
                        "description": "A wall's link to the class (it holds a token: keep it"
                        " to screens). None once the class has ended.",
                    },
                    "console_url": {"type": "string", "format": "uri"},
                },
            },
        ]
    },
    "OpenClass": {
        "type": "object",
        "required": ["routine_id"],
        "additionalProperties": False,
        "properties": {
            "routine_id": {"type": "integer", "minimum": 1},
            "room_id": {"type": ["integer", "null"], "minimum": 1},
            "scheduled_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the class starts, with its UTC offset. The class waits"
                " in the lobby until then, and takes over its room's walls shortly before.",
            },
            "on_restart": {"enum": [policy.value for policy in RestartPolicy]},
        },
    },
    "Command": {
        "type": "object",
        "required": ["command"],
        "additionalProperties": False,
        "properties": {
            "command": {
                "enum": [
                    "start",
                    "pause",
                    "resume",
                    "next",
                    "previous",
                    "jump",
                    "extend",
                    "finish",
                    "cancel",
                    "shout",
                ]
            },
            "seconds": {"type": "integer", "description": "extend: by how much (may be < 0)."},
            "index": {"type": "integer", "description": "jump: to which segment (from 0)."},
            "from_segment": {"type": "integer"},
            "text": {"type": "string", "description": "shout: what every screen shows."},
        },
    },
    "Results": {
        "type": "object",
        "description": "As the console's JSON export: the class, teams, people, segments"
        " (each person's result in each) and heart rates.",
        "required": ["class", "title", "unit", "teams", "people", "segments", "heart"],
        "properties": {
            "class": {"type": "object"},
            "title": {"type": "string"},
            "unit": {"type": "string"},
            "teams": {"type": "array", "items": {"type": "object"}},
            "people": {"type": "array", "items": {"type": "object"}},
            "segments": {"type": "array", "items": {"type": "object"}},
            "heart": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"enum": list(EVENTS)}},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "WebhookCreated": {
        "allOf": [
            _ref("Webhook"),
            {
                "type": "object",
                "required": ["secret"],
                "properties": {
                    "secret": {
                        "type": "string",
                        "description": "Signs each delivery; shown only in this answer.",
                    }
                },
            },
        ]
    },
    "NewWebhook": {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": 2000},
            "events": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": list(EVENTS)},
                "description": "Which events to send (all of them if left out).",
            },
        },
    },
    "Delivery": {
        "type": "object",
        "required": [
            "id",
            "webhook_id",
            "event",
            "state",
            "attempts",
            "last_status",
            "last_error",
            "created_at",
            "next_attempt_at",
            "finished_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "webhook_id": {"type": "integer"},
            "event": {"enum": list(EVENTS)},
            "state": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "next_attempt_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
        },
    },
}


def _list_of(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": _ref(item)}},
    }


_ROUTINE_BODY = {
    "required": True,
    "description": f"A routine file (see docs/routines.md), at most {MAX_FILE_BYTES // 1024} KiB.",
    "content": {
        # Any text: what makes it a routine is checked by the server, which says what
        # is wrong (docs/routines.md), not by a schema.
        "application/yaml": {"schema": {}},
        "application/json": {"schema": {}},
        "application/xml": {"schema": {}},
    },
}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def paths() -> dict[str, Any]:
    class_id = _id_parameter("class_id", "class")
    webhook_id = _id_parameter("webhook_id", "webhook")
    return {
        "/routines": {
            "get": {
                "operationId": "listRoutines",
                "summary": "The built-in routines and the instructor's own",
                "responses": _responses(_json(_list_of("routines", "RoutineSummary"), "Routines")),
            },
            "post": {
                "operationId": "createRoutine",
                "summary": "Store a routine (YAML, JSON or a .zwo file)",
                "requestBody": _ROUTINE_BODY,
                "responses": _responses(
                    {
                        **_json(_ref("RoutineCreated"), "Stored"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    400,
                    403,
                    413,
                    415,
                    status="201",
                ),
            },
        },
        "/routines/validate": {
            "post": {
                "operationId": "validateRoutine",
                "summary": "Check a routine as `classroom routine check` does; stores nothing",
                "requestBody": _ROUTINE_BODY,
                "responses": _responses(_json(_ref("Validation"), "Checked"), 413, 415),
            }
        },
        "/routines/{routine_id}": {
            "get": {
                "operationId": "getRoutine",
                "summary": "A routine, with its source and timeline",
                "parameters": [_id_parameter("routine_id", "routine")],
                "responses": _responses(_json(_ref("Routine"), "The routine"), 404),
            }
        },
        "/rooms": {
            "get": {
                "operationId": "listRooms",
                "summary": "The instructor's rooms",
                "responses": _responses(_json(_list_of("rooms", "Room"), "Rooms")),
            }
        },
        "/classes": {
            "get": {
                "operationId": "listClasses",
                "summary": "The instructor's latest 50 classes, newest first",
                "parameters": [
                    {
                        "name": "phase",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": [phase.value for phase in Phase]},
                    }
                ],
                "responses": _responses(_json(_list_of("classes", "Class"), "Classes"), 400),
            },
            "post": {
                "operationId": "openClass",
                "summary": "Open a class of a routine, now or scheduled, in a room or none",
                "requestBody": _body("OpenClass"),
                "responses": _responses(
                    {
                        **_json(_ref("ClassStatus"), "Opened: in the lobby, phones can join"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    400,
                    403,
                    413,
                    415,
                    status="201",
                ),
            },
        },
        "/classes/{class_id}": {
            "get": {
                "operationId": "getClass",
                "summary": "A class's status, join code and links",
                "parameters": [class_id],
                "responses": _responses(_json(_ref("ClassStatus"), "The class"), 404),
            }
        },
        "/classes/{class_id}/commands": {
            "post": {
                "operationId": "commandClass",
                "summary": "Control a class, as the console's buttons do",
                "parameters": [class_id],
                "requestBody": _body("Command"),
                "responses": _responses(
                    _json(_ref("ClassStatus"), "Done: the class as it is now"),
                    400,
                    403,
                    404,
                    409,
                    413,
                    415,
                    503,
                ),
            }
        },
        "/classes/{class_id}/results": {
            "get": {
                "operationId": "getResults",
                "summary": "A class's results (once it has started)",
                "parameters": [class_id],
                "responses": _responses(_json(_ref("Results"), "The results"), 404, 409),
            }
        },
        "/classes/{class_id}/results.csv": {
            "get": {
                "operationId": "getResultsCsv",
                "summary": "A class's results as CSV: a row per person and segment",
                "parameters": [class_id],
                "responses": _responses(
                    {
                        "description": "The results",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    404,
                    409,
                ),
            }
        },
        "/webhooks": {
            "get": {
                "operationId": "listWebhooks",
                "summary": "The instructor's webhooks, and the events there are",
                "responses": _responses(
                    _json(
                        {
                            "type": "object",
                            "required": ["webhooks", "events"],
                            "properties": {
                                "webhooks": {"type": "array", "items": _ref("Webhook")},
                                "events": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "Webhooks",
                    )
                ),
            },
            "post": {
                "operationId": "addWebhook",
                "summary": "Register a URL for events; the answer holds its signing secret",
                "requestBody": _body("NewWebhook"),
                "responses": _responses(
                    {
                        **_json(_ref("WebhookCreated"), "Registered"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    400,
                    403,
                    413,
                    415,
                    status="201",
                ),
            },
        },
        "/webhooks/{webhook_id}": {
            "delete": {
                "operationId": "removeWebhook",
                "summary": "Stop sending to a webhook",
                "parameters": [webhook_id],
                "responses": _responses({"description": "Removed"}, 403, 404, status="204"),
            }
        },
        "/webhooks/{webhook_id}/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "summary": "A webhook's latest 50 deliveries, newest first",
                "parameters": [webhook_id],
                "responses": _responses(
                    _json(_list_of("deliveries", "Delivery"), "Deliveries"), 404
                ),
            }
        },
    }


def document(base_url: str) -> dict[str, Any]:
    """The whole document, with this server's address."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "classroom API",
            "version": __version__,
            "description": "Routines, rooms, classes, results and webhooks of the instructor"
            " whose token is sent. See docs/api.md.",
        },
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"token": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from the console's Integrations page.",
                }
            },
        },
    }
