"""Peer: the ``websockets`` library's own server and ``broadcast()``: the floor reference.

No permessage-deflate, no keepalive pings, uvloop. Sockets connect to any path;
``GET /start?cues=K`` starts the cues and answers how many sockets are
connected; ``GET /health`` answers once it is up.

Run ``python -m bench.peers.websockets_server --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any
from urllib.parse import urlsplit

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from bench.peers.common import Ticker, encode, prepare_process, start_params

clients: set[ServerConnection] = set()


async def send(message: dict[str, Any]) -> None:
    broadcast(clients, encode(message))


ticker = Ticker(send)


async def handler(ws: ServerConnection) -> None:
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)


def control(connection: ServerConnection, request: Request) -> Response | None:
    url = urlsplit(request.path)
    if url.path == "/health":
        return connection.respond(200, "ok\n")
    if url.path == "/start":
        if ticker.running:
            return connection.respond(409, "already running\n")
        start_ms = ticker.start(start_params(url.query))
        body = json.dumps({"clients": len(clients), "start_ms": start_ms})
        response = connection.respond(200, body + "\n")
        response.headers["Content-Type"] = "application/json"
        return response
    return None


async def run(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        ping_interval=None,
        process_request=control,
        backlog=2048,  # uvicorn's default, as for the other servers
    ):
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    prepare_process()
    uvloop.run(run(args.port))


if __name__ == "__main__":
    main()
