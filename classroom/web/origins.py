"""Which origins may act on this server: its own, ``CLASSROOM_PUBLIC_URL``'s, and
``CLASSROOM_ALLOWED_ORIGINS``.

A browser names the page a request comes from in ``Origin`` (on every POST in
current Chrome, Firefox and Safari, and on every WebSocket), or failing that in
``Referer``. A request that names neither did not come from a browser page: a
script or an integration has no ambient cookies for another site to abuse, so it
is let through, and the form's CSRF token still has to match. ``Origin: null``
(a sandboxed frame, a ``data:`` page) is never allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from classroom.config import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-cased; ``None`` if it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings, scheme: str, host: str) -> set[str]:
    """The origins allowed to post to (or open a socket on) this server."""
    allowed = {f"{scheme}://{host}".lower()}
    for url in (settings.public_url, *settings.allowed_origins):
        origin = origin_of(url)
        if origin is not None:
            allowed.add(origin)
    return allowed


def claimed_origin(headers: Mapping[str, str]) -> str | None:
    """The origin a browser says the request comes from (``Origin``, else ``Referer``).

    ``None`` when the request names neither; ``"null"`` (never allowed) when
    the browser hides it or the ``Referer`` is not a web address.
    """
    origin = headers.get("origin")
    if origin is not None:
        return origin.strip().rstrip("/").lower() or "null"
    referer = headers.get("referer")
    if referer is not None:
        return origin_of(referer) or "null"
    return None


def request_allowed(settings: Settings, scheme: str, headers: Mapping[str, str]) -> bool:
    """Whether a request with these headers may come in: from an allowed origin, or no browser."""
    claimed = claimed_origin(headers)
    if claimed is None:
        return True
    return claimed in allowed_origins(settings, scheme, headers.get("host", ""))
