"""CSRF protection for every form: a signed double-submit token.

Each browser gets a random token in a cookie (set by :class:`CSRFMiddleware`,
signed so a neighbouring site can't plant one). Every form carries the same
token in a hidden field; :func:`checked_form` refuses a POST whose field is
missing or differs from the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie

from itsdangerous import BadSignature, Signer
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "classroom_csrf"
FIELD = "csrf_token"
CSRF_FAILED = "This form has expired or came from another site. Reload the page and try again."


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.signer = Signer(secret, salt="classroom.csrf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            # Static files need no token, and a cookie would keep caches from sharing them.
            await self.app(scope, receive, send)
            return
        token = self._valid_cookie(scope)
        fresh = token is None
        if token is None:
            token = self.signer.sign(secrets.token_urlsafe(24)).decode()
        scope.setdefault("state", {})["csrf_token"] = token

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                secure = "; Secure" if scope.get("scheme") == "https" else ""
                headers.append(
                    "set-cookie", f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}"
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _valid_cookie(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:
                    return None
                morsel = cookie.get(COOKIE)
                if morsel is None:
                    continue
                try:
                    self.signer.unsign(morsel.value)
                except BadSignature:
                    return None
                return morsel.value
        return None


def csrf_token(request: Request) -> str:
    return str(request.state.csrf_token)


async def checked_form(request: Request) -> FormData:
    """The request's form, after checking its CSRF token; 403 otherwise."""
    form = await request.form()
    sent = form.get(FIELD)
    expected = request.cookies.get(COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, CSRF_FAILED)
    return form
