"""Security headers on every HTTP response.

- ``Content-Security-Policy``: scripts, styles, images and connections from this
  server only. No inline script, no inline style, no ``eval``: the pages load
  their JavaScript and CSS from ``/static``, htmx is configured not to inject
  its indicator style or evaluate attributes (``templates/base.html``), team
  colours are CSS classes and widths are set through the CSSOM. ``'self'``
  covers this server's own ``ws:``/``wss:`` sockets. QR codes are inline SVG,
  so ``img-src`` needs no ``data:``. ``frame-ancestors 'none'``: no other site
  may frame a page (clickjacking); ``form-action 'self'``: a form posts only
  here; ``base-uri 'none'`` and ``object-src 'none'`` close the rest.
- ``X-Frame-Options: DENY``: the same for browsers that predate
  ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``: a file is only what its type says.
- ``Referrer-Policy: same-origin``: links to other sites get no ``Referer``, so
  join codes and display tokens in our URLs stay here; our own requests keep
  it, for the origin check of :mod:`classroom.web.csrf`.

A response that already sets one of these keeps its own. :class:`SecuredStarlette`
puts them outside every other layer, so even the bare 500 of an unhandled error
carries them.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredStarlette(Starlette):
    """A Starlette app whose every response, its own 500s included, has the headers."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())
