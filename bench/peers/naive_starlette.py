"""Peer: the naive Starlette broadcast loop a user might write first.

``for ws in clients: await ws.send_text(message)`` under uvicorn with uvloop,
the ``websockets-sansio`` protocol and no permessage-deflate, as classroom runs.
Sockets connect to ``/ws``; ``GET /start?cues=K`` starts the cues and answers
how many sockets are connected; ``GET /health`` answers once it is up.

Run ``python -m bench.peers.naive_starlette --port P``.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from bench.peers.common import Ticker, encode, prepare_process, start_params

clients: set[WebSocket] = set()


async def broadcast(message: dict[str, Any]) -> None:
    text = encode(message)
    for ws in list(clients):  # a copy: a socket may leave while we await
        try:
            await ws.send_text(text)
        except Exception:
            clients.discard(ws)


ticker = Ticker(broadcast)


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    finally:
        clients.discard(websocket)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


async def start(request: Request) -> JSONResponse:
    if ticker.running:
        return JSONResponse({"error": "already running"}, status_code=409)
    start_ms = ticker.start(start_params(request.url.query))
    return JSONResponse({"clients": len(clients), "start_ms": start_ms})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/start", start),
        WebSocketRoute("/ws", socket),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    prepare_process()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
