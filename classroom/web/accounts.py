"""Signing in and out of the console."""

from __future__ import annotations

import math
import time
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from classroom.db.models import Instructor
from classroom.web import auth
from classroom.web.csrf import checked_form, rotate
from classroom.web.sign_in_throttle import TOO_MANY_ATTEMPTS, in_words
from classroom.web.templating import render

EMAIL_KEY_LENGTH = 320
"""Characters of an email the sign-in throttle keys on: longer than any real address."""


def _safe_next(value: object) -> str:
    """Only same-site paths, so the login form can't redirect off-site."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/console"


async def require_instructor(request: Request) -> Instructor:
    """The signed-in instructor, or a redirect to the sign-in page."""
    async with request.app.state.sessions() as db:
        instructor = await auth.signed_in(db, request)
    if instructor is None:
        target = quote(request.url.path)
        raise HTTPException(303, headers={"Location": f"/login?next={target}"})
    return instructor


async def login_page(request: Request) -> Response:
    return render(
        request, "pages/login.html", {"next": _safe_next(request.query_params.get("next"))}
    )


async def login(request: Request) -> Response:
    form = await checked_form(request)
    email = auth.normalize_email(str(form.get("email", "")))
    password = str(form.get("password", ""))
    target = _safe_next(form.get("next"))
    throttle = request.app.state.login_throttle
    account = email[:EMAIL_KEY_LENGTH]  # what the throttle keeps, however long the field
    # The peer's address, or the one a trusted proxy forwarded (CLASSROOM_TRUSTED_PROXIES).
    address = request.client.host if request.client else "unknown"
    now = time.monotonic()

    def refuse(message: str, status: int) -> Response:
        context = {"next": target, "email": email, "error": message}
        return render(request, "pages/login.html", context, status_code=status)

    wait = throttle.retry_after(account, address, now)
    if wait > 0:
        response = refuse(TOO_MANY_ATTEMPTS.format(wait=in_words(wait)), 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    async with request.app.state.sessions.begin() as db:
        instructor = await auth.authenticate(db, email, password)
        if instructor is None:
            throttle.failed(account, address, now)
            return refuse(auth.BAD_CREDENTIALS, 400)
        throttle.succeeded(account, address, now)
        token = await auth.open_session(db, instructor)
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, request, token)
    rotate(request, response)
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    token = request.cookies.get(auth.COOKIE)
    if token:
        async with request.app.state.sessions.begin() as db:
            await auth.close_session(db, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE)
    rotate(request, response)
    return response
