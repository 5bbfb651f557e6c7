"""The console's Integrations page: API tokens, webhooks, and the webhooks' delivery log.

A new token, or a new webhook's signing secret, is shown once, on the page that made it
(``Cache-Control: no-store``); afterwards the page shows only its name.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from classroom.db.models import Instructor
from classroom.domain.errors import ValidationError
from classroom.web import console
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.rooms import path_id
from classroom.web.templating import render
from classroom.webhooks import EVENTS, checked_events, checked_url

NO_SUCH_TOKEN = "You have no such API token, or it was revoked already."
NO_SUCH_WEBHOOK = "You have no such webhook, or it was removed already."
NOTICES = {
    "token-revoked": "The token was revoked: the software using it is refused from now on.",
    "webhook-removed": "The webhook was removed: nothing more is sent to it.",
}
PAGE = "/console/integrations"


async def _page(
    request: Request,
    instructor: Instructor,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    new_token: str = "",
    new_secret: str = "",
) -> Response:
    store = request.app.state.integrations
    webhooks = await store.webhooks(instructor.id)
    context: dict[str, Any] = {
        "instructor": instructor,
        "tokens": await store.tokens(instructor.id),
        "webhooks": webhooks,
        "urls": {hook.id: hook.url for hook in webhooks},
        "deliveries": await store.deliveries(instructor.id),
        "events": EVENTS,
        "new_token": new_token,
        "new_secret": new_secret,
        "api_url": f"{console.public_base(request)}/api/v1",
        "errors": errors or {},
        "values": values or {},
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
    }
    response = render(request, "pages/integrations.html", context, status_code)
    if new_token or new_secret:
        response.headers["Cache-Control"] = "no-store"  # shown once
    return response


def _done(what: str) -> Response:
    return RedirectResponse(f"{PAGE}?done={what}", status_code=303)


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def integrations_page(request: Request) -> Response:
    return await _page(request, await require_instructor(request))


async def add_token(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    label = _field(form, "label")
    access = _field(form, "access")
    if access not in ("read", "write"):
        return await _page(
            request,
            instructor,
            errors={"token": "Choose what the token may do: read, or read and write."},
            values={"label": label},
            status_code=400,
        )
    try:
        _, token = await request.app.state.integrations.add_token(
            instructor.id, label, can_write=access == "write"
        )
    except ValidationError as exc:
        values = {"label": label}
        return await _page(
            request, instructor, errors={"token": str(exc)}, values=values, status_code=400
        )
    return await _page(request, instructor, new_token=token)


async def revoke_token(request: Request) -> Response:
    instructor = await require_instructor(request)
    await checked_form(request)
    token_id = path_id(request.path_params.get("token_id"))
    store = request.app.state.integrations
    if token_id is None or not await store.revoke_token(instructor.id, token_id):
        raise HTTPException(404, NO_SUCH_TOKEN)
    return _done("token-revoked")


async def add_webhook(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    url = _field(form, "url")
    chosen = [value for value in form.getlist("events") if isinstance(value, str)]
    try:
        _, secret = await request.app.state.integrations.add_webhook(
            instructor.id, checked_url(url), checked_events(chosen)
        )
    except ValidationError as exc:
        values = {"url": url, "events": chosen}
        return await _page(
            request, instructor, errors={"webhook": str(exc)}, values=values, status_code=400
        )
    return await _page(request, instructor, new_secret=secret)


async def remove_webhook(request: Request) -> Response:
    instructor = await require_instructor(request)
    await checked_form(request)
    webhook_id = path_id(request.path_params.get("webhook_id"))
    store = request.app.state.integrations
    if webhook_id is None or not await store.remove_webhook(instructor.id, webhook_id):
        raise HTTPException(404, NO_SUCH_WEBHOOK)
    return _done("webhook-removed")


routes = [
    Route(PAGE, integrations_page, methods=["GET"]),
    Route(f"{PAGE}/tokens", add_token, methods=["POST"]),
    Route(PAGE + "/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
    Route(f"{PAGE}/webhooks", add_webhook, methods=["POST"]),
    Route(PAGE + "/webhooks/{webhook_id}/remove", remove_webhook, methods=["POST"]),
]
