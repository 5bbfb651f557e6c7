"""What a benchmark does as the instructor and as a screen, over HTTP and WebSocket.

The instructor's side goes through the same pages a browser uses: sign in (with
the form's CSRF token), then the console's start control. Phones and displays
connect with tokens minted with the server's secret (:func:`mint_tokens`), so
thousands of them need no join page. :func:`clock_offset` reads a server's clock
through the protocol's ``ping``/``pong``.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def form_token(http: httpx.AsyncClient, path: str) -> str:
    """The CSRF token in the forms of the page at ``path``."""
    match = CSRF_FIELD.search((await http.get(path)).text)
    if match is None:
        raise RuntimeError(f"no CSRF token on {path}")
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    """Sign the instructor in on ``http``; returns the CSRF token for later forms.

    The token is bound to the session, so it is read again once signed in.
    """
    response = await http.post(
        "/login",
        data={
            "csrf_token": await form_token(http, "/login"),
            "email": email,
            "password": password,
            "next": "/console",
        },
    )
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: HTTP {response.status_code}")
    return await form_token(http, "/console")


async def start_class(
    http: httpx.AsyncClient, class_id: int, csrf: str, timeout_s: float = 30
) -> None:
    """The console's start control, as the instructor's page sends it."""
    response = await http.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": csrf, "command": "start"},
        headers={"HX-Request": "true"},
        timeout=timeout_s,
    )
    if response.status_code != 200:
        raise RuntimeError(f"class {class_id} did not start: HTTP {response.status_code}")


async def readyz(http: httpx.AsyncClient) -> dict[str, Any]:
    """A node's readiness report (its name, the classes it owns)."""
    response = await http.get("/readyz", timeout=5)
    return dict(response.json())


def mint_tokens(secret: str, class_id: int, participants: Sequence[int], path: Path) -> Any:
    """Every participant's token, one a line in ``path``; the ``Tokens`` that made them
    (``.display(class_id)`` makes a display's)."""
    from classroom.web.tokens import Tokens

    tokens = Tokens(secret)
    path.write_text("\n".join(tokens.participant(class_id, pid) for pid in participants))
    return tokens


Ping = Callable[[int], Awaitable[tuple[float, float, float] | None]]


async def clock_offset(ping: Ping, pings: int = 40, pause_s: float = 0.005) -> dict[str, float]:
    """A server's clock minus ours (ms), bounded from both sides over ``pings`` pings.

    ``ping(i)`` sends ping ``i`` and returns when we sent it and received its
    ``pong`` (our clock, s) and the pong's ``server_now`` (ms), or None if no pong
    came (that ping is skipped). The server reads its clock (whole ms, rounded
    down) between our send and our receipt: server_now - received <= offset <
    server_now + 1 - sent. The tightest bounds of all pings win. ``pause_s``
    between pings keeps them under the server's per-socket rate limit.
    """
    low, high, rtts = -math.inf, math.inf, []
    for i in range(pings):
        await asyncio.sleep(pause_s)
        answered = await ping(i)
        if answered is None:
            continue
        sent, server_now, received = answered
        low = max(low, server_now - received * 1000)
        high = min(high, server_now + 1 - sent * 1000)
        rtts.append((received - sent) * 1000)
    if not rtts:
        raise RuntimeError("the server answered no ping")
    # low > high is impossible on one machine's clock; then keep the midpoint, say how loosely.
    uncertainty = (high - low) / 2 if low <= high else min(rtts) / 2 + 0.5
    return {"offset_ms": (low + high) / 2, "uncertainty_ms": uncertainty, "rtt_ms": min(rtts)}
