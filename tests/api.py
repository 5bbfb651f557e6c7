"""What the API tests share: make a token in the console, call the API with it, and a
webhook receiver of the test's own."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import free_port
from tests.helpers import csrf

NEW_TOKEN = re.compile(r"data-new-token>.*?<pre[^>]*>(api_[A-Za-z0-9_-]+)</pre>", re.S)
NEW_SECRET = re.compile(r"data-new-secret>.*?<pre[^>]*>(whsec_[A-Za-z0-9_-]+)</pre>", re.S)


async def make_token(console: httpx.AsyncClient, label: str, access: str = "write") -> str:
    """A new API token, made on the console's Integrations page (signed in already)."""
    token = await csrf(console, "/console/integrations")
    page = await console.post(
        "/console/integrations/tokens",
        data={"csrf_token": token, "label": label, "access": access},
    )
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    match = NEW_TOKEN.search(page.text)
    assert match, "the new token is not on the page"
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


DOCS = Path(__file__).parents[1] / "docs" / "api.md"


def receivers_check() -> Callable[[str, str, bytes, float], bool]:
    """The signature check docs/api.md gives receivers, run as it is written there."""
    text = DOCS.read_text()
    block = text.split("<!-- verify-signature -->\n```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(block, str(DOCS), "exec"), scope)
    check: Callable[[str, str, bytes, float], bool] = scope["verified"]
    return check


verified = receivers_check()


async def register(console: httpx.AsyncClient, url: str, events: list[str]) -> tuple[int, str]:
    """A webhook made on the console's page: its id and signing secret (shown once)."""
    page = await console.post(
        "/console/integrations/webhooks",
        data={
            "csrf_token": await csrf(console, "/console/integrations"),
            "url": url,
            "events": events,
        },
    )
    assert page.status_code == 200, page.text
    match = NEW_SECRET.search(page.text)
    assert match, "the new secret is not on the page"
    webhook_id = int(page.text.split('data-webhook-id="')[-1].split('"')[0])
    return webhook_id, match.group(1)


@dataclass
class Received:
    event: str
    delivery: str
    signature: str
    body: bytes
    at: float

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTP server that takes webhook posts; ``fail`` deliveries get a 500 first."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_first: set[str] = field(default_factory=set)  # event names
    _failed: set[str] = field(default_factory=set)  # delivery ids answered 500

    async def take(self, request: Request) -> Response:
        body = await request.body()
        item = Received(
            request.headers["x-classroom-event"],
            request.headers["x-classroom-delivery"],
            request.headers["x-classroom-signature"],
            body,
            time.monotonic(),
        )
        self.received.append(item)
        if item.event in self.fail_first and item.delivery not in self._failed:
            self._failed.add(item.delivery)
            return Response("down for a moment", 500)
        return Response(status_code=204)

    def of(self, event: str) -> list[Received]:
        return [item for item in self.received if item.event == event]

    async def wait_for(self, event: str, count: int = 1) -> list[Received]:
        """The first ``count`` posts of ``event``, once they have come (within 15 s)."""
        async with asyncio.timeout(15):
            while len(self.of(event)) < count:  # noqa: ASYNC110 - posts come on another thread
                await asyncio.sleep(0.05)
        return self.of(event)


def receiving() -> Iterator[Receiver]:
    """A receiver on a free loopback port, for as long as the generator runs (a fixture's)."""
    hooks = Receiver()
    port = free_port()
    app = Starlette(routes=[Route("/hook", hooks.take, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    hooks.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield hooks
    finally:
        server.should_exit = True
        thread.join(10)
