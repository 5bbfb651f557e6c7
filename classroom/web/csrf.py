"""CSRF protection: every state-changing request is checked twice.

1. **Where it comes from.** :class:`CSRFMiddleware` refuses a POST, PUT, PATCH or
   DELETE whose ``Origin`` (or, failing that, ``Referer``) is not one of this
   server's origins (:mod:`classroom.web.origins`). Browsers send ``Origin`` on
   every POST; a request with neither header is not from a browser page.
2. **What it carries.** Every form has a hidden token that :func:`checked_form`
   compares with the token this request should carry. The token is an HMAC,
   keyed by the server's secret, of the browser's **binding**: a random id kept
   in a signed cookie (``classroom_csrf``) and, once an instructor signs in,
   their session token. The session cookie is ``HttpOnly``: a page or service
   that can plant cookies on this host (a sibling subdomain, another port, a
   plain-HTTP network) can't read it, so it can't compute the token of a
   signed-in instructor, even with a validly signed ``classroom_csrf`` of its own.
   Signing in or out gives the browser a new id (:func:`rotate`), and a new
   session changes the token anyway.

A refusal is a 403 page with :data:`CSRF_FAILED`, and nothing changes.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets

from itsdangerous import BadSignature, Signer
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from classroom.config import Settings
from classroom.web import auth, origins
from classroom.web.templating import render

log = logging.getLogger(__name__)

COOKIE = "classroom_csrf"
FIELD = "csrf_token"
CSRF_FAILED = "This form has expired or came from another site. Reload the page and try again."


class Binding:
    """Mints browser ids, and the form token of an id and a session, with one secret."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, salt="classroom.csrf")
        self._key = hmac.digest(secret.encode(), b"classroom.csrf-token", "sha256")

    def new_id(self) -> str:
        return secrets.token_urlsafe(24)

    def cookie(self, browser_id: str) -> str:
        """The signed cookie value that holds ``browser_id``."""
        return self._signer.sign(browser_id).decode()

    def browser_id(self, cookie: str | None) -> str | None:
        """The id in a ``classroom_csrf`` cookie, if this server signed it."""
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def token(self, browser_id: str, session: str | None) -> str:
        """The token every form of this browser (and session, if any) carries."""
        message = f"{browser_id}\0{session or ''}".encode()
        mac = hmac.digest(self._key, message, "sha256")
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _cookie_header(value: str, secure: bool) -> str:
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def _exempt(scope: Scope) -> bool:
    """Requests that get no browser id and no token: static files, scrapes of /metrics,
    and the API (its calls carry a bearer token, never a cookie, so no other site's page
    can make them on a signed-in instructor's behalf).

    Static files need no token, and a cookie would keep caches from sharing them;
    a scrape is a GET from a machine, which sends no cookies and should get none.
    """
    path = scope["path"]
    return path.startswith(("/static/", "/api/")) or (
        path == "/metrics" and scope["method"] in ("GET", "HEAD")
    )


class CSRFMiddleware:
    """Refuses cross-origin unsafe requests; gives each browser its id and forms their token."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.binding = Binding(settings.secret_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        browser = self.binding.browser_id(cookies.get(COOKIE))
        fresh = None
        if browser is None:
            browser = self.binding.new_id()
            fresh = self.binding.cookie(browser)
        state = scope.setdefault("state", {})
        state["csrf_token"] = self.binding.token(browser, cookies.get(auth.COOKIE))
        state["csrf_bound"] = fresh is None  # a token can only match a cookie it came with
        state["csrf_binding"] = self.binding

        async def send_with_cookie(message: Message) -> None:
            if fresh is not None and message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if COOKIE + "=" not in "".join(response_headers.getlist("set-cookie")):
                    secure = scope.get("scheme") == "https"
                    response_headers.append("set-cookie", _cookie_header(fresh, secure))
            await send(message)

        if scope["method"] in origins.UNSAFE_METHODS and not origins.request_allowed(
            self.settings, scope.get("scheme", "http"), headers
        ):
            log.warning(
                "refused a cross-origin %s %s from %r",
                scope["method"],
                scope["path"],
                origins.claimed_origin(headers),
            )
            request = Request(scope, receive)
            response = render(request, "pages/error.html", {"message": CSRF_FAILED}, 403)
            await response(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send_with_cookie)


def csrf_token(request: Request) -> str:
    return str(request.state.csrf_token)


def rotate(request: HTTPConnection, response: Response) -> None:
    """Give the browser a new id: on signing in and out, so no planted id outlives them."""
    binding: Binding = request.state.csrf_binding
    response.headers.append(
        "set-cookie",
        _cookie_header(binding.cookie(binding.new_id()), request.url.scheme == "https"),
    )


async def checked_form(request: Request) -> FormData:
    """The request's form, after checking its CSRF token; 403 otherwise."""
    form = await request.form()
    sent = form.get(FIELD)
    expected = csrf_token(request)
    if (
        not request.state.csrf_bound
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise HTTPException(403, CSRF_FAILED)
    return form
